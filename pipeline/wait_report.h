/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The wait profiles, built from their aggregated stacks at a flush: off-CPU
 * time (offcpu) and futex waits (lock), each a profile of two columns
 * (events, nanoseconds) whose flame graph and folded stacks weigh by time;
 * the lock report (lock.txt: the most contended call paths with total and
 * p99 wait); and the wall-clock view of on-CPU and off-CPU time together.
 * Pure functions of the aggregates: the flusher owns them and does the I/O.
 */
#ifndef PIPELINE_WAIT_REPORT_H
#define PIPELINE_WAIT_REPORT_H

#include <stddef.h>
#include <stdint.h>

#include "profile.h"
#include "shard.h"
#include "stack_agg.h"

/* A profile built from an aggregate, valid while the aggregate is unchanged
 * and until wait_built__free(). */
struct wait_built {
	struct profile p;
	struct stack_agg_snapshot snap;
	struct profile_stack *stacks; /* wall view: its own copy */
};

/* The profile of wait signal w in agg over [start_ns, start_ns + duration_ns):
 * only p.stacks, p.n_stacks, p.total_samples and the signal's columns are
 * set; the caller adds host, processes and drops. Returns 0 or -ENOMEM. */
int wait_report__build(enum shard_wait w, const struct stack_agg *agg, uint64_t start_ns,
		       uint64_t duration_ns, struct wait_built *b);

/* On-CPU time (cpu: a CPU profile, each sample worth its period) and
 * off-CPU time (off: an offcpu profile) as one profile in nanoseconds, its
 * off-CPU stacks marked (profile_stack.off_cpu) for the flame graph to
 * colour apart. Returns 0 or -ENOMEM. */
int wait_report__wall(const struct profile *cpu, const struct profile *off, struct wait_built *b);

void wait_built__free(struct wait_built *b);

/* lock.txt of a lock profile: totals, then the top call paths (threads of a
 * process merged) by total wait, with their contentions, mean and p99 wait
 * and frames. Returns 0 and a malloc'd text, or -ENOMEM. */
int wait_report__lock_text(const struct profile *lock, char **text, size_t *len);

#endif /* PIPELINE_WAIT_REPORT_H */
