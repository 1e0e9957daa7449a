/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * --clock tick: the CPU time that the ticks taken did not see. Sampling on
 * the scheduler tick cannot see a thread that runs only between ticks (one
 * that wakes on a timer in step with the tick and is done before the next):
 * no choice of ticks takes a sample inside its bursts. The kernel counts
 * every thread's CPU time exactly, though, so the BPF side weighs that
 * count against the samples taken of each thread (bpf/cpu_sample.bpf.c,
 * tick_reckon) and sets aside the time no sample covered. This module runs
 * that reckoning (a task iterator) and drains what it set aside, for the
 * profile to show as the thread's unsampled time instead of losing it.
 */
#ifndef PIPELINE_TICK_UNSEEN_H
#define PIPELINE_TICK_UNSEEN_H

#include <stdint.h>

#include "cpu_sample.h"

struct bpf_link;

/* Called for each thread with unseen time: u->ns of CPU, its names. */
typedef void (*tick_unseen_fn)(void *ctx, uint32_t tid, const struct cpu_sample_tick_unseen *u);

/* Totals since start. */
struct tick_unseen_stats {
	uint64_t reckonings; /* iterator runs */
	uint64_t ns;	     /* unseen CPU time handed to fn */
	uint64_t threads;    /* entries handed to fn (a thread once per flush at most) */
};

/* Runs the reckoning iterator (the link of program tick_reckon) over every
 * thread. Returns 0 or -errno. */
int tick_unseen__reckon(struct bpf_link *iter);

/* Hands every entry of map tick_unseen (unseen_fd) to fn and deletes it;
 * adds to *st. Returns 0 or -errno. */
int tick_unseen__drain(int unseen_fd, tick_unseen_fn fn, void *ctx, struct tick_unseen_stats *st);

#endif /* PIPELINE_TICK_UNSEEN_H */
