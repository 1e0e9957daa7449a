/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The kernel side of on-CPU sampling: owns the cpu_sample BPF skeleton, one
 * cpu-clock perf event per online CPU with the program attached, and one
 * ring buffer per CPU (inner maps of the `rings` ARRAY_OF_MAPS). Open,
 * configure, load, attach happen in sampler__new(); sampler__free() tears
 * everything down in reverse.
 */
#ifndef PIPELINE_SAMPLER_H
#define PIPELINE_SAMPLER_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "cpu_sample.h"
#include "tick_unseen.h"

struct sampler;

struct sampler_bpf_stats {
	uint64_t run_time_ns; /* total BPF program run time (0 without bpf_stats) */
	uint64_t run_cnt;
};

/* Returns a loaded and attached sampler, or NULL with errno set after printing
 * what failed. */
struct sampler *sampler__new(const struct pipeline_config *cfg);
/* Detaches, closes and frees everything. Accepts NULL. */
void sampler__free(struct sampler *s);

/* What one sample stands for, in ns of CPU: 1e9/frequency with cpu-clock,
 * N ticks with --clock tick. */
uint64_t sampler__period_ns(const struct sampler *s);
/* The clock in use, in words: "cpu-clock", or "tick (1 in N of the ...)". */
const char *sampler__clock(const struct sampler *s);

/* Stops sampling (disables every perf event); rings keep what they hold. */
void sampler__stop(struct sampler *s);

/* Returns the number of CPUs with a ring, and ring fds through ring_fd(). */
unsigned sampler__n_cpus(const struct sampler *s);
/* Returns the ring map fd of cpu, or -1 if that CPU is offline. */
int sampler__ring_fd(const struct sampler *s, unsigned cpu);
/* --unwind auto: the hash map of processes sampled with stack copies. */
int sampler__copy_tgids_fd(const struct sampler *s);
/* --unwind auto: the BPF map of learned CFI rules (struct cpu_sample_rule). */
int sampler__unwind_rules_fd(const struct sampler *s);
/* The ARRAY_OF_MAPS of per-CPU rings, for other signals' programs to share. */
int sampler__rings_map_fd(const struct sampler *s);
/* The reader wake-up watermark the programs use (bytes in a ring). */
uint64_t sampler__wakeup_bytes(const struct sampler *s);
/* Returns the per-CPU ring size in bytes. */
uint64_t sampler__ring_bytes(const struct sampler *s);

/* Sums the per-CPU counters of the BPF program into *out. Returns 0 or -errno. */
int sampler__read_stats(const struct sampler *s, struct cpu_sample_stats *out);
/* Copies the per-CPU counters into out[0 .. n_cpus-1] (n_cpus from
 * sampler__n_cpus()). Returns 0 or -errno. */
int sampler__read_stats_per_cpu(const struct sampler *s, struct cpu_sample_stats *out);
/* Reads the program's run time and count. Returns 0 or -errno. */
int sampler__read_bpf_stats(const struct sampler *s, struct sampler_bpf_stats *out);

/* --clock tick: reckons every thread's CPU time against the samples taken of
 * it and hands fn the time no sample saw (tick_unseen.h), once per flush,
 * before the flush and also after sampler__stop(). Nothing with another
 * clock. Returns 0 or -errno (said). */
int sampler__tick_unseen(struct sampler *s, tick_unseen_fn fn, void *ctx);
/* --clock tick: the totals handed out so far (zero with another clock). */
void sampler__tick_unseen_stats(const struct sampler *s, struct tick_unseen_stats *out);

#endif /* PIPELINE_SAMPLER_H */
