// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Process events for the symbolizer: every exec, and every exit of a thread
 * group leader, as one small record in one BPF ring buffer. tp_btf programs
 * need no tracefs (not mounted on the hosts this runs on).
 *
 * An exec wakes user space at once: the process table must read the new
 * image's mappings while the process still lives (a 30 ms process is gone
 * long before its samples reach a worker). Exits are not urgent: they only
 * let the symbolizer drop a process once its samples are flushed, so they
 * do not wake the reader. A full ring drops the event and counts it; the
 * kernel never waits.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#include "proc_events.h"

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 64 * 1024);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct pl_proc_event_stats);
} stats SEC(".maps");

static __always_inline void emit(__u32 kind, __u32 tgid, __u64 flags)
{
	__u32 zero = 0;
	struct pl_proc_event_stats *st = bpf_map_lookup_elem(&stats, &zero);
	struct pl_proc_event *e;

	if (!st)
		return;
	if (kind == PL_PROC_EXEC)
		st->execs++;
	else
		st->exits++;
	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		st->ring_full++;
		return;
	}
	e->kind = kind;
	e->tgid = tgid;
	e->time_ns = bpf_ktime_get_ns();
	bpf_ringbuf_submit(e, flags);
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(proc_exec, struct task_struct *p)
{
	emit(PL_PROC_EXEC, BPF_CORE_READ(p, tgid), BPF_RB_FORCE_WAKEUP);
	return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(proc_exit, struct task_struct *p)
{
	/* One event per process: the leader's exit, not each thread's. */
	if (BPF_CORE_READ(p, pid) != BPF_CORE_READ(p, tgid))
		return 0;
	emit(PL_PROC_EXIT, BPF_CORE_READ(p, tgid), BPF_RB_NO_WAKEUP);
	return 0;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
