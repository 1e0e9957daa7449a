// SPDX-License-Identifier: BSD-2-Clause
/*
 * `pipeline-bench throughput`: options, then each selected stage in turn,
 * then the table (stdout) and the JSON file. One option table drives
 * getopt_long, --help and the range checks. A stage that fails is named on
 * stderr and the others still run; the exit code is then 1.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "help_wrap.h"
#include "bench.h"
#include "throughput.h"

enum tp_opt {
	TP_OPT_QUICK,
	TP_OPT_REPEAT,
	TP_OPT_JSON,
	TP_OPT_STAGE,
	TP_OPT_HELP,
};

struct tp_opt_desc {
	const char *name;
	const char *arg; /* NULL: no argument */
	const char *help;
};

static const struct tp_opt_desc tp_opts[] = {
	[TP_OPT_QUICK] = {"quick", NULL,
			  "CI-sized run (under 10 s): a tenth of the operations, 3 "
			  "repetitions, each bounded at 0.4 s"},
	[TP_OPT_REPEAT] = {"repeat", "N",
			   "repetitions of each measurement, 1-100; the table shows their "
			   "median, min and max (default 5, 3 with --quick)"},
	[TP_OPT_JSON] = {"json", "FILE", "also write the figures as JSON to FILE"},
	[TP_OPT_STAGE] = {"stage", "LIST",
			  "comma-separated stages to run: queue, aggregator, symbolizer, "
			  "encoder, shards, exporter (default all)"},
	[TP_OPT_HELP] = {"help", NULL, "print this help and exit"},
};
#define N_TP_OPTS (sizeof(tp_opts) / sizeof(tp_opts[0]))

struct tp_stage {
	const char *name;
	int (*run)(const struct tp_cfg *cfg, struct bench_report *rep);
};

static const struct tp_stage tp_stages[] = {
	{"queue", tp_queue__run},     /* throughput_queue.c */
	{"aggregator", tp_agg__run},  /* throughput_agg.c */
	{"symbolizer", tp_sym__run},  /* throughput_sym.c */
	{"encoder", tp_enc__run},     /* throughput_enc.c, throughput_otlp.c */
	{"shards", tp_shards__run},   /* throughput_shards.c, bpf/bench_inject.bpf.c */
	{"exporter", tp_export__run}, /* throughput_export.c */
};
#define N_TP_STAGES (sizeof(tp_stages) / sizeof(tp_stages[0]))

struct tp_args {
	bool quick;
	unsigned repeat; /* 0: the default */
	const char *json;
	unsigned stages; /* bit i: tp_stages[i] */
};

static void tp_usage(FILE *f)
{
	fprintf(f, "Usage: pipeline-bench throughput [OPTION]...\n"
		   "Times each user-space stage of the data path in isolation (SPSC queue,\n"
		   "stack aggregator, symbolizer, encoders) and prints the cost per operation;\n"
		   "then records/s through the agent's BPF rings, shard readers, queues, workers\n"
		   "and aggregators with 1, 2 and all shards (shards: records written into the\n"
		   "rings by a BPF program run with BPF_PROG_TEST_RUN; no perf_event interrupt),\n"
		   "and OTLP/HTTP requests/s through the exporter to a 127.0.0.1 receiver.\n"
		   "The shards stage needs root (skipped otherwise, an error under CI=true);\n"
		   "kernel symbol lines need a readable /proc/kallsyms.\n\n"
		   "Options:\n");
	for (size_t i = 0; i < N_TP_OPTS; i++) {
		char lhs[40];

		snprintf(lhs, sizeof(lhs), "--%s%s%s", tp_opts[i].name, tp_opts[i].arg ? " " : "",
			 tp_opts[i].arg ? tp_opts[i].arg : "");
		fprintf(f, "  %-16s ", lhs);
		bench_help__print_wrapped(f, tp_opts[i].help, 19, 79);
	}
	fprintf(f, "\nExit status: 0 when every stage ran, 1 when one could not, 2 on a usage "
		   "error.\n");
}

/* Returns 0, or -EINVAL after naming the bad stage. */
static int parse_stages(const char *list, unsigned *mask)
{
	const char *p = list;

	*mask = 0;
	while (*p) {
		size_t len = strcspn(p, ",");
		size_t i;

		for (i = 0; i < N_TP_STAGES; i++)
			if (len == strlen(tp_stages[i].name) && !strncmp(p, tp_stages[i].name, len))
				break;
		if (i == N_TP_STAGES) {
			fprintf(stderr,
				"pipeline-bench throughput: unknown stage '%.*s' (one of: "
				"queue, aggregator, symbolizer, encoder, shards, exporter)\n",
				(int)len, p);
			return -EINVAL;
		}
		*mask |= 1u << i;
		p += len + (p[len] == ',');
	}
	if (!*mask) {
		fprintf(stderr, "pipeline-bench throughput: --stage: empty list\n");
		return -EINVAL;
	}
	return 0;
}

/* Returns 0, 1 for --help, or -EINVAL after printing why. */
static int tp_parse(int argc, char **argv, struct tp_args *a)
{
	struct option longopts[N_TP_OPTS + 1];
	int c;

	memset(longopts, 0, sizeof(longopts));
	for (size_t i = 0; i < N_TP_OPTS; i++)
		longopts[i] = (struct option){tp_opts[i].name,
					      tp_opts[i].arg ? required_argument : no_argument,
					      NULL, (int)i};
	*a = (struct tp_args){.stages = (1u << N_TP_STAGES) - 1};
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		char *end;
		unsigned long v;

		switch (c) {
		case TP_OPT_QUICK:
			a->quick = true;
			break;
		case TP_OPT_REPEAT:
			errno = 0;
			v = strtoul(optarg, &end, 10);
			if (errno || *end || !*optarg || v < 1 || v > BENCH_MAX_REPEAT) {
				fprintf(stderr,
					"pipeline-bench throughput: --repeat '%s': expected "
					"1-%d\n",
					optarg, BENCH_MAX_REPEAT);
				return -EINVAL;
			}
			a->repeat = (unsigned)v;
			break;
		case TP_OPT_JSON:
			a->json = optarg;
			break;
		case TP_OPT_STAGE:
			if (parse_stages(optarg, &a->stages))
				return -EINVAL;
			break;
		case TP_OPT_HELP:
			return 1;
		default:
			fprintf(stderr,
				"pipeline-bench throughput: unknown option or missing argument: "
				"'%s'\n",
				argv[optind - 1]);
			return -EINVAL;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "pipeline-bench throughput: unexpected argument '%s'\n",
			argv[optind]);
		return -EINVAL;
	}
	return 0;
}

int bench_throughput__main(int argc, char **argv)
{
	struct tp_args a;
	struct tp_cfg cfg;
	struct bench_report *rep;
	int rc = tp_parse(argc, argv, &a), exit_code = BENCH_EXIT_OK;

	if (rc > 0) {
		tp_usage(stdout);
		return BENCH_EXIT_OK;
	}
	if (rc) {
		fprintf(stderr, "Try 'pipeline-bench throughput --help'.\n");
		return BENCH_EXIT_USAGE;
	}
	cfg = (struct tp_cfg){
		.repeat = a.repeat  ? a.repeat
			  : a.quick ? 3
				    : 5,
		.scale = a.quick ? 1 : 10,
		.budget_ns = a.quick ? 400000000ull : 2000000000ull,
		.seed = 0x70726f66696c6572ull,
	};
	rep = bench_report__new(&(struct bench_run_info){
		.command = "throughput", .quick = a.quick, .repeat = cfg.repeat});
	if (!rep) {
		fprintf(stderr, "pipeline-bench throughput: %s\n", strerror(errno));
		return BENCH_EXIT_ERROR;
	}
	for (size_t i = 0; i < N_TP_STAGES; i++) {
		if (!(a.stages & (1u << i)))
			continue;
		fprintf(stderr, "pipeline-bench: %s...\n", tp_stages[i].name);
		rc = tp_stages[i].run(&cfg, rep);
		if (rc) {
			fprintf(stderr, "pipeline-bench throughput: stage %s failed: %s\n",
				tp_stages[i].name, strerror(-rc));
			exit_code = BENCH_EXIT_ERROR;
		}
	}
	bench_report__print(rep, stdout);
	if (a.json) {
		rc = bench_report__write_json(rep, a.json);
		if (rc) {
			fprintf(stderr, "pipeline-bench throughput: cannot write %s: %s\n", a.json,
				strerror(-rc));
			exit_code = BENCH_EXIT_ERROR;
		}
	}
	bench_report__free(rep);
	return exit_code;
}
