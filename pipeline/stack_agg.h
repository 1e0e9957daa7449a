/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Hashed stack aggregator: counts samples per distinct (tgid, tid, thread
 * name, process name, kernel + user frames). Frames are interned symbolizer
 * frames, so a stack is hashed and compared by frame pointer.
 *
 * Single-threaded: each shard worker owns two (double-buffered, swapped at a
 * flush) and the flush thread owns the merged one. Entries live in an arena
 * that reset() recycles; the table holds at most max_entries stacks, beyond
 * which add() refuses and the caller counts the drop.
 */
#ifndef PIPELINE_STACK_AGG_H
#define PIPELINE_STACK_AGG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "profile.h"

struct stack_agg;

/* Returns an empty aggregator bounded at max_entries stacks, or NULL with errno. */
struct stack_agg *stack_agg__new(size_t max_entries);
/* Accepts NULL. */
void stack_agg__free(struct stack_agg *agg);

/*
 * Adds count samples of the stack described by key (its frames are copied;
 * key->count/first_ns/last_ns are ignored). Returns 0, -ENOSPC when the stack
 * is new and the table is full, or -ENOMEM.
 */
int stack_agg__add(struct stack_agg *agg, const struct profile_stack *key, uint64_t count,
		   uint64_t first_ns, uint64_t last_ns);

/*
 * Adds one sample taken at wall time ns on cpu; records the time when time
 * recording is on. The hot-path form of add(). Returns as add() does.
 */
int stack_agg__add_sample(struct stack_agg *agg, const struct profile_stack *key, uint64_t ns,
			  uint32_t cpu);

/*
 * Adds one record standing for weight events of value each (an off-CPU
 * period, a lock wait): the stack's count grows by one record, its
 * values[0] by weight and values[1] by weight * value, and with
 * record_hist on its distribution of values by weight events of value.
 * Records the time as add_sample(). Returns as add() does.
 */
int stack_agg__add_weighted(struct stack_agg *agg, const struct profile_stack *key, uint64_t weight,
			    uint64_t value, uint64_t ns, uint32_t cpu);

/* Log-linear buckets of a stack's values (profile_stack.value_hist): below
 * 1024, then four per power of two, within 25 % of the value. */
#define STACK_AGG_HIST_BUCKETS 129
/* Keeps each stack's distribution of values from add_weighted() (off by default). */
void stack_agg__record_hist(struct stack_agg *agg, bool on);
unsigned stack_agg__hist_bucket(uint64_t v);
/* The upper bound of bucket b. */
uint64_t stack_agg__hist_upper(unsigned b);
/* The q-quantile (0-1) of a distribution, as its bucket's upper bound; 0
 * when empty or NULL. */
uint64_t stack_agg__hist_quantile(const uint32_t *hist, double q);

/* Turns per-sample time recording on (max_times > 0: at most that many times
 * kept until the next reset) or off (0). */
void stack_agg__record_times(struct stack_agg *agg, size_t max_times);

/* Adds every stack of src into dst, with its recorded times. Returns the number of samples that did
 * not fit (dst full), or -ENOMEM. */
int64_t stack_agg__merge(struct stack_agg *dst, const struct stack_agg *src);

/* Forgets every stack, keeping the memory for reuse. */
void stack_agg__reset(struct stack_agg *agg);

/* Returns the number of distinct stacks. */
size_t stack_agg__size(const struct stack_agg *agg);
/* Bytes of stacks and times held now (the arena in use; not the hash slots). */
size_t stack_agg__bytes(const struct stack_agg *agg);
/* Returns the sum of all counts. */
uint64_t stack_agg__total(const struct stack_agg *agg);

/* A copy of an aggregator's stacks for the encoders. */
struct stack_agg_snapshot {
	struct profile_stack *stacks; /* frames and names borrowed from the aggregator */
	size_t n_stacks;
	struct profile_sample_time *times; /* every stack's times, stacks[i].times points here */
	bool times_complete;		   /* recording was on and every sample has its time */
};

/* Fills *snap; it stays valid until the aggregator's next add/reset/free and
 * is released with stack_agg__snapshot_free(). Returns 0 or -ENOMEM. */
int stack_agg__snapshot(const struct stack_agg *agg, struct stack_agg_snapshot *snap);
/* Frees what snapshot() allocated. Accepts a zeroed or freed snapshot. */
void stack_agg__snapshot_free(struct stack_agg_snapshot *snap);

#endif /* PIPELINE_STACK_AGG_H */
