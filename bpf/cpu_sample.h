/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Record layout shared by bpf/cpu_sample.bpf.c and user space: one record per
 * on-CPU sample, written in place into the sampled CPU's ring buffer
 * (reserve, fill, submit). Fixed-width fields only, no pointers.
 */
#ifndef PIPELINE_BPF_CPU_SAMPLE_H
#define PIPELINE_BPF_CPU_SAMPLE_H

#ifndef __VMLINUX_H__
#include <linux/types.h> /* user space; BPF code gets the types from vmlinux.h */
#endif

#ifndef CPU_SAMPLE_MAX_FRAMES
#define CPU_SAMPLE_MAX_FRAMES 127 /* bpf_get_stack's default perf_event_max_stack */
#endif
#ifndef CPU_SAMPLE_COMM_LEN
#define CPU_SAMPLE_COMM_LEN 16
#endif
#ifndef CPU_SAMPLE_MAX_CPUS
#define CPU_SAMPLE_MAX_CPUS 1024
#endif

/* cpu_sample.flags */
#define CPU_SAMPLE_USER_TRUNCATED   (1u << 0) /* user stack filled all frames */
#define CPU_SAMPLE_KERNEL_TRUNCATED (1u << 1) /* kernel stack filled all frames */
#define CPU_SAMPLE_USER_FAILED	    (1u << 2) /* bpf_get_stack(user) returned an error */
#define CPU_SAMPLE_KERNEL_FAILED    (1u << 3) /* bpf_get_stack(kernel) returned an error */
#define CPU_SAMPLE_IDLE		    (1u << 4) /* the idle task (pid 0) was running */

struct cpu_sample {
	__u32 tgid;
	__u32 tid;
	__u32 cpu;
	__u32 flags;
	__u64 ts_ns;				   /* CLOCK_MONOTONIC, bpf_ktime_get_ns() */
	char comm[CPU_SAMPLE_COMM_LEN];		   /* thread name */
	char pcomm[CPU_SAMPLE_COMM_LEN];	   /* process (thread group leader) name */
	__u32 user_frames;			   /* valid entries of user_stack */
	__u32 kernel_frames;			   /* valid entries of kernel_stack */
	__u64 kernel_stack[CPU_SAMPLE_MAX_FRAMES]; /* leaf first */
	__u64 user_stack[CPU_SAMPLE_MAX_FRAMES];   /* leaf first */
};

/* Per-CPU counters, a BPF_MAP_TYPE_PERCPU_ARRAY of one element. */
struct cpu_sample_stats {
	__u64 seen;	     /* program runs that passed the filters */
	__u64 filtered;	     /* runs left out by the pid or idle filter */
	__u64 ring_full;     /* bpf_ringbuf_reserve failed: record dropped */
	__u64 no_ring;	     /* no ring registered for this CPU: record dropped */
	__u64 user_failed;   /* user stack capture errors (record still sent) */
	__u64 kernel_failed; /* kernel stack capture errors (record still sent) */
};

#endif /* PIPELINE_BPF_CPU_SAMPLE_H */
