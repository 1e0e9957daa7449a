/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * `pipeline-bench overhead`: what a profiler costs a running service,
 * measured A/B on this machine (docs/PERFORMANCE.md has the method).
 *
 * Pieces: the workload server (pipeline-bench-server, a child process on
 * the workload CPUs), the open-loop load generator (loadgen.h, a thread
 * here, also on the workload CPUs), the gap detector (gap.h, a thread
 * pinned to the gap CPU, where nothing else of the benchmark runs) and the
 * profilers (peers.h, children allowed on every CPU). One run is one
 * configuration for one repetition: start the profiler, wait until it
 * samples, start the load, and after its warm-up open one measurement
 * window of --seconds during which the gap detector records and the CPU
 * and BPF counters are read at both ends; then stop the profiler and read
 * what it says about itself. Runs are interleaved (overhead.c: the
 * schedule) so that every profiler run sits between two "off" runs, and
 * each figure is compared with those two.
 *
 * overhead.c runs the schedule, overhead_report.c summarizes, prints and
 * writes JSON. One thread drives everything; the structures below are
 * filled by overhead.c and read by overhead_report.c.
 */
#ifndef PIPELINE_BENCH_OVERHEAD_H
#define PIPELINE_BENCH_OVERHEAD_H

#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "gap.h"
#include "peers.h"

#define OVH_MAX_HZ    8
#define OVH_N_UNWINDS 3 /* pipeline's --unwind modes: fp, dwarf, auto */
#define OVH_N_WAITS   3 /* --waits: pipeline offcpu, pipeline offcpu+lock, offcputime */
/* off, each tool at each rate, the wait configurations */
#define OVH_MAX_CONFIGS (1 + (3 + OVH_N_UNWINDS) * OVH_MAX_HZ + OVH_N_WAITS)
extern const char *const ovh_unwind_names[OVH_N_UNWINDS];
#define OVH_MAX_REPS  50
#define OVH_MAX_RUNS  (OVH_MAX_REPS * 2 * OVH_MAX_CONFIGS + 1)
#define OVH_GATE_HZ   99
#define OVH_GATE_PCT  0.5 /* agent CPU + BPF, % of wall x CPUs, at 99 Hz */
#define OVH_WAITS_PCT 1.0 /* target with off-CPU profiling on */
/* pipeline's default --unwind: the mode the gate and targets are on, and
 * the one a configuration's name leaves out. */
#define OVH_DEFAULT_UNWIND "auto"

struct ovh_config {
	enum ovh_tool tool;
	unsigned hz;	    /* 0 for off */
	const char *unwind; /* pipeline --unwind: "fp", "dwarf" or "auto"; NULL for others */
	/* A wait configuration (--waits): off-CPU or lock profiling, whose cost
	 * is per context switch or wait, not per sample; pipeline runs with
	 * --profiles profiles (and hz is only its warm-up's unit). */
	bool waits;
	const char *profiles;
	const char *clock; /* pipeline --clock: NULL (cpu-clock) or "tick" */
	char name[32];
	char skip[128]; /* non-empty: not run, and why */
};

/* One repetition of one configuration. Figures are NAN where unknown. */
struct ovh_run {
	unsigned config, rep;
	bool ok;
	char why[160]; /* !ok: what went wrong */
	/* the workload */
	double p50_ms, p90_ms, p99_ms, p999_ms;
	double qps;
	uint64_t errors, timeouts, late;
	double server_cpu_s; /* in the window */
	/* the gap CPU */
	struct gap_result gap;
	struct gap_phase phase; /* the gaps folded at the profiler's rate */
	/* Off runs: the tallest peak when folded at each --hz rate, in gaps per
	 * period. A rate where the baseline itself has a timer (the scheduler
	 * tick divides 100 ms) cannot tell a profiler's timer from it. */
	double null_hits[OVH_MAX_HZ];
	double steal_s; /* host steal time on the gap CPU in the window (/proc/stat) */
	/* the profiler */
	double window_s;      /* the measurement window */
	double startup_cpu_s; /* its CPU time before the window */
	double window_cpu_s;  /* ... in the window */
	double exit_cpu_s;    /* ... after the window, to its exit (final flush, build ids) */
	double exit_wait_s;   /* from SIGINT to its exit */
	double bpf_s;	      /* BPF run time in the window */
	uint64_t bpf_runs;
	double sampling_s; /* from seen sampling to SIGINT */
	struct ovh_profiler_figures self;
};

struct ovh_settings {
	unsigned reps;
	double seconds;	 /* measurement window of one run */
	double warmup_s; /* load before each window */
	bool quick, peers, gate, keep;
	bool waits;	  /* also the wait configurations */
	bool tick;	  /* also pipeline --clock tick at every rate */
	unsigned unwinds; /* bit u: pipeline runs with --unwind ovh_unwind_names[u] */
	unsigned tools;	  /* bit t: enum ovh_tool t is run */
	const char *json;
	unsigned hz[OVH_MAX_HZ];
	unsigned n_hz;
	double qps_asked;   /* --qps, 0: the load generator's default */
	bool closed;	    /* --closed: closed-loop load, its rate is the measure */
	unsigned off_every; /* an off run after every N profiler runs */
	int gap_cpu;
	double threshold_us;
	bool shared_cpu; /* the workload may run on the gap CPU too */
	char command[512];
};

struct ovh_bench {
	struct ovh_settings set;
	unsigned n_cpus;	    /* online */
	cpu_set_t workload_cpus;    /* server and load generator */
	char workload_cpu_list[64]; /* e.g. "0" or "0-126" */
	double tsc_ghz;
	double qps;	 /* the rate every run used */
	bool qps_scaled; /* the probe lowered it */
	bool stats_json; /* pipeline has --stats-json */
	unsigned server_threads;
	unsigned loadgen_threads;
	char server_final[256];			    /* its JSON line at exit */
	struct ovh_config configs[OVH_MAX_CONFIGS]; /* [0] is off */
	unsigned n_configs;
	struct ovh_run *runs; /* schedule order */
	unsigned n_runs;
	double elapsed_s;
};

/* Per configuration, over its repetitions: medians, and min-max spreads of
 * the differences against the off runs around each repetition. NAN where
 * not applicable (off) or unknown. */
struct ovh_summary {
	unsigned reps; /* runs that succeeded */
	double p50_ms, p99_ms, qps, server_cpu_pct;
	double dp99_pct, dp99_lo, dp99_hi;
	double agent_cpu_pct, bpf_cpu_pct;
	double agent_bpf_pct, agent_bpf_lo, agent_bpf_hi; /* their sum, per run */
	/* Time stolen per sample on the gap CPU, two ways: the gaps folded on
	 * the sampling period (phase: the gap at the timer's phase, less the
	 * background at other phases, in the same run), and the interrupt time
	 * against the off runs around each run (ab). stolen_* is phase when
	 * most repetitions found the timer, else ab (stolen_by_phase says). */
	double phase_us, phase_lo, phase_hi, phase_hits;
	unsigned phase_found; /* repetitions that found the timer */
	double ab_us, ab_lo, ab_hi;
	double ab_pct, ab_pct_lo, ab_pct_hi; /* extra interrupt time, % of the gap CPU */
	bool stolen_by_phase;
	double stolen_us, stolen_lo, stolen_hi;
	double stolen_pct, stolen_pct_lo, stolen_pct_hi; /* of a CPU that is busy */
	double irq_pct;					 /* off: the gap CPU's own interrupt time */
	double samples_per_s;
	double dropped;			     /* over every repetition */
	double process_us;		     /* the profiler's process CPU per sample it took */
	double total_us, total_lo, total_hi; /* stolen + process, per sample */
	double startup_cpu_s, exit_cpu_s, exit_wait_s;
	double bpf_runs_per_s, bpf_ns_per_run; /* the profiler's BPF programs in the window */
};

/* Summarizes configuration c. */
void ovh_summarize(const struct ovh_bench *b, unsigned c, struct ovh_summary *s);
/* Prints the tables, the gate and the targets. */
void ovh_report__print(const struct ovh_bench *b, FILE *f);
/* Writes the figures as JSON (via path.tmp and rename). Returns 0 or -errno. */
int ovh_report__write_json(const struct ovh_bench *b, const char *path);
/* Returns true when pipeline at 99 Hz stayed within OVH_GATE_PCT with no
 * sample dropped; why says what failed. */
bool ovh_gate(const struct ovh_bench *b, char *why, size_t why_len);

/* `pipeline-bench overhead`: argv[0] is the subcommand name. Returns the
 * process exit code. */
int bench_overhead__main(int argc, char **argv);

#endif /* PIPELINE_BENCH_OVERHEAD_H */
