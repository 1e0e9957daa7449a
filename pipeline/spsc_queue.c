// SPDX-License-Identifier: BSD-2-Clause
/*
 * SPSC slot queue over two ck_rings (see spsc_queue.h for the contract).
 *
 * Sleep/wake protocol (a Dekker pair, both sides use seq_cst fences):
 *   consumer: read seq; sleeping = 1; fence; if ready ring empty: futex_wait(seq)
 *   producer: enqueue; fence; if sleeping: seq++, futex_wake(seq)
 * Either the consumer sees the enqueued slot after its fence, or the producer
 * sees sleeping == 1 after its fence and bumps seq, which makes a late
 * futex_wait return at once. So a published slot is never left unseen.
 *
 * ck_pr uses inline assembly that ThreadSanitizer cannot see; the
 * tsan_release/tsan_acquire annotations give it the happens-before edges
 * that the rings' fences really provide.
 */
#include <ck_ring.h>
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "spsc_queue.h"

#if defined(__SANITIZE_THREAD__)
#define PIPELINE_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define PIPELINE_TSAN 1
#endif
#endif

#ifdef PIPELINE_TSAN
#include <sanitizer/tsan_interface.h>
#define tsan_release(addr) __tsan_release(addr)
#define tsan_acquire(addr) __tsan_acquire(addr)
#else
#define tsan_release(addr) ((void)0)
#define tsan_acquire(addr) ((void)0)
#endif

#define CACHELINE 64

struct spsc_queue {
	/* ready: reader -> worker. spare: worker -> reader. Each ck_ring keeps its
	 * producer and consumer indexes on separate cache lines itself. */
	ck_ring_t ready;
	ck_ring_t spare;
	ck_ring_buffer_t *ready_buf;
	ck_ring_buffer_t *spare_buf;
	uint8_t *slab;
	size_t slot_size;
	unsigned depth;
	/* Written by the consumer, read by the producer. */
	_Alignas(CACHELINE) atomic_uint sleeping;
	/* futex word: bumped by whoever wakes the consumer. */
	_Alignas(CACHELINE) atomic_uint seq;
};

static long futex(atomic_uint *uaddr, int op, unsigned val, const struct timespec *ts)
{
	return syscall(SYS_futex, (unsigned *)uaddr, op, val, ts, NULL, 0);
}

struct spsc_queue *spsc_queue__new(unsigned depth, size_t slot_size)
{
	if (depth < 2 || (depth & (depth - 1)) || !slot_size) {
		errno = EINVAL;
		return NULL;
	}
	struct spsc_queue *q = aligned_alloc(CACHELINE, sizeof(*q));
	if (!q)
		return NULL;
	memset(q, 0, sizeof(*q));
	/* A ck_ring of size n holds n - 1 entries: size both at 2 * depth so
	 * every slot fits in either ring. */
	unsigned ring_size = depth * 2;
	q->slot_size = (slot_size + 15) & ~(size_t)15;
	q->depth = depth;
	q->ready_buf = calloc(ring_size, sizeof(ck_ring_buffer_t));
	q->spare_buf = calloc(ring_size, sizeof(ck_ring_buffer_t));
	q->slab = aligned_alloc(CACHELINE, q->slot_size * depth);
	if (!q->ready_buf || !q->spare_buf || !q->slab) {
		spsc_queue__free(q);
		errno = ENOMEM;
		return NULL;
	}
	ck_ring_init(&q->ready, ring_size);
	ck_ring_init(&q->spare, ring_size);
	for (unsigned i = 0; i < depth; i++)
		ck_ring_enqueue_spsc(&q->spare, q->spare_buf, q->slab + (size_t)i * q->slot_size);
	return q;
}

void spsc_queue__free(struct spsc_queue *q)
{
	if (!q)
		return;
	free(q->ready_buf);
	free(q->spare_buf);
	free(q->slab);
	free(q);
}

void *spsc_queue__reserve(struct spsc_queue *q)
{
	void *slot;
	if (!ck_ring_dequeue_spsc(&q->spare, q->spare_buf, &slot))
		return NULL;
	tsan_acquire(&q->spare); /* pairs with tsan_release in release() */
	return slot;
}

void spsc_queue__commit(struct spsc_queue *q, void *slot)
{
	tsan_release(&q->ready); /* pairs with tsan_acquire in dequeue() */
	/* Cannot fail: at most depth slots exist and the ring holds 2 * depth - 1. */
	ck_ring_enqueue_spsc(&q->ready, q->ready_buf, slot);
}

void spsc_queue__notify(struct spsc_queue *q)
{
	atomic_thread_fence(memory_order_seq_cst); /* pairs with the fence in wait() */
	if (atomic_load_explicit(&q->sleeping, memory_order_relaxed)) {
		atomic_fetch_add_explicit(&q->seq, 1, memory_order_relaxed);
		futex(&q->seq, FUTEX_WAKE_PRIVATE, 1, NULL);
	}
}

void *spsc_queue__dequeue(struct spsc_queue *q)
{
	void *slot;
	if (!ck_ring_dequeue_spsc(&q->ready, q->ready_buf, &slot))
		return NULL;
	tsan_acquire(&q->ready); /* pairs with tsan_release in commit() */
	return slot;
}

void spsc_queue__release(struct spsc_queue *q, void *slot)
{
	tsan_release(&q->spare); /* pairs with tsan_acquire in reserve() */
	ck_ring_enqueue_spsc(&q->spare, q->spare_buf, slot);
}

void spsc_queue__wait(struct spsc_queue *q, int timeout_ms)
{
	unsigned seq = atomic_load_explicit(&q->seq, memory_order_relaxed);
	atomic_store_explicit(&q->sleeping, 1, memory_order_relaxed);
	atomic_thread_fence(memory_order_seq_cst); /* pairs with the fence in notify() */
	if (ck_ring_size(&q->ready) == 0) {
		struct timespec ts = {
			.tv_sec = timeout_ms / 1000,
			.tv_nsec = (long)(timeout_ms % 1000) * 1000000L,
		};
		futex(&q->seq, FUTEX_WAIT_PRIVATE, seq, timeout_ms >= 0 ? &ts : NULL);
	}
	atomic_store_explicit(&q->sleeping, 0, memory_order_relaxed);
}

void spsc_queue__kick(struct spsc_queue *q)
{
	atomic_fetch_add_explicit(&q->seq, 1, memory_order_seq_cst);
	futex(&q->seq, FUTEX_WAKE_PRIVATE, 1, NULL);
}

size_t spsc_queue__slot_size(const struct spsc_queue *q)
{
	return q->slot_size;
}
