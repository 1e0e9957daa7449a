/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * leaky: a steadily leaking program for allocation profiling soaks
 * (tools/alloc_soak.sh), with three sites whose growth is known:
 *   leak_site    leaks --rate bytes a second in --block-byte blocks, evenly
 *                (a batch every 10 ms): grows at --rate forever
 *   cache_fill   fills a cache of --cache bytes over the first 10 s, then
 *                replaces one entry per tick through the same function
 *                (same size): grows, then flat
 *   churn        allocates and frees 100 blocks a tick: nothing in use
 *
 * Usage: leaky [--rate B] [--block B] [--cache B] [--duration SEC]
 * Defaults: 1048576 B/s, 1024 B blocks, 8 MiB cache, run until killed
 * (--duration 0). Prints "leaky PID" once started.
 */
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define TICK_NS	      (10 * 1000 * 1000ull)
#define CACHE_FILL_NS (10 * 1000 * 1000 * 1000ull)
#define CACHE_BLOCK   4096

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Every block is chained from here, so no allocation can be optimized
 * away (an allocation whose pointer never escapes may be elided). */
static void *volatile chain;

static void touch(void *p)
{
	if (!p) {
		fprintf(stderr, "leaky: out of memory\n");
		exit(1);
	}
	memset(p, 0x5a, 8);
	*(void **)p = chain;
	chain = p;
}

__attribute__((noinline)) static void leak_site(size_t n, size_t block)
{
	for (size_t i = 0; i < n; i++)
		touch(malloc(block)); /* never freed */
}

/* The one allocation site of the cache: fills slot i, freeing what it
 * held, so the site grows while slots are new and stays flat after. */
__attribute__((noinline)) static void cache_fill(void **cache, size_t i)
{
	free(cache[i]);
	cache[i] = malloc(CACHE_BLOCK);
	touch(cache[i]);
}

__attribute__((noinline)) static void churn(void)
{
	for (int i = 0; i < 100; i++) {
		void *volatile p = malloc(256);

		free(p);
	}
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"rate", required_argument, NULL, 'r'},	 {"block", required_argument, NULL, 'b'},
		{"cache", required_argument, NULL, 'c'}, {"duration", required_argument, NULL, 'd'},
		{"help", no_argument, NULL, 'h'},	 {0},
	};
	uint64_t rate = 1 << 20, block = 1024, cache_bytes = 8 << 20, duration = 0;
	int c;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'r':
			rate = strtoull(optarg, NULL, 10);
			break;
		case 'b':
			block = strtoull(optarg, NULL, 10);
			break;
		case 'c':
			cache_bytes = strtoull(optarg, NULL, 10);
			break;
		case 'd':
			duration = strtoull(optarg, NULL, 10);
			break;
		default:
			fprintf(stderr, "usage: leaky [--rate B] [--block B] [--cache B] "
					"[--duration SEC]\n");
			return c == 'h' ? 0 : 2;
		}
	}
	if (!block || block > (64u << 20)) {
		fprintf(stderr, "leaky: --block must be 1..67108864\n");
		return 2;
	}
	size_t cap = cache_bytes / CACHE_BLOCK, n_cache = 0, next = 0;
	void **cache = calloc(cap ? cap : 1, sizeof(*cache));
	uint64_t start = now_ns(), tick = 0, leaked = 0, fill_per_tick;

	if (!cache)
		return 1;
	fill_per_tick = cap / (CACHE_FILL_NS / TICK_NS) + 1;
	printf("leaky %d\n", (int)getpid());
	fflush(stdout);
	for (;;) {
		uint64_t due = start + ++tick * TICK_NS, now;
		struct timespec ts;

		/* The leak follows the clock: what is due by now, in blocks. */
		uint64_t want = (uint64_t)((double)rate * (double)(due - start) / 1e9);
		if (want > leaked) {
			size_t n = (size_t)((want - leaked) / block);

			leak_site(n, block);
			leaked += n * block;
		}
		if (due - start < CACHE_FILL_NS)
			for (uint64_t i = 0; i < fill_per_tick && n_cache < cap; i++)
				cache_fill(cache, n_cache++);
		else if (n_cache)
			cache_fill(cache, next++ % n_cache); /* replace one: flat */
		churn();
		if (duration && due - start >= duration * 1000000000ull)
			return 0;
		now = now_ns();
		if (due > now) {
			ts.tv_sec = (time_t)((due - now) / 1000000000ull);
			ts.tv_nsec = (long)((due - now) % 1000000000ull);
			nanosleep(&ts, NULL);
		}
	}
}
