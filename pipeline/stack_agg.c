// SPDX-License-Identifier: BSD-2-Clause
/*
 * Open-addressing hash table of stacks (linear probing, power-of-two size,
 * load factor at most 1/2) whose slots hold a hash and an entry pointer.
 * Entries are carved from an arena of 256 KiB chunks: one allocation per
 * chunk, not per stack, and reset() rewinds the arena instead of freeing, so
 * a warm shard allocates nothing per sample.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "stack_agg.h"

#define ARENA_CHUNK (256 * 1024)

struct agg_entry {
	struct profile_stack stack; /* stack.frames points at frames[] below */
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

int stack_agg__add(struct stack_agg *agg, const struct profile_stack *key, uint64_t count,
		   uint64_t first_ns, uint64_t last_ns)
{
	uint64_t h = stack_hash(key);
	size_t i = h & agg->mask;

	for (; agg->slots[i].entry; i = (i + 1) & agg->mask) {
		struct agg_entry *e = agg->slots[i].entry;
		if (agg->slots[i].hash != h || !stack_equal(&e->stack, key))
			continue;
		e->stack.count += count;
		if (first_ns < e->stack.first_ns)
			e->stack.first_ns = first_ns;
		if (last_ns > e->stack.last_ns)
			e->stack.last_ns = last_ns;
		agg->total += count;
		return 0;
	}
	if (agg->n_entries >= agg->max_entries)
		return -ENOSPC;

	size_t n_frames = key->n_kernel + key->n_user;
	struct agg_entry *e = arena_alloc(agg, sizeof(*e) + n_frames * sizeof(e->frames[0]));
	if (!e)
		return -ENOMEM;
	e->stack = *key;
	memcpy(e->frames, key->frames, n_frames * sizeof(e->frames[0]));
	e->stack.frames = e->frames;
	e->stack.count = count;
	e->stack.first_ns = first_ns;
	e->stack.last_ns = last_ns;
	agg->slots[i].hash = h;
	agg->slots[i].entry = e;
	agg->n_entries++;
	agg->total += count;

	if (agg->n_entries * 2 > agg->mask + 1)
		return stack_agg__grow(agg) ? -ENOMEM : 0;
	return 0;
}

int64_t stack_agg__merge(struct stack_agg *dst, const struct stack_agg *src)
{
	int64_t lost = 0;
	for (size_t i = 0; i <= src->mask; i++) {
		const struct agg_entry *e = src->slots[i].entry;
		if (!e)
			continue;
		int rc = stack_agg__add(dst, &e->stack, e->stack.count, e->stack.first_ns,
					e->stack.last_ns);
		if (rc == -ENOSPC)
			lost += (int64_t)e->stack.count;
		else if (rc)
			return rc;
	}
	return lost;
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
}

size_t stack_agg__size(const struct stack_agg *agg)
{
	return agg->n_entries;
}

uint64_t stack_agg__total(const struct stack_agg *agg)
{
	return agg->total;
}

struct profile_stack *stack_agg__snapshot(const struct stack_agg *agg)
{
	struct profile_stack *out = malloc((agg->n_entries ? agg->n_entries : 1) * sizeof(*out));
	if (!out)
		return NULL;
	size_t k = 0;
	for (size_t i = 0; i <= agg->mask; i++)
		if (agg->slots[i].entry)
			out[k++] = agg->slots[i].entry->stack;
	return out;
}
