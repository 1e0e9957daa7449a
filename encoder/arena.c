/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Bump arena and growable arrays, for the encoders (see encoder_internal.h).
 *
 * An encoding makes many small, same-lifetime allocations (protobuf-c message
 * structs, interned strings, folded lines): they are carved from 64 KiB chunks
 * and freed at once, never one by one. A block larger than a quarter chunk gets
 * a chunk of its own, linked behind the one being filled, so that one long
 * line does not waste the rest of the current chunk. arena__reset() keeps the
 * standard-size chunks on a spare list that later allocations take from first,
 * for a caller that reuses one arena call after call (the OTLP encoder's
 * context).
 *
 * Growable arrays (the tables protobuf-c wants as pointer arrays, hash slots)
 * are plain realloc'ed buffers whose owner frees them; array__grow() only does
 * the doubling and the overflow checks.
 */
#include <errno.h>
#include <stdalign.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "encoder_internal.h"

#define ARENA_CHUNK_BYTES  (64u * 1024)
#define PREFAULT_MIN_BYTES (128u * 1024) /* below: a few faults, not worth a call */

struct arena_chunk {
	struct arena_chunk *next;
	size_t used, cap;
	max_align_t data[];
};

/* Returns size bytes at a multiple of align (a power of two), or NULL. */
static void *arena_alloc_aligned(struct arena *a, size_t size, size_t align)
{
	struct arena_chunk *c = a->head;
	size_t off = c ? (c->used + align - 1) & ~(align - 1) : 0;

	if (!c || off > c->cap || c->cap - off < size) {
		if (size > SIZE_MAX - sizeof(*c)) {
			errno = ENOMEM;
			return NULL;
		}
		size_t cap = size > ARENA_CHUNK_BYTES ? size : ARENA_CHUNK_BYTES;
		struct arena_chunk *n;

		if (cap == ARENA_CHUNK_BYTES && a->spare) {
			n = a->spare;
			a->spare = n->next;
		} else {
			n = malloc(sizeof(*n) + cap);
			if (!n)
				return NULL;
			n->cap = cap;
			a->bytes += sizeof(*n) + cap;
		}
		if (c && size > ARENA_CHUNK_BYTES / 4) {
			/* a big block gets its own chunk; keep filling the current one */
			n->next = c->next;
			c->next = n;
			n->used = size;
			return n->data;
		}
		n->next = c;
		a->head = n;
		c = n;
		off = 0;
	}
	c->used = off + size;
	return (char *)c->data + off;
}

void *arena__alloc(struct arena *a, size_t size)
{
	return arena_alloc_aligned(a, size, alignof(max_align_t));
}

char *arena__strndup(struct arena *a, const char *s, size_t len)
{
	char *copy;

	if (len == SIZE_MAX) {
		errno = ENOMEM;
		return NULL;
	}
	copy = arena_alloc_aligned(a, len + 1, 1);
	if (!copy)
		return NULL;
	memcpy(copy, s, len);
	copy[len] = '\0';
	return copy;
}

static void chunks_free(struct arena_chunk *c)
{
	while (c) {
		struct arena_chunk *next = c->next;
		free(c);
		c = next;
	}
}

void arena__free(struct arena *a)
{
	chunks_free(a->head);
	chunks_free(a->spare);
	a->head = NULL;
	a->spare = NULL;
	a->bytes = 0;
}

void arena__reset(struct arena *a)
{
	struct arena_chunk *c = a->head;

	while (c) {
		struct arena_chunk *next = c->next;

		if (c->cap == ARENA_CHUNK_BYTES) {
			c->next = a->spare;
			a->spare = c;
		} else {
			a->bytes -= sizeof(*c) + c->cap;
			free(c);
		}
		c = next;
	}
	a->head = NULL;
}

void mem__prefault(void *p, size_t len)
{
	uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
	uintptr_t lo = ((uintptr_t)p + page - 1) & ~(page - 1);
	uintptr_t hi = ((uintptr_t)p + len) & ~(page - 1);

	if (len < PREFAULT_MIN_BYTES || hi <= lo)
		return;
	/* a hint: older kernels (EINVAL) fault the pages in on first touch */
	(void)madvise((void *)lo, hi - lo, MADV_POPULATE_WRITE);
}

void *array__grow(void *arr, size_t *cap, size_t need, size_t elem)
{
	size_t ncap = *cap ? *cap : 64;

	if (need <= *cap)
		return arr;
	while (ncap < need) {
		if (ncap > SIZE_MAX / 2) {
			errno = ENOMEM;
			return NULL;
		}
		ncap *= 2;
	}
	if (ncap > SIZE_MAX / elem) {
		errno = ENOMEM;
		return NULL;
	}
	void *p = realloc(arr, ncap * elem);
	if (!p)
		return NULL;
	*cap = ncap;
	return p;
}
