// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Allocation sampling: uprobes on the allocator's entry points (placed on an
 * instruction the kernel emulates: pipeline/probe_point.c), uretprobes for
 * the returned address, and a uprobe on free.
 *
 * Sampling by bytes, as Go's and tcmalloc's heap profilers do: each thread
 * counts down the bytes to its next sample, drawn from an exponential
 * distribution of mean sample_bytes (a Poisson process over allocated
 * bytes: each byte is sampled with probability 1/sample_bytes), so an
 * allocation of s bytes is sampled with probability 1 - exp(-s/period) and
 * user space weighs it back by the inverse. sample_bytes 1 samples every
 * allocation. An unsampled allocation costs its entry and return traps and
 * a few instructions: no stack walk, no map update, no record.
 *
 * A sampled allocation writes an ALLOC record (with its user stack) into the
 * CPU's ring and is tracked in `tracked` (tgid, address) -> (size, site,
 * time). free() looks its pointer up there: only tracked blocks produce a
 * FREE record; frees of unsampled blocks, or of blocks allocated before the
 * agent started, cost one hash lookup. realloc frees the old block (if
 * tracked) and allocates the new one.
 *
 * Nesting: glibc's realloc(NULL, n) and memalign family call malloc through
 * its public entry, which is probed too. Per-thread state (task storage)
 * counts the allocator calls in progress; only the outermost is counted,
 * and its return is the one that records.
 *
 * Uprobe sessions (kernels with BPF_TRACE_UPROBE_SESSION): malloc and calloc,
 * by far the most frequent calls, are then probed by one program at entry
 * and return whose entry run decides whether the return runs at all: an
 * unsampled call returns 1 at entry, and the kernel does not hijack its
 * return, so it costs one trap instead of two. The session cookie carries
 * the size to the return. Their calls are never nested in another probed
 * call's return (a nested one, inside realloc or memalign, skips itself).
 * Without session support, they use the entry and return programs as the
 * other functions do.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#include "alloc_sample.h"
/* Probes are attached per process: no pid filter map. */
#define SAMPLE_MAPS_NO_PID_FILTER
#include "sample_maps.bpf.h"

const volatile __u64 sample_bytes = 512 * 1024;
const volatile __u64 wakeup_bytes = 0;
/* The agent itself (probed too with --alloc-all, which attaches to every
 * process mapping the C library): never counted. */
const volatile __u32 self_tgid = 0;
/* Anonymous mmap: every process (--alloc-all), else those in `targets`. */
const volatile bool all_processes = false;
/* -ln((k + 0.5) / ALLOC_SAMPLE_EXP_TABLE) in 16.16 fixed point, from user space. */
const volatile __u32 exp_table[ALLOC_SAMPLE_EXP_TABLE];

extern bool bpf_session_is_return(void) __ksym __weak;
extern __u64 *bpf_session_cookie(void) __ksym __weak;

enum fn {
	FN_MALLOC,
	FN_CALLOC,
	FN_REALLOC,
	FN_POSIX_MEMALIGN,
	FN_ALIGNED,
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1000000); /* --alloc-max-tracked, set before load */
	__type(key, struct alloc_key);
	__type(value, struct alloc_val);
} tracked SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, struct alloc_lost_key);
	__type(value, __u64);
} lost SEC(".maps");

/* The --pid processes, for the mmap tracepoints (which fire for every
 * process; the uprobes are attached per process). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u8);
} targets SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct alloc_file_key);
	__type(value, __u8);
} alloc_files SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, struct alloc_text);
} alloc_texts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 4096);
	__type(key, struct alloc_site_key);
	__type(value, struct alloc_sample_rec);
} site_stacks SEC(".maps");

struct task_state {
	__s64 countdown;      /* bytes to the next sample */
	__u64 size;	      /* the outermost call's */
	__u64 arg;	      /* realloc: old pointer; posix_memalign: where the result goes */
	__u64 sp;	      /* stack pointer at the outermost call's entry */
	struct alloc_val old; /* realloc: the old block, taken off `tracked` at entry */
	__u8 has_old;
	__u32 depth;	   /* allocator calls in progress on this thread */
	__u8 fn;	   /* enum fn of the outermost call */
	__u8 mmap_pending; /* an mmap of the program is in its syscall */
	__u8 mmap_sampled;
	__u64 mmap_len;
	__u8 sampled;
	__u8 started; /* countdown drawn */
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct task_state);
} task_states SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct alloc_sample_stats);
} stats SEC(".maps");

/* Where a thread builds its ALLOC record: per thread, not per CPU, since a
 * uprobe program can be preempted (migration is disabled, preemption is
 * not) and another thread on the same CPU would write into a per-CPU one. */
struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct alloc_sample_rec);
} task_recs SEC(".maps");

/* Sizes past this are clamped in the countdown (a failed malloc(huge), a
 * wrapped calloc product), so one call cannot stall a thread's sampling. */
#define SIZE_CLAMP (1ull << 40)

/* The per-CPU counters, or NULL for the agent's own calls. */
static __always_inline struct alloc_sample_stats *get_stats(void)
{
	__u32 zero = 0;

	if (self_tgid && bpf_get_current_pid_tgid() >> 32 == self_tgid)
		return NULL;
	return bpf_map_lookup_elem(&stats, &zero);
}

static __always_inline __s64 next_gap(void)
{
	__u32 k = bpf_get_prandom_u32() & (ALLOC_SAMPLE_EXP_TABLE - 1);
	__u64 gap = (sample_bytes * exp_table[k]) >> 16;

	return gap ? (__s64)gap : 1;
}

/* Counts size down the thread's bytes to its next sample. */
static __always_inline bool sample_decision(struct task_state *t, __u64 size)
{
	if (sample_bytes <= 1)
		return true;
	if (!t->started) {
		t->started = 1;
		t->countdown = next_gap();
	}
	t->countdown -= (__s64)(size < SIZE_CLAMP ? size : SIZE_CLAMP);
	if (t->countdown > 0)
		return false;
	t->countdown = next_gap();
	return true;
}

/* This thread's state, created on first use; NULL (counted) when the
 * kernel cannot give it now. */
static __always_inline struct task_state *task_state_get(struct alloc_sample_stats *st)
{
	struct task_state *t = bpf_task_storage_get(&task_states, bpf_get_current_task_btf(), 0,
						    BPF_LOCAL_STORAGE_GET_F_CREATE);

	if (!t)
		st->no_task_state++;
	return t;
}

/*
 * Whether an allocator call is running on this thread below the current
 * one. A depth left over by a return never seen (task storage busy at the
 * return, a longjmp out of the allocator) would stop the thread's sampling
 * for good; but a nested call runs deeper in the stack than its outer one,
 * so an entry at or above the outermost call's stack pointer proves the
 * depth stale, and it is reset.
 */
static __always_inline bool in_allocator(struct task_state *t, __u64 sp)
{
	if (t->depth && sp >= t->sp)
		t->depth = 0;
	return t->depth != 0;
}

/* Takes the block (tgid, addr) off `tracked` into *out. Returns true if it
 * was tracked (and this call took it: a block freed twice at once is
 * taken once). */
static __always_inline bool take_tracked(__u64 addr, struct alloc_val *out)
{
	struct alloc_key key = {.tgid = bpf_get_current_pid_tgid() >> 32, .addr = addr};
	struct alloc_val *v = bpf_map_lookup_elem(&tracked, &key);

	if (!v)
		return false;
	*out = *v;
	return bpf_map_delete_elem(&tracked, &key) == 0;
}

static __always_inline int on_entry(struct pt_regs *ctx, enum fn fn, __u64 size, __u64 arg)
{
	struct alloc_sample_stats *st = get_stats();
	struct task_state *t;

	if (!st)
		return 0;
	t = task_state_get(st);
	if (!t)
		return 0;
	if (in_allocator(t, PT_REGS_SP(ctx))) {
		t->depth++;
		st->nested++;
		return 0;
	}
	t->depth = 1;
	t->sp = PT_REGS_SP(ctx);
	t->fn = fn;
	t->size = size;
	t->arg = arg;
	t->sampled = sample_decision(t, size);
	/* realloc releases the old block before it returns, and another
	 * thread may get that address first: take it off `tracked` now. */
	t->has_old = fn == FN_REALLOC && arg && take_tracked(arg, &t->old);
	return 0;
}

static __always_inline void *cpu_ring(struct alloc_sample_stats *st)
{
	__u32 cpu = bpf_get_smp_processor_id();
	void *ring = bpf_map_lookup_elem(&rings, &cpu);

	if (!ring)
		st->no_ring++;
	return ring;
}

static __always_inline __u64 ring_flags(void *ring, __u64 size)
{
	__u64 avail;

	if (!wakeup_bytes)
		return 0;
	/* As the CPU sampler: wake the reader only on the record that takes
	 * the ring across the watermark. */
	avail = bpf_ringbuf_query(ring, BPF_RB_AVAIL_DATA);
	return avail < wakeup_bytes && avail + size + 8 >= wakeup_bytes ? BPF_RB_FORCE_WAKEUP
									: BPF_RB_NO_WAKEUP;
}

/* The header fields every record starts with (r: an ALLOC or FREE record). */
#define FILL_HEADER(r, kind)                                                                       \
	do {                                                                                       \
		__u64 id_ = bpf_get_current_pid_tgid();                                            \
		(r)->tgid = id_ >> 32;                                                             \
		(r)->tid = (__u32)id_;                                                             \
		(r)->cpu = bpf_get_smp_processor_id();                                             \
		(r)->flags = (kind);                                                               \
		(r)->ts_ns = bpf_ktime_get_ns();                                                   \
		(r)->kernel_frames = 0;                                                            \
		(r)->user_frames = 0;                                                              \
	} while (0)

/* A record the ring had no room for, counted per (process, kind, site,
 * size) for user space to fold in. */
static __always_inline void count_lost(struct alloc_sample_stats *st, __u32 kind,
				       const struct alloc_event *ev)
{
	struct alloc_lost_key k = {
		.tgid = bpf_get_current_pid_tgid() >> 32,
		.kind = kind,
		.site = ev->site,
		.size = ev->size,
	};
	__u64 one = 1, *v;

	st->ring_full++;
	v = bpf_map_lookup_elem(&lost, &k);
	if (v) {
		__sync_fetch_and_add(v, 1);
		return;
	}
	if (!bpf_map_update_elem(&lost, &k, &one, BPF_NOEXIST))
		return;
	v = bpf_map_lookup_elem(&lost, &k); /* another CPU created it meanwhile */
	if (v)
		__sync_fetch_and_add(v, 1);
	else
		st->lost_full++;
}

/* Reports the free of a tracked block (already taken off `tracked`). The
 * record is built on the stack: 96 bytes, and no other thread's. */
static __always_inline void report_free(struct alloc_sample_stats *st, __u64 addr,
					const struct alloc_val *v)
{
	struct alloc_free_rec r;
	void *ring;

	FILL_HEADER(&r, CPU_SAMPLE_KIND_FREE);
	__builtin_memset(r.comm, 0, sizeof(r.comm));
	__builtin_memset(r.pcomm, 0, sizeof(r.pcomm));
	r.ev.addr = addr;
	r.ev.size = v->size;
	r.ev.site = v->site;
	r.ev.aux = v->ts_ns;
	st->frees_tracked++;
	ring = cpu_ring(st);
	if (ring && bpf_ringbuf_output(ring, &r, sizeof(r), ring_flags(ring, sizeof(r))))
		count_lost(st, CPU_SAMPLE_KIND_FREE, &r.ev);
}

/* Drops the tracked block (tgid, addr), if it is one, and reports its free. */
static __always_inline void free_tracked(struct alloc_sample_stats *st, __u64 addr)
{
	struct alloc_val v;

	if (take_tracked(addr, &v))
		report_free(st, addr, &v);
}

static __always_inline __u64 stack_site(struct alloc_sample_rec *r, __u32 n)
{
	__u64 h = 0xcbf29ce484222325ull ^ r->tgid;

	for (__u32 i = 0; i < CPU_SAMPLE_MAX_FRAMES; i++) {
		if (i >= n)
			break;
		h = (h ^ r->frames[i]) * 0x100000001b3ull;
	}
	return h ? h : 1;
}

static __always_inline void record_alloc(void *ctx, struct alloc_sample_stats *st, __u64 addr,
					 __u64 size)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct alloc_sample_rec *r;
	struct alloc_key key = {};
	struct alloc_val val, *old;
	__u32 nu = 0;
	void *ring;
	long n;

	r = bpf_task_storage_get(&task_recs, task, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!r) {
		st->no_task_state++;
		return;
	}
	FILL_HEADER(r, CPU_SAMPLE_KIND_ALLOC);
	bpf_get_current_comm(r->comm, sizeof(r->comm));
	BPF_CORE_READ_STR_INTO(&r->pcomm, task, group_leader, comm);
	n = bpf_get_stack(ctx, r->frames, sizeof(r->frames), BPF_F_USER_STACK);
	if (n < 0) {
		r->flags |= CPU_SAMPLE_USER_FAILED;
		st->stack_failed++;
	} else {
		nu = n / sizeof(__u64);
		if (nu >= CPU_SAMPLE_MAX_FRAMES) {
			nu = CPU_SAMPLE_MAX_FRAMES;
			r->flags |= CPU_SAMPLE_USER_TRUNCATED;
		}
	}
	r->user_frames = nu;
	r->ev.addr = addr;
	r->ev.size = size;
	r->ev.site = stack_site(r, nu);
	r->ev.aux = sample_bytes;
	st->sampled++;

	__u64 rsize = ALLOC_SAMPLE_REC_SIZE(nu);
	if (rsize > sizeof(*r))
		rsize = sizeof(*r); /* cannot happen; tells the verifier the bound */
	ring = cpu_ring(st);
	if (!ring)
		return; /* not tracked either: its free must not come without it */
	if (bpf_ringbuf_output(ring, r, rsize, ring_flags(ring, rsize))) {
		struct alloc_site_key sk = {.tgid = r->tgid, .site = r->ev.site};

		count_lost(st, CPU_SAMPLE_KIND_ALLOC, &r->ev); /* still tracked */
		/* Its stack, once per site: user space may have no other. */
		bpf_map_update_elem(&site_stacks, &sk, r, BPF_NOEXIST);
	}
	key.tgid = r->tgid;
	key.addr = addr;
	val.size = size;
	val.site = r->ev.site;
	val.ts_ns = r->ts_ns;
	/* A block still tracked at this address was freed where no probe saw
	 * it (or its process exec'd): report that free now, or its site
	 * would never give it back. */
	old = bpf_map_lookup_elem(&tracked, &key);
	if (old) {
		struct alloc_val stale = *old;

		st->stale_replaced++;
		report_free(st, addr, &stale);
	}
	if (bpf_map_update_elem(&tracked, &key, &val, BPF_ANY))
		st->tracked_full++; /* counted in the profile, never matched by a free */
}

static __always_inline int on_return(void *ctx, enum fn fn, __u64 ret)
{
	struct alloc_sample_stats *st = get_stats();
	struct task_state *t;
	__u64 addr = ret;

	if (!st)
		return 0;
	t = bpf_task_storage_get(&task_states, bpf_get_current_task_btf(), 0, 0);
	if (!t || !t->depth) {
		if (st)
			st->unmatched_ret++;
		return 0;
	}
	if (--t->depth)
		return 0; /* an inner call's return */
	if (t->fn != fn) {
		st->unmatched_ret++;
		return 0;
	}
	st->calls++;
	if (fn == FN_POSIX_MEMALIGN) {
		/* Returns 0 or an error; the block goes to *memptr. */
		addr = 0;
		if (ret == 0)
			bpf_probe_read_user(&addr, sizeof(addr), (void *)t->arg);
	}
	if (t->has_old) {
		struct alloc_key key = {.tgid = bpf_get_current_pid_tgid() >> 32, .addr = t->arg};

		t->has_old = 0;
		/* The old block is gone (moved, resized in place, or freed by
		 * realloc(p, 0)), or, when realloc failed, still there. */
		if (addr || t->size == 0)
			report_free(st, t->arg, &t->old);
		else if (bpf_map_update_elem(&tracked, &key, &t->old, BPF_NOEXIST))
			st->tracked_full++;
	}
	if (!t->sampled)
		return 0;
	if (!addr) {
		st->failed++;
		return 0;
	}
	record_alloc(ctx, st, addr, t->size);
	return 0;
}

/* Both ends of a session-probed malloc or calloc (see the top). */
static __always_inline int on_session(struct pt_regs *ctx, __u64 size)
{
	struct alloc_sample_stats *st = get_stats();
	struct task_state *t;
	__u64 *cookie;

	if (!st)
		return 1;
	cookie = bpf_session_cookie();
	if (!cookie)
		return 1;
	if (bpf_session_is_return()) {
		__u64 addr = PT_REGS_RC(ctx);

		if (!addr)
			st->failed++;
		else
			record_alloc(ctx, st, addr, *cookie);
		return 0;
	}
	t = task_state_get(st);
	if (!t)
		return 1;
	if (in_allocator(t, PT_REGS_SP(ctx))) {
		st->nested++; /* inside realloc or memalign: counted there */
		return 1;
	}
	st->calls++;
	if (!sample_decision(t, size))
		return 1; /* no return probe for this call */
	*cookie = size;
	return 0;
}

/* Loaded as BPF_TRACE_UPROBE_SESSION programs when the kernel has them
 * (user space sets the attach type), else not loaded. */
SEC("uprobe")
int malloc_session(struct pt_regs *ctx)
{
	return on_session(ctx, PT_REGS_PARM1(ctx));
}

SEC("uprobe")
int calloc_session(struct pt_regs *ctx)
{
	return on_session(ctx, PT_REGS_PARM1(ctx) * PT_REGS_PARM2(ctx));
}

SEC("uprobe")
int BPF_KPROBE(malloc_entry, __u64 size)
{
	return on_entry(ctx, FN_MALLOC, size, 0);
}

SEC("uprobe")
int BPF_KPROBE(calloc_entry, __u64 n, __u64 size)
{
	return on_entry(ctx, FN_CALLOC, n * size, 0);
}

SEC("uprobe")
int BPF_KPROBE(realloc_entry, __u64 ptr, __u64 size)
{
	return on_entry(ctx, FN_REALLOC, size, ptr);
}

SEC("uprobe")
int BPF_KPROBE(posix_memalign_entry, __u64 memptr, __u64 align, __u64 size)
{
	return on_entry(ctx, FN_POSIX_MEMALIGN, size, memptr);
}

/* aligned_alloc(align, size), memalign(align, size) */
SEC("uprobe")
int BPF_KPROBE(aligned_entry, __u64 align, __u64 size)
{
	return on_entry(ctx, FN_ALIGNED, size, 0);
}

/* valloc(size), pvalloc(size): one argument, like malloc, returning aligned
 * memory; counted with the aligned family so a nested malloc is not. */
SEC("uprobe")
int BPF_KPROBE(valloc_entry, __u64 size)
{
	return on_entry(ctx, FN_ALIGNED, size, 0);
}

/* The return programs differ only in the function they end. */
#define RETURN_PROG(name, fn)                                                                      \
	SEC("uretprobe")                                                                           \
	int BPF_KRETPROBE(name, __u64 ret)                                                         \
	{                                                                                          \
		return on_return(ctx, fn, ret);                                                    \
	}

RETURN_PROG(malloc_return, FN_MALLOC)
RETURN_PROG(calloc_return, FN_CALLOC)
RETURN_PROG(realloc_return, FN_REALLOC)
RETURN_PROG(posix_memalign_return, FN_POSIX_MEMALIGN)
RETURN_PROG(aligned_return, FN_ALIGNED)

SEC("uprobe")
int BPF_KPROBE(free_entry, __u64 ptr)
{
	struct alloc_sample_stats *st;

	if (!ptr)
		return 0;
	st = get_stats();
	if (!st)
		return 0;
	st->frees++;
	free_tracked(st, ptr);
	return 0;
}

/* ---- anonymous mmap and munmap, through the syscall tracepoints ---- */

#define PL_MAP_SHARED	 0x01
#define PL_MAP_ANONYMOUS 0x20

struct vma_check {
	bool allocator, seen;
};

static long vma_is_allocator(struct task_struct *task, struct vm_area_struct *vma, void *data)
{
	struct vma_check *c = data;
	struct alloc_file_key k = {};
	struct file *f = BPF_CORE_READ(vma, vm_file);

	c->seen = true;
	if (!f)
		return 0;
	k.ino = BPF_CORE_READ(f, f_inode, i_ino);
	k.dev = BPF_CORE_READ(f, f_inode, i_sb, s_dev);
	c->allocator = bpf_map_lookup_elem(&alloc_files, &k) != NULL;
	return 0;
}

/*
 * Whether the mmap being made comes from the allocator or libc itself:
 * glibc's mmap wrapper is a leaf, so at the syscall the word at the user
 * stack pointer is its caller's return address, and where that address
 * lies tells. For a --pid process, user space gave the executable ranges of
 * its allocator and libc; otherwise (--alloc-all) the address's mapping is
 * looked up, which fails while another thread holds the process's mm (a
 * thread creating its arena, say): such an mmap is left out, and counted.
 */
static __always_inline bool mmap_from_allocator(struct alloc_sample_stats *st, __u32 tgid)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(task);
	struct alloc_text *text = bpf_map_lookup_elem(&alloc_texts, &tgid);
	struct vma_check c = {};
	__u64 ret = 0;

	if (bpf_probe_read_user(&ret, sizeof(ret), (void *)PT_REGS_SP_CORE(regs)))
		return false;
	if (text) {
		for (int i = 0; i < ALLOC_TEXT_RANGES; i++)
			if (ret >= text->start[i] && ret < text->end[i])
				return true;
		return false;
	}
	if (bpf_find_vma(task, ret, vma_is_allocator, &c, 0) && !c.seen) {
		st->mmaps_unknown++;
		return true;
	}
	return c.allocator;
}

SEC("tracepoint/syscalls/sys_enter_mmap")
int mmap_enter(struct trace_event_raw_sys_enter *ctx)
{
	__u64 flags = ctx->args[3], len = ctx->args[1];
	struct alloc_sample_stats *st;
	struct task_state *t;
	__u32 tgid;

	if (!(flags & PL_MAP_ANONYMOUS) || (flags & PL_MAP_SHARED))
		return 0;
	st = get_stats();
	if (!st)
		return 0;
	tgid = bpf_get_current_pid_tgid() >> 32;
	if (!all_processes && !bpf_map_lookup_elem(&targets, &tgid))
		return 0;
	if (mmap_from_allocator(st, tgid)) {
		st->mmaps_internal++;
		return 0;
	}
	t = task_state_get(st);
	if (!t)
		return 0;
	st->mmaps++;
	t->mmap_pending = 1;
	t->mmap_len = len;
	t->mmap_sampled = sample_decision(t, len);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_mmap")
int mmap_exit(struct trace_event_raw_sys_exit *ctx)
{
	struct alloc_sample_stats *st = get_stats();
	struct task_state *t;
	long ret = ctx->ret;

	if (!st)
		return 0;
	t = bpf_task_storage_get(&task_states, bpf_get_current_task_btf(), 0, 0);
	if (!t || !t->mmap_pending)
		return 0;
	t->mmap_pending = 0;
	if (ret < 0 && ret > -4096) {
		st->mmaps_failed++;
		return 0;
	}
	if (t->mmap_sampled)
		record_alloc(ctx, st, (__u64)ret, t->mmap_len);
	return 0;
}

/* An unmap at a tracked mapping's start frees it (a partial unmap frees it
 * whole: the profile cannot split a block). */
SEC("tracepoint/syscalls/sys_enter_munmap")
int munmap_enter(struct trace_event_raw_sys_enter *ctx)
{
	struct alloc_sample_stats *st = get_stats();

	if (st)
		free_tracked(st, ctx->args[0]);
	return 0;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
