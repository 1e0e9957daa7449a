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
struct symbolizer;
struct otlp_exporter;
struct otlp_encode_opts;

struct flush_stats {
	uint64_t flushes;
	uint64_t otlp_requests;	  /* requests handed to the exporter */
	uint64_t export_errors;	  /* intervals that could not be encoded */
	uint64_t write_errors;	  /* output files that could not be written */
	uint64_t merge_dropped;	  /* samples that did not fit the cumulative aggregate */
	uint64_t swap_timeouts;	  /* a worker did not hand over its aggregate in time */
	uint64_t distinct_stacks; /* in the last profile written (files, else OTLP) */
	uint64_t samples;	  /* aggregated into intervals (whole run) */
};

/* Returns a flusher writing to cfg->output, or NULL with errno set. */
struct flusher_opts {
	const struct pipeline_config *cfg;
	struct symbolizer *sym;		     /* process metadata for profiles */
	struct otlp_exporter *exporter;	     /* NULL: no OTLP export */
	const struct otlp_encode_opts *otlp; /* with exporter */
	bool files;			     /* write local files to cfg->output */
	size_t max_times;		     /* per-sample times kept per interval; 0 = none */
	uint64_t start_real_ns;
};

/* Returns a flusher, or NULL with errno set. Everything in opts is borrowed
 * and must outlive it. */
struct flusher *flusher__new(const struct flusher_opts *opts);
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
