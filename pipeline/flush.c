// SPDX-License-Identifier: BSD-2-Clause
/*
 * Flush: shards' retired aggregates -> cumulative aggregate -> encoders ->
 * file sink. The cumulative aggregate holds the whole run, so each flush
 * rewrites complete files and the last one written is the whole profile.
 * Its size is bounded like the shards' (max_stacks per shard times shards);
 * samples that do not fit are counted and exported as dropped.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "encoder.h"
#include "exporter.h"
#include "flush.h"
#include "shard.h"
#include "stack_agg.h"

#define SWAP_TIMEOUT_MS 2000

struct flusher {
	const struct pipeline_config *cfg;
	struct stack_agg *total;
	uint64_t start_real_ns; /* of the run, or of the interval with --per-interval */
	char hostname[256];
	struct flush_stats stats;
};

static uint64_t now_real_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

struct flusher *flusher__new(const struct pipeline_config *cfg, uint64_t start_real_ns)
{
	struct flusher *f = calloc(1, sizeof(*f));
	if (!f)
		return NULL;
	f->cfg = cfg;
	f->start_real_ns = start_real_ns;
	/* Not bounded by shard count alone: the union of all shards' stacks. */
	f->total = stack_agg__new((size_t)cfg->max_stacks * 4);
	if (!f->total) {
		free(f);
		return NULL;
	}
	if (gethostname(f->hostname, sizeof(f->hostname) - 1))
		strcpy(f->hostname, "unknown");
	return f;
}

void flusher__free(struct flusher *f)
{
	if (!f)
		return;
	stack_agg__free(f->total);
	free(f);
}

typedef int (*encode_fn)(const struct profile *p, struct encoded_buf *out);

static int encode_svg(const struct profile *p, struct encoded_buf *out)
{
	struct flamegraph_opts opts = {.title = "CPU flame graph", .width = 1200};
	return flamegraph__encode_svg(p, &opts, out);
}

static int flusher__write_one(struct flusher *f, const struct profile *p, const char *suffix,
			      encode_fn encode)
{
	struct encoded_buf buf = {0};
	char name[64];
	if (f->cfg->per_interval) {
		time_t t = (time_t)(p->time_ns / 1000000000ULL);
		struct tm tm;
		char stamp[32];
		gmtime_r(&t, &tm);
		strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &tm);
		snprintf(name, sizeof(name), "%s-%s.%s", p->signal, stamp, suffix);
	} else {
		snprintf(name, sizeof(name), "%s.%s", p->signal, suffix);
	}
	int err = encode(p, &buf);
	if (err) {
		fprintf(stderr, "pipeline: cannot encode %s: %s\n", name, strerror(-err));
		return err;
	}
	err = file_sink__write(f->cfg->output, name, buf.data, buf.len);
	if (err) {
		f->stats.write_errors++;
		fprintf(stderr, "pipeline: cannot write %s/%s: %s (the previous version is kept)\n",
			f->cfg->output, name, strerror(-err));
	}
	free(buf.data);
	return err;
}

int flusher__flush(struct flusher *f, struct shard *const *shards, unsigned n_shards,
		   const struct profile_drops *drops)
{
	int first_err = 0;

	for (unsigned i = 0; i < n_shards; i++) {
		struct stack_agg *retired = shard__swap(shards[i], SWAP_TIMEOUT_MS);
		if (!retired) {
			/* Its data stays in the shard and comes with the next flush. */
			f->stats.swap_timeouts++;
			fprintf(stderr,
				"pipeline: shard %u did not hand over its stacks in %d ms\n", i,
				SWAP_TIMEOUT_MS);
			continue;
		}
		int64_t lost = stack_agg__merge(f->total, retired);
		if (lost < 0)
			return (int)lost;
		f->stats.merge_dropped += (uint64_t)lost;
		stack_agg__reset(retired);
	}
	f->stats.flushes++;
	f->stats.distinct_stacks = stack_agg__size(f->total);
	/* Samples written: the whole run's, adding up the intervals if each has its own files. */
	if (f->cfg->per_interval)
		f->stats.samples += stack_agg__total(f->total);
	else
		f->stats.samples = stack_agg__total(f->total);

	if (f->cfg->per_interval && stack_agg__size(f->total) == 0) {
		f->start_real_ns = now_real_ns(); /* nothing sampled: no files */
		return 0;
	}
	struct profile_stack *stacks = stack_agg__snapshot(f->total);
	if (!stacks)
		return -ENOMEM;
	struct profile p = {
		.signal = "cpu",
		.hostname = f->hostname,
		.time_ns = f->start_real_ns,
		.duration_ns = now_real_ns() - f->start_real_ns,
		/* Drop counters are the run's so far in both modes. */
		.frequency_hz = f->cfg->frequency,
		.period_ns = 1000000000ULL / f->cfg->frequency,
		.stacks = stacks,
		.n_stacks = stack_agg__size(f->total),
		.total_samples = stack_agg__total(f->total),
		.drops = *drops,
	};
	p.drops.aggregator_full += f->stats.merge_dropped;

	static const struct {
		const char *name;
		encode_fn encode;
	} outputs[] = {
		{"pb.gz", pprof__encode},
		{"folded", folded__encode},
		{"svg", encode_svg},
	};
	for (size_t i = 0; i < sizeof(outputs) / sizeof(outputs[0]); i++) {
		int err = flusher__write_one(f, &p, outputs[i].name, outputs[i].encode);
		if (err && !first_err)
			first_err = err;
	}
	free(stacks);
	if (f->cfg->per_interval) {
		/* The next interval starts now and owes nothing to this one. */
		stack_agg__reset(f->total);
		f->start_real_ns = now_real_ns();
	}
	return first_err;
}

void flusher__stats(const struct flusher *f, struct flush_stats *st)
{
	*st = f->stats;
}
