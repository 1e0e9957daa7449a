/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * String interning for the encoders (see encoder_internal.h): pprof's string
 * table, the folded encoder's distinct lines, the flame graph's frame names.
 *
 * Open addressing with linear probing, kept at most half full. A slot holds
 * the id (+ 1) and the low half of the hash beside it, so a probe touches one
 * slot and reads the string itself only when both the hash half and the length
 * match. Ids are handed out in order of first sight, so what a caller builds
 * from them does not depend on the hash function or the table's size.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "encoder_internal.h"

#define STRTAB_MIN_SLOTS 1024

void strtab__init(struct strtab *t, struct arena *arena, uint32_t max)
{
	memset(t, 0, sizeof(*t));
	t->arena = arena;
	t->max = max < UINT32_MAX - 1 ? max : UINT32_MAX - 1;
}

void strtab__deinit(struct strtab *t)
{
	free(t->strs);
	free(t->lens);
	free(t->slots);
	t->strs = NULL;
	t->lens = NULL;
	t->slots = NULL;
	t->n = t->cap = t->n_slots = 0;
}

void strtab__reset(struct strtab *t, struct arena *arena)
{
	if (t->n)
		memset(t->slots, 0, t->n_slots * sizeof(*t->slots));
	t->n = 0;
	t->arena = arena;
}

/* Doubles the slot array and re-inserts every id. Returns 0 or -ENOMEM. */
static int slots_grow(struct strtab *t)
{
	size_t ncap = t->n_slots ? t->n_slots * 2 : STRTAB_MIN_SLOTS;
	struct strtab_slot *slots;

	if (ncap > SIZE_MAX / sizeof(*slots))
		return -ENOMEM;
	slots = calloc(ncap, sizeof(*slots));
	if (!slots)
		return -ENOMEM;
	for (size_t i = 0; i < t->n_slots; i++) {
		struct strtab_slot s = t->slots[i];
		size_t j;

		if (!s.id1)
			continue;
		for (j = s.hash & (ncap - 1); slots[j].id1; j = (j + 1) & (ncap - 1))
			;
		slots[j] = s;
	}
	free(t->slots);
	t->slots = slots;
	t->n_slots = ncap;
	return 0;
}

int strtab__findnew(struct strtab *t, const char *s, size_t len, uint32_t *id)
{
	uint32_t h = (uint32_t)enc_hash_u64(enc_fnv1a(s, len));
	size_t mask, i;

	if (t->n_slots) {
		mask = t->n_slots - 1;
		for (i = h & mask; t->slots[i].id1; i = (i + 1) & mask) {
			uint32_t v = t->slots[i].id1 - 1;

			if (t->slots[i].hash == h && t->lens[v] == len &&
			    memcmp(t->strs[v], s, len) == 0) {
				*id = v;
				return 0;
			}
		}
	}

	if (t->n >= t->max)
		return -E2BIG;
	if ((t->n + 1) * 2 > t->n_slots) {
		int err = slots_grow(t);

		if (err)
			return err;
	}
	/* strs and lens share cap: grow both before cap moves */
	size_t cap = t->cap;
	char **strs = array__grow(t->strs, &cap, t->n + 1, sizeof(*strs));
	if (!strs)
		return -ENOMEM;
	t->strs = strs;
	cap = t->cap;
	size_t *lens = array__grow(t->lens, &cap, t->n + 1, sizeof(*lens));
	if (!lens)
		return -ENOMEM;
	t->lens = lens;
	t->cap = cap;
	char *copy = arena__strndup(t->arena, s, len);
	if (!copy)
		return -ENOMEM;

	mask = t->n_slots - 1;
	for (i = h & mask; t->slots[i].id1; i = (i + 1) & mask)
		;
	t->strs[t->n] = copy;
	t->lens[t->n] = len;
	t->slots[i] = (struct strtab_slot){.id1 = (uint32_t)t->n + 1, .hash = h};
	*id = (uint32_t)t->n++;
	return 0;
}
