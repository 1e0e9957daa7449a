/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * pprof_sample FILE: writes a pprof file (pprof__encode) of a hand-built CPU
 * profile whose flat sample counts are known, for pprof_gotool_test.sh to read
 * back with `go tool pprof`, an independent reader. Keep the expected numbers
 * in the script in step with the stacks below.
 *
 *	function        flat samples
 *	compute         38   (two threads: 30 + 8)
 *	default_idle    20   (idle stack, kernel frame)
 *	do_syscall_64   12   (kernel leaf under a libc frame)
 *	app              5   (stack with no frames: synthetic frame = process name)
 *	main             0   (cum 50)
 *
 * Period 10 ms (100 Hz), so each sample is 10 ms of cpu.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "encoder.h"

static const struct sym_module m_app = {
	.path = "/usr/bin/app", .name = "app", .build_id = "0123456789abcdef"};
static const struct sym_module m_libc = {
	.path = "/usr/lib/x86_64-linux-gnu/libc.so.6", .name = "libc.so.6", .build_id = ""};
static const struct sym_module m_kernel = {.path = "[kernel.kallsyms]",
					   .name = "[kernel.kallsyms]",
					   .build_id = "",
					   .is_kernel = true};

static const struct sym_frame f_main = {.module = &m_app,
					.address = 0x1100,
					.function = "main",
					.file = "app.c",
					.line = 10,
					.id = 1};
static const struct sym_frame f_compute = {.module = &m_app,
					   .address = 0x1200,
					   .function = "compute",
					   .file = "app.c",
					   .line = 20,
					   .id = 2};
static const struct sym_frame f_write = {
	.module = &m_libc, .address = 0x10e2a0, .function = "write", .id = 3};
static const struct sym_frame f_sys = {.module = &m_kernel,
				       .address = 0xffffffff81000100ULL,
				       .function = "do_syscall_64",
				       .kind = SYM_FRAME_KERNEL,
				       .id = 4};
static const struct sym_frame f_idle = {.module = &m_kernel,
					.address = 0xffffffff81000300ULL,
					.function = "default_idle",
					.kind = SYM_FRAME_KERNEL,
					.id = 5};

static const struct sym_frame *const st_compute[] = {&f_compute, &f_main};
static const struct sym_frame *const st_sys[] = {&f_sys, &f_write, &f_main};
static const struct sym_frame *const st_idle[] = {&f_idle};

int main(int argc, char **argv)
{
	struct profile_stack stacks[] = {
		{.tgid = 100,
		 .tid = 100,
		 .comm = "app",
		 .pcomm = "app",
		 .n_user = 2,
		 .frames = st_compute,
		 .count = 30},
		{.tgid = 100,
		 .tid = 101,
		 .comm = "app-worker",
		 .pcomm = "app",
		 .n_user = 2,
		 .frames = st_compute,
		 .count = 8},
		{.tgid = 100,
		 .tid = 100,
		 .comm = "app",
		 .pcomm = "app",
		 .n_kernel = 1,
		 .n_user = 2,
		 .frames = st_sys,
		 .count = 12},
		{.tgid = 100, .tid = 102, .comm = "app", .pcomm = "app", .count = 5},
		{.tgid = 0,
		 .tid = 0,
		 .comm = "swapper/1",
		 .pcomm = "[idle]",
		 .idle = true,
		 .n_kernel = 1,
		 .frames = st_idle,
		 .count = 20},
	};
	struct profile p = {.signal = "cpu",
			    .hostname = "test-host",
			    .time_ns = 1767225600000000000ULL,
			    .duration_ns = 10000000000ULL,
			    .frequency_hz = 100,
			    .period_ns = 10000000,
			    .stacks = stacks,
			    .n_stacks = sizeof(stacks) / sizeof(stacks[0]),
			    .drops = {.kernel_ring_full = 3}};
	struct encoded_buf out = {0};
	FILE *f;
	int err;

	if (argc != 2) {
		fprintf(stderr, "usage: %s FILE\n", argv[0]);
		return 2;
	}
	for (size_t i = 0; i < p.n_stacks; i++)
		p.total_samples += stacks[i].count;
	err = pprof__encode(&p, &out);
	if (err) {
		fprintf(stderr, "pprof__encode: %s\n", strerror(-err));
		return 1;
	}
	f = fopen(argv[1], "wb");
	if (!f || fwrite(out.data, 1, out.len, f) != out.len || fclose(f) != 0) {
		perror(argv[1]);
		free(out.data);
		return 1;
	}
	free(out.data);
	return 0;
}
