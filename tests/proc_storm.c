// SPDX-License-Identifier: BSD-2-Clause
/*
 * proc_storm: burns CPU in one known function, storm_work(), for a given
 * wall time, then exits. Started a few hundred times a second it is the
 * short-lived process storm of tests/integration_symbols.sh; started once
 * for seconds, the binary deleted or hidden in a private mount namespace
 * while it runs, it checks that such binaries are still named.
 * Built by clang with frame pointers in every function.
 *
 * Usage: proc_storm MILLISECONDS
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static volatile uint64_t sink;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The function every sample must name: the loop and the clock reads (the
 * vdso, called from here) are all inside it. */
__attribute__((noinline)) static void storm_work(uint64_t ns)
{
	uint64_t end = now_ns() + ns, x = 1;

	while (now_ns() < end) {
		for (int i = 0; i < 20000; i++)
			x = x * 6364136223846793005u + 1442695040888963407u;
		sink = x;
	}
}

int main(int argc, char **argv)
{
	char *end;
	long ms = argc == 2 ? strtol(argv[1], &end, 10) : -1;

	if (argc != 2 || *end || ms < 0 || ms > 600000) {
		fprintf(stderr, "usage: proc_storm MILLISECONDS (0..600000)\n");
		return 2;
	}
	storm_work((uint64_t)ms * 1000000u);
	return 0;
}
