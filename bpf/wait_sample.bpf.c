// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Where threads wait: off-CPU time (sched_switch) and futex waits (the
 * futex syscall tracepoints), as struct wait_sample_rec records in the
 * on-CPU sampler's per-CPU rings (bpf/wait_sample.h).
 *
 * Off-CPU. A thread's user stack can only be walked while it is the
 * current task, and the agent has no kprobe or fentry (this kind of host
 * has neither) to run when a thread resumes: so both stacks are taken at
 * the switch-out, in sched_switch, where prev is still current, and kept
 * in `inflight` (by thread id) until the same tracepoint sees the thread
 * switched back in, on whichever CPU: then its time off the CPU is known,
 * and the record goes to that CPU's ring if the time reached min_ns.
 * The walk is the cost (on a 2-vCPU KVM guest under the bench server's
 * load: 4 us for the kernel stack, 1.2 us for the user stack, against
 * 0.1 us for the tracepoint itself), and a busy host switches hundreds of
 * thousands of times a second: so each CPU takes stacks for 1 switch-out
 * in N, N set every RATE_WINDOW_NS from the rate of the window before so
 * that the CPU takes at most max_rate stacks a second (and halved at most
 * per window when the rate falls, so a lull does not open the gates to the
 * next burst), and each record stands for N. The choice is random, so the
 * sampled switches are a fair draw whatever their timing; N is fixed
 * before the event, so the weighted totals stay unbiased.
 *
 * Lock contention. sys_enter_futex notes the time of a wait (FUTEX_WAIT,
 * _BITSET, _REQUEUE_PI, LOCK_PI, LOCK_PI2; futex_waitv); sys_exit_futex
 * sends the wait's length with the user stack, walked there (the waiting
 * thread is current again). A wait that returned EAGAIN did not sleep (the
 * word had changed) and is only counted. Sampled as off-CPU time is, with
 * a rate of its own.
 *
 * Never waits for user space: a full ring drops and counts. Kernel
 * threads, the idle task and the agent itself are left out.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "sample_maps.bpf.h"
#include "wait_sample.h"

#define PF_EXITING 0x00000004
#define PF_KTHREAD 0x00200000
#define EAGAIN	   11

/* futex ops that wait (the command bits, without PRIVATE and CLOCK_REALTIME). */
#define FUTEX_CMD_MASK	      0x7f
#define FUTEX_WAIT	      0
#define FUTEX_LOCK_PI	      6
#define FUTEX_WAIT_BITSET     9
#define FUTEX_WAIT_REQUEUE_PI 11
#define FUTEX_LOCK_PI2	      13

const volatile __u32 self_tgid = 0;
const volatile bool filter_pids = false;
const volatile bool kernel_stacks = true;
const volatile __u64 min_ns = 1000;
const volatile __u64 wakeup_bytes = 0;
const volatile __u32 max_rate = 200; /* stacks per second per CPU and signal */

#define RATE_WINDOW_NS 100000000ull

/* struct wait_rate_state per CPU and signal. Windows are timed in jiffies,
 * a plain load, where the clock read costs about 60 ns per event on a KVM
 * guest; their length in jiffies is learned from the clock at each
 * window's end (the kernel's HZ is not known here). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, struct wait_rate_state);
} rates SEC(".maps");

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Per thread: when its sampled switch-out began (its record in inflight),
 * 0 when none, for a record the LRU evicted to be counted. Task storage: no
 * bound to size, freed with the thread. Its lookup fails, though, while a
 * task storage is being freed on this CPU (an exiting thread preempted
 * there): then the record is looked for in inflight all the same. */
struct wait_task {
	__u64 off_ts;	   /* the sampled switch-out's time; 0 once back */
	__u64 off_runtime; /* the thread's CPU time then (se.sum_exec_runtime) */
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct wait_task);
} task_states SEC(".maps");

/* Each thread's sampled futex wait in progress, by thread id. A hash, not
 * task storage: a wait must not be lost to a busy task storage lock, and a
 * full map (more threads waiting at once than this) is counted. */
struct lock_wait {
	__u64 ts;
	__u64 addr;
	__u32 weight;
	__u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, struct lock_wait);
} lock_waits SEC(".maps");

/* The record of each sampled thread now off the CPU, by thread id. Bounded
 * (user space sizes it): least recently used entries go first, which are
 * the threads asleep the longest; their loss is counted (offcpu_lost). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, struct wait_sample_rec);
} inflight SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct wait_sample_rec);
} scratch SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct wait_sample_stats);
} stats SEC(".maps");

static __always_inline struct wait_sample_stats *cpu_stats(void)
{
	__u32 zero = 0;
	return bpf_map_lookup_elem(&stats, &zero);
}

/* A thread whose waits are profiled: a user thread, not the agent's, and
 * of a --pid process when there are some. */
static __always_inline bool in_scope(struct task_struct *task)
{
	__u32 tgid = task->tgid;

	if (!task->pid || (task->flags & PF_KTHREAD) || tgid == self_tgid)
		return false;
	return !filter_pids || bpf_map_lookup_elem(&target_pids, &tgid);
}

/* Counts an event of signal which (0: off-CPU, 1: lock) and returns the
 * 1 in N in force on this CPU. */
static __always_inline __u32 sample_every(__u32 which)
{
	struct wait_rate_state *r = bpf_map_lookup_elem(&rates, &which);
	__u64 j = bpf_jiffies64(), now, elapsed, rate, every, len;

	if (!r)
		return 1;
	if (j - r->window_jiffies >= r->window_len) {
		now = bpf_ktime_get_ns();
		elapsed = now - r->window_ns;
		if (r->window_ns && elapsed && j > r->window_jiffies) {
			rate = (__u64)r->count * 1000000000ull / elapsed;
			every = rate > max_rate ? rate / max_rate + 1 : 1;
			if (every < r->every / 2)
				every = r->every / 2;
			r->every = every > 1000000 ? 1000000 : every;
			len = RATE_WINDOW_NS * (j - r->window_jiffies) / elapsed;
			r->window_len = len ? len : 1;
		} else {
			r->window_len = 1; /* the first window: one jiffy, to learn its length */
		}
		r->count = 0;
		r->window_ns = now;
		r->window_jiffies = j;
	}
	r->count++;
	return r->every ? r->every : 1;
}

/* Whether this event is one of the 1 in every sampled. */
static __always_inline bool sampled(__u32 every)
{
	return every <= 1 || bpf_get_prandom_u32() % every == 0;
}

static __always_inline void fill_header(struct wait_sample_rec *r, struct task_struct *task,
					__u32 kind, __u64 ts)
{
	r->tgid = task->tgid;
	r->tid = task->pid;
	r->cpu = bpf_get_smp_processor_id();
	r->flags = kind;
	r->ts_ns = ts;
	__builtin_memcpy(r->comm, task->comm, sizeof(r->comm));
	__builtin_memcpy(r->pcomm, task->group_leader->comm, sizeof(r->pcomm));
}

/* The current thread's user stack into r after its nk kernel frames, then
 * its user registers and the window of stack above sp. */
static __always_inline void user_stack(void *ctx, struct task_struct *task,
				       struct wait_sample_rec *r, __u32 nk,
				       struct wait_sample_stats *st)
{
	struct cpu_sample_regs *regs;
	struct pt_regs *ur;
	__u32 nu, window;
	long n;

	nk &= 63; /* for the verifier: nk <= WAIT_KERNEL_FRAMES */
	if (nk > WAIT_KERNEL_FRAMES)
		nk = WAIT_KERNEL_FRAMES;
	n = bpf_get_stack(ctx, r->frames + nk, CPU_SAMPLE_MAX_FRAMES * sizeof(__u64),
			  BPF_F_USER_STACK);
	r->user_frames = 0;
	if (n < 0) {
		r->flags |= CPU_SAMPLE_USER_FAILED;
		st->stack_failed++;
		return;
	}
	nu = n / sizeof(__u64);
	if (nu >= CPU_SAMPLE_MAX_FRAMES) {
		nu = CPU_SAMPLE_MAX_FRAMES;
		r->flags |= CPU_SAMPLE_USER_TRUNCATED;
	}
	r->user_frames = nu;
	if (!nu)
		return;
	regs = (struct cpu_sample_regs *)&r->frames[nk + nu];
	ur = (struct pt_regs *)bpf_task_pt_regs(task);
	regs->ip = ur->ip;
	regs->sp = ur->sp;
	regs->bp = ur->bp;
	/* Not past the stack page: the next one may not be there. The mask
	 * keeps what is below WAIT_WINDOW (a power of two) as it is, and shows
	 * the verifier the bound. */
	if ((regs->sp & 4095) <= 4096 - WAIT_WINDOW)
		window = WAIT_WINDOW;
	else
		window = (4096 - (regs->sp & 4095)) & (WAIT_WINDOW - 1);
	if (bpf_probe_read_user((void *)(regs + 1), window, (void *)regs->sp))
		window = 0;
	regs->stack_len = window;
	regs->stack_want = WAIT_WINDOW;
	r->flags |= CPU_SAMPLE_LEAF_WINDOW_BIT;
}

/* The record's size: its frames, and its window if it has one. */
static __always_inline __u64 rec_size(struct wait_sample_rec *r)
{
	__u32 nk = r->kernel_frames, nu = r->user_frames, len = 0;

	if (nk > WAIT_KERNEL_FRAMES)
		nk = WAIT_KERNEL_FRAMES;
	if (nu > CPU_SAMPLE_MAX_FRAMES)
		nu = CPU_SAMPLE_MAX_FRAMES;
	if (!(r->flags & CPU_SAMPLE_LEAF_WINDOW_BIT))
		return WAIT_SAMPLE_REC_SIZE(nk, nu);
	len = ((struct cpu_sample_regs *)&r->frames[nk + nu])->stack_len;
	if (len > WAIT_WINDOW)
		len = WAIT_WINDOW;
	return WAIT_SAMPLE_WINDOW_REC_SIZE(nk, nu, len);
}

/* Returns whether the ring took the record (a drop is counted). */
static __always_inline bool submit(struct wait_sample_rec *rec, struct wait_sample_stats *st)
{
	__u32 cpu = bpf_get_smp_processor_id();
	void *ring = bpf_map_lookup_elem(&rings, &cpu);
	__u64 size, flags = 0;

	if (!ring) {
		st->no_ring++;
		return false;
	}
	size = rec_size(rec);
	if (size > sizeof(*rec))
		size = sizeof(*rec); /* cannot happen; tells the verifier the bound */
	if (wakeup_bytes) {
		__u64 avail = bpf_ringbuf_query(ring, BPF_RB_AVAIL_DATA);
		/* As the CPU sampler: wake the reader only on the record that
		 * takes the ring across the watermark (+ 8: the ring's header). */
		flags = avail < wakeup_bytes && avail + size + 8 >= wakeup_bytes
				? BPF_RB_FORCE_WAKEUP
				: BPF_RB_NO_WAKEUP;
	}
	if (bpf_ringbuf_output(ring, rec, size, flags)) {
		st->ring_full++;
		return false;
	}
	return true;
}

/*
 * The thread's previous record still waits at its next switch-out: the
 * tracepoint did not report its switch-in. That happens on this kernel
 * (Linux 6.18 in a Firecracker guest: about one switch-in in 500 of the
 * integration test's threads; the kernel's own sched_switch trace event
 * misses switch-ins too). The thread has been back on a CPU since, and
 * its time off the CPU is the time since that switch-out less the CPU time
 * it has used. The record is sent with that, and counted as unseen.
 */
static __always_inline void send_unseen(struct wait_task *t, __u32 tid, __u64 runtime, __u64 now,
					struct wait_sample_stats *st)
{
	struct wait_sample_rec *old = bpf_map_lookup_elem(&inflight, &tid);
	__u64 away, ran, off_ts = t->off_ts;

	t->off_ts = 0;
	if (!old)
		return; /* sent by a switch-in without the task storage */
	if (old->ts_ns != off_ts) {
		st->offcpu_stale++; /* an earlier thread's of the same id */
		bpf_map_delete_elem(&inflight, &tid);
		return;
	}
	away = now - old->ts_ns;
	ran = runtime > t->off_runtime ? runtime - t->off_runtime : 0;
	old->ev.delay_ns = away > ran ? away - ran : 0;
	st->offcpu_unseen++;
	if (old->ev.delay_ns < min_ns)
		st->offcpu_short++;
	else if (submit(old, st))
		st->offcpu_sent++;
	bpf_map_delete_elem(&inflight, &tid);
}

/* prev leaves the CPU: maybe take its stacks and note the time. */
static __always_inline void switch_out(void *ctx, bool preempt, struct task_struct *prev,
				       struct wait_sample_stats *st)
{
	struct wait_sample_rec *r;
	struct wait_task *t;
	__u32 zero = 0, tid, every;
	__u64 now, runtime;
	long nk = 0;

	/* A thread's last switch-out, as it exits, has no return. */
	if (!in_scope(prev) || (prev->flags & PF_EXITING))
		return;
	st->switches++;
	every = sample_every(0);
	if (!sampled(every))
		return;
	now = bpf_ktime_get_ns();
	t = bpf_task_storage_get(&task_states, prev, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	r = bpf_map_lookup_elem(&scratch, &zero);
	if (!t || !r) {
		st->no_task_state++;
		return;
	}
	fill_header(r, prev, CPU_SAMPLE_KIND_OFFCPU, now);
	r->ev.delay_ns = 0;
	r->ev.weight = every;
	r->ev.addr = 0;
	r->ev.state = preempt ? 0 : prev->__state;
	if (kernel_stacks) {
		nk = bpf_get_stack(ctx, r->frames, WAIT_KERNEL_FRAMES * sizeof(__u64), 0);
		if (nk < 0) {
			r->flags |= CPU_SAMPLE_KERNEL_FAILED;
			st->stack_failed++;
			nk = 0;
		}
		nk /= sizeof(__u64);
	}
	r->kernel_frames = nk;
	user_stack(ctx, prev, r, nk, st);
	tid = r->tid;
	runtime = prev->se.sum_exec_runtime;
	if (t->off_ts)
		send_unseen(t, tid, runtime, now, st);
	if (bpf_map_update_elem(&inflight, &tid, r, BPF_ANY)) {
		st->offcpu_lost++;
		return;
	}
	t->off_ts = r->ts_ns;
	t->off_runtime = runtime;
	st->offcpu_taken++;
}

/* next comes back: send its record if it was sampled and away long enough. */
static __always_inline void switch_in(struct task_struct *next, struct wait_sample_stats *st)
{
	struct wait_task *t = bpf_task_storage_get(&task_states, next, 0, 0);
	struct wait_sample_rec *r;
	__u64 off_ts = 0, now, away, ran;
	__u32 tid;

	if (t) {
		if (!t->off_ts)
			return; /* not sampled */
		off_ts = t->off_ts;
		t->off_ts = 0;
	}
	tid = next->pid;
	r = bpf_map_lookup_elem(&inflight, &tid);
	if (!r) {
		if (off_ts)
			st->offcpu_lost++;
		return;
	}
	/* Without the time from the task storage, the record must be this
	 * thread's, not one of an earlier thread of the same id: taken after
	 * this thread began (with 1 ms to spare: the programs' clock, the
	 * NMI-safe one, may trail the one start_time was read from). */
	if (off_ts ? r->ts_ns != off_ts : r->ts_ns + 1000000 < next->start_time) {
		if (off_ts) {
			st->offcpu_lost++;
		} else {
			st->offcpu_stale++;
			bpf_map_delete_elem(&inflight, &tid);
		}
		return;
	}
	now = bpf_ktime_get_ns();
	away = now - r->ts_ns; /* the switch-out's time, found either way */
	/* Less any CPU time used since: a switch-in the tracepoint did not
	 * report, followed by a switch-out that was not sampled (0 else). */
	ran = 0;
	if (t && next->se.sum_exec_runtime > t->off_runtime)
		ran = next->se.sum_exec_runtime - t->off_runtime;
	away = away > ran ? away - ran : 0;
	if (away < min_ns) {
		st->offcpu_short++;
	} else {
		r->ev.delay_ns = away;
		if (submit(r, st))
			st->offcpu_sent++;
	}
	bpf_map_delete_elem(&inflight, &tid);
}

SEC("tp_btf/sched_switch")
int BPF_PROG(offcpu_switch, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	struct wait_sample_stats *st = cpu_stats();

	if (!st)
		return 0;
	switch_out(ctx, preempt, prev, st);
	switch_in(next, st);
	return 0;
}

static __always_inline void lock_begin(__u64 addr)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct wait_sample_stats *st = cpu_stats();
	struct lock_wait w = {.addr = addr};
	__u32 tid;

	if (!st || !in_scope(task))
		return;
	st->futex_waits++;
	w.weight = sample_every(1);
	if (!sampled(w.weight))
		return;
	w.ts = bpf_ktime_get_ns();
	tid = task->pid;
	if (bpf_map_update_elem(&lock_waits, &tid, &w, BPF_ANY)) {
		st->no_task_state++;
		return;
	}
	st->lock_taken++;
}

static __always_inline void lock_end(void *ctx, long ret)
{
	struct task_struct *task = bpf_get_current_task_btf();
	__u32 zero = 0, tid = task->pid;
	struct lock_wait *lw = bpf_map_lookup_elem(&lock_waits, &tid);
	struct wait_sample_stats *st;
	struct wait_sample_rec *r;
	struct lock_wait w;

	if (!lw)
		return;
	w = *lw;
	bpf_map_delete_elem(&lock_waits, &tid);
	st = cpu_stats();
	if (!st)
		return;
	if (ret == -EAGAIN) {
		st->lock_no_wait++;
		return;
	}
	r = bpf_map_lookup_elem(&scratch, &zero);
	if (!r)
		return;
	fill_header(r, task, CPU_SAMPLE_KIND_LOCK, w.ts);
	r->ev.delay_ns = bpf_ktime_get_ns() - w.ts;
	r->ev.weight = w.weight;
	r->ev.addr = w.addr;
	r->ev.state = 0;
	r->kernel_frames = 0;
	user_stack(ctx, task, r, 0, st);
	if (submit(r, st))
		st->lock_sent++;
}

SEC("tracepoint/syscalls/sys_enter_futex")
int futex_enter(struct trace_event_raw_sys_enter *ctx)
{
	switch (ctx->args[1] & FUTEX_CMD_MASK) {
	case FUTEX_WAIT:
	case FUTEX_WAIT_BITSET:
	case FUTEX_WAIT_REQUEUE_PI:
	case FUTEX_LOCK_PI:
	case FUTEX_LOCK_PI2:
		lock_begin(ctx->args[0]);
	}
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_futex")
int futex_exit(struct trace_event_raw_sys_exit *ctx)
{
	lock_end(ctx, ctx->ret);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_futex_waitv")
int futex_waitv_enter(struct trace_event_raw_sys_enter *ctx)
{
	lock_begin(0);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_futex_waitv")
int futex_waitv_exit(struct trace_event_raw_sys_exit *ctx)
{
	lock_end(ctx, ctx->ret);
	return 0;
}
