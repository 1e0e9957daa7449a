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
 * and the stacks of inline_fixture.h (process "server", frames with inlined
 * calls and mangled names):
 *
 *	app::hash<int>(int)  6 at hash.h:7, inlined into app::Table::lookup(int)
 *	                     const at table.h:15, inlined into app::Server::run()
 *	                     at server.cc:42
 *	ksys_read            2   (kernel leaf over lookup at table.h:16, inlined)
 *
 * Period 10 ms (100 Hz), so each sample is 10 ms of cpu.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "encoder.h"
#include "inline_fixture.h"
#include "profile_fixture.h"

static const struct sym_module m_app = {
	.path = "/usr/bin/app", .name = "app", .build_id = "0123456789abcdef"};
static const struct sym_module m_libc = {
	.path = "/usr/lib/x86_64-linux-gnu/libc.so.6", .name = "libc.so.6", .build_id = ""};

static const struct sym_frame f_main = FIXTURE_UFRAME(&m_app, 0x1100, "main", "app.c", 10, 1);
static const struct sym_frame f_compute = FIXTURE_UFRAME(&m_app, 0x1200, "compute", "app.c", 20, 2);
static const struct sym_frame f_write = FIXTURE_UFRAME(&m_libc, 0x10e2a0, "write", NULL, 0, 3);
static const struct sym_frame f_sys = FIXTURE_KFRAME(0xffffffff81000100ULL, "do_syscall_64", 4);
static const struct sym_frame f_idle = FIXTURE_KFRAME(0xffffffff81000300ULL, "default_idle", 5);

static const struct sym_frame *const st_compute[] = {&f_compute, &f_main};
static const struct sym_frame *const st_sys[] = {&f_sys, &f_write, &f_main};
static const struct sym_frame *const st_idle[] = {&f_idle};

int main(int argc, char **argv)
{
	struct profile_stack stacks[] = {
		fixture_stack(100, 100, "app", "app", 0, 2, st_compute, 30),
		fixture_stack(100, 101, "app-worker", "app", 0, 2, st_compute, 8),
		fixture_stack(100, 100, "app", "app", 1, 2, st_sys, 12),
		fixture_stack(100, 102, "app", "app", 0, 0, NULL, 5),
		fixture_stack(0, 0, "swapper/1", "[idle]", 1, 0, st_idle, 20),
		{0},
		{0},
	};
	size_t n_stacks = sizeof(stacks) / sizeof(stacks[0]);
	inline_fixture_stacks(&stacks[n_stacks - 2]);
	struct profile p =
		fixture_profile("test-host", 1767225600000000000ULL, 100, stacks, n_stacks);
	struct encoded_buf out = {0};
	FILE *f;
	int err;

	if (argc != 2) {
		fprintf(stderr, "usage: %s FILE\n", argv[0]);
		return 2;
	}
	p.drops.kernel_ring_full = 3;
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
