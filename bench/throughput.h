/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * `pipeline-bench throughput`: each user-space stage of the data path timed
 * in isolation, one file per stage (throughput_<stage>.c), then two stages
 * end to end: records through the real BPF rings and shards
 * (throughput_shards.c) and requests through the exporter
 * (throughput_export.c). A stage runs cfg->repeat repetitions of each of
 * its measurements and adds one report row per measurement. Every loop is
 * bounded twice: by an operation count (scaled by cfg->scale) and by a time
 * budget per repetition (cfg->budget_ns), whichever ends first; the figure
 * is per operation done.
 */
#ifndef PIPELINE_BENCH_THROUGHPUT_H
#define PIPELINE_BENCH_THROUGHPUT_H

#include <stdbool.h>
#include <stdint.h>

#include "report.h"

struct tp_cfg {
	unsigned repeat;    /* repetitions of each measurement */
	unsigned scale;	    /* operation counts are base counts x scale / 10 */
	uint64_t budget_ns; /* time bound of one repetition of one measurement */
	uint64_t seed;	    /* synthetic inputs */
};

/* Returns the operation count for a base count (a full run's), at least 1. */
static inline uint64_t tp_ops(const struct tp_cfg *cfg, uint64_t base)
{
	uint64_t n = base * cfg->scale / 10;

	return n ? n : 1;
}

/* Each stage: returns 0, or -errno if it could not run (rows added so far stay). */
int tp_queue__run(const struct tp_cfg *cfg, struct bench_report *rep);
int tp_agg__run(const struct tp_cfg *cfg, struct bench_report *rep);
int tp_sym__run(const struct tp_cfg *cfg, struct bench_report *rep);
int tp_enc__run(const struct tp_cfg *cfg, struct bench_report *rep);
/* The OTLP rows of the encoder stage (throughput_otlp.c); tp_enc__run() calls it. */
int tp_enc_otlp__run(const struct tp_cfg *cfg, struct bench_report *rep);
/* Records through the agent's BPF rings, shard readers, queues, workers and
 * aggregators (throughput_shards.c). Needs root; skipped with a row saying why
 * otherwise, but under CI=true a setup failure is an error. */
int tp_shards__run(const struct tp_cfg *cfg, struct bench_report *rep);
/* OTLP/HTTP requests through exporter/ to a loopback receiver (throughput_export.c). */
int tp_export__run(const struct tp_cfg *cfg, struct bench_report *rep);

#endif /* PIPELINE_BENCH_THROUGHPUT_H */
