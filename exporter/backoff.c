// SPDX-License-Identifier: BSD-2-Clause
/*
 * Retry delays: exponential backoff with "equal jitter" (half the delay is
 * fixed, half random), so a fleet of agents retrying against a collector
 * that just came back does not arrive in lockstep, and no retry is ever
 * immediate. Caller-owned state, one per exporter thread; not thread-safe.
 */
#include "exporter_internal.h"

void backoff__init(struct backoff *b, unsigned initial_ms, unsigned max_ms, uint64_t seed)
{
	b->initial_ms = initial_ms ? initial_ms : 1;
	b->max_ms = max_ms < b->initial_ms ? b->initial_ms : max_ms;
	b->attempt = 0;
	b->rng = seed ? seed : 0x9e3779b97f4a7c15ull;
}

void backoff__reset(struct backoff *b)
{
	b->attempt = 0;
}

/* xorshift64*: plenty for jitter. */
static uint64_t next_rand(struct backoff *b)
{
	b->rng ^= b->rng >> 12;
	b->rng ^= b->rng << 25;
	b->rng ^= b->rng >> 27;
	return b->rng * 0x2545f4914f6cdd1dull;
}

unsigned backoff__next(struct backoff *b)
{
	uint64_t ceil = b->initial_ms;
	for (unsigned i = 0; i < b->attempt && ceil < b->max_ms; i++)
		ceil *= 2;
	if (ceil > b->max_ms)
		ceil = b->max_ms;
	if (b->attempt < 64)
		b->attempt++;
	uint64_t half = ceil / 2;
	return (unsigned)(ceil - half + next_rand(b) % (half + 1));
}
