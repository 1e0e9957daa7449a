/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Synthetic, deterministic benchmark inputs: a pool of frames (as the
 * symbolizer would intern them), distinct stacks shaped like a call tree
 * (shared roots, distinct leaves), and a Zipf sampler for skewed streams.
 * The same seed gives the same inputs on every machine, so runs compare.
 *
 * Ownership: struct synth owns its modules, frames and names; struct
 * synth_stacks owns its stacks and frame-pointer arrays and borrows frames
 * from the synth it was built from (free it first). Single-threaded.
 */
#ifndef PIPELINE_BENCH_SYNTH_H
#define PIPELINE_BENCH_SYNTH_H

#include <stddef.h>
#include <stdint.h>

#include "profile.h"

/* splitmix64: returns the next pseudo-random value of *state. */
static inline uint64_t synth_rand(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

struct synth;

/* Returns a pool of n_user user frames and n_kernel kernel frames with
 * distinct ids and plausible names, or NULL with errno set. */
struct synth *synth__new(size_t n_user, size_t n_kernel, uint64_t seed);
/* Accepts NULL. */
void synth__free(struct synth *s);

struct synth_stacks {
	struct profile_stack *stacks; /* n distinct stacks */
	size_t n;
	uint64_t total;			 /* sum of stacks[].count */
	const struct sym_frame **frames; /* backing store of every stacks[].frames */
};

/*
 * Returns n distinct stacks of depth frames each (leaf first; one in four
 * starts with 4 kernel frames), over 8 processes of 4 threads. Counts are
 * Zipf-like: the stack of popularity rank k has about 1000 / (k + 1) samples.
 * NULL with errno set on failure.
 */
struct synth_stacks *synth_stacks__new(const struct synth *s, size_t n, unsigned depth,
				       uint64_t seed);
/* Accepts NULL. */
void synth_stacks__free(struct synth_stacks *st);

/*
 * A whole aggregated interval as the pipeline's flusher hands it to the OTLP
 * encoder: distinct stacks of min_depth..max_depth frames (the call tree of
 * synth_stacks__new(), one in four entering the kernel), over n_processes
 * processes with executable paths (two in three in a container) and a few
 * threads each, and every sample's time and CPU: hz x n_cpus x seconds
 * samples on a per-CPU tick grid, each stack getting one and the rest drawn
 * with Zipf skew. Stacks come in no particular order (as from the
 * aggregator's hash table); each stack's times in arrival (tick) order.
 */
struct synth_interval_cfg {
	size_t n_stacks;
	unsigned min_depth, max_depth; /* frames per stack, both included */
	unsigned n_processes;	       /* 1..n_stacks */
	unsigned n_cpus;
	unsigned hz;
	unsigned seconds;
	uint64_t seed;
};

struct synth_interval {
	struct profile profile; /* what the encoders read; points into the rest */
	struct profile_stack *stacks;
	const struct sym_frame **frames;
	struct profile_sample_time *times;
	struct profile_process *processes; /* sorted by tgid */
	char *container_ids;		   /* 65 bytes per process */
	char *paths;			   /* executable paths, 128 bytes per process */
};

/* Returns the interval, or NULL with errno set (EINVAL: fewer samples than
 * stacks, or a bad count). It borrows frames from s (free it first). */
struct synth_interval *synth_interval__new(const struct synth *s,
					   const struct synth_interval_cfg *cfg);
/* Accepts NULL. */
void synth_interval__free(struct synth_interval *si);

/* Zipf sampler (exponent 1) over n items by inverse CDF. */
struct synth_zipf {
	double *cdf; /* owned */
	size_t n;
};

/* Returns 0 or -errno. */
int synth_zipf__init(struct synth_zipf *z, size_t n);
/* Accepts a zeroed or failed-init z. */
void synth_zipf__deinit(struct synth_zipf *z);
/* Returns an item index in [0, n): item k with probability ~ 1 / (k + 1). */
size_t synth_zipf__draw(const struct synth_zipf *z, uint64_t *rng);

#endif /* PIPELINE_BENCH_SYNTH_H */
