// SPDX-License-Identifier: BSD-2-Clause
/*
 * stack_spray: a CPU-bound program whose samples almost never share a stack,
 * for the tests that need big OTLP requests (tests/integration_otlp.sh: the
 * memory bound when the collector never answers). Each thread calls, again
 * and again, a chain of SPRAY_DEPTH functions picked at random among
 * SPRAY_FUNCS (64^40 possible call paths) and burns a few microseconds at the
 * end of the chain, so an interval of N samples holds about N distinct
 * stacks: the request grows with the sampling rate, not with the workload.
 * Built by clang with frame pointers in every function and no sibling
 * calls, so a frame-pointer walk sees the whole chain.
 *
 * Usage: stack_spray [--duration SEC] [--threads N]   (defaults 10 s, 1 thread)
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SPRAY_FUNCS 64
#define SPRAY_DEPTH 40
#define LEAF_ITERS  2000 /* a few microseconds */

static volatile uint64_t sink;
static volatile int stop;

typedef uint64_t (*spray_fn)(uint64_t x, unsigned depth);
static spray_fn fns[SPRAY_FUNCS]; /* defined below the functions it holds */

static inline uint64_t xorshift(uint64_t x)
{
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return x;
}

__attribute__((noinline)) static uint64_t spray_leaf(uint64_t x)
{
	for (unsigned i = 0; i < LEAF_ITERS; i++) {
		x = xorshift(x);
		__asm__ volatile("" : "+r"(x));
	}
	return x;
}

/* Goes one level down through a random function, or burns at the bottom. */
__attribute__((noinline)) static uint64_t spray_next(uint64_t x, unsigned depth)
{
	x = xorshift(x);
	if (!depth)
		return spray_leaf(x);
	return fns[x % SPRAY_FUNCS](x, depth - 1) + 1;
}

#define SPRAY_FN(n)                                                                                \
	__attribute__((noinline)) static uint64_t spray_##n(uint64_t x, unsigned depth)            \
	{                                                                                          \
		return spray_next(x + (n), depth) + (n);                                           \
	}
#define SPRAY_FN8(a)                                                                               \
	SPRAY_FN(a##0)                                                                             \
	SPRAY_FN(a##1)                                                                             \
	SPRAY_FN(a##2)                                                                             \
	SPRAY_FN(a##3)                                                                             \
	SPRAY_FN(a##4)                                                                             \
	SPRAY_FN(a##5)                                                                             \
	SPRAY_FN(a##6)                                                                             \
	SPRAY_FN(a##7)
SPRAY_FN8(1)
SPRAY_FN8(2)
SPRAY_FN8(3)
SPRAY_FN8(4)
SPRAY_FN8(5)
SPRAY_FN8(6)
SPRAY_FN8(7)
SPRAY_FN8(8)

#define SPRAY_REF8(a)                                                                              \
	spray_##a##0, spray_##a##1, spray_##a##2, spray_##a##3, spray_##a##4, spray_##a##5,        \
		spray_##a##6, spray_##a##7
static spray_fn fns[SPRAY_FUNCS] = {
	SPRAY_REF8(1), SPRAY_REF8(2), SPRAY_REF8(3), SPRAY_REF8(4),
	SPRAY_REF8(5), SPRAY_REF8(6), SPRAY_REF8(7), SPRAY_REF8(8),
};

__attribute__((noinline)) static void *spray_thread(void *arg)
{
	uint64_t x = (uintptr_t)arg * 0x9e3779b97f4a7c15ull | 1;
	while (!stop)
		x = spray_next(x, SPRAY_DEPTH);
	sink = x;
	return NULL;
}

int main(int argc, char **argv)
{
	unsigned duration = 10, threads = 1;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--duration") && i + 1 < argc)
			duration = (unsigned)atoi(argv[++i]);
		else if (!strcmp(argv[i], "--threads") && i + 1 < argc)
			threads = (unsigned)atoi(argv[++i]);
		else {
			fprintf(stderr, "usage: stack_spray [--duration SEC] [--threads N]\n");
			return 2;
		}
	}
	if (threads < 1 || threads > 64)
		threads = 1;
	pthread_t t[64];
	unsigned started = 0;
	for (unsigned i = 0; i < threads; i++)
		if (pthread_create(&t[i], NULL, spray_thread, (void *)(uintptr_t)(i + 1)) == 0)
			started++;
	struct timespec ts = {.tv_sec = duration};
	while (nanosleep(&ts, &ts))
		;
	stop = 1;
	for (unsigned i = 0; i < started; i++)
		pthread_join(t[i], NULL);
	return started ? 0 : 1;
}
