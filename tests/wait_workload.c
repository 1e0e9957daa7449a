// SPDX-License-Identifier: BSD-2-Clause
/*
 * A workload whose waiting is known in advance, for the off-CPU and lock
 * profiles (tests/integration_wait.sh).
 *
 *   holder:   ROUNDS times: locks the mutex, says so, holds it for HOLD_MS
 *             asleep in hold_lock_asleep(), unlocks, then waits (polling,
 *             no futex) until both waiters have had the lock.
 *   waiter x2: each round: polls until the holder has the lock, then blocks
 *             in contend_for_lock() -> pthread_mutex_lock() for the rest of
 *             the hold: about HOLD_MS each, 2 * ROUNDS * HOLD_MS in all.
 *   sleeper:  ROUNDS times: nanosleep(SLEEP_MS) in sleep_in_known_function():
 *             ROUNDS * SLEEP_MS off the CPU there.
 *
 * It waits for SIGUSR1 before starting (so the profiler is attached), then
 * prints the designed and the measured totals as `key value_ms` lines and
 * exits. Polling is nanosleep, never a futex, so the lock profile holds the
 * mutex waits alone (and the main thread's joins).
 */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define ROUNDS	 60
#define HOLD_MS	 25
#define SLEEP_MS 20
#define WAITERS	 2

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_int round_locked = -1; /* the round whose hold has begun */
static atomic_int round_done;	     /* waiters done with the current round */
static atomic_llong waited_ns;	     /* measured by the waiters */
static atomic_llong slept_ns;	     /* measured by the sleeper */

static long long now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void nap_ms(long ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts))
		;
}

static void poll_nap(void)
{
	struct timespec ts = {.tv_sec = 0, .tv_nsec = 100 * 1000};
	nanosleep(&ts, NULL);
}

__attribute__((noinline)) static void hold_lock_asleep(void)
{
	nap_ms(HOLD_MS);
	__asm__ volatile("" ::: "memory"); /* keeps the call from being a tail call */
}

__attribute__((noinline)) static void contend_for_lock(void)
{
	long long t0 = now_ns();
	pthread_mutex_lock(&lock);
	atomic_fetch_add(&waited_ns, now_ns() - t0);
	pthread_mutex_unlock(&lock);
}

__attribute__((noinline)) static void sleep_in_known_function(void)
{
	long long t0 = now_ns();
	nap_ms(SLEEP_MS);
	atomic_fetch_add(&slept_ns, now_ns() - t0);
}

static void *holder_main(void *arg)
{
	(void)arg;
	for (int r = 0; r < ROUNDS; r++) {
		pthread_mutex_lock(&lock);
		atomic_store(&round_done, 0);
		atomic_store(&round_locked, r);
		hold_lock_asleep();
		pthread_mutex_unlock(&lock);
		for (long i = 0; atomic_load(&round_done) < WAITERS && i < 100000; i++)
			poll_nap();
	}
	return NULL;
}

static void *waiter_main(void *arg)
{
	(void)arg;
	for (int r = 0; r < ROUNDS; r++) {
		for (long i = 0; atomic_load(&round_locked) < r && i < 100000; i++)
			poll_nap();
		contend_for_lock();
		atomic_fetch_add(&round_done, 1);
	}
	return NULL;
}

static void *sleeper_main(void *arg)
{
	(void)arg;
	for (int r = 0; r < ROUNDS; r++)
		sleep_in_known_function();
	return NULL;
}

int main(void)
{
	pthread_t holder, sleeper, waiters[WAITERS];
	sigset_t set;
	int sig;

	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	printf("ready\n");
	fflush(stdout);
	sigwait(&set, &sig);

	pthread_create(&holder, NULL, holder_main, NULL);
	for (int i = 0; i < WAITERS; i++)
		pthread_create(&waiters[i], NULL, waiter_main, NULL);
	pthread_create(&sleeper, NULL, sleeper_main, NULL);
	pthread_join(holder, NULL);
	for (int i = 0; i < WAITERS; i++)
		pthread_join(waiters[i], NULL);
	pthread_join(sleeper, NULL);

	printf("lock_designed_ms %d\n", WAITERS * ROUNDS * HOLD_MS);
	printf("lock_measured_ms %.1f\n", atomic_load(&waited_ns) / 1e6);
	printf("hold_designed_ms %d\n", ROUNDS * HOLD_MS);
	printf("sleep_designed_ms %d\n", ROUNDS * SLEEP_MS);
	printf("sleep_measured_ms %.1f\n", atomic_load(&slept_ns) / 1e6);
	return 0;
}
