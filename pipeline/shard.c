// SPDX-License-Identifier: BSD-2-Clause
/*
 * Shard threads (see shard.h for the contract).
 *
 * Ownership: the shard owns its ring_buffer manager (not the ring fds, which
 * belong to the sampler), its queue, both aggregators and its sym_reader.
 * The worker is the only thread touching the active aggregator; the swap
 * handshake (swap_req written by the flush thread, swap_ack by the worker,
 * release/acquire) hands the retired one to the flush thread.
 */
#include <bpf/libbpf.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alloc_agg.h"
#include "alloc_sample.h"
#include "cpu_sample.h"
#include "ring_wait.h"
#include "sampler.h"
#include "shard.h"
#include "spsc_queue.h"
#include "symbolizer.h"
#include "unwind_auto.h"
#include "wait_sample.h"

/* A queue slot: an on-CPU sample, an allocation record (its user stack
 * in s.user_stack, its event in ev) or a wait record (its stacks in s, its
 * event in wait). With --unwind dwarf, slots are
 * opts.stack_copy_bytes longer and a CPU_SAMPLE_STACK_COPY sample carries
 * its registers and stack copy in regs and stack, for the worker to unwind. */
struct shard_slot {
	struct cpu_sample s;
	struct alloc_event ev;
	struct wait_event wait;
	struct cpu_sample_regs regs;
	uint8_t stack[];
};

struct shard {
	struct shard_opts opts;
	struct ring_buffer *rb;
	struct ring_wait wait; /* valid once has_wait */
	bool has_wait;
	struct spsc_queue *queue;
	struct stack_agg *aggs[2];
	struct alloc_agg *allocs[2];		  /* with opts.alloc_period; swapped with aggs */
	struct stack_agg *waits[SHARD_WAIT_N][2]; /* with opts.waits; swapped with aggs */
	struct sym_reader *sym_rd;
	struct sym_unwinder *unwinder; /* the worker's */
	struct unwind_auto *judge;     /* --unwind auto; the worker's */
	size_t slot_size;
	pthread_t reader, worker;
	bool reader_started, worker_started, joined;

	atomic_bool stop;	       /* flush/main thread -> reader */
	atomic_bool reader_done;       /* reader -> worker: no more records will come */
	atomic_uint active;	       /* index into aggs; written by the worker */
	atomic_uint_fast64_t swap_req; /* flush thread -> worker */
	atomic_uint_fast64_t swap_ack; /* worker -> flush thread */
	bool enqueued;		       /* reader-local: a commit since the last notify */
	struct shard_slot *held;       /* reader-local: a record waiting for a free slot */
	bool holding;

	/* reader-written */
	atomic_uint_fast64_t received, queue_full, malformed;
	/* worker-written */
	atomic_uint_fast64_t processed, aggregator_full, truncated, stack_errors, resolve_errors,
		wakeups, alloc_records, alloc_sites_full, wait_records;
};

static void counter_add(atomic_uint_fast64_t *c, uint64_t v)
{
	/* Single writer: a relaxed load + store is enough and costs no lock prefix. */
	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + v,
			      memory_order_relaxed);
}

_Static_assert(offsetof(struct cpu_sample, kernel_stack) == CPU_SAMPLE_REC_HEADER_SIZE,
	       "struct cpu_sample and struct cpu_sample_rec share their header");

_Static_assert(offsetof(struct alloc_sample_rec, ev) == CPU_SAMPLE_REC_HEADER_SIZE,
	       "allocation records start with the on-CPU header");
_Static_assert(offsetof(struct wait_sample_rec, ev) == CPU_SAMPLE_REC_HEADER_SIZE,
	       "wait records start with the on-CPU header");

static bool is_wait_kind(uint32_t flags)
{
	uint32_t kind = flags & CPU_SAMPLE_KIND_MASK;
	return kind == CPU_SAMPLE_KIND_OFFCPU || kind == CPU_SAMPLE_KIND_LOCK;
}

/* Unpacks a ring record (already checked) into a queue slot, copying only
 * the frames in use. */
static void copy_record(struct shard_slot *dst, const struct cpu_sample_rec *rec)
{
	uint32_t nk = rec->kernel_frames, nu = rec->user_frames;

	memcpy(&dst->s, rec, CPU_SAMPLE_REC_HEADER_SIZE);
	if (rec->flags & CPU_SAMPLE_LEAF_WINDOW_BIT && !is_wait_kind(rec->flags)) {
		memcpy(&dst->regs, rec->frames + nk + nu, sizeof(dst->regs));
		memcpy(dst->stack, (const uint8_t *)(rec->frames + nk + nu) + sizeof(dst->regs),
		       dst->regs.stack_len);
	}
	if (rec->flags & CPU_SAMPLE_STACK_COPY) {
		memcpy(dst->s.kernel_stack, rec->frames, nk * sizeof(rec->frames[0]));
		memcpy(&dst->regs, rec->frames + nk, sizeof(dst->regs));
		memcpy(dst->stack, (const uint8_t *)(rec->frames + nk) + sizeof(dst->regs),
		       dst->regs.stack_len);
		return;
	}
	if (is_wait_kind(rec->flags)) {
		const struct wait_sample_rec *wr = (const struct wait_sample_rec *)rec;

		dst->wait = wr->ev;
		memcpy(dst->s.kernel_stack, wr->frames, nk * sizeof(wr->frames[0]));
		memcpy(dst->s.user_stack, wr->frames + nk, nu * sizeof(wr->frames[0]));
		if (rec->flags & CPU_SAMPLE_LEAF_WINDOW_BIT) {
			memcpy(&dst->regs, wr->frames + nk + nu, sizeof(dst->regs));
			memcpy(dst->stack,
			       (const uint8_t *)(wr->frames + nk + nu) + sizeof(dst->regs),
			       dst->regs.stack_len);
		}
		return;
	}
	if ((rec->flags & CPU_SAMPLE_KIND_MASK) != CPU_SAMPLE_KIND_CPU) {
		const struct alloc_sample_rec *ar = (const struct alloc_sample_rec *)rec;

		dst->ev = ar->ev;
		memcpy(dst->s.user_stack, ar->frames, nu * sizeof(ar->frames[0]));
		return;
	}
	memcpy(dst->s.kernel_stack, rec->frames, nk * sizeof(rec->frames[0]));
	memcpy(dst->s.user_stack, rec->frames + nk, nu * sizeof(rec->frames[0]));
}

/* Whether a ring record of size bytes is whole. Cannot fail with our own
 * programs; checked rather than trusted. */
static bool record_ok(const struct shard *sh, const struct cpu_sample_rec *rec, size_t size)
{
	if (size < CPU_SAMPLE_REC_HEADER_SIZE || rec->kernel_frames > CPU_SAMPLE_MAX_FRAMES ||
	    rec->user_frames > CPU_SAMPLE_MAX_FRAMES)
		return false;
	if (is_wait_kind(rec->flags)) {
		uint32_t nk = rec->kernel_frames, nu = rec->user_frames;
		struct cpu_sample_regs regs;
		if (nk > WAIT_KERNEL_FRAMES || size < WAIT_SAMPLE_REC_SIZE(nk, nu) ||
		    (rec->flags & CPU_SAMPLE_STACK_COPY))
			return false;
		if (!(rec->flags & CPU_SAMPLE_LEAF_WINDOW_BIT))
			return true;
		if (size < WAIT_SAMPLE_WINDOW_REC_SIZE(nk, nu, 0))
			return false;
		memcpy(&regs, (const uint8_t *)rec + WAIT_SAMPLE_REC_SIZE(nk, nu), sizeof(regs));
		/* Within the slot's tail too: it has room for a wait window
		 * only when wait records were asked for. */
		return regs.stack_len <= WAIT_WINDOW &&
		       regs.stack_len <= sh->slot_size - sizeof(struct shard_slot) &&
		       size >= WAIT_SAMPLE_WINDOW_REC_SIZE(nk, nu, regs.stack_len);
	}
	if (rec->flags & CPU_SAMPLE_STACK_COPY) {
		struct cpu_sample_regs regs;
		if ((rec->flags & CPU_SAMPLE_KIND_MASK) != CPU_SAMPLE_KIND_CPU ||
		    rec->user_frames || size < CPU_SAMPLE_COPY_REC_SIZE(rec->kernel_frames, 0))
			return false;
		memcpy(&regs, rec->frames + rec->kernel_frames, sizeof(regs));
		return regs.stack_len <= sh->opts.stack_copy_bytes &&
		       size >= CPU_SAMPLE_COPY_REC_SIZE(rec->kernel_frames, regs.stack_len);
	}
	if (rec->flags & CPU_SAMPLE_LEAF_WINDOW_BIT) {
		uint32_t nk = rec->kernel_frames, nu = rec->user_frames;
		struct cpu_sample_regs regs;
		if ((rec->flags & CPU_SAMPLE_KIND_MASK) != CPU_SAMPLE_KIND_CPU ||
		    size < CPU_SAMPLE_LEAF_REC_SIZE(nk, nu, 0))
			return false;
		memcpy(&regs, rec->frames + nk + nu, sizeof(regs));
		return regs.stack_len <= CPU_SAMPLE_LEAF_WINDOW &&
		       size >= CPU_SAMPLE_LEAF_REC_SIZE(nk, nu, regs.stack_len);
	}
	switch (rec->flags & CPU_SAMPLE_KIND_MASK) {
	case CPU_SAMPLE_KIND_CPU:
		return size >= CPU_SAMPLE_REC_SIZE(rec->kernel_frames, rec->user_frames);
	case CPU_SAMPLE_KIND_ALLOC:
	case CPU_SAMPLE_KIND_FREE:
		return !rec->kernel_frames && size >= ALLOC_SAMPLE_REC_SIZE(rec->user_frames);
	default:
		return false;
	}
}

/*
 * Ring callback, on the reader thread. When the queue is full the record is
 * held back and -EAGAIN stops the ring walk: the records behind it stay in
 * the BPF ring, which becomes the buffer, and the reader waits for the worker
 * (shard__hand_over_held). Only if the worker stays stuck does the reader
 * drop (counted), so a slow worker costs buffer space first, samples last;
 * and the BPF side still never waits: a full ring drops and counts there.
 */
static int shard__on_record(void *ctx, void *data, size_t size)
{
	struct shard *sh = ctx;
	const struct cpu_sample_rec *rec = data;

	counter_add(&sh->received, 1);
	if (!record_ok(sh, rec, size)) {
		counter_add(&sh->malformed, 1);
		return 0;
	}
	struct shard_slot *slot = spsc_queue__reserve(sh->queue);
	if (!slot) {
		copy_record(sh->held, rec);
		sh->holding = true;
		return -EAGAIN;
	}
	copy_record(slot, rec);
	spsc_queue__commit(sh->queue, slot);
	sh->enqueued = true;
	return 0;
}

#define HELD_WAIT_MAX_MS 5000

/* Waits (bounded) for a free slot and queues the held record. Returns false
 * if it had to be dropped. */
static bool shard__hand_over_held(struct shard *sh)
{
	struct timespec nap = {.tv_sec = 0, .tv_nsec = 1000 * 1000};
	spsc_queue__notify(sh->queue);
	for (int waited = 0; waited < HELD_WAIT_MAX_MS; waited++) {
		struct shard_slot *slot = spsc_queue__reserve(sh->queue);
		if (slot) {
			memcpy(slot, sh->held, sh->slot_size);
			spsc_queue__commit(sh->queue, slot);
			spsc_queue__notify(sh->queue);
			sh->holding = false;
			return true;
		}
		spsc_queue__kick(sh->queue);
		nanosleep(&nap, NULL);
	}
	counter_add(&sh->queue_full, 1);
	sh->holding = false;
	return false;
}

static void *shard__reader_main(void *arg)
{
	struct shard *sh = arg;
	char name[16];
	snprintf(name, sizeof(name), "pl-reader-%u", sh->opts.id);
	pthread_setname_np(pthread_self(), name);

	while (!atomic_load_explicit(&sh->stop, memory_order_acquire)) {
		/* Woken by a ring crossing its wake-up mark, by shard__stop, or
		 * by the timeout. Every ring is consumed whichever it was: BPF
		 * submits below the mark with BPF_RB_NO_WAKEUP, and records must
		 * not wait for the mark, or a short-lived process exits before
		 * its samples are symbolized. */
		int n = ring_wait__sleep(&sh->wait, (int)sh->opts.poll_ms);
		if (!n)
			n = ring_buffer__consume(sh->rb);
		if (sh->holding)
			shard__hand_over_held(sh);
		if (n < 0 && n != -EINTR && n != -EAGAIN) {
			fprintf(stderr, "pipeline: shard %u: ring poll failed: %s\n", sh->opts.id,
				strerror(-n));
			break;
		}
		if (sh->enqueued) {
			sh->enqueued = false;
			spsc_queue__notify(sh->queue);
		}
	}
	/* The sampler is stopped before us: what the rings hold now is the rest. */
	for (int i = 0; i < 1000000; i++) {
		int n = ring_buffer__consume(sh->rb);
		if (sh->holding)
			shard__hand_over_held(sh);
		if (n != -EAGAIN)
			break;
	}
	atomic_store_explicit(&sh->reader_done, true, memory_order_release);
	spsc_queue__kick(sh->queue);
	return NULL;
}

/* The registers and stack bytes a slot carries, as the unwinder takes them. */
static struct sym_stack_copy slot_stack(const struct shard_slot *slot)
{
	return (struct sym_stack_copy){
		.ip = slot->regs.ip,
		.sp = slot->regs.sp,
		.bp = slot->regs.bp,
		.stack = slot->stack,
		.len = slot->regs.stack_len,
		.short_copy = slot->regs.stack_len < slot->regs.stack_want,
	};
}

/* Turns a stack copy into user frames, as if the kernel had walked them. */
static void shard__unwind(struct shard *sh, struct shard_slot *slot)
{
	struct cpu_sample *rec = &slot->s;
	struct sym_stack_copy c = slot_stack(slot);
	enum sym_unwind_end end;
	size_t used;

	rec->user_frames = 0;
	if (!sh->unwinder || (rec->flags & CPU_SAMPLE_COPY_FAILED)) {
		if (rec->flags & CPU_SAMPLE_COPY_FAILED)
			rec->flags |= CPU_SAMPLE_USER_FAILED;
		return;
	}
	rec->user_frames = (uint32_t)sym_unwinder__unwind(sh->unwinder, rec->tgid, &c,
							  (uint64_t *)rec->user_stack,
							  CPU_SAMPLE_MAX_FRAMES, &end, &used);
	if (end == SYM_UNWIND_WINDOW || end == SYM_UNWIND_MAX_FRAMES)
		rec->flags |= CPU_SAMPLE_USER_TRUNCATED;
	unwind_auto__sized(sh->judge, rec->tgid, used, end == SYM_UNWIND_WINDOW,
			   slot->regs.stack_want);
}

/* A frame-pointer stack whose sampled function had no frame at that
 * instruction (a GCC leaf, a prologue or epilogue) lacks that function's
 * caller: put it back from the stack window when the CFI says where it is. */
static void shard__leaf_caller(struct shard *sh, struct shard_slot *slot)
{
	struct cpu_sample *rec = &slot->s;
	uint64_t *us = (uint64_t *)rec->user_stack, caller;
	uint32_t n = rec->user_frames;
	struct sym_stack_copy c = slot_stack(slot);

	if (!n || !sh->unwinder || us[0] != c.ip ||
	    !sym_unwinder__leaf_caller(sh->unwinder, rec->tgid, &c, &caller))
		return;
	if (n > 1 && us[1] == caller)
		return; /* the walk has it: the function does keep a frame */
	if (n == CPU_SAMPLE_MAX_FRAMES)
		n--; /* the outermost frame makes room */
	memmove(us + 2, us + 1, (n - 1) * sizeof(*us));
	us[1] = caller;
	rec->user_frames = n + 1;
}

/* The aggregator's key of rec: names, and its frames resolved into frames[]
 * (none when they cannot be: the sample is kept, without frames). */
static void shard__key(struct shard *sh, const struct cpu_sample *rec,
		       const struct sym_frame **frames, struct profile_stack *out)
{
	struct profile_stack key = {
		.tgid = rec->tgid,
		.tid = rec->tid,
		.idle = rec->flags & CPU_SAMPLE_IDLE,
		.n_kernel = rec->kernel_frames,
		.n_user = rec->user_frames,
		.frames = frames,
	};
	memcpy(key.comm, rec->comm, PROFILE_COMM_LEN);
	key.comm[PROFILE_COMM_LEN - 1] = 0;
	if (key.idle)
		strcpy(key.pcomm, "[idle]");
	else
		memcpy(key.pcomm, rec->pcomm, PROFILE_COMM_LEN);
	key.pcomm[PROFILE_COMM_LEN - 1] = 0;

	if (rec->flags & (CPU_SAMPLE_USER_TRUNCATED | CPU_SAMPLE_KERNEL_TRUNCATED))
		counter_add(&sh->truncated, 1);
	if (rec->flags & (CPU_SAMPLE_USER_FAILED | CPU_SAMPLE_KERNEL_FAILED))
		counter_add(&sh->stack_errors, 1);

	int err = 0;
	if (key.n_kernel)
		err = sym_reader__resolve_kernel(sh->sym_rd, (const uint64_t *)rec->kernel_stack,
						 key.n_kernel, frames);
	if (!err && key.n_user)
		err = sym_reader__resolve_user(sh->sym_rd, rec->tgid,
					       (const uint64_t *)rec->user_stack, key.n_user,
					       frames + key.n_kernel);
	if (err) {
		/* Keep the sample, without frames, rather than lose it. */
		counter_add(&sh->resolve_errors, 1);
		key.n_kernel = key.n_user = 0;
	}
	*out = key;
}

/*
 * A wait record's frame-pointer stack misses the callers of the C library
 * functions it waited in (they keep no frame pointer). Unwinds the record's
 * stack window by CFI, which does see them, and joins the two where they
 * meet: the deepest frame of the window's unwind that the walk also has
 * (the walk's frames are a subsequence of the true stack, so at a position
 * no deeper than the unwind's), then the walk's frames below it.
 */
static void shard__splice_window(struct shard *sh, struct shard_slot *slot)
{
	struct cpu_sample *rec = &slot->s;
	uint64_t *us = (uint64_t *)rec->user_stack, pcs[CPU_SAMPLE_MAX_FRAMES];
	uint32_t n = rec->user_frames;
	struct sym_stack_copy c = slot_stack(slot);
	enum sym_unwind_end end;
	size_t used, k;

	if (!n || !sh->unwinder || us[0] != c.ip)
		return;
	k = sym_unwinder__unwind(sh->unwinder, rec->tgid, &c, pcs, CPU_SAMPLE_MAX_FRAMES, &end,
				 &used);
	if (k < 2)
		return;
	if (end == SYM_UNWIND_COMPLETE) {
		memcpy(us, pcs, k * sizeof(*us)); /* the window held the whole stack */
		rec->user_frames = (uint32_t)k;
		return;
	}
	for (size_t j = k - 1; j >= 1; j--) {
		for (uint32_t i = 1; i < n && i <= j; i++) {
			if (us[i] != pcs[j])
				continue;
			/* pcs[0..j] then us[i+1..n), within the frame limit. */
			uint32_t tail = n - i - 1;
			if (j + 1 + tail > CPU_SAMPLE_MAX_FRAMES) {
				tail = CPU_SAMPLE_MAX_FRAMES - (uint32_t)(j + 1);
				rec->flags |= CPU_SAMPLE_USER_TRUNCATED;
			}
			memmove(us + j + 1, us + i + 1, tail * sizeof(*us));
			memcpy(us, pcs, (j + 1) * sizeof(*us));
			rec->user_frames = (uint32_t)(j + 1) + tail;
			return;
		}
	}
	/* They never meet: one of them went astray, most likely the walk (a C
	 * library function used rbp as a plain register). The longer wins. */
	if (k > n) {
		memcpy(us, pcs, k * sizeof(*us));
		rec->user_frames = (uint32_t)k;
		rec->flags |= CPU_SAMPLE_USER_TRUNCATED;
	}
}

/* Drops the n innermost kernel frames of key. */
static void drop_kernel_leaf(struct profile_stack *key, uint32_t n)
{
	key->frames += n;
	key->n_kernel -= n;
}

static bool frame_is(const struct sym_frame *f, const char *name)
{
	return f->function && !strcmp(f->function, name);
}

/* A tick sample's kernel stack starts with the tick's own interrupt path
 * (the BPF program, the hrtimer code, the interrupt's entry): what the task
 * was doing starts below the entry. */
static void trim_tick_path(struct profile_stack *key)
{
	for (uint32_t i = 0; i < key->n_kernel; i++) {
		if (frame_is(key->frames[i], "asm_sysvec_apic_timer_interrupt") ||
		    frame_is(key->frames[i], "sysvec_apic_timer_interrupt")) {
			/* The entry's outer half, when both are there. */
			if (i + 1 < key->n_kernel &&
			    frame_is(key->frames[i + 1], "asm_sysvec_apic_timer_interrupt"))
				i++;
			drop_kernel_leaf(key, i + 1);
			return;
		}
	}
}

static void shard__aggregate(struct shard *sh, const struct cpu_sample *rec, struct stack_agg *agg)
{
	const struct sym_frame *frames[2 * CPU_SAMPLE_MAX_FRAMES];
	struct profile_stack key;

	shard__key(sh, rec, frames, &key);
	if (rec->flags & CPU_SAMPLE_TICK)
		trim_tick_path(&key);
	if (sh->judge && sh->opts.auto_switch && key.n_user &&
	    !(rec->flags & CPU_SAMPLE_STACK_COPY))
		unwind_auto__judge(sh->judge, rec->tgid, rec->ts_ns,
				   (const uint64_t *)rec->user_stack, frames + key.n_kernel,
				   key.n_user, rec->flags & CPU_SAMPLE_USER_TRUNCATED,
				   rec->flags & CPU_SAMPLE_RULE_WALK);

	uint64_t ts = rec->ts_ns + sh->opts.mono_to_real_ns;
	if (stack_agg__add_sample(agg, &key, ts, rec->cpu))
		counter_add(&sh->aggregator_full, 1);
}

/* An off-CPU or lock record into its signal's active aggregator. */
static void shard__aggregate_wait(struct shard *sh, const struct shard_slot *slot, unsigned a)
{
	const struct sym_frame *frames[2 * CPU_SAMPLE_MAX_FRAMES];
	const struct cpu_sample *rec = &slot->s;
	enum shard_wait w = (rec->flags & CPU_SAMPLE_KIND_MASK) == CPU_SAMPLE_KIND_OFFCPU
				    ? SHARD_WAIT_OFFCPU
				    : SHARD_WAIT_LOCK;
	struct stack_agg *agg = sh->waits[w][a];
	struct profile_stack key;

	counter_add(&sh->wait_records, 1);
	if (!agg)
		return; /* not asked for: cannot happen with our programs */
	shard__key(sh, rec, frames, &key);
	/* The kernel stack was taken in the tracepoint: its leaf frames are
	 * the BPF program and the tracepoint's caller, not the thread's. */
	while (key.n_kernel && key.frames[0]->function &&
	       (!strncmp(key.frames[0]->function, "bpf_", 4) ||
		!strncmp(key.frames[0]->function, "__bpf_", 6) ||
		!strncmp(key.frames[0]->function, "__traceiter_", 12)))
		drop_kernel_leaf(&key, 1);
	uint64_t ts = rec->ts_ns + sh->opts.mono_to_real_ns;
	if (stack_agg__add_weighted(agg, &key, slot->wait.weight ? slot->wait.weight : 1,
				    slot->wait.delay_ns, ts, rec->cpu))
		counter_add(&sh->aggregator_full, 1);
}

/* An allocation or free record into the active allocation sites. */
static void shard__aggregate_alloc(struct shard *sh, struct shard_slot *slot, struct alloc_agg *agg)
{
	const struct cpu_sample *rec = &slot->s;
	const struct sym_frame *frames[CPU_SAMPLE_MAX_FRAMES];
	uint32_t nu = rec->user_frames;
	int err;

	counter_add(&sh->alloc_records, 1);
	if (!agg)
		return; /* not asked for: cannot happen with our programs */
	if ((rec->flags & CPU_SAMPLE_KIND_MASK) == CPU_SAMPLE_KIND_FREE) {
		err = alloc_agg__add_n(agg, rec->tgid, slot->ev.site, true, slot->ev.size,
				       sh->opts.alloc_period, 1);
	} else {
		if (rec->flags & CPU_SAMPLE_USER_TRUNCATED)
			counter_add(&sh->truncated, 1);
		if (rec->flags & CPU_SAMPLE_USER_FAILED)
			counter_add(&sh->stack_errors, 1);
		/* The leaf is the return address into malloc's caller: name the
		 * call instruction, as for every other return address. */
		if (nu)
			slot->s.user_stack[0]--;
		if (nu && sym_reader__resolve_user(sh->sym_rd, rec->tgid,
						   (const uint64_t *)rec->user_stack, nu, frames)) {
			counter_add(&sh->resolve_errors, 1);
			nu = 0;
		}
		err = alloc_agg__add_alloc(agg, rec->tgid, slot->ev.site, rec->comm, rec->pcomm,
					   frames, nu, slot->ev.size, slot->ev.aux);
	}
	if (err)
		counter_add(&sh->alloc_sites_full, 1);
}

static void shard__serve_swap(struct shard *sh)
{
	uint64_t req = atomic_load_explicit(&sh->swap_req, memory_order_acquire);
	if (req == atomic_load_explicit(&sh->swap_ack, memory_order_relaxed))
		return;
	unsigned a = atomic_load_explicit(&sh->active, memory_order_relaxed);
	atomic_store_explicit(&sh->active, a ^ 1, memory_order_relaxed);
	/* Pairs with the acquire in shard__swap(): every add to the retired
	 * aggregator happens before the flush thread reads it. */
	atomic_store_explicit(&sh->swap_ack, req, memory_order_release);
}

static void *shard__worker_main(void *arg)
{
	struct shard *sh = arg;
	char name[16];
	snprintf(name, sizeof(name), "pl-worker-%u", sh->opts.id);
	pthread_setname_np(pthread_self(), name);

	for (;;) {
		shard__serve_swap(sh);
		/* Read reader_done before trying the queue: the reader sets it after
		 * its last commit (release), so an empty queue seen after this
		 * acquire means nothing more will come. */
		bool last = atomic_load_explicit(&sh->reader_done, memory_order_acquire);
		struct shard_slot *rec = spsc_queue__dequeue(sh->queue);
		if (rec) {
			unsigned a = atomic_load_explicit(&sh->active, memory_order_relaxed);
			if (rec->s.flags & CPU_SAMPLE_STACK_COPY)
				shard__unwind(sh, rec);
			else if ((rec->s.flags & CPU_SAMPLE_LEAF_WINDOW_BIT) &&
				 is_wait_kind(rec->s.flags))
				shard__splice_window(sh, rec);
			else if (rec->s.flags & CPU_SAMPLE_LEAF_WINDOW_BIT)
				shard__leaf_caller(sh, rec);
			if ((rec->s.flags & CPU_SAMPLE_KIND_MASK) == CPU_SAMPLE_KIND_CPU)
				shard__aggregate(sh, &rec->s, sh->aggs[a]);
			else if (is_wait_kind(rec->s.flags))
				shard__aggregate_wait(sh, rec, a);
			else
				shard__aggregate_alloc(sh, rec, sh->allocs[a]);
			spsc_queue__release(sh->queue, rec);
			counter_add(&sh->processed, 1);
			continue;
		}
		if (last)
			break;
		spsc_queue__wait(sh->queue, 1000);
		counter_add(&sh->wakeups, 1);
	}
	return NULL;
}

struct shard *shard__start(const struct shard_opts *opts, const struct sampler *smp,
			   struct symbolizer *sym)
{
	struct shard *sh = calloc(1, sizeof(*sh));
	int err = 0;
	if (!sh)
		return NULL;
	sh->opts = *opts;

	size_t tail = CPU_SAMPLE_LEAF_WINDOW;
	if (opts->stack_copy_bytes > tail)
		tail = opts->stack_copy_bytes;
	if ((opts->waits[SHARD_WAIT_OFFCPU] || opts->waits[SHARD_WAIT_LOCK]) && WAIT_WINDOW > tail)
		tail = WAIT_WINDOW;
	sh->slot_size = sizeof(struct shard_slot) + tail;
	sh->queue = spsc_queue__new(opts->queue_depth, sh->slot_size);
	sh->aggs[0] = stack_agg__new(opts->max_stacks);
	sh->aggs[1] = stack_agg__new(opts->max_stacks);
	if (sh->aggs[0] && sh->aggs[1] && opts->max_times) {
		stack_agg__record_times(sh->aggs[0], opts->max_times);
		stack_agg__record_times(sh->aggs[1], opts->max_times);
	}
	if (opts->alloc_period) {
		sh->allocs[0] = alloc_agg__new(opts->max_stacks);
		sh->allocs[1] = alloc_agg__new(opts->max_stacks);
		if (!sh->allocs[0] || !sh->allocs[1]) {
			err = -ENOMEM;
			goto cleanup;
		}
	}
	for (int w = 0; w < SHARD_WAIT_N; w++) {
		for (int i = 0; opts->waits[w] && i < 2; i++) {
			sh->waits[w][i] = stack_agg__new(opts->max_stacks);
			if (!sh->waits[w][i]) {
				err = -ENOMEM;
				goto cleanup;
			}
			/* Lock waits: their distribution, for the report's p99. */
			stack_agg__record_hist(sh->waits[w][i], w == SHARD_WAIT_LOCK);
		}
	}
	sh->sym_rd = symbolizer__reader_new(sym);
	sh->held = malloc(sh->slot_size);
	if (sh->sym_rd)
		sh->unwinder = sym_unwinder__new(sh->sym_rd);
	if (opts->copy_tgids_fd >= 0 && sh->unwinder &&
	    !(sh->judge = unwind_auto__new(opts->copy_tgids_fd, opts->unwind_rules_fd,
					   opts->stack_copy_bytes, sh->unwinder))) {
		err = -ENOMEM;
		goto cleanup;
	}
	if (!sh->queue || !sh->aggs[0] || !sh->aggs[1] || !sh->sym_rd || !sh->held ||
	    !sh->unwinder) {
		err = -ENOMEM;
		goto cleanup;
	}
	for (unsigned i = 0; i < opts->n_cpus; i++) {
		int fd = sampler__ring_fd(smp, opts->cpus[i]);
		if (fd < 0)
			continue;
		if (!sh->rb) {
			sh->rb = ring_buffer__new(fd, shard__on_record, sh, NULL);
			err = sh->rb ? 0 : -errno;
		} else {
			err = ring_buffer__add(sh->rb, fd, shard__on_record, sh);
		}
		if (err) {
			fprintf(stderr, "pipeline: shard %u: cannot map the ring of CPU %u: %s\n",
				opts->id, opts->cpus[i], strerror(-err));
			goto cleanup;
		}
	}
	if (!sh->rb) {
		err = -ENODEV;
		fprintf(stderr, "pipeline: shard %u has no online CPU\n", opts->id);
		goto cleanup;
	}
	err = ring_wait__init(&sh->wait, sh->rb);
	if (err) {
		fprintf(stderr, "pipeline: shard %u: cannot set up its ring wait: %s\n", opts->id,
			strerror(-err));
		goto cleanup;
	}
	sh->has_wait = true;

	err = -pthread_create(&sh->worker, NULL, shard__worker_main, sh);
	if (err)
		goto cleanup;
	sh->worker_started = true;
	err = -pthread_create(&sh->reader, NULL, shard__reader_main, sh);
	if (err)
		goto cleanup;
	sh->reader_started = true;
	return sh;

cleanup:
	if (sh->worker_started && !sh->reader_started) {
		atomic_store(&sh->reader_done, true);
		spsc_queue__kick(sh->queue);
	}
	shard__free(sh);
	errno = -err;
	return NULL;
}

void shard__stop(struct shard *sh)
{
	if (sh->joined)
		return;
	atomic_store_explicit(&sh->stop, true, memory_order_release);
	if (sh->has_wait)
		ring_wait__wake(&sh->wait);
	if (sh->reader_started)
		pthread_join(sh->reader, NULL);
	if (sh->worker_started)
		pthread_join(sh->worker, NULL);
	sh->joined = true;
}

void shard__free(struct shard *sh)
{
	if (!sh)
		return;
	shard__stop(sh);
	if (sh->has_wait)
		ring_wait__destroy(&sh->wait);
	ring_buffer__free(sh->rb);
	sym_unwinder__free(sh->unwinder);
	unwind_auto__free(sh->judge);
	sym_reader__free(sh->sym_rd);
	stack_agg__free(sh->aggs[0]);
	stack_agg__free(sh->aggs[1]);
	alloc_agg__free(sh->allocs[0]);
	alloc_agg__free(sh->allocs[1]);
	for (int w = 0; w < SHARD_WAIT_N; w++) {
		stack_agg__free(sh->waits[w][0]);
		stack_agg__free(sh->waits[w][1]);
	}
	spsc_queue__free(sh->queue);
	free(sh->held);
	free(sh);
}

struct stack_agg *shard__swap(struct shard *sh, int timeout_ms)
{
	if (sh->joined) {
		unsigned a = atomic_load(&sh->active);
		atomic_store(&sh->active, a ^ 1);
		return sh->aggs[a];
	}
	uint64_t req = atomic_fetch_add(&sh->swap_req, 1) + 1;
	spsc_queue__kick(sh->queue);
	struct timespec nap = {.tv_sec = 0, .tv_nsec = 200 * 1000};
	for (long waited_us = 0; waited_us <= (long)timeout_ms * 1000; waited_us += 200) {
		if (atomic_load_explicit(&sh->swap_ack, memory_order_acquire) == req) {
			unsigned a = atomic_load_explicit(&sh->active, memory_order_relaxed);
			return sh->aggs[a ^ 1];
		}
		nanosleep(&nap, NULL);
	}
	return NULL;
}

void shard__stats(const struct shard *sh, struct shard_stats *st)
{
	st->received = atomic_load_explicit(&sh->received, memory_order_relaxed);
	st->queue_full = atomic_load_explicit(&sh->queue_full, memory_order_relaxed);
	st->malformed = atomic_load_explicit(&sh->malformed, memory_order_relaxed);
	st->processed = atomic_load_explicit(&sh->processed, memory_order_relaxed);
	st->aggregator_full = atomic_load_explicit(&sh->aggregator_full, memory_order_relaxed);
	st->truncated = atomic_load_explicit(&sh->truncated, memory_order_relaxed);
	st->stack_errors = atomic_load_explicit(&sh->stack_errors, memory_order_relaxed);
	st->resolve_errors = atomic_load_explicit(&sh->resolve_errors, memory_order_relaxed);
	st->wakeups = atomic_load_explicit(&sh->wakeups, memory_order_relaxed);
	st->alloc_records = atomic_load_explicit(&sh->alloc_records, memory_order_relaxed);
	st->alloc_sites_full = atomic_load_explicit(&sh->alloc_sites_full, memory_order_relaxed);
	st->wait_records = atomic_load_explicit(&sh->wait_records, memory_order_relaxed);
	sym_unwinder__stats(sh->unwinder, st->unwind);
	sym_unwinder__hist(sh->unwinder, st->unwind_hist);
	unwind_auto__stats(sh->judge, &st->unwind_auto);
}

struct alloc_agg *shard__retired_allocs(struct shard *sh)
{
	unsigned a = atomic_load_explicit(&sh->active, memory_order_relaxed);

	return sh->allocs[a ^ 1];
}

struct stack_agg *shard__retired_waits(struct shard *sh, enum shard_wait w)
{
	unsigned a = atomic_load_explicit(&sh->active, memory_order_relaxed);

	return sh->waits[w][a ^ 1];
}

void shard__stats_sum(struct shard *const *shards, unsigned n, struct shard_stats *tot)
{
	memset(tot, 0, sizeof(*tot));
	for (unsigned i = 0; i < n; i++) {
		struct shard_stats st;
		shard__stats(shards[i], &st);
		tot->received += st.received;
		tot->queue_full += st.queue_full;
		tot->malformed += st.malformed;
		tot->processed += st.processed;
		tot->aggregator_full += st.aggregator_full;
		tot->truncated += st.truncated;
		tot->stack_errors += st.stack_errors;
		tot->resolve_errors += st.resolve_errors;
		tot->wakeups += st.wakeups;
		tot->alloc_records += st.alloc_records;
		tot->alloc_sites_full += st.alloc_sites_full;
		tot->wait_records += st.wait_records;
		for (int c = 0; c < SYM_UNWIND_N_COUNTERS; c++)
			tot->unwind[c] += st.unwind[c];
		for (int b = 0; b < SYM_UNWIND_HIST_N; b++)
			tot->unwind_hist[b] += st.unwind_hist[b];
		tot->unwind_auto.walked += st.unwind_auto.walked;
		tot->unwind_auto.copied += st.unwind_auto.copied;
		tot->unwind_auto.rules += st.unwind_auto.rules;
		tot->unwind_auto.failed += st.unwind_auto.failed;
	}
}

double shard_stats__unwind_quantile_us(const struct shard_stats *st, double q)
{
	uint64_t total = 0, seen = 0;
	for (int b = 0; b < SYM_UNWIND_HIST_N; b++)
		total += st->unwind_hist[b];
	if (!total)
		return 0;
	for (int b = 0; b < SYM_UNWIND_HIST_N; b++) {
		seen += st->unwind_hist[b];
		if ((double)seen >= q * (double)total)
			return sym_unwind_hist_upper((unsigned)b) / 1000.0;
	}
	return sym_unwind_hist_upper(SYM_UNWIND_HIST_N - 1) / 1000.0;
}
