// SPDX-License-Identifier: BSD-2-Clause
/*
 * flamegraph_sample: writes the SVG flame graph of a hand-built profile whose
 * answers are known, for the browser test (tests/browser/flamegraph.test.mjs).
 *
 * Usage: flamegraph_sample OUT.svg
 *
 * The profile, 100000 samples in all:
 *   app;main;compute;func_x                          20000
 *   app;main;compute;func_x;func_x                   10000 (recursion: no double count)
 *   app;main;compute;helper                          19000
 *   app;main;io;read;entry_SYSCALL_64;ksys_read;vfs_read  15000 (last three kernel)
 *   app;main;std::vector<int>::operator<;a&b          6000 (names needing escapes)
 *   app;main;[libfoo.so+0x1234];[unknown]             4000 (no symbol, no module)
 *   batch;job_N;func_x for N in 0..124                8 each, 1000 in all: each
 *                                                    job_N is 0.09 px, too narrow
 *                                                    to draw, yet search counts it
 *   [idle];secondary_startup_64;cpu_startup_entry;do_idle;default_idle  25000
 * So: search "func_x" matches 31.0% (30.0% drawn + 1.0% in narrow frames);
 * "compute" has 49%, and zooming into it hides its sibling "io".
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "encoder.h"

#define N_JOBS 125

static const struct sym_module mod_app = {"/usr/bin/app", "app", "", false};
static const struct sym_module mod_libc = {"/usr/lib/libc.so.6", "libc.so.6", "", false};
static const struct sym_module mod_foo = {"/usr/lib/libfoo.so", "libfoo.so", "", false};
static const struct sym_module mod_kernel = FIXTURE_KERNEL_MODULE;
static const struct sym_module mod_none = {"[unknown]", "", "", false};

#define UFRAME(mod, fn, addr, id) FIXTURE_UFRAME(&mod, addr, fn, NULL, 0, id)
#define KFRAME(fn, addr, id)	  FIXTURE_KFRAME(&mod_kernel, addr, fn, id)

static const struct sym_frame f_main = UFRAME(mod_app, "main", 0x1000, 1);
static const struct sym_frame f_compute = UFRAME(mod_app, "compute", 0x1100, 2);
static const struct sym_frame f_func_x = UFRAME(mod_app, "func_x", 0x1200, 3);
static const struct sym_frame f_helper = UFRAME(mod_app, "helper", 0x1300, 4);
static const struct sym_frame f_io = UFRAME(mod_app, "io", 0x1400, 5);
static const struct sym_frame f_read = UFRAME(mod_libc, "read", 0x9000, 6);
static const struct sym_frame f_vec = UFRAME(mod_app, "std::vector<int>::operator<", 0x1500, 7);
static const struct sym_frame f_amp = UFRAME(mod_app, "a&b", 0x1600, 8);
static const struct sym_frame f_nosym = UFRAME(mod_foo, NULL, 0x1234, 9);
static const struct sym_frame f_batch_x = UFRAME(mod_app, "func_x", 0x1200, 3);
static const struct sym_frame f_unknown = UFRAME(mod_none, NULL, 0, 27);
static const struct sym_frame k_entry = KFRAME("entry_SYSCALL_64", 0xffffffff81000000ull, 20);
static const struct sym_frame k_ksys = KFRAME("ksys_read", 0xffffffff81100000ull, 21);
static const struct sym_frame k_vfs = KFRAME("vfs_read", 0xffffffff81200000ull, 22);
static const struct sym_frame k_start = KFRAME("secondary_startup_64", 0xffffffff81300000ull, 23);
static const struct sym_frame k_cpu = KFRAME("cpu_startup_entry", 0xffffffff81400000ull, 24);
static const struct sym_frame k_doidle = KFRAME("do_idle", 0xffffffff81500000ull, 25);
static const struct sym_frame k_defidle = KFRAME("default_idle", 0xffffffff81600000ull, 26);

/* Frames are leaf first: kernel leaf..outermost, then user leaf..outermost. */
static const struct sym_frame *const st_x[] = {&f_func_x, &f_compute, &f_main};
static const struct sym_frame *const st_xx[] = {&f_func_x, &f_func_x, &f_compute, &f_main};
static const struct sym_frame *const st_helper[] = {&f_helper, &f_compute, &f_main};
static const struct sym_frame *const st_read[] = {&k_vfs,  &k_ksys, &k_entry,
						  &f_read, &f_io,   &f_main};
static const struct sym_frame *const st_vec[] = {&f_amp, &f_vec, &f_main};
static const struct sym_frame *const st_nosym[] = {&f_unknown, &f_nosym, &f_main};
static const struct sym_frame *const st_idle[] = {&k_defidle, &k_doidle, &k_cpu, &k_start};

/* A stack of the process pcomm whose one thread has the same id and name. */
static struct profile_stack stack(const char *pcomm, uint32_t tgid, uint32_t n_kernel,
				  uint32_t n_user, const struct sym_frame *const *frames,
				  uint64_t count)
{
	return fixture_stack(tgid, tgid, pcomm, pcomm, n_kernel, n_user, frames, count);
}

int main(int argc, char **argv)
{
	struct sym_frame jobs[N_JOBS];
	char job_names[N_JOBS][16];
	const struct sym_frame *job_stacks[N_JOBS][2];
	struct profile_stack stacks[7 + N_JOBS];
	struct profile p = {0};
	struct encoded_buf out = {0};
	size_t n = 0;

	if (argc != 2) {
		fprintf(stderr, "usage: %s OUT.svg\n", argv[0]);
		return 2;
	}
	set_stack(&stacks[n++], "app", 100, false, 0, 3, st_x, 20000);
	set_stack(&stacks[n++], "app", 100, false, 0, 4, st_xx, 10000);
	set_stack(&stacks[n++], "app", 100, false, 0, 3, st_helper, 19000);
	set_stack(&stacks[n++], "app", 100, false, 3, 3, st_read, 15000);
	set_stack(&stacks[n++], "app", 100, false, 0, 3, st_vec, 6000);
	set_stack(&stacks[n++], "app", 100, false, 0, 3, st_nosym, 4000);
	for (int i = 0; i < N_JOBS; i++) {
		snprintf(job_names[i], sizeof(job_names[i]), "job_%d", i);
		jobs[i] = (struct sym_frame){&mod_app,
					     0x2000 + 0x10 * (uint64_t)i,
					     job_names[i],
					     NULL,
					     0,
					     SYM_FRAME_USER,
					     100 + (uint64_t)i};
		job_stacks[i][0] = &f_batch_x;
		job_stacks[i][1] = &jobs[i];
		set_stack(&stacks[n++], "batch", 200, false, 0, 2, job_stacks[i], 8);
	}
	set_stack(&stacks[n++], "[idle]", 0, true, 4, 0, st_idle, 25000);

	p.signal = "cpu";
	p.hostname = "sample-host";
	p.time_ns = 1700000000ull * 1000000000ull;
	p.duration_ns = 10ull * 1000000000ull;
	p.frequency_hz = 99;
	p.period_ns = 1000000000ull / 99;
	p.stacks = stacks;
	p.n_stacks = n;
	for (size_t i = 0; i < n; i++)
		p.total_samples += stacks[i].count;

	struct flamegraph_opts opts = {.title = "Sample flame graph", .width = 1200};
	int err = flamegraph__encode_svg(&p, &opts, &out);
	if (err) {
		fprintf(stderr, "flamegraph__encode_svg: %s\n", strerror(-err));
		return 1;
	}
	FILE *f = fopen(argv[1], "w");
	if (f) {
		bool ok = fwrite(out.data, 1, out.len, f) == out.len;
		err = fclose(f) == 0 && ok ? 0 : -EIO;
	} else {
		err = -errno;
	}
	free(out.data);
	if (err)
		fprintf(stderr, "%s: %s\n", argv[1], strerror(-err));
	return err ? 1 : 0;
}
