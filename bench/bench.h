/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * pipeline-bench: the project's built-in benchmarks, one subcommand each
 * (main.c dispatches). They measure and report; they never decide pass or
 * fail. Single-threaded unless a benchmark says otherwise; no globals.
 */
#ifndef PIPELINE_BENCH_H
#define PIPELINE_BENCH_H

#include <stdint.h>
#include <time.h>

/* Returns CLOCK_MONOTONIC in nanoseconds (vDSO: no syscall). */
static inline uint64_t bench_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Keeps the compiler from dropping a computation whose result is unused. */
static inline void bench_keep(uint64_t v)
{
	__asm__ volatile("" : : "r"(v) : "memory");
}

/* Exit codes of every subcommand. */
enum {
	BENCH_EXIT_OK = 0,
	BENCH_EXIT_ERROR = 1, /* a benchmark could not run */
	BENCH_EXIT_USAGE = 2,
};

/* `pipeline-bench throughput`: per-operation cost of each user-space stage.
 * argv[0] is the subcommand name. Returns the process exit code. */
int bench_throughput__main(int argc, char **argv);
/* `pipeline-bench alloc`: cost per malloc+free pair under allocation
 * profilers (bench/alloc_cost.c). */
int bench_alloc__main(int argc, char **argv);

#endif /* PIPELINE_BENCH_H */
