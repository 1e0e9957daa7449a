/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Layouts shared by bpf/bench_inject.bpf.c and `pipeline-bench throughput`
 * (bench/throughput_shards.c): the command passed with each
 * BPF_PROG_TEST_RUN, the stack templates the program copies into ring
 * records (struct cpu_sample_rec, cpu_sample.h), and the per-ring counters. Fixed-width
 * fields only, no pointers.
 */
#ifndef PIPELINE_BPF_BENCH_INJECT_H
#define PIPELINE_BPF_BENCH_INJECT_H

#include "cpu_sample.h"

#ifndef BENCH_INJECT_MAX_STACKS
#define BENCH_INJECT_MAX_STACKS 1024 /* templates; a power of two */
#endif
#ifndef BENCH_INJECT_SEQ_LEN
#define BENCH_INJECT_SEQ_LEN 4096 /* template draw sequence; a power of two */
#endif
#ifndef BENCH_INJECT_KFRAMES
#define BENCH_INJECT_KFRAMES 8 /* template kernel frames at most */
#endif
#ifndef BENCH_INJECT_UFRAMES
#define BENCH_INJECT_UFRAMES 24 /* template user frames at most */
#endif

/* bench_inject_cmd.flags */
#define BENCH_INJECT_FORCE_WAKEUP (1u << 0) /* wake the reader on every record */
#define BENCH_INJECT_IN_ORDER	  (1u << 1) /* template k for the k-th record, not seq[] */
/* Wake the reader on every record while the ring holds wakeup_bytes or more
 * (cpu_sample.bpf.c's rule before it woke only on the crossing record), to
 * show what that rule cost. */
#define BENCH_INJECT_WAKE_ABOVE_MARK (1u << 2)

/* The command of each test run, in the context's __sk_buff.cb[] (ctx_in). */
#define BENCH_INJECT_CB_RING  0 /* cb[0]: index into the rings ARRAY_OF_MAPS (a CPU) */
#define BENCH_INJECT_CB_FLAGS 1 /* cb[1]: BENCH_INJECT_* flags */

/* One synthetic sample; the program copies it into a ring record. */
struct bench_inject_stack {
	__u32 tgid;
	__u32 tid;
	__u32 kernel_frames; /* <= BENCH_INJECT_KFRAMES */
	__u32 user_frames;   /* <= BENCH_INJECT_UFRAMES */
	char comm[CPU_SAMPLE_COMM_LEN];
	char pcomm[CPU_SAMPLE_COMM_LEN];
	/* Packed as in struct cpu_sample_rec: kernel_frames kernel addresses,
	 * then user_frames user ones, each leaf first. */
	__u64 frames[BENCH_INJECT_KFRAMES + BENCH_INJECT_UFRAMES];
};

/* The ring record the program writes: struct cpu_sample_rec with room for
 * a template's frames only (a record may be longer than its frames need;
 * the reader accepts that). */
struct bench_inject_rec {
	CPU_SAMPLE_HEADER
	__u64 frames[BENCH_INJECT_KFRAMES + BENCH_INJECT_UFRAMES];
};

/* Per-ring counters, written by the program, read by the injector thread of
 * that ring (one injector per ring: no two runs update one entry at once).
 * One cache line each, so that injectors on two CPUs do not share one. */
struct bench_inject_ring_stats {
	__u64 next;	 /* records attempted: the draw position */
	__u64 written;	 /* records submitted */
	__u64 ring_full; /* bpf_ringbuf_reserve failed: record dropped */
	__u64 no_ring;	 /* no ring registered at that index: record dropped */
	__u64 pad[4];
};

#endif /* PIPELINE_BPF_BENCH_INJECT_H */
