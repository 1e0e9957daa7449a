/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Bounded single-producer single-consumer queue of fixed-size record slots,
 * between one shard's ring reader (producer) and its worker (consumer).
 *
 * Two ck_rings carry slot pointers: `ready` (reader -> worker) and `spare`
 * (worker -> reader); the slots themselves live in one slab allocated at
 * creation, so the hot path never allocates. Lock-free on both sides; the
 * producer never waits: when no spare slot is left, reserve returns NULL and
 * the caller counts the drop. An idle consumer sleeps on a futex and is
 * woken only when it has announced that it sleeps (no syscall per record).
 */
#ifndef PIPELINE_SPSC_QUEUE_H
#define PIPELINE_SPSC_QUEUE_H

#include <stddef.h>
#include <stdint.h>

struct spsc_queue;

/* Returns a queue of depth slots (a power of two) of slot_size bytes, or NULL
 * with errno set. */
struct spsc_queue *spsc_queue__new(unsigned depth, size_t slot_size);
/* Accepts NULL. Both threads must have stopped using it. */
void spsc_queue__free(struct spsc_queue *q);

/* Producer: returns a free slot to fill, or NULL when the queue is full. */
void *spsc_queue__reserve(struct spsc_queue *q);
/* Producer: publishes a slot obtained from reserve. */
void spsc_queue__commit(struct spsc_queue *q, void *slot);
/* Producer: wakes the consumer if it sleeps; call after a batch of commits. */
void spsc_queue__notify(struct spsc_queue *q);

/* Consumer: returns the oldest published slot, or NULL when empty. */
void *spsc_queue__dequeue(struct spsc_queue *q);
/* Consumer: hands a dequeued slot back to the producer. */
void spsc_queue__release(struct spsc_queue *q, void *slot);
/* Consumer: sleeps until a slot is published, spsc_queue__kick() is called,
 * or timeout_ms passes. Returns at once if the queue is not empty. */
void spsc_queue__wait(struct spsc_queue *q, int timeout_ms);

/* Any thread: wakes the consumer (to see a stop or flush request). */
void spsc_queue__kick(struct spsc_queue *q);

/* Returns the slot size in bytes. */
size_t spsc_queue__slot_size(const struct spsc_queue *q);

#endif /* PIPELINE_SPSC_QUEUE_H */
