/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The profilers `pipeline-bench overhead` runs, behind one interface:
 * this project's agent (`pipeline`, next to pipeline-bench in the build's
 * bin/), `perf record -e cpu-clock -F HZ -a -g`, `bpftrace -e
 * 'profile:hz:HZ { @[ustack, kstack] = count(); }'`, and for off-CPU time
 * libbpf-tools' `offcputime -u`. Each writes its own
 * output into a directory of its own, runs on every CPU, and is stopped
 * with SIGINT, as a user would stop it. What each says about itself at
 * exit (samples, drops; for pipeline its self-stats, as JSON with
 * --stats-json when the agent has it, else parsed from the text on
 * stderr) is read back from its files.
 *
 * One caller; every wait bounded.
 */
#ifndef PIPELINE_BENCH_PEERS_H
#define PIPELINE_BENCH_PEERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "overhead_proc.h"

enum ovh_tool {
	OVH_TOOL_OFF,
	OVH_TOOL_PIPELINE,
	OVH_TOOL_PERF,
	OVH_TOOL_BPFTRACE,
	OVH_TOOL_OFFCPUTIME, /* libbpf-tools offcputime -u: the off-CPU peer */
};

struct ovh_profiler {
	enum ovh_tool tool;
	unsigned hz;
	bool stats_json;      /* pipeline: --stats-json DIR/stats.json */
	const char *profiles; /* pipeline: --profiles, or NULL (cpu) */
	const char *clock;    /* pipeline: --clock, or NULL (cpu-clock) */
	char dir[PATH_MAX];   /* its output directory */
	struct ovh_child child;
	uint64_t ready_ns; /* CLOCK_MONOTONIC when it was seen sampling */
	uint64_t stop_ns;  /* ... when SIGINT was sent */
};

/* What a profiler reported about itself; -1 where it does not say. */
struct ovh_profiler_figures {
	double samples;	       /* samples it took or received, all CPUs */
	double dropped;	       /* samples (pipeline) or chunks (perf) lost */
	double self_cpu_s;     /* pipeline: its own CPU time */
	double self_bpf_s;     /* pipeline: its BPF run time */
	double self_elapsed_s; /* pipeline: its run time */
	double cpu_samples;    /* pipeline with --stats-json: samples on the given CPU */
	double stack_errors;   /* stacks it could not capture or print */
	double period_ns;      /* pipeline with --stats-json: what one sample stands for */
};

/* Returns the tool's name: "off", "pipeline", "perf", "bpftrace", "offcputime". */
const char *ovh_tool__name(enum ovh_tool t);

/* Returns 0 if the tool can be started (found, executable), or -ENOENT with
 * the reason in why. */
int ovh_profiler__check(enum ovh_tool t, const char *bin_dir, char *why, size_t why_len);

/* Returns true if `pipeline --help` lists --stats-json. */
bool ovh_pipeline__has_stats_json(const char *bin_dir, const char *tmp_dir);

/* Starts tool t at hz into dir (created); pipeline with --unwind unwind,
 * --profiles profiles (NULL: cpu) and --clock clock (NULL: cpu-clock).
 * pipeline runs as a
 * continuous deployment does, flushing every interval_s into files of their own
 * (--per-interval), and stops by itself after max_s (--duration) if nobody
 * stops it sooner; perf and bpftrace run until
 * stopped (ovh_profiler__stop) or until this process dies (the child is
 * SIGKILLed then). Returns 0 or -errno. */
int ovh_profiler__start(struct ovh_profiler *p, enum ovh_tool t, unsigned hz, const char *bin_dir,
			const char *dir, unsigned max_s, unsigned interval_s, bool stats_json,
			const char *unwind, const char *profiles, const char *clock);
/* Returns how many flushes pipeline has completed into p->dir (the files of
 * its --per-interval intervals), or -errno. */
int ovh_pipeline__flushes(const struct ovh_profiler *p);
/* Waits until the profiler samples (pipeline: says so; perf: holds a perf
 * event per CPU; bpftrace: says it attached), at most timeout_ms, giving
 * up early when SIGINT or SIGTERM is pending (blocked and left pending for
 * the caller). Returns 0, -ETIMEDOUT, -ECHILD if it exited, or -EINTR. */
int ovh_profiler__wait_ready(struct ovh_profiler *p, unsigned n_cpus, unsigned timeout_ms);
/* SIGINT, then up to timeout_ms for it to write its output and exit (then
 * SIGKILL). Returns 0 or -ETIMEDOUT. */
int ovh_profiler__stop(struct ovh_profiler *p, unsigned timeout_ms);
/* Reads what the stopped profiler reported. Returns 0, or -errno when its
 * report is missing (the fields stay -1). */
int ovh_profiler__figures(const struct ovh_profiler *p, int cpu, struct ovh_profiler_figures *f);

/* Returns the first number after key in text (a JSON "key": or a text
 * label), or -1. */
double ovh_find_number(const char *text, const char *key);

#endif /* PIPELINE_BENCH_PEERS_H */
