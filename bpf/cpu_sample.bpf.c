// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * On-CPU sampler: runs on every tick of the software cpu-clock perf event of
 * each CPU and writes one struct cpu_sample, in place, into that CPU's own
 * ring buffer (an ARRAY_OF_MAPS of RINGBUF indexed by CPU), so CPUs never
 * contend on one ring and each shard's reader drains only its CPUs.
 *
 * The program never waits for user space: a full ring drops the record and
 * counts it in the per-CPU stats map. Wake-ups are batched: the reader is
 * woken only once a ring holds wakeup_bytes; otherwise it finds the records
 * on its next periodic poll. Policy (pid filter, idle, kernel stacks) is set
 * by user space through the const volatile knobs before load.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

#include "cpu_sample.h"

const volatile bool filter_pids = false;
const volatile bool include_idle = false;
const volatile bool kernel_stacks = true;
const volatile __u64 wakeup_bytes = 0; /* 0: wake on every record */

struct ring {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024); /* resized by user space before load */
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, CPU_SAMPLE_MAX_CPUS); /* resized to the number of CPUs */
	__type(key, __u32);
	__array(values, struct ring);
} rings SEC(".maps");

/* Thread group ids to sample when filter_pids is set; value unused. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u8);
} target_pids SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct cpu_sample_stats);
} stats SEC(".maps");

SEC("perf_event")
int on_cpu_sample(struct bpf_perf_event_data *ctx)
{
	__u32 zero = 0;
	struct cpu_sample_stats *st = bpf_map_lookup_elem(&stats, &zero);
	if (!st)
		return 0;

	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32;
	__u32 tid = (__u32)id;

	if (tid == 0 && !include_idle) {
		st->filtered++;
		return 0;
	}
	if (filter_pids && !bpf_map_lookup_elem(&target_pids, &tgid)) {
		st->filtered++;
		return 0;
	}
	st->seen++;

	__u32 cpu = bpf_get_smp_processor_id();
	void *ring = bpf_map_lookup_elem(&rings, &cpu);
	if (!ring) {
		st->no_ring++;
		return 0;
	}
	struct cpu_sample *s = bpf_ringbuf_reserve(ring, sizeof(*s), 0);
	if (!s) {
		st->ring_full++;
		return 0;
	}

	s->tgid = tgid;
	s->tid = tid;
	s->cpu = cpu;
	s->flags = tid == 0 ? CPU_SAMPLE_IDLE : 0;
	s->ts_ns = bpf_ktime_get_ns();
	bpf_get_current_comm(s->comm, sizeof(s->comm));
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	BPF_CORE_READ_STR_INTO(&s->pcomm, task, group_leader, comm);

	long n = 0;
	s->kernel_frames = 0;
	if (kernel_stacks) {
		n = bpf_get_stack(ctx, s->kernel_stack, sizeof(s->kernel_stack), 0);
		if (n < 0) {
			s->flags |= CPU_SAMPLE_KERNEL_FAILED;
			st->kernel_failed++;
		} else {
			s->kernel_frames = n / sizeof(__u64);
			if (s->kernel_frames >= CPU_SAMPLE_MAX_FRAMES)
				s->flags |= CPU_SAMPLE_KERNEL_TRUNCATED;
		}
	}

	s->user_frames = 0;
	if (tid != 0) {
		n = bpf_get_stack(ctx, s->user_stack, sizeof(s->user_stack), BPF_F_USER_STACK);
		if (n < 0) {
			s->flags |= CPU_SAMPLE_USER_FAILED;
			st->user_failed++;
		} else {
			s->user_frames = n / sizeof(__u64);
			if (s->user_frames >= CPU_SAMPLE_MAX_FRAMES)
				s->flags |= CPU_SAMPLE_USER_TRUNCATED;
		}
	}

	/* Batch wake-ups: with a watermark set, wake the reader only once the
	 * ring holds that much; the reader's poll timeout collects the rest. */
	__u64 flags = 0;
	if (wakeup_bytes) {
		__u64 avail = bpf_ringbuf_query(ring, BPF_RB_AVAIL_DATA);
		flags = avail + sizeof(*s) >= wakeup_bytes ? BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP;
	}
	bpf_ringbuf_submit(s, flags);
	return 0;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
