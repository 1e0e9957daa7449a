// SPDX-License-Identifier: BSD-2-Clause
/*
 * workload: a CPU-bound program whose profile is known by construction.
 *
 * Each round calls three functions on distinct call paths:
 *   main -> run_rounds -> path_alpha -> work_alpha   50 % of the CPU
 *   main -> run_rounds -> path_beta  -> work_beta    30 %
 *   main -> run_rounds -> path_gamma -> work_gamma   20 %
 * The split comes from iteration counts (5:3:2) of the same inlined loop, so
 * it holds whatever the machine's speed, and no system call runs inside the
 * measured functions (a syscall would put the sample in libc, whose code has
 * no frame pointers). Built by clang with frame pointers in every function,
 * leaves included, so a frame-pointer walk sees every caller.
 *
 * Usage: workload [--duration SEC] [--threads N]   (defaults 10 s, 1 thread)
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ROUND_ITERS 200000ULL /* one unit of the 5:3:2 split, about 0.1-0.3 ms */

static volatile uint64_t sink;
static volatile int stop;

static inline __attribute__((always_inline)) uint64_t burn(uint64_t iters, uint64_t x)
{
	for (uint64_t i = 0; i < iters; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		__asm__ volatile("" : "+r"(x));
	}
	return x;
}

__attribute__((noinline)) uint64_t work_alpha(uint64_t x)
{
	return burn(5 * ROUND_ITERS, x);
}

__attribute__((noinline)) uint64_t work_beta(uint64_t x)
{
	return burn(3 * ROUND_ITERS, x);
}

__attribute__((noinline)) uint64_t work_gamma(uint64_t x)
{
	return burn(2 * ROUND_ITERS, x);
}

__attribute__((noinline)) uint64_t path_alpha(uint64_t x)
{
	return work_alpha(x) + 1;
}

__attribute__((noinline)) uint64_t path_beta(uint64_t x)
{
	return work_beta(x) + 1;
}

__attribute__((noinline)) uint64_t path_gamma(uint64_t x)
{
	return work_gamma(x) + 1;
}

__attribute__((noinline)) static void *run_rounds(void *arg)
{
	uint64_t x = (uintptr_t)arg | 1;
	while (!stop) {
		x = path_alpha(x);
		x = path_beta(x);
		x = path_gamma(x);
	}
	sink = x;
	return NULL;
}

int main(int argc, char **argv)
{
	unsigned duration = 10, threads = 1;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--duration") && i + 1 < argc)
			duration = (unsigned)strtoul(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--threads") && i + 1 < argc)
			threads = (unsigned)strtoul(argv[++i], NULL, 10);
		else {
			fprintf(stderr, "usage: workload [--duration SEC] [--threads N]\n");
			return 2;
		}
	}
	if (threads < 1 || threads > 64) {
		fprintf(stderr, "workload: --threads must be 1-64\n");
		return 2;
	}
	pthread_t tids[64];
	for (unsigned i = 0; i < threads; i++)
		pthread_create(&tids[i], NULL, run_rounds, (void *)(uintptr_t)(i + 1));
	struct timespec ts = {.tv_sec = duration, .tv_nsec = 0};
	nanosleep(&ts, NULL);
	stop = 1;
	for (unsigned i = 0; i < threads; i++)
		pthread_join(tids[i], NULL);
	printf("workload: done, %u thread(s), %u s\n", threads, duration);
	return 0;
}
