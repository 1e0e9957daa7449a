/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * --clock tick: what the sampler needs to ride the scheduler tick instead
 * of arming a timer of its own. The kernel's HZ, measured from its own
 * jiffies against its monotonic clock (/proc/timer_list), not assumed; the
 * address of the tick's hrtimer handler (/proc/kallsyms); the rate the tick
 * allows for a frequency; the NO_HZ_FULL CPUs, whose tick stops while busy.
 */
#ifndef PIPELINE_TICK_CLOCK_H
#define PIPELINE_TICK_CLOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct tick_clock {
	unsigned hz;		  /* scheduler ticks per second */
	uint64_t handler;	  /* kernel address of the tick's hrtimer function */
	const char *handler_name; /* its name: tick_nohz_handler or tick_sched_timer */
};

/* Fills tc from the running kernel (HZ takes about 100 ms to measure).
 * Returns 0, or -errno with why (the reason tick mode cannot run) filled. */
int tick_clock__probe(struct tick_clock *tc, char *why, size_t why_len);

/* The N of "every Nth tick" whose rate hz / N is closest to frequency
 * (ties to the higher rate); at least 1. */
unsigned tick_clock__every(unsigned hz, unsigned frequency);

/* Marks in full[0 .. n-1] the NO_HZ_FULL CPUs (/sys/devices/system/cpu/nohz_full).
 * Returns how many, 0 when there are none or the kernel has no such list. */
unsigned tick_clock__nohz_full(bool *full, unsigned n);

#endif /* PIPELINE_TICK_CLOCK_H */
