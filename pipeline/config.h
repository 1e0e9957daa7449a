/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Command-line configuration of the agent. One table in config.c describes
 * every option (name, argument, default, range, help); --help is generated
 * from it and every value is range-checked there, so the rest of the agent
 * can trust struct pipeline_config.
 */
#ifndef PIPELINE_CONFIG_H
#define PIPELINE_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

#define CONFIG_MAX_PIDS		   1024
#define CONFIG_MAX_HEADERS	   64
#define CONFIG_DEFAULT_QUEUE_DEPTH 2048
#define CONFIG_DWARF_QUEUE_DEPTH   512

struct pipeline_config {
	unsigned shards;    /* 0 = auto */
	unsigned frequency; /* Hz, 1..10000 */
	const char *clock;  /* --clock: "cpu-clock", "tick" or "auto"; NULL: cpu-clock */
	/* What one CPU sample stands for, in ns: set by main from the sampler
	 * (the clock in use decides); 0 before: 1e9 / frequency. */
	uint64_t sample_period_ns;
	unsigned duration;  /* s, 0 = until SIGINT/SIGTERM */
	unsigned interval;  /* s between flushes, 1..3600 */
	const char *output; /* output directory */
	uint32_t pids[CONFIG_MAX_PIDS];
	unsigned n_pids;
	bool kernel_stacks;
	const char *unwind;	   /* --unwind as given: "fp", "dwarf" or "auto" */
	bool unwind_dwarf;	   /* records may carry stack copies (dwarf or auto) */
	bool unwind_auto;	   /* copies only for processes whose fp stacks end early */
	unsigned stack_copy_bytes; /* dwarf: user stack bytes copied per sample */
	bool track_processes;	   /* exec/exit events for the symbolizer (whole-host runs) */
	bool idle;
	bool bpf_stats;		     /* measure BPF run time (bpf_enable_stats) */
	unsigned ring_kib;	     /* per-CPU ring size in KiB, 0 = sized from frequency */
	unsigned queue_depth;	     /* records per shard queue (power of two) */
	unsigned max_stacks;	     /* distinct stacks per shard and interval */
	unsigned symbol_cache_bytes; /* the symbolizer's memory bound */
	unsigned poll_ms;	     /* reader poll period; 0 until main picks the default */
	bool per_interval;	/* one set of files per interval instead of one cumulative set */
	bool quiet;		/* no self-stats on stderr */
	const char *stats_json; /* also write self-stats as JSON here at exit */

	/* OTLP export; the OTEL_EXPORTER_OTLP_* variables fill what flags leave unset
	 * (pipeline/otlp_setup.c). */
	const char *otlp_endpoint;		      /* base URL (…:4318) or NULL */
	const char *otlp_headers[CONFIG_MAX_HEADERS]; /* "K=V" */
	unsigned n_otlp_headers;
	const char *otlp_compression;	 /* "gzip", "none", or NULL (env, else gzip) */
	unsigned otlp_timeout_ms;	 /* 0: env, else 10000 */
	const char *otlp_ca;		 /* extra CA bundle for https */
	bool otlp_insecure;		 /* skip certificate verification */
	bool otlp_timestamps;		 /* per-sample timestamps (default on) */
	bool otlp_file;			 /* also write requests to DIR/otlp/ */
	unsigned otlp_max_request_bytes; /* split requests above this (before compression) */
	unsigned export_queue_bytes;	 /* bound on queued requests */
	unsigned shutdown_timeout;	 /* s to send what is queued at exit */
	bool output_given;		 /* --output was on the command line */

	/* Signals (--profiles) and allocation profiling. */
	const char *profiles_arg;    /* --profiles as given, parsed into the bools */
	bool profile_cpu;	     /* on-CPU sampling (default) */
	bool profile_alloc;	     /* allocations and leaks of the --pid processes */
	unsigned alloc_sample_bytes; /* sampling period in bytes; 1: every allocation */
	unsigned alloc_max_tracked;  /* live sampled allocations tracked in the kernel */
	unsigned leak_min_age;	     /* s: outstanding blocks at least this old count as leaked */
	const char *alloc_view;	     /* "inuse" or "alloc": what alloc.folded and .svg show */
	bool alloc_all;		     /* probe every process using the C library, not --pid */
	bool profile_offcpu;	     /* time off the CPU (sched_switch) */
	bool profile_lock;	     /* futex wait time */
	unsigned offcpu_min_us;	     /* shorter periods off the CPU are left out */
	unsigned wait_max_rate;	     /* offcpu, lock: stacks per second per CPU and signal */
};

enum config_parse_result {
	CONFIG_OK = 0,
	CONFIG_EXIT_OK = 1,    /* --help or --version printed: exit 0 */
	CONFIG_EXIT_USAGE = 2, /* bad flag or value, message printed: exit 2 */
};

/* Parses argv into *cfg (defaults first). Returns an enum config_parse_result. */
int config__parse(struct pipeline_config *cfg, int argc, char **argv);

/* Returns the shard count --shards auto picks for this host and rate. */
unsigned config__auto_shards(unsigned n_cpus, unsigned frequency);

#endif /* PIPELINE_CONFIG_H */
