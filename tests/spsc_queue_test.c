// SPDX-License-Identifier: BSD-2-Clause
/*
 * The SPSC queue under two threads: a producer pushes numbered records as
 * fast as it can (counting a drop when the queue is full, as the ring reader
 * does), a consumer that sleeps when idle takes them. Checks: every record
 * is either received exactly once, in order, or counted as dropped; payloads
 * arrive intact; the consumer's sleep never misses a wake-up (the run ends
 * within its time bound). Runs under ThreadSanitizer in CI.
 *
 * Usage: spsc_queue_test [records] [depth]
 */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "spsc_queue.h"
#include "test_helpers.h"

struct rec {
	uint64_t seq;
	uint64_t payload[6]; /* seq-derived, checked by the consumer */
};

struct run {
	struct spsc_queue *q;
	uint64_t n;
	bool lossless; /* producer retries when full instead of dropping */
	int wait_ms;   /* consumer sleep bound */
	uint64_t dropped;
	uint64_t retries;
	atomic_bool done;
	uint64_t received, out_of_order, corrupt;
};

static void *producer(void *arg)
{
	struct run *r = arg;
	for (uint64_t i = 0; i < r->n; i++) {
		struct rec *slot = spsc_queue__reserve(r->q);
		/* Lossless mode: wait for the consumer, bounded at 20 s in all. */
		while (!slot && r->lossless && r->retries < 20000000) {
			spsc_queue__notify(r->q);
			sched_yield();
			r->retries++;
			slot = spsc_queue__reserve(r->q);
		}
		if (!slot) {
			r->dropped++;
			continue;
		}
		slot->seq = i;
		for (int k = 0; k < 6; k++)
			slot->payload[k] = i * 31 + k;
		spsc_queue__commit(r->q, slot);
		if ((i & 63) == 0)
			spsc_queue__notify(r->q);
	}
	spsc_queue__notify(r->q);
	atomic_store_explicit(&r->done, true, memory_order_release);
	spsc_queue__kick(r->q);
	return NULL;
}

static void *consumer(void *arg)
{
	struct run *r = arg;
	uint64_t last = 0;
	bool first = true;
	for (;;) {
		bool done = atomic_load_explicit(&r->done, memory_order_acquire);
		struct rec *slot = spsc_queue__dequeue(r->q);
		if (!slot) {
			if (done)
				break;
			spsc_queue__wait(r->q, r->wait_ms);
			continue;
		}
		if (!first && slot->seq <= last)
			r->out_of_order++;
		for (int k = 0; k < 6; k++)
			if (slot->payload[k] != slot->seq * 31 + k)
				r->corrupt++;
		last = slot->seq;
		first = false;
		r->received++;
		spsc_queue__release(r->q, slot);
	}
	return NULL;
}

static uint64_t n_records = 2000000;
static unsigned depth = 1024;

static int run_two_threads(bool lossless, int wait_ms)
{
	struct run r = {.n = n_records, .lossless = lossless, .wait_ms = wait_ms};
	r.q = spsc_queue__new(depth, sizeof(struct rec));
	CHECK(r.q);
	pthread_t p, c;
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	CHECK(pthread_create(&c, NULL, consumer, &r) == 0);
	CHECK(pthread_create(&p, NULL, producer, &r) == 0);
	pthread_join(p, NULL);
	pthread_join(c, NULL);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	printf("  %s: %llu records, %llu received, %llu dropped (queue full), %.2f s\n",
	       lossless ? "lossless" : "dropping", (unsigned long long)r.n,
	       (unsigned long long)r.received, (unsigned long long)r.dropped, s);
	CHECK_EQ_U64(r.received + r.dropped, r.n);
	CHECK_EQ_U64(r.out_of_order, 0);
	CHECK_EQ_U64(r.corrupt, 0);
	CHECK(r.received > 0);
	if (lossless) {
		/* A missed wake-up would leave the consumer asleep for wait_ms
		 * (10 s) while the producer waits: the run would not finish in time. */
		CHECK_EQ_U64(r.dropped, 0);
		CHECK(s < 15.0);
	}
	spsc_queue__free(r.q);
	return 0;
}

static int test_two_threads_dropping(void)
{
	return run_two_threads(false, 100);
}

static int test_two_threads_lossless(void)
{
	return run_two_threads(true, 10000);
}

static int test_full_and_empty(void)
{
	struct spsc_queue *q = spsc_queue__new(4, 32);
	CHECK(q);
	CHECK(spsc_queue__dequeue(q) == NULL);
	void *s[5];
	for (int i = 0; i < 4; i++) {
		s[i] = spsc_queue__reserve(q);
		CHECK(s[i]);
		spsc_queue__commit(q, s[i]);
	}
	CHECK(spsc_queue__reserve(q) == NULL); /* full: the producer must drop */
	s[4] = spsc_queue__dequeue(q);
	CHECK(s[4] == s[0]); /* FIFO */
	spsc_queue__release(q, s[4]);
	CHECK(spsc_queue__reserve(q) != NULL);
	/* A wait on a non-empty queue returns at once. */
	spsc_queue__wait(q, 10000);
	CHECK(spsc_queue__new(3, 32) == NULL); /* depth must be a power of two */
	spsc_queue__free(q);
	return 0;
}

static const struct test_case cases[] = {
	{"full_and_empty", test_full_and_empty},
	{"two_threads_dropping", test_two_threads_dropping},
	{"two_threads_lossless", test_two_threads_lossless},
};

int main(int argc, char **argv)
{
	if (argc > 1 && strtoull(argv[1], NULL, 10))
		n_records = strtoull(argv[1], NULL, 10);
	if (argc > 2)
		depth = (unsigned)strtoul(argv[2], NULL, 10);
	return test_run_all(cases, sizeof(cases) / sizeof(cases[0]), 1, argv);
}
