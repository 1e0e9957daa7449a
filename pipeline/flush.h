/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The flush: every --interval, and once more at exit, retire each shard's
 * aggregator, merge it into the run's cumulative aggregate, and rewrite the
 * output files (pprof, folded, SVG) from it. Runs on the main thread only;
 * encodes, then hands the bytes to the I/O loop (exporter/), which writes
 * the files and sends the OTLP requests on its own thread.
 */
#ifndef PIPELINE_FLUSH_H
#define PIPELINE_FLUSH_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "profile.h"

struct flusher;
struct shard;
struct symbolizer;
struct otlp_exporter;
struct otlp_encode_opts;
struct alloc_probes;

struct flush_stats {
	uint64_t flushes;
	uint64_t otlp_requests;	  /* requests handed to the exporter */
	uint64_t export_errors;	  /* intervals that could not be encoded */
	uint64_t write_errors;	  /* output files that could not be encoded or queued (failed
				   * writes: the exporter's profile_file_errors) */
	uint64_t merge_dropped;	  /* samples that did not fit the cumulative aggregate */
	uint64_t swap_timeouts;	  /* a worker did not hand over its aggregate in time */
	uint64_t distinct_stacks; /* in the last profile written (files, else OTLP) */
	uint64_t samples;	  /* aggregated into intervals (whole run) */
	uint64_t otlp_batched;	  /* intervals sent batched with others, while the exporter
				   * was behind (one profile and request for several) */
};

/* Returns a flusher writing to cfg->output, or NULL with errno set. */
struct flusher_opts {
	const struct pipeline_config *cfg;
	struct symbolizer *sym;		     /* process metadata for profiles */
	struct otlp_exporter *exporter;	     /* the I/O loop: needed with files or send_otlp */
	bool send_otlp;			     /* queue each interval as OTLP request(s) */
	const struct otlp_encode_opts *otlp; /* with send_otlp */
	bool files;			     /* write local files to cfg->output */
	size_t max_times;		     /* per-sample times kept per interval; 0 = none */
	struct alloc_probes *alloc_probes;   /* leak scan (with cfg->profile_alloc) */
	uint64_t start_real_ns;
};

/* Returns a flusher, or NULL with errno set (EINVAL: files or send_otlp
 * without an exporter). Everything in opts is borrowed and must outlive it. */
struct flusher *flusher__new(const struct flusher_opts *opts);
/* Accepts NULL. */
void flusher__free(struct flusher *f);

/*
 * Merges every shard's retired aggregate, encodes the outputs and queues
 * them on the I/O loop. drops are the run's drop counters so far, exported
 * with the profile. While the exporter is behind, OTLP intervals are held
 * and batched (flush.c); last (the final flush) sends whatever is held.
 * Returns 0, or the first -errno of building, encoding or queueing a file
 * (the others are still tried); the writes complete later, on the loop,
 * which logs and counts their failures.
 */
int flusher__flush(struct flusher *f, struct shard *const *shards, unsigned n_shards,
		   const struct profile_drops *drops, bool last);

/* Copies the flusher's counters into *st. */
/* Adds ns of CPU time of thread (its tgid, tid and names) that no sample
 * saw (--clock tick: tick_unseen.h) to the next flush's profile, as samples
 * of one frame, "[unsampled: ran between ticks]". Returns 0 or -errno. */
int flusher__add_unseen(struct flusher *f, const struct profile_stack *thread, uint64_t ns);

void flusher__stats(const struct flusher *f, struct flush_stats *st);

/* Whether the flusher writes local files, and sends OTLP requests. */
bool flusher__writes_files(const struct flusher *f);
bool flusher__sends_otlp(const struct flusher *f);

#endif /* PIPELINE_FLUSH_H */
