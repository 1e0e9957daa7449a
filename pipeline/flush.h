/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The flush: every --interval, and once more at exit, retire each shard's
 * aggregator, merge it into the run's cumulative aggregate, and rewrite the
 * output files (pprof, folded, SVG) from it. Runs on the main thread only.
 */
#ifndef PIPELINE_FLUSH_H
#define PIPELINE_FLUSH_H

#include <stdint.h>

#include "config.h"
#include "profile.h"

struct flusher;
struct shard;

struct flush_stats {
	uint64_t flushes;
	uint64_t write_errors;	  /* output files that could not be written */
	uint64_t merge_dropped;	  /* samples that did not fit the cumulative aggregate */
	uint64_t swap_timeouts;	  /* a worker did not hand over its aggregate in time */
	uint64_t distinct_stacks; /* in the cumulative aggregate */
	uint64_t samples;	  /* in the profiles written (whole run) */
};

/* Returns a flusher writing to cfg->output, or NULL with errno set. */
struct flusher *flusher__new(const struct pipeline_config *cfg, uint64_t start_real_ns);
/* Accepts NULL. */
void flusher__free(struct flusher *f);

/*
 * Merges every shard's retired aggregate and rewrites the outputs. drops are
 * the run's drop counters so far, exported with the profile.
 * Returns 0, or the first -errno of a write (the others are still tried).
 */
int flusher__flush(struct flusher *f, struct shard *const *shards, unsigned n_shards,
		   const struct profile_drops *drops);

/* Copies the flusher's counters into *st. */
void flusher__stats(const struct flusher *f, struct flush_stats *st);

#endif /* PIPELINE_FLUSH_H */
