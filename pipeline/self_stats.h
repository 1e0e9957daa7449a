/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Self-stats: what the agent received, dropped (by cause) and cost, printed
 * at exit and on SIGUSR1.
 */
#ifndef PIPELINE_SELF_STATS_H
#define PIPELINE_SELF_STATS_H

#include <stdint.h>
#include <stdio.h>

#include "config.h"

struct sampler;
struct shard;
struct flusher;
struct symbolizer;
struct proc_tracker;
struct otlp_exporter;
struct alloc_probes;
struct wait_probes;

/* Prints the agent's counters and costs over elapsed_ns of wall time to f;
 * exporter (the I/O loop) may be NULL: no files and no OTLP. */
void self_stats__print(FILE *f, const struct pipeline_config *cfg, struct sampler *smp,
		       struct shard *const *shards, unsigned n_shards, struct flusher *flusher,
		       struct symbolizer *sym, struct otlp_exporter *exporter, uint64_t elapsed_ns);

/* Writes the same counters as one JSON object to path (atomically).
 * Returns 0 or -errno. */
int self_stats__write_json(const char *path, const struct pipeline_config *cfg, struct sampler *smp,
			   struct shard *const *shards, unsigned n_shards, struct flusher *flusher,
			   struct symbolizer *sym, struct proc_tracker *procs,
			   struct otlp_exporter *exporter, const struct alloc_probes *ap,
			   const struct wait_probes *wp, uint64_t elapsed_ns);

#endif /* PIPELINE_SELF_STATS_H */
