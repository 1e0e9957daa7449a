// SPDX-License-Identifier: BSD-2-Clause
/*
 * Stage 1, the SPSC queue (pipeline/spsc_queue.h), with the agent's slot size
 * (sizeof(struct cpu_sample)) and default depth (2048).
 *
 * The producer does what a shard's ring reader does: reserve a slot, copy the
 * record header and only the frames in use (4 kernel + 16 user here) from a
 * source record, commit, and notify the consumer after each batch of 64. The
 * consumer does the worker's part of the queue: dequeue, read the header and
 * frames (summed, so the reads are not optimized away), release, and sleep on
 * the queue's futex when it is empty. Symbolizing and aggregating are left
 * out: they are the other stages.
 *
 * Threads: the producer is the calling thread, the consumer one pthread per
 * repetition. An operation is one record through the queue. Measurements:
 *   - one thread doing both sides in turn: the queue's own CPU cost per
 *     record, nothing shared between CPUs; wall time per record;
 *   - two threads, the producer retrying when full: the sustained maximum
 *     rate; wall time from the first reserve to the last release, per record;
 *   - two threads, open loop as the agent runs: the producer offers 1M
 *     records/s in bursts of 64 (then notifies) and drops when the queue is
 *     full; the consumer sleeps on the futex between bursts. The figure is
 *     the consumer thread's CPU time per record (CLOCK_THREAD_CPUTIME_ID):
 *     dequeue, read, release and its share of the sleeps and wake-ups;
 *     drops are a percentage of records offered.
 * The consumer's futex sleeps are counted in both two-thread cases.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "cpu_sample.h"
#include "spsc_queue.h"
#include "synth.h"
#include "throughput.h"

#define QUEUE_DEPTH   2048 /* the agent's --queue-depth default */
#define N_SOURCES     64   /* distinct source records, cycled */
#define NOTIFY_BATCH  64
#define K_FRAMES      4
#define U_FRAMES      16
#define BASE_RECORDS  2000000
#define CONSUMER_WAIT 10      /* ms; a notify wakes it sooner */
#define PACED_RATE    1000000 /* records/s offered in the open-loop case */
#define BASE_PACED    500000  /* records offered per repetition, full run */

enum q_mode {
	Q_RETRY, /* as fast as it can; retries when full: lossless */
	Q_PACED, /* PACED_RATE in bursts of NOTIFY_BATCH; a full queue is a drop */
};

/* Each thread's counters on cache lines of their own, so that counting does
 * not add line transfers the queue itself would not cause. */
struct q_run {
	struct spsc_queue *q;
	const struct cpu_sample *src; /* N_SOURCES records */
	uint64_t n;		      /* records to offer */
	uint64_t deadline_ns;
	enum q_mode mode;
	/* producer-written */
	_Alignas(64) uint64_t offered, drops, full;
	_Alignas(64) atomic_bool done; /* producer -> consumer: no more commits (release) */
	/* consumer-written, read after join */
	_Alignas(64) uint64_t consumed, checksum, waits; /* waits: spsc_queue__wait calls */
	uint64_t cpu_ns;				 /* consumer thread CPU time */
	int consumer_err;
};

/* The ring reader's copy: header, then only the frames in use. */
static void copy_record(struct cpu_sample *dst, const struct cpu_sample *src)
{
	memcpy(dst, src, offsetof(struct cpu_sample, kernel_stack));
	memcpy(dst->kernel_stack, src->kernel_stack,
	       src->kernel_frames * sizeof(src->kernel_stack[0]));
	memcpy(dst->user_stack, src->user_stack, src->user_frames * sizeof(src->user_stack[0]));
}

/* The worker's read of a record. */
static uint64_t read_record(const struct cpu_sample *r)
{
	uint64_t sum = r->tgid ^ r->tid ^ r->ts_ns ^ (uint8_t)r->comm[0];

	for (uint32_t i = 0; i < r->kernel_frames; i++)
		sum += r->kernel_stack[i];
	for (uint32_t i = 0; i < r->user_frames; i++)
		sum += r->user_stack[i];
	return sum;
}

static struct cpu_sample *make_sources(uint64_t seed)
{
	struct cpu_sample *src = calloc(N_SOURCES, sizeof(*src));

	if (!src)
		return NULL;
	for (unsigned i = 0; i < N_SOURCES; i++) {
		struct cpu_sample *r = &src[i];

		r->tgid = 4000 + i % 8;
		r->tid = r->tgid + i % 4;
		r->cpu = i % 2;
		r->ts_ns = 1000000000ull * i;
		snprintf(r->comm, sizeof(r->comm), "worker-%u", i % 4);
		snprintf(r->pcomm, sizeof(r->pcomm), "service-%u", i % 8);
		r->kernel_frames = K_FRAMES;
		r->user_frames = U_FRAMES;
		for (unsigned k = 0; k < K_FRAMES; k++)
			r->kernel_stack[k] = 0xffffffff81000000ull + synth_rand(&seed) % 0x1000000;
		for (unsigned k = 0; k < U_FRAMES; k++)
			r->user_stack[k] = 0x555555554000ull + synth_rand(&seed) % 0x100000;
	}
	return src;
}

static uint64_t thread_cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void *consumer_main(void *arg)
{
	struct q_run *r = arg;
	uint64_t cpu0 = thread_cpu_ns();

	for (;;) {
		/* Read done before trying the queue: the producer sets it after its
		 * last commit (release), so empty after this acquire means the end. */
		bool last = atomic_load_explicit(&r->done, memory_order_acquire);
		struct cpu_sample *rec = spsc_queue__dequeue(r->q);

		if (rec) {
			r->checksum += read_record(rec);
			spsc_queue__release(r->q, rec);
			r->consumed++;
			continue;
		}
		if (last)
			break;
		if (bench_now_ns() > r->deadline_ns + 1000000000ull) {
			r->consumer_err = -ETIMEDOUT; /* the producer has long stopped */
			break;
		}
		spsc_queue__wait(r->q, CONSUMER_WAIT);
		r->waits++;
	}
	r->cpu_ns = thread_cpu_ns() - cpu0;
	return NULL;
}

/* Paced mode: spins until the burst that starts with record i is due. */
static void pace(uint64_t t0, uint64_t i)
{
	uint64_t due = t0 + i * (1000000000ull / PACED_RATE);

	while (bench_now_ns() < due)
		;
}

static void produce(struct q_run *r)
{
	uint64_t t0 = bench_now_ns();
	unsigned batch = 0;

	for (uint64_t i = 0; i < r->n; i++) {
		struct cpu_sample *slot;

		if (!(i & 1023) && bench_now_ns() > r->deadline_ns)
			break;
		if (r->mode == Q_PACED && !batch)
			pace(t0, i);
		r->offered++;
		slot = spsc_queue__reserve(r->q);
		if (!slot) {
			r->full++;
			if (r->mode == Q_PACED) {
				r->drops++;
				goto next;
			}
			spsc_queue__notify(r->q);
			while (!(slot = spsc_queue__reserve(r->q))) {
				if (bench_now_ns() > r->deadline_ns) {
					r->offered--; /* never sent: the time budget ran out */
					goto out;
				}
				sched_yield();
			}
		}
		copy_record(slot, &r->src[i % N_SOURCES]);
		spsc_queue__commit(r->q, slot);
	next:
		if (++batch == NOTIFY_BATCH) {
			spsc_queue__notify(r->q);
			batch = 0;
		}
	}
out:
	spsc_queue__notify(r->q);
	atomic_store_explicit(&r->done, true, memory_order_release);
	spsc_queue__kick(r->q);
}

/* One repetition with two threads. Returns 0 or -errno. */
static int run_threads(const struct tp_cfg *cfg, struct spsc_queue *q, const struct cpu_sample *src,
		       enum q_mode mode, struct bench_row *row)
{
	struct q_run r = {
		.q = q,
		.src = src,
		.n = tp_ops(cfg, mode == Q_PACED ? BASE_PACED : BASE_RECORDS),
		.mode = mode,
	};
	pthread_t consumer;
	uint64_t t0;
	int err;

	r.deadline_ns = bench_now_ns() + cfg->budget_ns;
	atomic_init(&r.done, false);
	err = -pthread_create(&consumer, NULL, consumer_main, &r);
	if (err)
		return err;
	t0 = bench_now_ns();
	produce(&r);
	pthread_join(consumer, NULL);
	bench_keep(r.checksum);
	if (r.consumer_err)
		return r.consumer_err;
	if (r.consumed + r.drops != r.offered) {
		fprintf(stderr, "bench queue: %llu offered, %llu consumed, %llu dropped\n",
			(unsigned long long)r.offered, (unsigned long long)r.consumed,
			(unsigned long long)r.drops);
		return -EPROTO;
	}
	if (!r.consumed)
		return 0; /* the deadline came first: nothing to report */
	if (mode == Q_PACED) {
		bench_row__rep(row, r.consumed, r.cpu_ns);
		bench_row__extra(row, "drop_pct", 100.0 * (double)r.drops / (double)r.offered);
	} else {
		bench_row__rep(row, r.consumed, bench_now_ns() - t0);
		bench_row__extra(row, "full_pct", 100.0 * (double)r.full / (double)r.offered);
	}
	bench_row__extra(row, "sleeps_per_1k", 1000.0 * (double)r.waits / (double)r.consumed);
	return 0;
}

/* One repetition on one thread: both sides in turn. Returns 0 or -errno. */
static int run_single(const struct tp_cfg *cfg, struct spsc_queue *q, const struct cpu_sample *src,
		      struct bench_row *row)
{
	uint64_t n = tp_ops(cfg, BASE_RECORDS), deadline = bench_now_ns() + cfg->budget_ns;
	uint64_t t0 = bench_now_ns(), sum = 0, i;

	for (i = 0; i < n; i++) {
		struct cpu_sample *slot;

		if (!(i & 1023) && bench_now_ns() > deadline)
			break;
		slot = spsc_queue__reserve(q);
		if (!slot)
			return -EPROTO; /* the queue is empty at each step: cannot be full */
		copy_record(slot, &src[i % N_SOURCES]);
		spsc_queue__commit(q, slot);
		slot = spsc_queue__dequeue(q);
		if (!slot)
			return -EPROTO;
		sum += read_record(slot);
		spsc_queue__release(q, slot);
	}
	bench_row__rep(row, i, bench_now_ns() - t0);
	bench_keep(sum);
	return 0;
}

int tp_queue__run(const struct tp_cfg *cfg, struct bench_report *rep)
{
	struct spsc_queue *q = NULL;
	struct cpu_sample *src = make_sources(cfg->seed);
	struct bench_row *single, *retry, *paced;
	int err = 0;

	if (!src)
		return -ENOMEM;
	single = bench_report__row(rep, "queue", "spsc, 1 thread, reserve+copy+dequeue+read");
	retry = bench_report__row(rep, "queue", "spsc, 2 threads, producer retries when full");
	paced = bench_report__row(rep, "queue", "spsc, 2 threads, 1M rec/s offered, drops");
	if (!single || !retry || !paced) {
		err = -errno;
		goto cleanup;
	}
	bench_row__note(single, "wall per record, %u+%u frames, depth %u", K_FRAMES, U_FRAMES,
			QUEUE_DEPTH);
	bench_row__note(retry, "wall per record delivered");
	bench_row__note(paced, "consumer CPU per record");
	for (unsigned k = 0; k < cfg->repeat && !err; k++) {
		/* A fresh queue each time: every repetition starts from the same state. */
		spsc_queue__free(q);
		q = spsc_queue__new(QUEUE_DEPTH, sizeof(struct cpu_sample));
		if (!q) {
			err = -errno;
			break;
		}
		err = run_single(cfg, q, src, single);
		if (!err)
			err = run_threads(cfg, q, src, Q_RETRY, retry);
		if (!err)
			err = run_threads(cfg, q, src, Q_PACED, paced);
	}
cleanup:
	spsc_queue__free(q);
	free(src);
	return err;
}
