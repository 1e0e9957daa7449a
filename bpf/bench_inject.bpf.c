// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Benchmark injector (not loaded by the agent): writes synthetic struct
 * cpu_sample records into the agent's own per-CPU ring buffers, so that
 * `pipeline-bench throughput --stage shards` can drive the real shard
 * readers and workers at any rate.
 *
 * User space puts the sampler's ring fds into this program's `rings`
 * ARRAY_OF_MAPS (same rings, same indexes as cpu_sample.bpf.c) and runs the
 * program with BPF_PROG_TEST_RUN and `repeat` = records to write; the
 * context's cb[] names the ring (bench_inject.h). Each run writes one packed
 * struct cpu_sample_rec in place (reserve, fill, submit) from a template chosen by the Zipf draw
 * sequence `seq`, and wakes the reader exactly as cpu_sample.bpf.c does:
 * only once the ring holds wakeup_bytes. It is a socket filter only because
 * that type supports test runs with `repeat` at a few microseconds per run
 * (an XDP test run with repeat > 1 re-patches the XDP dispatcher, about
 * 10 ms per call); the packet is not looked at.
 *
 * What it does not do: no perf_event interrupt, no bpf_get_stack (the
 * frames come from the template), no pid filter. Like cpu_sample.bpf.c it
 * never waits: a full ring drops the record and counts it.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

#include "bench_inject.h"
/* The rings only: the injector filters nothing. */
#define SAMPLE_MAPS_NO_PID_FILTER
#include "sample_maps.bpf.h"

const volatile __u64 wakeup_bytes = 0; /* 0: wake on every record */

/* Filled by user space before the runs (global data, mmapped). */
struct bench_inject_stack stacks[BENCH_INJECT_MAX_STACKS];
__u32 seq[BENCH_INJECT_SEQ_LEN]; /* template indexes, Zipf-distributed */
__u32 n_stacks = 1;		 /* templates in use, 1..BENCH_INJECT_MAX_STACKS */
struct bench_inject_ring_stats ring_stats[CPU_SAMPLE_MAX_CPUS];

SEC("socket")
int bench_inject(struct __sk_buff *skb)
{
	__u32 r = skb->cb[BENCH_INJECT_CB_RING];
	__u32 cmd_flags = skb->cb[BENCH_INJECT_CB_FLAGS];

	if (r >= CPU_SAMPLE_MAX_CPUS)
		return 0;
	struct bench_inject_ring_stats *st = &ring_stats[r];
	__u64 k = st->next++;

	void *ring = bpf_map_lookup_elem(&rings, &r);
	if (!ring) {
		st->no_ring++;
		return 0;
	}
	__u32 t;
	if (cmd_flags & BENCH_INJECT_IN_ORDER)
		t = (__u32)k % (n_stacks ? n_stacks : 1);
	else
		t = seq[k & (BENCH_INJECT_SEQ_LEN - 1)];
	const struct bench_inject_stack *tp = &stacks[t & (BENCH_INJECT_MAX_STACKS - 1)];

	struct bench_inject_rec *s = bpf_ringbuf_reserve(ring, sizeof(*s), 0);
	if (!s) {
		st->ring_full++;
		return 0;
	}
	s->tgid = tp->tgid;
	s->tid = tp->tid;
	s->cpu = r;
	s->flags = 0;
	s->ts_ns = bpf_ktime_get_ns();
	__builtin_memcpy(s->comm, tp->comm, sizeof(s->comm));
	__builtin_memcpy(s->pcomm, tp->pcomm, sizeof(s->pcomm));
	s->kernel_frames = tp->kernel_frames;
	s->user_frames = tp->user_frames;
	__builtin_memcpy(s->frames, tp->frames, sizeof(tp->frames));

	/* cpu_sample.bpf.c's wake-up rule, a wake-up when this record takes the
	 * ring across the watermark (or, on request, the older rule: on every
	 * record above it), and a forced wake-up for the last record of a run:
	 * the reader would otherwise wait for its poll period. avail includes
	 * this record (reserved). */
	__u64 flags = 0;
	if (cmd_flags & BENCH_INJECT_FORCE_WAKEUP) {
		flags = BPF_RB_FORCE_WAKEUP;
	} else if (wakeup_bytes) {
		__u64 avail = bpf_ringbuf_query(ring, BPF_RB_AVAIL_DATA);
		bool wake;

		if (cmd_flags & BENCH_INJECT_WAKE_ABOVE_MARK)
			wake = avail >= wakeup_bytes;
		else
			wake = avail >= wakeup_bytes && avail < wakeup_bytes + sizeof(*s) + 8;
		flags = wake ? BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP;
	}
	bpf_ringbuf_submit(s, flags);
	st->written++;
	return 0;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
