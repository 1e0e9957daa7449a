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
#include "profile_fixture.h"

#define N_JOBS 125

static const struct sym_module mod_app = {"/usr/bin/app", "app", "", false};
static const struct sym_module mod_libc = {"/usr/lib/libc.so.6", "libc.so.6", "", false};
static const struct sym_module mod_foo = {"/usr/lib/libfoo.so", "libfoo.so", "", false};
static const struct sym_module mod_none = {"[unknown]", "", "", false};

static const struct sym_frame f_main = FIXTURE_UFRAME(&mod_app, 0x1000, "main", NULL, 0, 1);
static const struct sym_frame f_compute = FIXTURE_UFRAME(&mod_app, 0x1100, "compute", NULL, 0, 2);
static const struct sym_frame f_func_x = FIXTURE_UFRAME(&mod_app, 0x1200, "func_x", NULL, 0, 3);
static const struct sym_frame f_helper = FIXTURE_UFRAME(&mod_app, 0x1300, "helper", NULL, 0, 4);
static const struct sym_frame f_io = FIXTURE_UFRAME(&mod_app, 0x1400, "io", NULL, 0, 5);
static const struct sym_frame f_read = FIXTURE_UFRAME(&mod_libc, 0x9000, "read", NULL, 0, 6);
static const struct sym_frame f_vec =
	FIXTURE_UFRAME(&mod_app, 0x1500, "std::vector<int>::operator<", NULL, 0, 7);
static const struct sym_frame f_amp = FIXTURE_UFRAME(&mod_app, 0x1600, "a&b", NULL, 0, 8);
static const struct sym_frame f_nosym = FIXTURE_UFRAME(&mod_foo, 0x1234, NULL, NULL, 0, 9);
static const struct sym_frame f_batch_x = FIXTURE_UFRAME(&mod_app, 0x1200, "func_x", NULL, 0, 3);
static const struct sym_frame f_unknown = FIXTURE_UFRAME(&mod_none, 0, NULL, NULL, 0, 27);
static const struct sym_frame k_entry =
	FIXTURE_KFRAME(0xffffffff81000000ull, "entry_SYSCALL_64", 20);
static const struct sym_frame k_ksys = FIXTURE_KFRAME(0xffffffff81100000ull, "ksys_read", 21);
static const struct sym_frame k_vfs = FIXTURE_KFRAME(0xffffffff81200000ull, "vfs_read", 22);
static const struct sym_frame k_start =
	FIXTURE_KFRAME(0xffffffff81300000ull, "secondary_startup_64", 23);
static const struct sym_frame k_cpu =
	FIXTURE_KFRAME(0xffffffff81400000ull, "cpu_startup_entry", 24);
static const struct sym_frame k_doidle = FIXTURE_KFRAME(0xffffffff81500000ull, "do_idle", 25);
static const struct sym_frame k_defidle = FIXTURE_KFRAME(0xffffffff81600000ull, "default_idle", 26);

/* Frames are leaf first: kernel leaf..outermost, then user leaf..outermost. */
static const struct sym_frame *const st_x[] = {&f_func_x, &f_compute, &f_main};
static const struct sym_frame *const st_xx[] = {&f_func_x, &f_func_x, &f_compute, &f_main};
static const struct sym_frame *const st_helper[] = {&f_helper, &f_compute, &f_main};
static const struct sym_frame *const st_read[] = {&k_vfs,  &k_ksys, &k_entry,
						  &f_read, &f_io,   &f_main};
static const struct sym_frame *const st_vec[] = {&f_amp, &f_vec, &f_main};
static const struct sym_frame *const st_nosym[] = {&f_unknown, &f_nosym, &f_main};
static const struct sym_frame *const st_idle[] = {&k_defidle, &k_doidle, &k_cpu, &k_start};

int main(int argc, char **argv)
{
	struct sym_frame jobs[N_JOBS];
	char job_names[N_JOBS][16];
	const struct sym_frame *job_stacks[N_JOBS][2];
	struct profile_stack stacks[7 + N_JOBS];
	struct encoded_buf out = {0};
	size_t n = 0;

	if (argc != 2) {
		fprintf(stderr, "usage: %s OUT.svg\n", argv[0]);
		return 2;
	}
	stacks[n++] = fixture_stack(100, 100, "app", "app", 0, 3, st_x, 20000);
	stacks[n++] = fixture_stack(100, 100, "app", "app", 0, 4, st_xx, 10000);
	stacks[n++] = fixture_stack(100, 100, "app", "app", 0, 3, st_helper, 19000);
	stacks[n++] = fixture_stack(100, 100, "app", "app", 3, 3, st_read, 15000);
	stacks[n++] = fixture_stack(100, 100, "app", "app", 0, 3, st_vec, 6000);
	stacks[n++] = fixture_stack(100, 100, "app", "app", 0, 3, st_nosym, 4000);
	for (int i = 0; i < N_JOBS; i++) {
		snprintf(job_names[i], sizeof(job_names[i]), "job_%d", i);
		jobs[i] =
			(struct sym_frame)FIXTURE_UFRAME(&mod_app, 0x2000 + 0x10 * (uint64_t)i,
							 job_names[i], NULL, 0, 100 + (uint64_t)i);
		job_stacks[i][0] = &f_batch_x;
		job_stacks[i][1] = &jobs[i];
		stacks[n++] = fixture_stack(200, 200, "batch", "batch", 0, 2, job_stacks[i], 8);
	}
	stacks[n++] = fixture_stack(0, 0, "[idle]", "[idle]", 4, 0, st_idle, 25000);

	struct profile p =
		fixture_profile("sample-host", 1700000000ull * 1000000000ull, 99, stacks, n);
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
