// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * On-CPU sampler: runs on every tick of the software cpu-clock perf event of
 * each CPU and writes one packed struct cpu_sample_rec into that CPU's own
 * ring buffer (an ARRAY_OF_MAPS of RINGBUF indexed by CPU), so CPUs never
 * contend on one ring and each shard's reader drains only its CPUs. The
 * record is built in a per-CPU scratch buffer and copied into the ring at
 * its used size (bpf/cpu_sample.h). Timed part by part inside the program
 * (2-vCPU KVM guest, 99 Hz, the bench server under load, caches cold
 * between samples): names and lookups 0.8-1.6 us, the user stack 2-4 us
 * for 3 frames, the copy into the ring 0.6-1.3 us, and a kernel stack
 * 18-22 us for 11 frames, paid only by the 15-17 % of samples that
 * interrupted the kernel. Nearly all of it is cache misses, not work.
 *
 * The program never waits for user space: a full ring drops the record and
 * counts it in the per-CPU stats map. Wake-ups are batched: the reader is
 * woken when a ring comes to hold wakeup_bytes; otherwise it finds the
 * records on its next periodic poll. Policy (pid filter, idle, kernel stacks) is set
 * by user space through the const volatile knobs before load.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "cpu_sample.h"
#include "sample_maps.bpf.h"

const volatile bool filter_pids = false;
const volatile bool include_idle = false;
const volatile bool kernel_stacks = true;
const volatile __u64 wakeup_bytes = 0; /* 0: wake on every record */
/* --unwind dwarf: bytes of user stack to copy (0: walk frame pointers). */
const volatile __u32 stack_copy_bytes = 0;
/* --unwind auto: copy only for the processes in copy_tgids. */
const volatile bool copy_auto = false;

/* Processes sampled with stack copies, and how many bytes of stack each
 * needs copied (what its unwinds have used, with room to spare; at most
 * stack_copy_bytes). Written by the shard workers (auto: a process is
 * added when its frame-pointer stacks end early), removed at exec and exit.
 * A dwarf-mode process not in it gets stack_copy_bytes. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, __u32);
} copy_tgids SEC(".maps");

/* --unwind auto: the CFI rules of the code where a switched process's
 * frame-pointer walks broke (cpu_sample.h), learned by the shard workers
 * from the stacks that came out short. Least recently used rules go first;
 * a pid reused by another process may meet its predecessor's rules only at
 * the same addresses, which ASLR makes different code. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, CPU_SAMPLE_UNWIND_RULES);
	__type(key, struct cpu_sample_rule_key);
	__type(value, struct cpu_sample_rule);
} unwind_rules SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct cpu_sample_stats);
} stats SEC(".maps");

/* Where each CPU builds its record before copying it into its ring. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct cpu_sample_fp_scratch);
} scratch SEC(".maps");

/* The dwarf-mode record is built here: too large for a per-CPU array, so an
 * array indexed by CPU (resized to the CPUs by user space; one entry when
 * frame pointers are walked). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct cpu_sample_copy_scratch);
} copy_scratch SEC(".maps");

struct vma_end_ctx {
	__u64 end;
};

static long vma_end_cb(struct task_struct *task, struct vm_area_struct *vma, void *data)
{
	((struct vma_end_ctx *)data)->end = vma->vm_end;
	return 0;
}

/* The fields every record starts with. Both names as plain loads through
 * the task's BTF pointer: the kernel keeps comm NUL-padded, so 16 bytes
 * copied are what bpf_get_current_comm would give, without two helper calls
 * (the string-probing one for the leader's name costs a fault-checked load
 * per byte). */
static __always_inline void fill_header(struct cpu_sample_rec *s, struct task_struct *task,
					__u32 tgid, __u32 tid, __u32 cpu, __u32 flags)
{
	s->tgid = tgid;
	s->tid = tid;
	s->cpu = cpu;
	s->flags = flags;
	s->ts_ns = bpf_ktime_get_ns();
	__builtin_memcpy(s->comm, task->comm, sizeof(s->comm));
	__builtin_memcpy(s->pcomm, task->group_leader->comm, sizeof(s->pcomm));
}

/* The kernel stack into s->frames; returns its frame count. A sample that
 * interrupted user mode has no kernel stack: skip the call rather than
 * have it set up a callchain and clear 1 KiB to return nothing. (Timed
 * inside the program at 99 Hz, the skipped call took 0.7-1.1 us, but the
 * user stack walk after it then paid most of that in cold cache lines the
 * call had warmed: the net is within this machine's noise.) in_kernel:
 * the sample interrupted kernel code. */
static __always_inline __u32 kernel_stack(void *ctx, bool in_kernel, struct cpu_sample_rec *s,
					  struct cpu_sample_stats *st)
{
	if (!kernel_stacks || !in_kernel)
		return 0;
	long n = bpf_get_stack(ctx, s->frames, CPU_SAMPLE_MAX_FRAMES * sizeof(__u64), 0);
	if (n < 0) {
		s->flags |= CPU_SAMPLE_KERNEL_FAILED;
		st->kernel_failed++;
		return 0;
	}
	if (n / sizeof(__u64) >= CPU_SAMPLE_MAX_FRAMES) {
		s->flags |= CPU_SAMPLE_KERNEL_TRUNCATED;
		return CPU_SAMPLE_MAX_FRAMES;
	}
	return n / sizeof(__u64);
}

/* Copies a record of size bytes into the CPU's ring. Batch wake-ups: with
 * a watermark set, wake the reader only with the record that takes the
 * ring across it; the reader's poll timeout collects smaller batches. Not
 * on every record above it: a reader that is behind is awake already (its
 * epoll is level-triggered), and each forced wake-up is an IPI, a VM exit
 * on a guest (the record write cost 922 ns with that rule against 383 ns
 * with this one, `pipeline-bench throughput --stage shards`). */
static __always_inline void submit(void *ring, void *rec, __u64 size, struct cpu_sample_stats *st)
{
	__u64 flags = 0;
	if (wakeup_bytes) {
		__u64 avail = bpf_ringbuf_query(ring, BPF_RB_AVAIL_DATA);
		/* + 8: the ring's own record header */
		flags = avail < wakeup_bytes && avail + size + 8 >= wakeup_bytes
				? BPF_RB_FORCE_WAKEUP
				: BPF_RB_NO_WAKEUP;
	}
	if (bpf_ringbuf_output(ring, rec, size, flags))
		st->ring_full++;
}

/*
 * Copies the thread's user registers and stack_copy_bytes of its stack from
 * sp up (less where the stack's mapping ends) to where regs points. Returns
 * the bytes of the copy, 0 when nothing could be read.
 */
static __always_inline __u32 copy_user_stack(struct task_struct *task, struct cpu_sample_regs *regs,
					     struct cpu_sample_stats *st, __u32 want)
{
	struct pt_regs *ur = (struct pt_regs *)bpf_task_pt_regs(task);
	__u64 sp = ur->sp;
	__u32 len = want;

	regs->ip = ur->ip;
	regs->sp = sp;
	regs->bp = ur->bp;
	regs->stack_want = len;
	regs->stack_len = 0;
	/* Never read past the stack's mapping: a fault there would fail the
	 * whole read. The lookup takes the mmap lock by trylock only. */
	struct vma_end_ctx vc = {0};
	if (!bpf_find_vma(task, sp, vma_end_cb, &vc, 0) && vc.end > sp && vc.end - sp < len)
		len = vc.end - sp;
	len &= ~7u;
	/* Page by page, keeping what was read before the first page that is
	 * not present: one read of the whole range fails whole, and a stack
	 * can have a hole above its frames (the main thread's random gap
	 * below the argument strings is never touched). */
	__u8 *dst = (__u8 *)(regs + 1);
	__u64 done = 0;
	for (int i = 0; i < CPU_SAMPLE_STACK_COPY_MAX / 4096 + 1; i++) {
		__u64 at = sp + done;
		__u64 chunk = 4096 - (at & 4095);
		if (done >= len)
			break;
		if (chunk > len - done)
			chunk = len - done;
		/* Bounds the verifier can follow (both hold already). */
		asm volatile("" : "+r"(chunk), "+r"(done));
		if (chunk > 4096 || done > CPU_SAMPLE_STACK_COPY_MAX - 4096)
			break;
		if (bpf_probe_read_user(dst + done, chunk, (void *)at))
			break;
		done += chunk;
	}
	done &= ~7ull;
	if (done < want)
		st->copy_short++;
	st->copy_bytes += done;
	if (!done) {
		st->copy_failed++;
		return 0;
	}
	regs->stack_len = done;
	return done;
}

/* --unwind dwarf: the kernel stack, then the user registers and a copy of
 * the user stack, which the shard worker unwinds with the binaries' CFI. */
static __always_inline void sample_with_copy(void *ctx, bool in_kernel, __u32 flags,
					     struct cpu_sample_stats *st, void *ring, __u32 cpu,
					     __u32 tgid, __u32 tid, __u32 want)
{
	struct cpu_sample_copy_scratch *sc = bpf_map_lookup_elem(&copy_scratch, &cpu);
	if (!sc) {
		st->no_ring++; /* user space sized the map to the CPUs */
		return;
	}
	struct cpu_sample_rec *s = &sc->rec;
	struct task_struct *task = bpf_get_current_task_btf();

	fill_header(s, task, tgid, tid, cpu, CPU_SAMPLE_STACK_COPY | flags);
	__u32 nk = kernel_stack(ctx, in_kernel, s, st);
	nk &= 127; /* CPU_SAMPLE_MAX_FRAMES; a mask the verifier can follow */
	s->kernel_frames = nk;
	s->user_frames = 0;

	struct cpu_sample_regs *regs = (struct cpu_sample_regs *)&s->frames[nk];
	__u32 len = 0;
	if (task->flags & 0x00200000 /* PF_KTHREAD: no user side */)
		regs->ip = regs->sp = regs->bp = regs->stack_len = regs->stack_want = 0;
	else
		len = copy_user_stack(task, regs, st, want);
	if (!len && !(task->flags & 0x00200000))
		s->flags |= CPU_SAMPLE_COPY_FAILED;

	__u64 size = CPU_SAMPLE_COPY_REC_SIZE(nk, len);
	if (size > sizeof(*sc))
		size = sizeof(*sc); /* cannot happen; tells the verifier the bound */
	submit(ring, sc, size, st);
}

/*
 * --unwind auto, a process in CPU_SAMPLE_COPY_WALK: its user stack walked
 * here, from the task's user registers, into out (at most
 * CPU_SAMPLE_MAX_FRAMES; returns how many). Each frame whose pc has a rule
 * in unwind_rules steps by it (code without a frame pointer there, such as
 * a C library's system-call wrapper that keeps its own data in rbp); any
 * other by frame pointer, as bpf_get_stack would. A rule step costs a hash
 * lookup and one or two 8-byte user reads, so a process whose frames mostly
 * need rules is better served by a copy (the worker escalates it).
 */
static __always_inline __u32 walk_user_by_rules(struct task_struct *task, __u32 tgid, __u64 *out,
						struct cpu_sample_stats *st, bool *truncated)
{
	struct pt_regs *ur = (struct pt_regs *)bpf_task_pt_regs(task);
	struct cpu_sample_rule_key key = {.tgid = tgid};
	__u64 ip = ur->ip, sp = ur->sp, bp = ur->bp;
	__u32 n = 0;

	*truncated = false;
#pragma clang loop unroll(disable)
	for (__u32 i = 0; i < CPU_SAMPLE_MAX_FRAMES; i++) {
		__u64 cfa, ra, caller_bp = bp;

		if (!ip || (__s64)ip < 0)
			break;
		out[i] = ip;
		n = i + 1;
		key.pc = i ? ip - 1 : ip;
		struct cpu_sample_rule *r = bpf_map_lookup_elem(&unwind_rules, &key);
		if (r) {
			if (r->outermost)
				break;
			cfa = (r->cfa_on_bp ? bp : sp) + (__s64)r->cfa_off;
			if (bpf_probe_read_user(&ra, sizeof(ra), (void *)(cfa + (__s64)r->ra_off)))
				break;
			if (r->bp_saved && bpf_probe_read_user(&caller_bp, sizeof(caller_bp),
							       (void *)(cfa + (__s64)r->bp_off)))
				break;
			st->rule_steps++;
		} else {
			__u64 frame[2]; /* the caller's bp, the return address */
			if (bp < sp || (bp & 7) ||
			    bpf_probe_read_user(frame, sizeof(frame), (void *)bp))
				break;
			cfa = bp + 16;
			caller_bp = frame[0];
			ra = frame[1];
		}
		if (cfa <= sp)
			break; /* a caller's frame lies above its callee's */
		ip = ra;
		sp = cfa;
		bp = caller_bp;
		if (i == CPU_SAMPLE_MAX_FRAMES - 1 && ip && (__s64)ip > 0)
			*truncated = true;
	}
	st->rule_walks++;
	return n;
}

/* --clock tick: the sample period (ns; 0 with another clock), and the
 * time (CLOCK_MONOTONIC) of the previous reckoning, which user space sets
 * before each run of tick_reckon (0 before the first). */
const volatile __u64 tick_period_ns = 0;
__u64 tick_reckoned_ns = 0;

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct cpu_sample_tick_thread);
} tick_threads SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, CPU_SAMPLE_TICK_UNSEEN);
	__type(key, __u32); /* thread id */
	__type(value, struct cpu_sample_tick_unseen);
} tick_unseen SEC(".maps");

static __always_inline void tick_thread_sampled(struct task_struct *task)
{
	struct cpu_sample_tick_thread *t =
		bpf_task_storage_get(&tick_threads, task, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (t)
		__sync_fetch_and_add(&t->samples, 1);
}

/*
 * Weighs a thread's CPU time since its last reckoning (the kernel's exact
 * count) against the samples taken of it since, each worth tick_period_ns.
 * Sampling on the tick is unbiased unless the thread runs in step with it:
 * one that wakes on a timer at HZ and is done before the next tick is never
 * seen, whatever ticks are taken. Such a gap (CPU_SAMPLE_TICK_UNSEEN_MIN
 * periods at least, and more than half the thread's time) goes into
 * tick_unseen, for the profile to show it as unsampled CPU time of that
 * thread rather than leave it out. t is the thread's storage, or NULL for
 * a thread that has none (an exiting one never sampled nor reckoned).
 */
static __always_inline void tick_reckon_thread(struct task_struct *task,
					       struct cpu_sample_tick_thread *t)
{
	struct cpu_sample_tick_thread none = {};
	__u64 runtime = task->se.sum_exec_runtime, p = tick_period_ns;

	if (!t)
		t = &none;
	if (!t->init) {
		/* Born since the previous reckoning: all its time is new.
		 * Otherwise (the first reckoning) this is its baseline. */
		t->base_ns = tick_reckoned_ns && task->start_time >= tick_reckoned_ns ? 0 : runtime;
		t->init = 1;
	}
	__u64 samples = t->samples;
	__u64 used = runtime > t->base_ns ? runtime - t->base_ns : 0, seen = samples * p;

	if (used > 2 * seen && used - seen >= CPU_SAMPLE_TICK_UNSEEN_MIN * p) {
		__u32 tid = task->pid, zero = 0;
		struct cpu_sample_tick_unseen *u = bpf_map_lookup_elem(&tick_unseen, &tid);
		if (u) {
			__sync_fetch_and_add(&u->ns, used - seen);
		} else {
			struct cpu_sample_tick_unseen v = {.tgid = task->tgid, .ns = used - seen};
			__builtin_memcpy(v.comm, task->comm, sizeof(v.comm));
			__builtin_memcpy(v.pcomm, task->group_leader->comm, sizeof(v.pcomm));
			if (bpf_map_update_elem(&tick_unseen, &tid, &v, BPF_NOEXIST)) {
				struct cpu_sample_stats *st = bpf_map_lookup_elem(&stats, &zero);
				if (st)
					__sync_fetch_and_add(&st->tick_unseen_lost_ns, used - seen);
			}
		}
	} else if (used < CPU_SAMPLE_TICK_WINDOW * p) {
		return; /* too little time yet to judge: keep counting */
	}
	t->base_ns = runtime;
	/* Less what was read, not zeroed: a tick on another CPU may have
	 * counted one meanwhile. */
	__sync_fetch_and_add(&t->samples, -samples);
}

/* --clock tick: run by user space (a task iterator) at each flush, and
 * once before sampling starts (the baseline). */
SEC("iter/task")
int tick_reckon(struct bpf_iter__task *ctx)
{
	struct task_struct *task = ctx->task;
	if (!task)
		return 0;
	__u32 tgid = task->tgid;
	if (filter_pids && !bpf_map_lookup_elem(&target_pids, &tgid))
		return 0;
	tick_reckon_thread(
		task, bpf_task_storage_get(&tick_threads, task, 0, BPF_LOCAL_STORAGE_GET_F_CREATE));
	return 0;
}

/* --clock tick: a thread's last reckoning, as it exits (its storage goes
 * with it). */
SEC("tp_btf/sched_process_exit")
int BPF_PROG(tick_thread_exit, struct task_struct *p)
{
	__u32 tgid = p->tgid;
	if (filter_pids && !bpf_map_lookup_elem(&target_pids, &tgid))
		return 0;
	tick_reckon_thread(p, bpf_task_storage_get(&tick_threads, p, 0, 0));
	return 0;
}

/* One sample of the task running on this CPU: ctx is the program's own
 * (perf_event or tp_btf: bpf_get_stack takes either), in_kernel whether it
 * interrupted kernel code, flags added to the record's (CPU_SAMPLE_TICK). */
static __always_inline int take_sample(void *ctx, bool in_kernel, __u32 flags)
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
	/* Tick mode counts every sample of a thread, those of the cpu-clock
	 * event on NO_HZ_FULL CPUs too: all are in the profile. */
	if (tick_period_ns && tid != 0)
		tick_thread_sampled(bpf_get_current_task_btf());

	__u32 cpu = bpf_get_smp_processor_id();
	void *ring = bpf_map_lookup_elem(&rings, &cpu);
	if (!ring) {
		st->no_ring++;
		return 0;
	}
	bool rule_walk = false;
	if (stack_copy_bytes && tid != 0) {
		__u32 *want = bpf_map_lookup_elem(&copy_tgids, &tgid);
		rule_walk = want && *want == CPU_SAMPLE_COPY_WALK && copy_auto;
		if (!rule_walk && (want || !copy_auto)) {
			__u32 w = want && *want && *want < stack_copy_bytes ? *want
									    : stack_copy_bytes;
			sample_with_copy(ctx, in_kernel, flags, st, ring, cpu, tgid, tid, w);
			return 0;
		}
	}
	struct cpu_sample_fp_scratch *fsc = bpf_map_lookup_elem(&scratch, &zero);
	struct cpu_sample_rec *s = fsc ? &fsc->rec : NULL;
	if (!s) {
		st->no_ring++; /* cannot happen: a one-entry per-CPU array */
		return 0;
	}

	struct task_struct *task = bpf_get_current_task_btf();
	fill_header(s, task, tgid, tid, cpu, (tid == 0 ? CPU_SAMPLE_IDLE : 0) | flags);
	long n = 0;
	__u32 nk = kernel_stack(ctx, in_kernel, s, st), nu = 0;

	if (rule_walk && !(task->flags & 0x00200000 /* PF_KTHREAD */)) {
		bool truncated;
		s->flags |= CPU_SAMPLE_RULE_WALK;
		nu = walk_user_by_rules(task, tgid, &s->frames[nk & 127], st, &truncated);
		if (truncated)
			s->flags |= CPU_SAMPLE_USER_TRUNCATED;
	} else if (tid != 0) {
		/* The user stack goes right after the kernel one. */
		n = bpf_get_stack(ctx, &s->frames[nk], CPU_SAMPLE_MAX_FRAMES * sizeof(__u64),
				  BPF_F_USER_STACK);
		if (n < 0) {
			s->flags |= CPU_SAMPLE_USER_FAILED;
			st->user_failed++;
		} else {
			nu = n / sizeof(__u64);
			if (nu >= CPU_SAMPLE_MAX_FRAMES) {
				nu = CPU_SAMPLE_MAX_FRAMES;
				s->flags |= CPU_SAMPLE_USER_TRUNCATED;
			}
		}
	}
	s->kernel_frames = nk;
	s->user_frames = nu;

	/* The registers and the first bytes of the stack, for the worker to
	 * find the caller the walk skipped when the sampled function has no
	 * frame (the word at rsp or a little above it, by the function's CFI). */
	__u32 window = 0;
	if (tid != 0 && nu && !(task->flags & 0x00200000 /* PF_KTHREAD */)) {
		__u32 at = nk + nu;
		if (at > 2 * CPU_SAMPLE_MAX_FRAMES)
			at = 2 * CPU_SAMPLE_MAX_FRAMES; /* cannot happen; for the verifier */
		struct cpu_sample_regs *regs = (struct cpu_sample_regs *)&s->frames[at];
		struct pt_regs *ur = (struct pt_regs *)bpf_task_pt_regs(task);
		__u64 sp = ur->sp;

		regs->ip = ur->ip;
		regs->sp = sp;
		regs->bp = ur->bp;
		/* Not past the stack page: the next one may not be there. The
		 * mask keeps what is below CPU_SAMPLE_LEAF_WINDOW (a power of
		 * two) as it is, and shows the verifier the bound. */
		if ((sp & 4095) <= 4096 - CPU_SAMPLE_LEAF_WINDOW)
			window = CPU_SAMPLE_LEAF_WINDOW;
		else
			window = (4096 - (sp & 4095)) & (CPU_SAMPLE_LEAF_WINDOW - 1);
		if (bpf_probe_read_user((void *)(regs + 1), window, (void *)sp))
			window = 0;
		regs->stack_len = window;
		regs->stack_want = CPU_SAMPLE_LEAF_WINDOW;
		s->flags |= CPU_SAMPLE_LEAF_WINDOW_BIT;
	}

	__u64 size = CPU_SAMPLE_REC_SIZE(nk, nu);
	if (s->flags & CPU_SAMPLE_LEAF_WINDOW_BIT)
		size = CPU_SAMPLE_LEAF_REC_SIZE(nk, nu, window);
	if (size > sizeof(*fsc))
		size = sizeof(*fsc); /* cannot happen; tells the verifier the bound */
	submit(ring, s, size, st);
	return 0;
}

/* The cpu-clock perf event: kernel addresses are the top half of the
 * address space. */
SEC("perf_event")
int on_cpu_sample(struct bpf_perf_event_data *ctx)
{
	return take_sample(ctx, (long)ctx->regs.ip < 0, 0);
}

/*
 * --clock tick: the scheduler tick's own hrtimer (tick_fn, the address of
 * the kernel's tick handler), which interrupts every busy CPU HZ times a
 * second anyway: every tick_every-th tick on average is a sample, at no
 * interrupt of its own. The gap between two taken ticks is drawn at random
 * from 1 .. 2 tick_every - 1 (mean tick_every), so a task whose rhythm is a
 * multiple of the tick is not always seen, or never. A CPU that stops its
 * tick when idle (NO_HZ) takes no sample then, as cpu-clock leaves the idle
 * task out. CPUs listed in tick_off (NO_HZ_FULL: no tick while busy either)
 * are sampled by cpu-clock instead.
 *
 * Whether the tick interrupted kernel code (and a kernel stack is worth its
 * walk): the interrupt's own registers are out of reach (__irq_regs is a
 * per-CPU variable, which the verifier can resolve only with
 * CONFIG_KALLSYMS_ALL), so the task's user registers tell: an interrupt
 * from user mode saved them with orig_ax = -1 (no system call), while a
 * task inside a system call or a fault left its number or error code
 * there. Kernel threads are always in the kernel. Misread: softirq work
 * run on the way out of an interrupt that came from user mode (no kernel
 * stack taken then).
 */
const volatile __u64 tick_fn = 0;
const volatile __u32 tick_every = 1;

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct cpu_sample_tick_state);
} tick_states SEC(".maps");

SEC("tp_btf/hrtimer_expire_entry")
int BPF_PROG(on_tick, struct hrtimer *timer, ktime_t *now)
{
	__u32 zero = 0;
	struct cpu_sample_tick_state *ts;

	if ((__u64)timer->function != tick_fn)
		return 0;
	ts = bpf_map_lookup_elem(&tick_states, &zero);
	if (!ts || ts->off)
		return 0;
	if (ts->countdown > 1) {
		ts->countdown--;
		return 0;
	}
	ts->countdown = tick_every > 1 ? 1 + bpf_get_prandom_u32() % (2 * tick_every - 1) : 1;

	struct task_struct *task = bpf_get_current_task_btf();
	bool in_kernel = true;
	if (!(task->flags & 0x00200000 /* PF_KTHREAD */)) {
		struct pt_regs *ur = (struct pt_regs *)bpf_task_pt_regs(task);
		in_kernel = (long)ur->orig_ax >= 0;
	}
	return take_sample(ctx, in_kernel, CPU_SAMPLE_TICK);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
