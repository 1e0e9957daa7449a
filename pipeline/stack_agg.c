// SPDX-License-Identifier: BSD-2-Clause
/*
 * Open-addressing hash table of stacks (linear probing, power-of-two size,
 * load factor at most 1/2) whose slots hold a hash and an entry pointer.
 * Entries are carved from an arena of 256 KiB chunks: one allocation per
 * chunk, not per stack, and reset() rewinds the arena instead of freeing, so
 * a warm shard allocates nothing per sample.
 *
 * With time recording on (stack_agg__record_times), each sample's wall time
 * and CPU is appended to its entry's chain of fixed-size blocks, also from
 * the arena, up to a bound on recorded times per aggregator; past it the
 * counts stay exact and the profile says its times are incomplete.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "stack_agg.h"

#define ARENA_CHUNK (256 * 1024)

#define TIMES_PER_BLOCK 15

struct time_block {
	struct time_block *next;
	uint32_t n;
	struct profile_sample_time t[TIMES_PER_BLOCK];
};

struct agg_entry {
	struct profile_stack stack; /* stack.frames points at frames[] below;
				     * stack.n_times counts the chained times;
				     * stack.values at vals once a value is added */
	struct time_block *times_head, *times_tail;
	int64_t vals[2]; /* add_weighted(): events (weighted), sum of values */
	uint32_t *hist;	 /* add_weighted() with hist on: STACK_AGG_HIST_BUCKETS */
	const struct sym_frame *frames[];
};

struct arena_chunk {
	struct arena_chunk *next;
	size_t used, size;
	_Alignas(16) unsigned char data[];
};

struct agg_slot {
	uint64_t hash;
	struct agg_entry *entry; /* NULL: empty */
};

struct stack_agg {
	struct agg_slot *slots;
	size_t mask; /* slots - 1 */
	size_t n_entries;
	size_t max_entries;
	uint64_t total;
	size_t max_times;	    /* 0: times are not recorded */
	bool hist;		    /* keep each stack's distribution of values */
	size_t n_times;		    /* times recorded */
	bool times_dropped;	    /* a time was not recorded: the bound was hit */
	struct arena_chunk *chunks; /* all chunks, current first */
	struct arena_chunk *current;
};

static uint64_t mix64(uint64_t h)
{
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ULL;
	h ^= h >> 33;
	return h;
}

static uint64_t hash_bytes(uint64_t h, const void *p, size_t n)
{
	const unsigned char *b = p;
	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 0x100000001b3ULL;
	return h;
}

static uint64_t stack_hash(const struct profile_stack *s)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	h = mix64(h ^ ((uint64_t)s->tgid << 32 | s->tid));
	h = hash_bytes(h, s->comm, strnlen(s->comm, PROFILE_COMM_LEN));
	h = hash_bytes(h, s->pcomm, strnlen(s->pcomm, PROFILE_COMM_LEN));
	h = mix64(h ^ ((uint64_t)s->n_kernel << 32 | s->n_user) ^ s->idle);
	for (uint32_t i = 0; i < s->n_kernel + s->n_user; i++)
		h = mix64(h ^ (uintptr_t)s->frames[i]);
	return h ? h : 1;
}

static bool stack_equal(const struct profile_stack *a, const struct profile_stack *b)
{
	if (a->tgid != b->tgid || a->tid != b->tid || a->n_kernel != b->n_kernel ||
	    a->n_user != b->n_user || a->idle != b->idle)
		return false;
	if (strncmp(a->comm, b->comm, PROFILE_COMM_LEN) ||
	    strncmp(a->pcomm, b->pcomm, PROFILE_COMM_LEN))
		return false;
	return memcmp(a->frames, b->frames, sizeof(a->frames[0]) * (a->n_kernel + a->n_user)) == 0;
}

static void *arena_alloc(struct stack_agg *agg, size_t size)
{
	size = (size + 15) & ~(size_t)15;
	struct arena_chunk *c = agg->current;
	while (c && c->used + size > c->size)
		c = c->next; /* chunks after current are free ones left by reset() */
	if (!c) {
		size_t cap = size > ARENA_CHUNK ? size : ARENA_CHUNK;
		c = malloc(sizeof(*c) + cap);
		if (!c)
			return NULL;
		c->used = 0;
		c->size = cap;
		/* Keep it after current so reset() can reuse every chunk in order. */
		if (agg->current) {
			c->next = agg->current->next;
			agg->current->next = c;
		} else {
			c->next = agg->chunks;
			agg->chunks = c;
		}
	}
	agg->current = c;
	void *p = c->data + c->used;
	c->used += size;
	return p;
}

struct stack_agg *stack_agg__new(size_t max_entries)
{
	struct stack_agg *agg = calloc(1, sizeof(*agg));
	if (!agg)
		return NULL;
	agg->max_entries = max_entries ? max_entries : 1;
	size_t n = 64;
	agg->slots = calloc(n, sizeof(*agg->slots));
	if (!agg->slots) {
		free(agg);
		errno = ENOMEM;
		return NULL;
	}
	agg->mask = n - 1;
	return agg;
}

void stack_agg__free(struct stack_agg *agg)
{
	if (!agg)
		return;
	struct arena_chunk *c = agg->chunks;
	while (c) {
		struct arena_chunk *next = c->next;
		free(c);
		c = next;
	}
	free(agg->slots);
	free(agg);
}

static int stack_agg__grow(struct stack_agg *agg)
{
	size_t n = (agg->mask + 1) * 2;
	struct agg_slot *slots = calloc(n, sizeof(*slots));
	if (!slots)
		return -ENOMEM;
	for (size_t i = 0; i <= agg->mask; i++) {
		if (!agg->slots[i].entry)
			continue;
		size_t j = agg->slots[i].hash & (n - 1);
		while (slots[j].entry)
			j = (j + 1) & (n - 1);
		slots[j] = agg->slots[i];
	}
	free(agg->slots);
	agg->slots = slots;
	agg->mask = n - 1;
	return 0;
}

/* Returns the entry of key, inserting it with zero counts if new; NULL with
 * *err = -ENOSPC (table full) or -ENOMEM. */
static struct agg_entry *stack_agg__findnew(struct stack_agg *agg, const struct profile_stack *key,
					    int *err)
{
	uint64_t h = stack_hash(key);
	size_t i = h & agg->mask;

	for (; agg->slots[i].entry; i = (i + 1) & agg->mask) {
		struct agg_entry *e = agg->slots[i].entry;
		if (agg->slots[i].hash == h && stack_equal(&e->stack, key))
			return e;
	}
	if (agg->n_entries >= agg->max_entries) {
		*err = -ENOSPC;
		return NULL;
	}
	size_t n_frames = key->n_kernel + key->n_user;
	struct agg_entry *e = arena_alloc(agg, sizeof(*e) + n_frames * sizeof(e->frames[0]));
	if (!e) {
		*err = -ENOMEM;
		return NULL;
	}
	e->stack = *key;
	memcpy(e->frames, key->frames, n_frames * sizeof(e->frames[0]));
	e->stack.frames = e->frames;
	e->stack.count = 0;
	e->stack.first_ns = UINT64_MAX;
	e->stack.last_ns = 0;
	e->stack.times = NULL;
	e->stack.n_times = 0;
	e->times_head = e->times_tail = NULL;
	e->stack.values = NULL;
	e->stack.value_hist = NULL;
	e->vals[0] = e->vals[1] = 0;
	e->hist = NULL;
	agg->slots[i].hash = h;
	agg->slots[i].entry = e;
	agg->n_entries++;
	if (agg->n_entries * 2 > agg->mask + 1 && stack_agg__grow(agg)) {
		*err = -ENOMEM; /* the entry is in; only the growth failed */
		return NULL;
	}
	return e;
}

static void entry__count(struct stack_agg *agg, struct agg_entry *e, uint64_t count,
			 uint64_t first_ns, uint64_t last_ns)
{
	e->stack.count += count;
	if (first_ns < e->stack.first_ns)
		e->stack.first_ns = first_ns;
	if (last_ns > e->stack.last_ns)
		e->stack.last_ns = last_ns;
	agg->total += count;
}

/* Appends one time to e's chain. Returns false when it was not recorded. */
static bool entry__add_time(struct stack_agg *agg, struct agg_entry *e,
			    const struct profile_sample_time *t)
{
	if (agg->n_times >= agg->max_times)
		return false;
	struct time_block *b = e->times_tail;
	if (!b || b->n == TIMES_PER_BLOCK) {
		b = arena_alloc(agg, sizeof(*b));
		if (!b)
			return false;
		b->next = NULL;
		b->n = 0;
		if (e->times_tail)
			e->times_tail->next = b;
		else
			e->times_head = b;
		e->times_tail = b;
	}
	b->t[b->n++] = *t;
	e->stack.n_times++;
	agg->n_times++;
	return true;
}

int stack_agg__add(struct stack_agg *agg, const struct profile_stack *key, uint64_t count,
		   uint64_t first_ns, uint64_t last_ns)
{
	int err = 0;
	struct agg_entry *e = stack_agg__findnew(agg, key, &err);
	if (!e)
		return err;
	entry__count(agg, e, count, first_ns, last_ns);
	if (agg->max_times)
		agg->times_dropped = true; /* counted without times */
	return 0;
}

/* The entry of key with one more sample at wall time ns on cpu (its time
 * recorded when recording is on); NULL with *err as findnew(). */
static struct agg_entry *stack_agg__sample(struct stack_agg *agg, const struct profile_stack *key,
					   uint64_t ns, uint32_t cpu, int *err)
{
	struct agg_entry *e = stack_agg__findnew(agg, key, err);
	if (!e)
		return NULL;
	entry__count(agg, e, 1, ns, ns);
	if (agg->max_times) {
		struct profile_sample_time t = {.ns = ns, .cpu = cpu};
		if (!entry__add_time(agg, e, &t))
			agg->times_dropped = true;
	}
	return e;
}

int stack_agg__add_sample(struct stack_agg *agg, const struct profile_stack *key, uint64_t ns,
			  uint32_t cpu)
{
	int err = 0;
	return stack_agg__sample(agg, key, ns, cpu, &err) ? 0 : err;
}

void stack_agg__record_times(struct stack_agg *agg, size_t max_times)
{
	agg->max_times = max_times;
}

void stack_agg__record_hist(struct stack_agg *agg, bool on)
{
	agg->hist = on;
}

unsigned stack_agg__hist_bucket(uint64_t v)
{
	if (v < 1024)
		return 0;
	unsigned msb = 63 - (unsigned)__builtin_clzll(v); /* >= 10 */
	unsigned b = 1 + 4 * (msb - 10) + (unsigned)((v >> (msb - 2)) & 3);
	return b < STACK_AGG_HIST_BUCKETS ? b : STACK_AGG_HIST_BUCKETS - 1;
}

uint64_t stack_agg__hist_upper(unsigned b)
{
	if (!b)
		return 1024;
	unsigned msb = 10 + (b - 1) / 4, sub = (b - 1) % 4;
	/* The bucket holds [(4 + sub) << (msb - 2), (5 + sub) << (msb - 2)). */
	return (uint64_t)(5 + sub) << (msb - 2);
}

uint64_t stack_agg__hist_quantile(const uint32_t *hist, double q)
{
	uint64_t total = 0, seen = 0;

	if (!hist)
		return 0;
	for (unsigned b = 0; b < STACK_AGG_HIST_BUCKETS; b++)
		total += hist[b];
	if (!total)
		return 0;
	for (unsigned b = 0; b < STACK_AGG_HIST_BUCKETS; b++) {
		seen += hist[b];
		if ((double)seen >= q * (double)total)
			return stack_agg__hist_upper(b);
	}
	return stack_agg__hist_upper(STACK_AGG_HIST_BUCKETS - 1);
}

/* Adds n to a bucket, saturating: a day of a hot lock's waits can pass
 * 2^32, and a full bucket still ranks the quantiles. */
static void hist_add(uint32_t *bucket, uint64_t n)
{
	uint64_t sum = (uint64_t)*bucket + n;
	*bucket = sum > UINT32_MAX ? UINT32_MAX : (uint32_t)sum;
}

/* e's distribution of values, made empty on first use; NULL without memory. */
static uint32_t *entry__hist(struct stack_agg *agg, struct agg_entry *e)
{
	if (!e->hist) {
		e->hist = arena_alloc(agg, STACK_AGG_HIST_BUCKETS * sizeof(*e->hist));
		if (!e->hist)
			return NULL;
		memset(e->hist, 0, STACK_AGG_HIST_BUCKETS * sizeof(*e->hist));
		e->stack.value_hist = e->hist;
	}
	return e->hist;
}

int stack_agg__add_weighted(struct stack_agg *agg, const struct profile_stack *key, uint64_t weight,
			    uint64_t value, uint64_t ns, uint32_t cpu)
{
	int err = 0;
	struct agg_entry *e = stack_agg__sample(agg, key, ns, cpu, &err);
	if (!e)
		return err;
	e->vals[0] += (int64_t)weight;
	e->vals[1] += (int64_t)(value * weight);
	e->stack.values = e->vals;
	if (agg->hist) {
		uint32_t *hist = entry__hist(agg, e);
		if (!hist)
			return -ENOMEM;
		hist_add(&hist[stack_agg__hist_bucket(value)], weight);
	}
	return 0;
}

int64_t stack_agg__merge(struct stack_agg *dst, const struct stack_agg *src)
{
	int64_t lost = 0;
	if (src->times_dropped && dst->max_times)
		dst->times_dropped = true;
	for (size_t i = 0; i <= src->mask; i++) {
		const struct agg_entry *se = src->slots[i].entry;
		if (!se)
			continue;
		int err = 0;
		struct agg_entry *e = stack_agg__findnew(dst, &se->stack, &err);
		if (!e) {
			if (err != -ENOSPC)
				return err;
			lost += (int64_t)se->stack.count;
			continue;
		}
		entry__count(dst, e, se->stack.count, se->stack.first_ns, se->stack.last_ns);
		if (se->stack.values) {
			e->vals[0] += se->vals[0];
			e->vals[1] += se->vals[1];
			e->stack.values = e->vals;
		}
		if (se->hist && dst->hist) {
			uint32_t *hist = entry__hist(dst, e);
			if (!hist)
				return -ENOMEM;
			for (unsigned b = 0; b < STACK_AGG_HIST_BUCKETS; b++)
				hist_add(&hist[b], se->hist[b]);
		}
		if (!dst->max_times)
			continue;
		if (se->stack.n_times < se->stack.count)
			dst->times_dropped = true;
		for (const struct time_block *b = se->times_head; b; b = b->next)
			for (uint32_t k = 0; k < b->n; k++)
				if (!entry__add_time(dst, e, &b->t[k]))
					dst->times_dropped = true;
	}
	return lost;
}

size_t stack_agg__bytes(const struct stack_agg *agg)
{
	size_t n = 0;
	for (const struct arena_chunk *c = agg->chunks; c; c = c->next)
		n += c->used;
	return n;
}

void stack_agg__reset(struct stack_agg *agg)
{
	if (agg->n_entries)
		memset(agg->slots, 0, (agg->mask + 1) * sizeof(*agg->slots));
	for (struct arena_chunk *c = agg->chunks; c; c = c->next)
		c->used = 0;
	agg->current = agg->chunks;
	agg->n_entries = 0;
	agg->total = 0;
	agg->n_times = 0;
	agg->times_dropped = false;
}

size_t stack_agg__size(const struct stack_agg *agg)
{
	return agg->n_entries;
}

uint64_t stack_agg__total(const struct stack_agg *agg)
{
	return agg->total;
}

int stack_agg__snapshot(const struct stack_agg *agg, struct stack_agg_snapshot *snap)
{
	memset(snap, 0, sizeof(*snap));
	snap->stacks = malloc((agg->n_entries ? agg->n_entries : 1) * sizeof(*snap->stacks));
	snap->times = malloc((agg->n_times ? agg->n_times : 1) * sizeof(*snap->times));
	if (!snap->stacks || !snap->times) {
		stack_agg__snapshot_free(snap);
		return -ENOMEM;
	}
	size_t k = 0, t = 0;
	for (size_t i = 0; i <= agg->mask; i++) {
		const struct agg_entry *e = agg->slots[i].entry;
		if (!e)
			continue;
		struct profile_stack *s = &snap->stacks[k++];
		*s = e->stack;
		s->times = snap->times + t;
		for (const struct time_block *b = e->times_head; b; b = b->next) {
			memcpy(snap->times + t, b->t, b->n * sizeof(b->t[0]));
			t += b->n;
		}
	}
	snap->n_stacks = k;
	snap->times_complete = agg->max_times && !agg->times_dropped && t == agg->total;
	return 0;
}

void stack_agg__snapshot_free(struct stack_agg_snapshot *snap)
{
	free(snap->stacks);
	free(snap->times);
	memset(snap, 0, sizeof(*snap));
}
