/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * A program with a known allocation profile, for the allocation tests.
 *
 * Usage: leaker [ROUNDS [THREADS [FORK]]]
 * Prints its pid, then waits for SIGUSR1 (so a profiler can attach first),
 * then runs, in each of THREADS threads (default 1: the main thread alone;
 * more: that many new threads, each with the figures below), ROUNDS rounds
 * (default 1) of:
 *   leak_alpha     1000 x malloc(4096)                    kept: 4,096,000 bytes
 *   leak_beta       500 x calloc(16, 256)                 kept: 2,048,000 bytes
 *   leak_gamma      200 x malloc(100) then realloc(3000)  kept:   600,000 bytes
 *                         (the 100-byte blocks are freed by the realloc)
 *   leak_delta      100 x posix_memalign(64, 1024)        kept:   102,400 bytes
 *   churn         20000 x malloc(512) + free              kept:         0 bytes
 *   leak_big          5 x malloc(300 KiB): glibc maps each kept: 1,536,000 bytes
 *                         with mmap, which must not count twice
 *   leak_mmap        20 x mmap(64 KiB) anonymous          kept: 1,310,720 bytes
 *   mmap_churn      100 x mmap(64 KiB) + munmap           kept:         0 bytes
 * With FORK 1 it then forks a child that frees every block the rounds kept,
 * leaks 1000 x malloc(4096) of its own and exits: none of that is the
 * parent's (a profile of the parent must not change).
 * Then it prints "done" and sleeps until killed. Every allocation site is its
 * own noinline function, so each has one stack.
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define KEEP_MAX    4096
#define MAX_THREADS 16

static void *kept[KEEP_MAX * 4 * MAX_THREADS];
static size_t n_kept; /* atomic: threads keep blocks at once */
static int rounds = 1;
static volatile sig_atomic_t go;

static void on_usr1(int sig)
{
	(void)sig;
	go = 1;
}

static void keep(void *p)
{
	if (!p) {
		fprintf(stderr, "leaker: allocation failed\n");
		exit(1);
	}
	memset(p, 1, 16);
	size_t i = __atomic_fetch_add(&n_kept, 1, __ATOMIC_RELAXED);
	if (i < sizeof(kept) / sizeof(kept[0]))
		kept[i] = p;
}

__attribute__((noinline)) static void leak_alpha(void)
{
	for (int i = 0; i < 1000; i++)
		keep(malloc(4096));
}

__attribute__((noinline)) static void leak_beta(void)
{
	for (int i = 0; i < 500; i++)
		keep(calloc(16, 256));
}

__attribute__((noinline)) static void *gamma_start(void)
{
	return malloc(100);
}

__attribute__((noinline)) static void leak_gamma(void)
{
	for (int i = 0; i < 200; i++)
		keep(realloc(gamma_start(), 3000));
}

__attribute__((noinline)) static void leak_delta(void)
{
	for (int i = 0; i < 100; i++) {
		void *p = NULL;

		if (posix_memalign(&p, 64, 1024))
			p = NULL;
		keep(p);
	}
}

__attribute__((noinline)) static void leak_big(void)
{
	for (int i = 0; i < 5; i++)
		keep(malloc(300 * 1024));
}

/* Mappings are kept apart from malloc's blocks: only those may be freed. */
static void *mapped[20 * MAX_THREADS * 8];
static size_t n_mapped;

static void keep_mapped(void *p)
{
	size_t i;

	if (!p) {
		fprintf(stderr, "leaker: mmap failed\n");
		exit(1);
	}
	((char *)p)[0] = 1;
	i = __atomic_fetch_add(&n_mapped, 1, __ATOMIC_RELAXED);
	if (i < sizeof(mapped) / sizeof(mapped[0]))
		mapped[i] = p;
}

static void *map_anon(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

__attribute__((noinline)) static void leak_mmap(void)
{
	for (int i = 0; i < 20; i++)
		keep_mapped(map_anon(64 * 1024));
}

__attribute__((noinline)) static void mmap_churn(void)
{
	for (int i = 0; i < 100; i++) {
		char *volatile p = map_anon(64 * 1024);

		if (p) {
			p[0] = 1;
			munmap(p, 64 * 1024);
		}
	}
}

__attribute__((noinline)) static void churn(void)
{
	for (int i = 0; i < 20000; i++) {
		char *volatile p = malloc(512);

		if (p)
			p[0] = 1;
		free(p);
	}
}

__attribute__((noinline)) static void *run_rounds(void *arg)
{
	(void)arg;
	for (int r = 0; r < rounds; r++) {
		leak_alpha();
		leak_beta();
		leak_gamma();
		leak_delta();
		churn();
		leak_big();
		leak_mmap();
		mmap_churn();
	}
	return NULL;
}

/* The child of FORK: undoes the parent's work in its own copy. */
__attribute__((noinline)) static void child_work(void)
{
	size_t n =
		n_kept < sizeof(kept) / sizeof(kept[0]) ? n_kept : sizeof(kept) / sizeof(kept[0]);

	for (size_t i = 0; i < n; i++)
		free(kept[i]);
	for (int i = 0; i < 1000; i++)
		keep(malloc(4096));
}

int main(int argc, char **argv)
{
	int threads = argc > 2 ? atoi(argv[2]) : 1, do_fork = argc > 3 && atoi(argv[3]);
	struct sigaction sa = {.sa_handler = on_usr1};
	pthread_t tids[MAX_THREADS];

	rounds = argc > 1 ? atoi(argv[1]) : 1;
	if (threads < 1 || threads > MAX_THREADS) {
		fprintf(stderr, "leaker: THREADS must be 1-%d\n", MAX_THREADS);
		return 2;
	}
	sigaction(SIGUSR1, &sa, NULL);
	printf("%d\n", (int)getpid());
	fflush(stdout);
	/* Bounded: a test that never signals gets an exit after 120 s. */
	for (int waited = 0; !go && waited < 120000; waited += 10)
		usleep(10000);
	if (!go)
		return 2;
	if (threads == 1) {
		run_rounds(NULL);
	} else {
		for (int t = 0; t < threads; t++)
			if (pthread_create(&tids[t], NULL, run_rounds, NULL)) {
				fprintf(stderr, "leaker: cannot start thread %d\n", t);
				return 1;
			}
		for (int t = 0; t < threads; t++)
			pthread_join(tids[t], NULL);
	}
	if (do_fork) {
		pid_t child = fork();

		if (child == 0) {
			child_work();
			_exit(0);
		}
		if (child > 0)
			waitpid(child, NULL, 0);
	}
	printf("done\n");
	fflush(stdout);
	for (int waited = 0; waited < 600; waited++)
		sleep(1);
	return 0;
}
