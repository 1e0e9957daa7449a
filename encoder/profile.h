/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The aggregated profile: what the pipeline hands to every encoder at a flush.
 *
 * A plain, read-only data structure. The pipeline fills it from its merged
 * stack aggregator and owns every byte of it (stacks, frame arrays, strings);
 * frames are borrowed from the symbolizer and stay valid while it lives.
 * Encoders only read it and know nothing of rings, shards or sockets.
 */
#ifndef PIPELINE_ENCODER_PROFILE_H
#define PIPELINE_ENCODER_PROFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "symbolizer.h"

#define PROFILE_COMM_LEN 16

/* When one sample was taken, and on which CPU. */
struct profile_sample_time {
	uint64_t ns;  /* wall clock, ns since the epoch */
	uint32_t cpu; /* logical CPU number */
};

/* One distinct stack with its value. */
struct profile_stack {
	uint32_t tgid; /* 0 for the idle task */
	uint32_t tid;
	char comm[PROFILE_COMM_LEN];  /* thread name, NUL-terminated */
	char pcomm[PROFILE_COMM_LEN]; /* process name, NUL-terminated; "[idle]" for idle */
	bool idle;		      /* sample of the idle task */
	bool off_cpu;		      /* in a wall-clock view: time off the CPU, not on it */
	uint32_t n_kernel;	      /* frames[0 .. n_kernel-1]: kernel, leaf first */
	uint32_t n_user;	      /* frames[n_kernel .. n_kernel+n_user-1]: user, leaf first */
	const struct sym_frame *const *frames; /* n_kernel + n_user entries, leaf first */
	uint64_t count;		    /* samples; in a profile with value_types, the value the folded
				     * stacks and flame graph weigh by */
	const int64_t *values;	    /* one per profile.value_types entry, or NULL */
	const uint32_t *value_hist; /* the producer's distribution of per-event values
				     * (pipeline/stack_agg.h), or NULL; encoders ignore it */
	uint64_t first_ns, last_ns; /* wall clock (ns since the epoch) of first and last sample */
	/* Per-sample times in arrival order, when recorded: n_times == count if
	 * complete; fewer (possibly 0) when recording was off or hit its bound. */
	const struct profile_sample_time *times;
	uint32_t n_times;
};

/* What is known of one process that has samples in the profile. */
struct profile_process {
	uint32_t tgid;
	const char *exe_path;	  /* executable path (/proc/PID/exe), or NULL if unknown */
	const char *exe_name;	  /* basename of exe_path, else the process name */
	const char *container_id; /* from the process's cgroup path, or NULL */
};

/* Counts of what did not make it into the profile, exported with it. */
struct profile_drops {
	uint64_t kernel_ring_full; /* BPF ring buffer full */
	uint64_t kernel_no_ring;   /* no ring for the CPU */
	uint64_t queue_full;	   /* SPSC queue between reader and worker full */
	uint64_t aggregator_full;  /* aggregator table at its bound */
	uint64_t truncated_stacks; /* samples whose stack hit the frame limit (kept) */
	uint64_t stack_errors;	   /* samples whose stack capture failed (kept, shorter) */
};

/* One value column of a profile that is not a CPU profile (pprof sample
 * types, e.g. inuse_space/bytes). */
struct profile_value_type {
	const char *type, *unit;
};

struct profile {
	const char *signal; /* "cpu", "alloc" */
	const char *hostname;
	uint64_t time_ns; /* start of collection, ns since the epoch */
	uint64_t duration_ns;
	uint32_t frequency_hz;
	uint64_t period_ns; /* 1e9 / frequency_hz */
	const struct profile_stack *stacks;
	size_t n_stacks;
	uint64_t total_samples; /* sum of stacks[].count */
	struct profile_drops drops;
	/* Processes of the stacks, sorted by tgid (0 = idle has no entry);
	 * may be empty when the producer does not track them. */
	const struct profile_process *processes;
	size_t n_processes;
	bool times_complete; /* every stack has n_times == count */
	/* Not a CPU profile: each stack's values[] holds one value per column,
	 * default_value names the column pprof shows first, period_type and
	 * period are pprof's; count_unit says what count is (e.g. "bytes").
	 * n_value_types 0: a CPU profile (samples/count and cpu/nanoseconds
	 * from count and period_ns). */
	const struct profile_value_type *value_types;
	size_t n_value_types;
	size_t default_value;
	struct profile_value_type period_type;
	int64_t period;
	const char *count_unit;
};

#endif /* PIPELINE_ENCODER_PROFILE_H */
