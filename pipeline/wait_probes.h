/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The kernel side of the off-CPU and lock-contention profiles: owns the
 * wait_sample BPF skeleton (sched_switch, and the futex syscall
 * tracepoints), writing into the sampler's per-CPU rings, with a budget of
 * stacks per second per CPU that keeps its cost bounded on a busy host.
 */
#ifndef PIPELINE_WAIT_PROBES_H
#define PIPELINE_WAIT_PROBES_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "wait_sample.h"

struct wait_probes;

struct wait_probes_opts {
	bool offcpu;	       /* sched_switch: time off the CPU */
	bool lock;	       /* futex waits */
	bool kernel_stacks;    /* off-CPU records carry the kernel stack */
	uint64_t min_ns;       /* off-CPU periods shorter than this are not sent */
	uint32_t max_rate;     /* stacks per second per CPU and signal, at most */
	uint32_t inflight;     /* sampled threads off the CPU at once, at most */
	int rings_map_fd;      /* the sampler's ARRAY_OF_MAPS of per-CPU rings */
	unsigned n_cpus;       /* entries of that map */
	uint64_t wakeup_bytes; /* reader wake-up watermark, as the CPU sampler's */
	const uint32_t *pids;  /* only these processes (n_pids 0: every process) */
	unsigned n_pids;
};

/* Loads and attaches the programs of the signals asked for. The futex
 * tracepoints' ids come from tracefs, mounted at /sys/kernel/tracing if it
 * is not. Returns 0 and *out, or -errno after saying what failed. */
int wait_probes__new(const struct wait_probes_opts *opts, struct wait_probes **out);
/* Detaches every program: no more records. */
void wait_probes__stop(struct wait_probes *wp);
/* Detaches and frees. Accepts NULL. */
void wait_probes__free(struct wait_probes *wp);

/* Sums the per-CPU counters. Returns 0 or -errno. */
int wait_probes__read_stats(const struct wait_probes *wp, struct wait_sample_stats *out);
/* Reads the run time and count of every program. Returns 0 or -errno. */
int wait_probes__read_bpf_stats(const struct wait_probes *wp, uint64_t *run_ns, uint64_t *run_cnt);
/* Prints the counters (the self-stats' part). Accepts NULL. */
void wait_probes__print_stats(const struct wait_probes *wp, FILE *f);
/* Writes ',\n  "wait": {...}' into an open JSON object. Accepts NULL. */
void wait_probes__write_json(const struct wait_probes *wp, FILE *f);

#endif /* PIPELINE_WAIT_PROBES_H */
