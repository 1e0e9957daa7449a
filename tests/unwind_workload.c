// SPDX-License-Identifier: BSD-2-Clause
/*
 * A workload whose stacks a frame-pointer walk cannot follow (the test of
 * --unwind dwarf, tests/integration_unwind.sh). Built with GCC at
 * -O2 -fomit-frame-pointer, linked to libunwind_chain.so built the same
 * way. Every sample's truth is one of three chains:
 *
 *   main;worker_loop;stage_one;lib_level1;lib_level2;lib_level3;stage_two;
 *       sort_batch;qsort ... (glibc's qsort, no frame pointers);compare_items
 *   main;worker_loop;stage_one;lib_level1;lib_level2;lib_level3;stage_two;
 *       compute_batch;spin_leaf
 *   main;worker_loop;stage_one;lib_level1;lib_level2;lib_level3;stage_two;
 *       tick_batch;__clock_gettime (glibc);__vdso_clock_gettime (the vDSO)
 *
 * compare_items and spin_leaf are leaf functions: no frame of their own,
 * so only CFI says who called them. With "signals", a profiling timer
 * also interrupts the work 200 times a second of its CPU time and the
 * handler spins in in_handler_spin (about a quarter of the CPU time), so samples
 * there must be unwound through the signal frame (glibc's __restore_rt,
 * whose CFI rules are expressions over the saved context) back into the
 * interrupted chain. With "syscalls", stage_two only asks an empty UDP
 * socket on 127.0.0.1 for data (MSG_DONTWAIT: nothing is ever sent), from
 * a process with a second thread: glibc's recv then takes its cancellable
 * path, which keeps its own data in rbp around the system call, so a
 * frame-pointer walk from a sample there stops at recv even in the
 * frame-pointer build (the truth is ...;stage_two;recv_batch;recv).
 * Usage: unwind_workload SECONDS [signals|syscalls].
 */
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

uint64_t lib_level1(uint64_t (*fn)(uint64_t), uint64_t x);

#define N_ITEMS 4096

static volatile uint64_t sink;
static uint32_t items[N_ITEMS];

__attribute__((noinline)) int compare_items(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	/* Some work per comparison, so the leaf holds most samples of the path. */
	for (int i = 0; i < 24; i++)
		x = x * 2654435761u + (uint32_t)i, y = y * 2654435761u + (uint32_t)i;
	return (x > y) - (x < y);
}

__attribute__((noinline)) uint64_t sort_batch(uint64_t seed)
{
	for (size_t i = 0; i < N_ITEMS; i++)
		items[i] =
			(uint32_t)((seed * 6364136223846793005ull + i * 1442695040888963407ull) >>
				   33);
	qsort(items, N_ITEMS, sizeof(items[0]), compare_items);
	sink += items[0];
	return items[N_ITEMS / 2];
}

__attribute__((noinline)) uint64_t spin_leaf(uint64_t x)
{
	for (int i = 0; i < 200000; i++)
		x = x * 6364136223846793005ull + 1442695040888963407ull;
	return x;
}

__attribute__((noinline)) uint64_t compute_batch(uint64_t x)
{
	uint64_t r = 0;
	for (int i = 0; i < 8; i++)
		r += spin_leaf(x + (uint64_t)i);
	sink += r;
	return r;
}

/* Reads the clock through the vDSO: samples there must be unwound with
 * the vDSO's own CFI (the agent reads it from its own vDSO image). */
__attribute__((noinline)) uint64_t tick_batch(uint64_t x)
{
	struct timespec ts;
	uint64_t r = x;
	for (int i = 0; i < 20000; i++) {
		clock_gettime(CLOCK_MONOTONIC, &ts);
		r += (uint64_t)ts.tv_nsec;
	}
	sink += r;
	return r;
}

static int empty_socket = -1; /* "syscalls": stage_two reads (nothing) here */

__attribute__((noinline)) uint64_t recv_batch(uint64_t x)
{
	char c;
	uint64_t r = x;
	for (int i = 0; i < 2000; i++)
		r += (uint64_t)recv(empty_socket, &c, 1, MSG_DONTWAIT);
	sink += r;
	return r;
}

/* The callback the library calls: a third of the calls in each path. */
__attribute__((noinline)) uint64_t stage_two(uint64_t x)
{
	uint64_t r = empty_socket >= 0 ? recv_batch(x)
		     : x % 3 == 0      ? sort_batch(x)
		     : x % 3 == 1      ? compute_batch(x)
				       : tick_batch(x);
	sink += r;
	return r + 7;
}

__attribute__((noinline)) uint64_t stage_one(uint64_t x)
{
	uint64_t r = lib_level1(stage_two, x);
	sink += r;
	return r + 5;
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

__attribute__((noinline)) uint64_t worker_loop(double seconds)
{
	double end = now_s() + seconds;
	uint64_t x = 0, r = 0;
	/* Bounded in count as well as time. */
	for (long n = 0; n < 100000000L && now_s() < end; n++)
		r += stage_one(x++);
	sink += r;
	return r;
}

__attribute__((noinline)) void in_handler_spin(void)
{
	uint64_t x = sink;
	for (int i = 0; i < 1200000; i++)
		x = x * 6364136223846793005ull + 1442695040888963407ull;
	sink = x;
}

/* "syscalls": a second thread, so that glibc is no longer single-threaded. */
static void *idle_thread(void *arg)
{
	(void)arg;
	pause();
	return NULL;
}

static void on_signal(int sig)
{
	(void)sig;
	in_handler_spin();
	sink += 1;
}

int main(int argc, char **argv)
{
	double seconds = argc > 1 ? atof(argv[1]) : 5;
	if (seconds <= 0 || seconds > 3600 ||
	    (argc > 2 && strcmp(argv[2], "signals") && strcmp(argv[2], "syscalls"))) {
		fprintf(stderr, "usage: unwind_workload SECONDS (0-3600] [signals|syscalls]\n");
		return 2;
	}
	if (argc > 2 && !strcmp(argv[2], "syscalls")) {
		struct sockaddr_in lo = {.sin_family = AF_INET,
					 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
		pthread_t t;
		empty_socket = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		if (empty_socket < 0 || bind(empty_socket, (struct sockaddr *)&lo, sizeof(lo)) ||
		    pthread_create(&t, NULL, idle_thread, NULL)) {
			perror("unwind_workload: UDP socket on 127.0.0.1, second thread");
			return 1;
		}
	} else if (argc > 2) {
		struct sigaction sa = {.sa_handler = on_signal};
		struct itimerval it = {.it_interval = {0, 5000}, .it_value = {0, 5000}};
		sigemptyset(&sa.sa_mask);
		if (sigaction(SIGPROF, &sa, NULL) || setitimer(ITIMER_PROF, &it, NULL)) {
			perror("unwind_workload: SIGPROF timer");
			return 1;
		}
	}
	uint64_t r = worker_loop(seconds);
	printf("%llu\n", (unsigned long long)(r & 0xff));
	return 0;
}
