/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Allocation sites (see alloc_agg.h): entries in one growable array, found
 * through an open-addressing index of their positions (linear probing,
 * load factor at most 1/2). Sites are never removed before reset(), so the
 * index needs no tombstones.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "alloc_agg.h"

#define EMPTY UINT32_MAX

struct alloc_agg {
	struct alloc_site *sites;
	size_t n, cap, max_sites;
	uint32_t *index; /* positions in sites, or EMPTY */
	size_t index_mask;
};

static uint64_t key_hash(uint32_t tgid, uint64_t site)
{
	uint64_t h = site ^ ((uint64_t)tgid * 0x9e3779b97f4a7c15ull);

	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	return h;
}

struct alloc_agg *alloc_agg__new(size_t max_sites)
{
	struct alloc_agg *agg = calloc(1, sizeof(*agg));

	if (!agg)
		return NULL;
	agg->max_sites = max_sites ? max_sites : 1;
	agg->index_mask = 255;
	agg->index = malloc((agg->index_mask + 1) * sizeof(*agg->index));
	if (!agg->index) {
		free(agg);
		errno = ENOMEM;
		return NULL;
	}
	memset(agg->index, 0xff, (agg->index_mask + 1) * sizeof(*agg->index));
	return agg;
}

void alloc_agg__reset(struct alloc_agg *agg)
{
	for (size_t i = 0; i < agg->n; i++)
		free(agg->sites[i].frames);
	agg->n = 0;
	memset(agg->index, 0xff, (agg->index_mask + 1) * sizeof(*agg->index));
}

void alloc_agg__free(struct alloc_agg *agg)
{
	if (!agg)
		return;
	alloc_agg__reset(agg);
	free(agg->sites);
	free(agg->index);
	free(agg);
}

double alloc_agg__weight(uint64_t size, uint64_t period)
{
	double p;

	if (period <= 1 || !size)
		return 1.0;
	/* Each byte sampled with probability 1/period: the allocation is
	 * sampled unless none of its size bytes is. */
	p = -expm1((double)size * log1p(-1.0 / (double)period));
	return p > 0 ? 1.0 / p : 1.0;
}

static size_t slot_of(const struct alloc_agg *agg, uint32_t tgid, uint64_t site, bool *found)
{
	size_t i = key_hash(tgid, site) & agg->index_mask;

	for (;;) {
		uint32_t pos = agg->index[i];

		if (pos == EMPTY) {
			*found = false;
			return i;
		}
		if (agg->sites[pos].tgid == tgid && agg->sites[pos].site == site) {
			*found = true;
			return i;
		}
		i = (i + 1) & agg->index_mask;
	}
}

static int grow_index(struct alloc_agg *agg)
{
	size_t mask = agg->index_mask * 2 + 1;
	uint32_t *index = malloc((mask + 1) * sizeof(*index));

	if (!index)
		return -ENOMEM;
	memset(index, 0xff, (mask + 1) * sizeof(*index));
	free(agg->index);
	agg->index = index;
	agg->index_mask = mask;
	for (size_t pos = 0; pos < agg->n; pos++) {
		bool found;
		size_t i = slot_of(agg, agg->sites[pos].tgid, agg->sites[pos].site, &found);

		agg->index[i] = (uint32_t)pos;
	}
	return 0;
}

/* The entry of (tgid, site), created zeroed if new. Returns it or NULL
 * with *err set (-ENOSPC, -ENOMEM). */
static struct alloc_site *findnew(struct alloc_agg *agg, uint32_t tgid, uint64_t site, int *err)
{
	bool found;
	size_t i = slot_of(agg, tgid, site, &found);

	if (found)
		return &agg->sites[agg->index[i]];
	if (agg->n >= agg->max_sites) {
		*err = -ENOSPC;
		return NULL;
	}
	if (agg->n == agg->cap) {
		size_t cap = agg->cap ? agg->cap * 2 : 64;
		struct alloc_site *s = realloc(agg->sites, cap * sizeof(*s));

		if (!s) {
			*err = -ENOMEM;
			return NULL;
		}
		agg->sites = s;
		agg->cap = cap;
	}
	if ((agg->n + 1) * 2 > agg->index_mask + 1) {
		if (grow_index(agg)) {
			*err = -ENOMEM;
			return NULL;
		}
		i = slot_of(agg, tgid, site, &found);
	}
	struct alloc_site *e = &agg->sites[agg->n];
	memset(e, 0, sizeof(*e));
	e->tgid = tgid;
	e->site = site;
	agg->index[i] = (uint32_t)agg->n++;
	return e;
}

static int set_stack(struct alloc_site *e, const char *comm, const char *pcomm,
		     const struct sym_frame *const *frames, uint32_t n_frames)
{
	if (e->frames || (!n_frames && e->comm[0]))
		return 0;
	if (n_frames) {
		e->frames = malloc(n_frames * sizeof(*e->frames));
		if (!e->frames)
			return -ENOMEM;
		memcpy(e->frames, frames, n_frames * sizeof(*e->frames));
		e->n_frames = n_frames;
	}
	memcpy(e->comm, comm, PROFILE_COMM_LEN);
	memcpy(e->pcomm, pcomm, PROFILE_COMM_LEN);
	e->comm[PROFILE_COMM_LEN - 1] = e->pcomm[PROFILE_COMM_LEN - 1] = '\0';
	return 0;
}

int alloc_agg__add_alloc(struct alloc_agg *agg, uint32_t tgid, uint64_t site, const char *comm,
			 const char *pcomm, const struct sym_frame *const *frames,
			 uint32_t n_frames, uint64_t size, uint64_t period)
{
	int err = 0;
	struct alloc_site *e = findnew(agg, tgid, site, &err);
	double w = alloc_agg__weight(size, period);

	if (!e)
		return err;
	e->alloc_objects += w;
	e->alloc_bytes += w * (double)size;
	return set_stack(e, comm, pcomm, frames, n_frames);
}

int alloc_agg__add_n(struct alloc_agg *agg, uint32_t tgid, uint64_t site, bool free, uint64_t size,
		     uint64_t period, uint64_t count)
{
	int err = 0;
	struct alloc_site *e = findnew(agg, tgid, site, &err);
	double w = alloc_agg__weight(size, period) * (double)count;

	if (!e)
		return err;
	if (free) {
		e->free_objects += w;
		e->free_bytes += w * (double)size;
	} else {
		e->alloc_objects += w;
		e->alloc_bytes += w * (double)size;
	}
	return 0;
}

int alloc_agg__set_stack(struct alloc_agg *agg, uint32_t tgid, uint64_t site, const char *comm,
			 const char *pcomm, const struct sym_frame *const *frames,
			 uint32_t n_frames)
{
	struct alloc_site *e = alloc_agg__find(agg, tgid, site);

	return e ? set_stack(e, comm, pcomm, frames, n_frames) : -ENOENT;
}

int64_t alloc_agg__merge(struct alloc_agg *dst, const struct alloc_agg *src)
{
	int64_t lost = 0;

	for (size_t i = 0; i < src->n; i++) {
		const struct alloc_site *s = &src->sites[i];
		int err = 0;
		struct alloc_site *e = findnew(dst, s->tgid, s->site, &err);

		if (!e) {
			if (err == -ENOMEM)
				return err;
			lost++;
			continue;
		}
		e->alloc_objects += s->alloc_objects;
		e->alloc_bytes += s->alloc_bytes;
		e->free_objects += s->free_objects;
		e->free_bytes += s->free_bytes;
		if (s->comm[0] || s->frames) {
			err = set_stack(e, s->comm, s->pcomm,
					(const struct sym_frame *const *)s->frames, s->n_frames);
			if (err)
				return err;
		}
	}
	return lost;
}

size_t alloc_agg__size(const struct alloc_agg *agg)
{
	return agg->n;
}

struct alloc_site *alloc_agg__site(struct alloc_agg *agg, size_t i)
{
	return i < agg->n ? &agg->sites[i] : NULL;
}

struct alloc_site *alloc_agg__find(struct alloc_agg *agg, uint32_t tgid, uint64_t site)
{
	bool found;
	size_t i = slot_of(agg, tgid, site, &found);

	return found ? &agg->sites[agg->index[i]] : NULL;
}
