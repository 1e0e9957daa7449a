// SPDX-License-Identifier: BSD-2-Clause
/*
 * pipeline-bench: dispatches to one subcommand per benchmark suite, each in
 * its own file. A new suite is one row in the table below and one
 * bench_<name>__main() (declared in bench.h).
 */
#include <stdio.h>
#include <string.h>

#include "bench.h"
#include "loadgen.h"
#include "gap.h"
#include "overhead.h"

struct bench_cmd {
	const char *name;
	int (*main)(int argc, char **argv);
	const char *help;
};

static const struct bench_cmd bench_cmds[] = {
	{"throughput", bench_throughput__main,
	 "per-operation cost of each user-space stage, in isolation"},
	{"load", bench_load__main, "open-loop HTTP load on a server, latency from each due time"},
	{"gap", bench_gap__main, "time taken from one CPU (interrupts, host, other tasks)"},
	{"overhead", bench_overhead__main,
	 "a profiler's cost to a loopback server, A/B against no profiler (root)"},
	{"alloc", bench_alloc__main, "cost per malloc+free pair under allocation profilers (root)"},
};
#define N_BENCH_CMDS (sizeof(bench_cmds) / sizeof(bench_cmds[0]))

static void bench_usage(FILE *f)
{
	fprintf(f, "Usage: pipeline-bench COMMAND [OPTION]...\n"
		   "Benchmarks of the pipeline profiler: they measure and report, they do not\n"
		   "pass or fail. `pipeline-bench COMMAND --help` describes each command.\n\n"
		   "Commands:\n");
	for (size_t i = 0; i < N_BENCH_CMDS; i++)
		fprintf(f, "  %-11s %s\n", bench_cmds[i].name, bench_cmds[i].help);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		bench_usage(stderr);
		return BENCH_EXIT_USAGE;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		bench_usage(stdout);
		return BENCH_EXIT_OK;
	}
	for (size_t i = 0; i < N_BENCH_CMDS; i++)
		if (!strcmp(argv[1], bench_cmds[i].name))
			return bench_cmds[i].main(argc - 1, argv + 1);
	fprintf(stderr, "pipeline-bench: unknown command '%s'; try 'pipeline-bench --help'.\n",
		argv[1]);
	return BENCH_EXIT_USAGE;
}
