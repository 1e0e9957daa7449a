/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Gap detector: a measure of stolen time that process accounting cannot
 * miss. One thread, pinned to one CPU, reads the time-stamp counter in a
 * tight loop; any two consecutive reads further apart than a threshold mean
 * the CPU was taken from it (an interrupt, a softirq, the hypervisor, or
 * another task). Every such gap is added up, counted in a power-of-two
 * bucket, and classified by whether the thread was switched out across it
 * (its context-switch count moved) and by length:
 *
 *   irq    no switch, shorter than GAP_LONG_US: time taken below the
 *          scheduler, where a sampling interrupt and the BPF program it
 *          runs land
 *   long   no switch, GAP_LONG_US or longer: in a virtual machine, the host
 *          running something else (no interrupt handler runs that long)
 *   sched  the thread was switched out: time given to another task, which
 *          that task's own CPU accounting sees
 *
 * The thread spins from gap_detector__start() to gap_detector__free(), so
 * its CPU is equally busy inside and outside measurement windows; only
 * gaps inside a window (gap_detector__begin() .. __end()) are recorded. The
 * thread's bookkeeping after a gap (one getrusage call) is excluded from
 * the measured time and reported as dead time. Control is one command word
 * and one acknowledgement word (see gap.c); results pass from the thread to
 * the caller under that handshake. One controlling thread.
 */
#ifndef PIPELINE_BENCH_GAP_H
#define PIPELINE_BENCH_GAP_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

/* Buckets by gap length: bucket i holds [2^i, 2^(i+1)) µs; bucket 0 also
 * holds gaps below 1 µs (when the threshold is below 1 µs); the last bucket
 * holds everything longer. */
#define GAP_BUCKETS 16

/* Default threshold. On a quiet 2-vCPU KVM guest the loop's own
 * iterations take 10-40 ns and cache or TLB misses stretch a few to a few
 * hundred ns; an interrupt costs several µs. See docs/PERFORMANCE.md. */
#define GAP_DEFAULT_THRESHOLD_US 2.0
/* Gaps without a context switch at least this long are classed "long". */
#define GAP_LONG_US 1000.0
/* Gaps kept with their times per window, for gap_detector__phase(). */
#define GAP_MAX_EVENTS (1u << 18)

struct gap_class {
	uint64_t n; /* gaps */
	double us;  /* their total length */
};

struct gap_result {
	double window_s;	/* the window's length, by the TSC */
	double dead_s;		/* detector bookkeeping inside the window (not measured) */
	uint64_t loops;		/* TSC reads in the window */
	struct gap_class irq;	/* no context switch, shorter than GAP_LONG_US */
	struct gap_class lng;	/* no context switch, GAP_LONG_US or longer */
	struct gap_class sched; /* the thread was switched out */
	uint64_t bucket_n[GAP_BUCKETS];
	double bucket_us[GAP_BUCKETS];
	double max_us; /* longest gap */
};

/* Returns the time the thread ran in the window: what the timer of a
 * sampling profiler could interrupt on that CPU. */
static inline double gap_result__running_s(const struct gap_result *r)
{
	return r->window_s - r->dead_s - (r->sched.us + r->lng.us) / 1e6;
}

struct gap_detector;

/* Calibrates the TSC against CLOCK_MONOTONIC (about 0.2 s), then starts
 * the spinning thread pinned to cpu. Returns the detector, or NULL with
 * errno set (EINVAL: cpu not online or threshold not positive). */
struct gap_detector *gap_detector__start(int cpu, double threshold_us);
/* Stops and joins the thread. Accepts NULL. */
void gap_detector__free(struct gap_detector *g);

/* Starts a measurement window (the thread zeroes its counters). Returns 0,
 * -EBUSY if a window is open, or -ETIMEDOUT if the thread did not answer
 * within 2 s. */
int gap_detector__begin(struct gap_detector *g);
/* Ends the window and copies its figures to out. Returns 0, -EINVAL if no
 * window is open, or -ETIMEDOUT if the thread did not answer within 2 s. */
int gap_detector__end(struct gap_detector *g, struct gap_result *out);

/* The cost of one periodic interrupt at hz on the gap CPU, from the last
 * window alone: the window's "irq" gaps folded on the period 1e9/hz ns (the
 * period of every cpu-clock sampling timer at that rate). A profiler's
 * timer fires at one fixed phase of that period, so its gaps pile up in one
 * place while everything else (other interrupts, the scheduler tick at a
 * rate not locked to hz) spreads over all phases; the pile less the
 * average elsewhere, per gap in it, is the time each sample took. */
struct gap_phase {
	bool found;	 /* one clear peak (not found: no timer at hz, or more than one) */
	double us;	 /* gap time at the peak's phase per gap there, both less the
			  * background: the cost of one interrupt */
	double hits;	 /* gaps at the peak, less the background, per period the thread ran
			  * (about 1 for a timer at hz) */
	double periods;	 /* periods in the window */
	double phase_us; /* where in the period the peak is */
	double second;	 /* the largest other peak, relative to the chosen one */
	uint64_t lost;	 /* gaps the window had no room to keep (not folded) */
};

/* Folds the last window's gaps at hz. Returns 0, -ENODATA without a closed
 * window, or -ENOMEM. */
int gap_detector__phase(const struct gap_detector *g, unsigned hz, struct gap_phase *out);

/* Returns the calibrated TSC rate in ticks per microsecond. */
double gap_detector__ticks_per_us(const struct gap_detector *g);
/* Returns the CPU the thread is pinned to. */
int gap_detector__cpu(const struct gap_detector *g);
/* Returns the threshold in µs. */
double gap_detector__threshold_us(const struct gap_detector *g);

/* Returns the lower bound of bucket i in µs (0 for bucket 0). */
double gap_bucket__lo_us(unsigned i);

/* Prints one window's figures as a table by gap size. */
void gap_result__print(const struct gap_result *r, FILE *f);

/* `pipeline-bench gap`: one window on an otherwise idle machine, printed
 * as a histogram (for choosing the threshold and checking the host's noise).
 * argv[0] is the subcommand name. Returns the process exit code. */
int bench_gap__main(int argc, char **argv);

#endif /* PIPELINE_BENCH_GAP_H */
