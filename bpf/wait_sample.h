/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Records of bpf/wait_sample.bpf.c: time a thread spent waiting, with the
 * stack it waited in. They travel in the on-CPU sampler's per-CPU rings and
 * start with its header (cpu_sample.h); flags tells them apart:
 *
 * OFFCPU: a thread was off the CPU for delay_ns (from its switch-out to its
 *         next switch-in), with the kernel and user stacks of the
 *         switch-out. ts_ns is the switch-out.
 * LOCK:   a thread waited delay_ns in a futex wait (FUTEX_WAIT and its
 *         variants, futex_waitv), with its user stack. ts_ns is the start.
 *
 * Both are sampled 1 in weight events when the event rate is above the
 * budget user space sets (pipeline/wait_probes.c): a record stands for
 * weight events and weight * delay_ns of waiting.
 */
#ifndef PIPELINE_BPF_WAIT_SAMPLE_H
#define PIPELINE_BPF_WAIT_SAMPLE_H

#include "cpu_sample.h"

/* Kernel frames kept for an off-CPU stack: schedule() and what led to it
 * from the system call (10-25 frames in practice). */
#define WAIT_KERNEL_FRAMES 48

/* Bytes of user stack from sp (after struct cpu_sample_regs, flag
 * CPU_SAMPLE_LEAF_WINDOW_BIT) for the worker to unwind by CFI: a thread
 * waits inside the C library, whose functions keep no frame pointer, so
 * the frame-pointer walk skips their callers; the window's CFI unwind
 * finds them and is spliced onto the walk (pipeline/shard.c). */
#define WAIT_WINDOW 512

struct wait_event {
	__u64 delay_ns;
	__u64 weight; /* events this record stands for (1 in weight sampled) */
	__u64 addr;   /* LOCK: the futex word's user address (0: futex_waitv) */
	__u32 state;  /* OFFCPU: the task's state at switch-out (0: preempted, runnable) */
	__u32 pad;
};

/* Kernel frames (leaf first), then user frames (leaf first), then with
 * CPU_SAMPLE_LEAF_WINDOW_BIT the registers and the stack window. */
struct wait_sample_rec {
	CPU_SAMPLE_HEADER
	struct wait_event ev;
	__u64 frames[WAIT_KERNEL_FRAMES + CPU_SAMPLE_MAX_FRAMES];
	__u8 tail[sizeof(struct cpu_sample_regs) + WAIT_WINDOW];
};

#define WAIT_SAMPLE_REC_HEADER_SIZE  ((__u64) __builtin_offsetof(struct wait_sample_rec, frames))
#define WAIT_SAMPLE_REC_SIZE(nk, nu) (WAIT_SAMPLE_REC_HEADER_SIZE + 8 * (__u64)((nk) + (nu)))
/* With the window: its registers and len bytes follow the frames. */
#define WAIT_SAMPLE_WINDOW_REC_SIZE(nk, nu, len)                                                   \
	(WAIT_SAMPLE_REC_SIZE(nk, nu) + sizeof(struct cpu_sample_regs) + (__u64)(len))

/* Per CPU and signal (0: off-CPU, 1: lock), map `rates`: the current
 * window's events and the 1 in N in force (user space reads every). */
struct wait_rate_state {
	__u64 window_ns;
	__u64 window_jiffies;
	__u32 count;
	__u32 every;
	__u32 window_len; /* jiffies per window; 0 before the first window */
	__u32 pad;
};

/* Per-CPU counters. */
struct wait_sample_stats {
	__u64 switches;	     /* switch-outs of threads in scope (offcpu) */
	__u64 offcpu_taken;  /* of them, sampled: stacks captured */
	__u64 offcpu_sent;   /* records in the ring: back on a CPU after at least min_ns */
	__u64 offcpu_short;  /* back within min_ns: not sent */
	__u64 offcpu_lost;   /* sampled, but the stack was evicted before the thread
			      * came back (more threads waiting than `inflight` holds) */
	__u64 offcpu_stale;  /* records of exited threads found by a new thread of
			      * the same id, and dropped */
	__u64 offcpu_unseen; /* of the sent or short, records whose switch-in the
			      * tracepoint did not report: sent at the thread's
			      * next switch-out, the time off the CPU estimated
			      * as the time since less the CPU time used */
	__u64 futex_waits;   /* futex wait calls of threads in scope (lock) */
	__u64 lock_taken;    /* of them, sampled */
	__u64 lock_sent;     /* records in the ring */
	__u64 lock_no_wait;  /* returned EAGAIN: the word had changed, no wait */
	__u64 ring_full;     /* records dropped: ring full */
	__u64 no_ring;	     /* records dropped: no ring for the CPU */
	__u64 no_task_state; /* per-thread state unavailable (off-CPU: task storage
			      * busy; lock: more threads waiting than tracked): event
			      * not seen */
	__u64 stack_failed;  /* stack capture errors (record still sent) */
};

#endif /* PIPELINE_BPF_WAIT_SAMPLE_H */
