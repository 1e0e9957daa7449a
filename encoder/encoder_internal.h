/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * encoder internals, shared by the encoders of encoder/ (pprof.c, folded.c,
 * flamegraph.c). Nothing here is part of the public API (encoder.h).
 *
 * One idea per file:
 *   arena.c   bump arena (many small allocations, one free) and growable arrays
 *   strtab.c  string interning: bytes -> dense id, the copies in an arena
 *
 * Threads: none. Every encoder call builds its own arena and tables on its
 * stack and frees them before it returns, except the OTLP encoder's context
 * (struct otlp_encoder), which keeps an arena and tables across the calls
 * of one thread (arena__reset()); nothing here is shared between threads.
 */
#ifndef PIPELINE_ENCODER_INTERNAL_H
#define PIPELINE_ENCODER_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "symbolizer.h"

/* ---- hashing ---- */

/* splitmix64 finalizer: every input bit reaches every output bit. */
static inline uint64_t enc_hash_u64(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebULL;
	x ^= x >> 31;
	return x;
}

/* FNV-1a of p[0..n), unfinished: finish it (enc_hash_u64) before masking. */
static inline uint64_t enc_fnv1a(const void *p, size_t n)
{
	const unsigned char *s = p;
	uint64_t h = 0xcbf29ce484222325ULL;

	for (size_t i = 0; i < n; i++) {
		h ^= s[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

/* ---- frames ---- */

/* The name an inlined call is shown under: its function, else its mangled
 * name, else "[unknown]" (every encoder gives it a frame of its own, so it
 * needs a name even when DWARF had none). */
static inline const char *enc_inline_name(const struct sym_inline *in)
{
	if (in->function && in->function[0])
		return in->function;
	if (in->system_name && in->system_name[0])
		return in->system_name;
	return "[unknown]";
}

/* ---- arena.c: bump arena ----
 * Owns every block it hands out; arena__free() releases them all at once, and
 * arena__reset() forgets them while keeping the standard-size chunks for
 * reuse. Zero-initialized storage is an empty arena. */
struct arena_chunk;

struct arena {
	struct arena_chunk *head;  /* the chunk being filled; older ones follow */
	struct arena_chunk *spare; /* standard-size chunks kept by arena__reset() */
	size_t bytes;		   /* held in chunks, spares included */
};

/* Returns size bytes aligned for any type, or NULL with errno set. */
void *arena__alloc(struct arena *a, size_t size);
/* Returns a NUL-terminated copy of s[0..len) (unaligned), or NULL with errno set. */
char *arena__strndup(struct arena *a, const char *s, size_t len);
/* Frees every block; accepts a zeroed or already freed arena. */
void arena__free(struct arena *a);
/* Invalidates every block handed out, keeping the standard-size chunks for
 * the next allocations (bigger ones are freed): an arena reused by call after
 * call does not fault its pages in again. */
void arena__reset(struct arena *a);

/*
 * Makes the pages of [p, p + len) present and writable in one call
 * (MADV_POPULATE_WRITE), for a fresh block about to be written all over: one
 * page fault per 4 KiB page costs far more in a virtual machine. Does nothing
 * for small blocks or where the kernel lacks it; never changes the contents.
 */
void mem__prefault(void *p, size_t len);

/*
 * Grows a realloc'ed array of elem-byte elements to hold at least need of them,
 * doubling its capacity *cap. Returns the (possibly moved) array, or NULL with
 * errno set and arr and *cap untouched.
 */
void *array__grow(void *arr, size_t *cap, size_t need, size_t elem);

/* ---- strtab.c: interned strings ----
 * Equal bytes get one id; ids are dense (0, 1, 2, ... in order of first
 * sight), so strs[] can serve as a string table as it is (pprof's). The copies
 * are NUL-terminated and live in a borrowed arena; the table's own arrays are
 * realloc'ed and freed by strtab__deinit(). */
struct strtab_slot {
	uint32_t id1;  /* id + 1; 0 = empty */
	uint32_t hash; /* low half of the string's hash */
};

struct strtab {
	struct arena *arena; /* borrowed: holds the copies */
	char **strs;	     /* id -> NUL-terminated copy */
	size_t *lens;	     /* id -> length, without the NUL */
	size_t n, cap;
	struct strtab_slot *slots;
	size_t n_slots; /* power of two, or 0 before the first insert */
	uint32_t max;	/* ids stay below max */
};

/* An empty table whose copies go to arena and whose ids stay below max
 * (at most UINT32_MAX - 1). Allocates nothing. */
void strtab__init(struct strtab *t, struct arena *arena, uint32_t max);
/* Frees the table's arrays (not the copies: they belong to the arena).
 * Accepts a zeroed or partly built table. */
void strtab__deinit(struct strtab *t);
/* Empties the table, keeping its arrays, for copies that go to arena from now
 * on (the old ones are the caller's to drop, e.g. with arena__reset()). */
void strtab__reset(struct strtab *t, struct arena *arena);
/*
 * Finds the bytes s[0..len) or adds a copy of them; *id receives their id.
 * Returns 0, -ENOMEM, or -E2BIG when a new id would reach max.
 */
int strtab__findnew(struct strtab *t, const char *s, size_t len, uint32_t *id);

static inline const char *strtab__str(const struct strtab *t, uint32_t id)
{
	return t->strs[id];
}

static inline size_t strtab__len(const struct strtab *t, uint32_t id)
{
	return t->lens[id];
}

#endif /* PIPELINE_ENCODER_INTERNAL_H */
