/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The kernel side of allocation profiling: owns the alloc_sample BPF
 * skeleton and its uprobes on each target process's allocator
 * (alloc_target.h), writing into the sampler's per-CPU rings. Open,
 * configure, load and attach happen in alloc_probes__new(); free detaches.
 */
#ifndef PIPELINE_ALLOC_PROBES_H
#define PIPELINE_ALLOC_PROBES_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "alloc_sample.h"

struct alloc_probes;

struct alloc_probes_opts {
	uint64_t sample_bytes; /* sampling period in bytes; 1: every allocation */
	uint32_t max_tracked;  /* bound on live sampled allocations */
	int rings_map_fd;      /* the sampler's ARRAY_OF_MAPS of per-CPU rings */
	unsigned n_cpus;       /* entries of that map */
	uint64_t wakeup_bytes; /* reader wake-up watermark, as the CPU sampler's */
	const uint32_t *pids;  /* processes to probe */
	bool all;	       /* instead: every process using the agent's C library */
	unsigned n_pids;
};

/* Loads the programs and attaches them to every pid's allocator. A pid
 * that cannot be probed (gone, no known allocator) is named on stderr and
 * skipped; none probed is an error. Returns 0 and *out, or -errno. */
int alloc_probes__new(const struct alloc_probes_opts *opts, struct alloc_probes **out);
/* Detaches and frees. Accepts NULL. */
void alloc_probes__free(struct alloc_probes *ap);
/* Detaches every probe (no more records); the tracking map stays readable. */
void alloc_probes__stop(struct alloc_probes *ap);
/* Wall-clock time (ns) of the first alloc_probes__stop(), or 0 if running. */
uint64_t alloc_probes__stopped_ns(const struct alloc_probes *ap);

/* Sums the per-CPU counters. Returns 0 or -errno. */
int alloc_probes__read_stats(const struct alloc_probes *ap, struct alloc_sample_stats *out);
/* Reads the run time and count of every program. Returns 0 or -errno. */
int alloc_probes__read_bpf_stats(const struct alloc_probes *ap, uint64_t *run_ns,
				 uint64_t *run_cnt);
/* Writes, per probed process, its allocator and where each probe went. */
void alloc_probes__describe(const struct alloc_probes *ap, FILE *f, const char *indent);

/* Calls fn with the count of records the rings had no room for (struct
 * alloc_lost_key) that came since the last call, per key. Returns how many
 * keys had some, or -errno. */
int64_t alloc_probes__drain_lost(struct alloc_probes *ap,
				 void (*fn)(const struct alloc_lost_key *k, uint64_t count,
					    void *arg),
				 void *arg);

/* The stack the kernel kept for site (tgid, site) when one of its ALLOC
 * records found the ring full. Returns 0 or -ENOENT. */
int alloc_probes__site_stack(const struct alloc_probes *ap, uint32_t tgid, uint64_t site,
			     struct alloc_sample_rec *out);

/* Prints the probes' counters (the self-stats' allocation part). Accepts
 * NULL (prints nothing). */
void alloc_probes__print_stats(const struct alloc_probes *ap, FILE *f);

/* Writes ',\n  "alloc": {...}' (the counters, as print_stats) into an open
 * JSON object. Accepts NULL (writes nothing). */
void alloc_probes__write_json(const struct alloc_probes *ap, FILE *f);

/* Calls fn for each allocation still tracked in the kernel (sampled and not
 * freed), with its process, site, size and allocation time; those for which
 * fn returns true (their process is gone) are then untracked. Returns the
 * number visited, or -errno. */
int64_t alloc_probes__for_each_live(const struct alloc_probes *ap,
				    bool (*fn)(uint32_t tgid, const struct alloc_val *v, void *arg),
				    void *arg);

#endif /* PIPELINE_ALLOC_PROBES_H */
