/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Record layout shared by bpf/proc_events.bpf.c and user space: one record
 * per exec, and per exit of a thread group leader. Fixed-width fields only.
 */
#ifndef PIPELINE_BPF_PROC_EVENTS_H
#define PIPELINE_BPF_PROC_EVENTS_H

#ifndef __VMLINUX_H__
#include <linux/types.h> /* user space; BPF code gets the types from vmlinux.h */
#endif

enum pl_proc_event_kind {
	PL_PROC_EXEC = 1,
	PL_PROC_EXIT = 2,
};

struct pl_proc_event {
	__u32 kind; /* enum pl_proc_event_kind */
	__u32 tgid;
	__u64 time_ns; /* bpf_ktime_get_ns(): CLOCK_MONOTONIC */
};

/* Counters of the program, one per CPU (user space sums them). */
struct pl_proc_event_stats {
	__u64 execs, exits;
	__u64 ring_full; /* events dropped: the ring had no room */
};

#endif /* PIPELINE_BPF_PROC_EVENTS_H */
