/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Record layouts shared by bpf/cpu_sample.bpf.c and user space, one record
 * per on-CPU sample. Fixed-width fields only, no pointers.
 *
 * In the ring the record is packed (struct cpu_sample_rec): the header, then
 * kernel_frames kernel addresses, then user_frames user addresses, nothing
 * more. A typical stack of 20-40 frames makes a record of 200-400 bytes
 * rather than the 2 KiB of room for two full stacks, so a ring of a given
 * size holds five to ten times the samples and rings are sized for typical
 * stacks (pipeline/sampler.c). User space unpacks it into struct
 * cpu_sample, the queue slot, whose two arrays have room for full stacks.
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
/* --unwind dwarf: no user frames; struct cpu_sample_regs and stack_len bytes
 * of the user stack from sp up follow the kernel frames. */
#define CPU_SAMPLE_STACK_COPY  (1u << 5)
#define CPU_SAMPLE_COPY_FAILED (1u << 6) /* no user registers or stack could be read */
/* --unwind fp: struct cpu_sample_regs and up to CPU_SAMPLE_LEAF_WINDOW bytes
 * of stack from sp follow the user frames, for the worker to put back the
 * caller of a function sampled without a frame (a GCC leaf, a prologue). */
#define CPU_SAMPLE_LEAF_WINDOW_BIT (1u << 7)
/* --clock tick: taken on the scheduler tick, in its interrupt: the kernel
 * stack starts with the tick's own interrupt path, which the worker trims. */
#define CPU_SAMPLE_TICK (1u << 11)
/* --unwind auto: the user stack was walked in the program by frame pointer
 * and the process's learned CFI rules (map unwind_rules), not by
 * bpf_get_stack; the leaf window follows as with CPU_SAMPLE_LEAF_WINDOW_BIT. */
#define CPU_SAMPLE_RULE_WALK   (1u << 12)
#define CPU_SAMPLE_LEAF_WINDOW 256

/* What a record is, in flags: the rings carry every signal's records, all
 * starting with CPU_SAMPLE_HEADER (alloc_sample.h, wait_sample.h). */
#define CPU_SAMPLE_KIND_MASK   (7u << 8)
#define CPU_SAMPLE_KIND_CPU    (0u << 8)
#define CPU_SAMPLE_KIND_ALLOC  (1u << 8)
#define CPU_SAMPLE_KIND_FREE   (2u << 8)
#define CPU_SAMPLE_KIND_OFFCPU (3u << 8)
#define CPU_SAMPLE_KIND_LOCK   (4u << 8)

#ifndef CPU_SAMPLE_STACK_COPY_MAX
#define CPU_SAMPLE_STACK_COPY_MAX 65536 /* bytes, --stack-copy-bytes at most */
#endif

/* --unwind auto: the value in copy_tgids of a process whose user stacks
 * are walked with rules (CPU_SAMPLE_RULE_WALK); any other value is the
 * bytes of stack to copy (at least 1024). */
#define CPU_SAMPLE_COPY_WALK 1u

/* --unwind auto's rules (map unwind_rules): how to step from a frame of
 * process tgid whose pc (a leaf's ip, or a return address minus one) is in
 * code that keeps no frame pointer there, taken from its CFI by a shard
 * worker. Frames without a rule are stepped by frame pointer. */
struct cpu_sample_rule_key {
	__u32 tgid;
	__u32 pad;
	__u64 pc;
};

struct cpu_sample_rule {
	__s32 cfa_off;	/* CFA = (cfa_on_bp ? bp : sp) + cfa_off: the caller's sp */
	__s16 ra_off;	/* the return address is at CFA + ra_off */
	__s16 bp_off;	/* the caller's bp is at CFA + bp_off, when bp_saved */
	__u8 cfa_on_bp; /* the CFA is found from bp, not sp */
	__u8 bp_saved;	/* else bp is the caller's as it is */
	__u8 outermost; /* no caller (the thread's first frame) */
	__u8 pad;
};

#ifndef CPU_SAMPLE_UNWIND_RULES
#define CPU_SAMPLE_UNWIND_RULES 16384 /* rules kept, least recently used out */
#endif

/* --clock tick, per CPU (map tick_states). */
struct cpu_sample_tick_state {
	__u32 countdown; /* ticks until the next sample */
	__u32 off;	 /* this CPU is sampled by cpu-clock instead (NO_HZ_FULL) */
};

/* --clock tick, per thread (task storage tick_threads): the CPU time the
 * kernel counted for it (se.sum_exec_runtime) at its last reckoning, and
 * the samples taken of it since. A thread whose time runs mostly between
 * the ticks taken (a timer task in step with the tick) is seen by the
 * first and not by the second: the difference is reported (tick_unseen). */
struct cpu_sample_tick_thread {
	__u64 base_ns; /* sum_exec_runtime at the last reckoning */
	__u64 samples; /* tick samples taken of the thread since */
	__u32 init;    /* base_ns is set */
	__u32 pad;
};

/* --clock tick: CPU time of a thread that the ticks taken did not see
 * (map tick_unseen, keyed by thread id; user space drains it each flush). */
struct cpu_sample_tick_unseen {
	__u32 tgid;
	__u32 pad;
	char comm[CPU_SAMPLE_COMM_LEN];
	char pcomm[CPU_SAMPLE_COMM_LEN];
	__u64 ns;
};

#ifndef CPU_SAMPLE_TICK_UNSEEN
#define CPU_SAMPLE_TICK_UNSEEN 8192 /* threads with unseen time per flush */
#endif
/* A thread's unseen time is reported once it is at least this many sample
 * periods and more than half of its CPU time since its last reckoning;
 * with no such gap, the reckoning starts over once the thread has used
 * CPU_SAMPLE_TICK_WINDOW periods (enough to judge). */
#define CPU_SAMPLE_TICK_UNSEEN_MIN 4
#define CPU_SAMPLE_TICK_WINDOW	   64

/* The sampled thread's user registers, as the unwinder needs them. */
struct cpu_sample_regs {
	__u64 ip, sp, bp;
	__u32 stack_len;  /* bytes of stack copied from sp */
	__u32 stack_want; /* bytes asked for; more than stack_len: the stack ended first */
};

/* The fields both layouts start with, in this order. */
#define CPU_SAMPLE_HEADER                                                                          \
	__u32 tgid;                                                                                \
	__u32 tid;                                                                                 \
	__u32 cpu;                                                                                 \
	__u32 flags;                                                                               \
	__u64 ts_ns;			 /* CLOCK_MONOTONIC, bpf_ktime_get_ns() */                 \
	char comm[CPU_SAMPLE_COMM_LEN];	 /* thread name */                                         \
	char pcomm[CPU_SAMPLE_COMM_LEN]; /* process (thread group leader) name */                  \
	__u32 user_frames;		 /* user addresses in the record */                        \
	__u32 kernel_frames;		 /* kernel addresses in the record */

/* The ring record: its size is CPU_SAMPLE_REC_SIZE(kernel_frames, user_frames). */
struct cpu_sample_rec {
	CPU_SAMPLE_HEADER
	__u64 frames[2 * CPU_SAMPLE_MAX_FRAMES]; /* kernel (leaf first), then user (leaf first) */
};

#define CPU_SAMPLE_REC_HEADER_SIZE  ((__u64) __builtin_offsetof(struct cpu_sample_rec, frames))
#define CPU_SAMPLE_REC_SIZE(nk, nu) (CPU_SAMPLE_REC_HEADER_SIZE + 8 * (__u64)((nk) + (nu)))
/* A CPU_SAMPLE_STACK_COPY record: header, nk kernel frames, regs, stack. */
#define CPU_SAMPLE_COPY_REC_SIZE(nk, len)                                                          \
	(CPU_SAMPLE_REC_SIZE(nk, 0) + sizeof(struct cpu_sample_regs) + (__u64)(len))

/* A CPU_SAMPLE_LEAF_WINDOW_BIT record: header, frames, regs, window. */
#define CPU_SAMPLE_LEAF_REC_SIZE(nk, nu, len)                                                      \
	(CPU_SAMPLE_REC_SIZE(nk, nu) + sizeof(struct cpu_sample_regs) + (__u64)(len))

/* Where the fp-mode program builds its record. */
struct cpu_sample_fp_scratch {
	struct cpu_sample_rec rec;
	__u8 tail[sizeof(struct cpu_sample_regs) + CPU_SAMPLE_LEAF_WINDOW];
};

/* Where the dwarf-mode program builds its record: the packed record, then
 * room for the registers and the largest stack copy. */
struct cpu_sample_copy_scratch {
	struct cpu_sample_rec rec;
	__u8 tail[sizeof(struct cpu_sample_regs) + CPU_SAMPLE_STACK_COPY_MAX];
};

/* The unpacked record of user space (queue slots). */
struct cpu_sample {
	CPU_SAMPLE_HEADER
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
	__u64 copy_failed;   /* dwarf: user registers or stack unreadable (record still sent) */
	__u64 copy_short;    /* dwarf: the stack ended before the bytes asked for */
	__u64 copy_bytes;    /* dwarf: stack bytes copied, in all */
	__u64 rule_walks;    /* auto: user stacks walked with rules (CPU_SAMPLE_RULE_WALK) */
	__u64 rule_steps;    /* auto: steps of those walks taken by a rule */
	__u64 tick_unseen_lost_ns; /* tick: unseen CPU time that found tick_unseen full */
};

#endif /* PIPELINE_BPF_CPU_SAMPLE_H */
