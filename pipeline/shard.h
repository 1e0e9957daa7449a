/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * A shard: one ring reader thread and one worker thread joined by an SPSC
 * queue, serving a fixed set of CPUs.
 *
 *   reader: epoll on its CPUs' BPF rings; copies each record (only the frames
 *           it holds) into a queue slot; never blocks on the worker, counts a
 *           drop when the queue is full. Does no other work.
 *   worker: resolves frames through its own sym_reader and adds the stack to
 *           the active one of its two aggregators; sleeps when the queue is
 *           empty.
 *
 * At a flush the flush thread calls shard__swap(): the worker switches to
 * the other aggregator at its next loop turn and acknowledges, after which
 * the flush thread alone reads and resets the retired one.
 */
#ifndef PIPELINE_SHARD_H
#define PIPELINE_SHARD_H

#include <stdint.h>

#include "stack_agg.h"
#include "symbolizer.h"
#include "unwind_auto.h"

struct shard;
struct alloc_agg;
struct sampler;
struct symbolizer;

/* The wait signals a shard aggregates, each into its own stacks. */
enum shard_wait {
	SHARD_WAIT_OFFCPU, /* off-CPU periods (count: periods, value: ns) */
	SHARD_WAIT_LOCK,   /* futex waits (count: contentions, value: ns) */
	SHARD_WAIT_N,
};

struct shard_opts {
	unsigned id;
	const unsigned *cpus; /* CPUs whose rings this shard drains */
	unsigned n_cpus;
	unsigned queue_depth;
	unsigned max_stacks;
	size_t max_times; /* per-sample times kept per aggregator; 0 = not recorded */
	unsigned poll_ms;
	uint64_t mono_to_real_ns;  /* added to BPF monotonic timestamps */
	uint64_t alloc_period;	   /* allocation sampling period in bytes; 0: no allocation sites */
	unsigned stack_copy_bytes; /* --unwind dwarf: stack bytes a record may carry; 0: fp */
	int copy_tgids_fd;	   /* dwarf, auto: the map of per-process copy sizes; -1: fp */
	int unwind_rules_fd;	   /* auto: the map of learned rules for rule walks; -1: none */
	bool auto_switch;	   /* --unwind auto: also switch processes to copies */
	bool waits[SHARD_WAIT_N];  /* wait signals whose records come */
};

/* Counters, each written by one thread and read with relaxed loads. */
struct shard_stats {
	uint64_t received;	   /* records read from the rings */
	uint64_t queue_full;	   /* records dropped: no free queue slot within 5 s */
	uint64_t malformed;	   /* records dropped: shorter than struct cpu_sample */
	uint64_t processed;	   /* records aggregated */
	uint64_t aggregator_full;  /* samples dropped: aggregator at its bound */
	uint64_t truncated;	   /* samples with a stack at the frame limit */
	uint64_t stack_errors;	   /* samples whose stack capture failed */
	uint64_t resolve_errors;   /* samples the symbolizer could not resolve (ENOMEM) */
	uint64_t wakeups;	   /* worker wake-ups */
	uint64_t alloc_records;	   /* allocation and free records aggregated */
	uint64_t alloc_sites_full; /* of them, dropped: allocation sites at their bound */
	uint64_t wait_records;	   /* off-CPU and lock records aggregated */
	uint64_t unwind[SYM_UNWIND_N_COUNTERS];	 /* --unwind dwarf: the unwinder's counters */
	uint64_t unwind_hist[SYM_UNWIND_HIST_N]; /* time per unwind of a copy */
	struct unwind_auto_stats unwind_auto;	 /* --unwind auto: the judges' counters */
};

/* The q-quantile (0-1) of the time per unwind of a stack copy, in us: the
 * upper bound of its histogram bucket (within 25 %); 0 when none. */
double shard_stats__unwind_quantile_us(const struct shard_stats *st, double q);

/* Returns a started shard (both threads running), or NULL with errno set. */
struct shard *shard__start(const struct shard_opts *opts, const struct sampler *smp,
			   struct symbolizer *sym);
/* Tells the reader to drain its rings one last time and stop, the worker to
 * drain the queue and stop, and joins both. Idempotent. */
void shard__stop(struct shard *sh);
/* Stops if needed, then frees. Accepts NULL. */
void shard__free(struct shard *sh);

/*
 * Retires the worker's active aggregator and returns it: the caller may read
 * and reset it until the next swap. A stopped shard's worker no longer runs,
 * so the swap is done directly. Returns NULL if the worker did not answer
 * within timeout_ms.
 */
struct stack_agg *shard__swap(struct shard *sh, int timeout_ms);

/* The allocation sites retired by the last shard__swap() (NULL without
 * alloc_period): the caller may read and reset them until the next swap. */
struct alloc_agg *shard__retired_allocs(struct shard *sh);

/* The wait stacks of w retired by the last shard__swap() (NULL when w is
 * not aggregated): the caller may read and reset them until the next swap. */
struct stack_agg *shard__retired_waits(struct shard *sh, enum shard_wait w);

/* Copies the shard's counters into *st. */
void shard__stats(const struct shard *sh, struct shard_stats *st);
/* Sums the counters of n shards into *tot. */
void shard__stats_sum(struct shard *const *shards, unsigned n, struct shard_stats *tot);

#endif /* PIPELINE_SHARD_H */
