/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Allocation sites: per (process, site) the allocated and freed objects and
 * bytes, weighted back from sampling. A site is the hash the BPF program
 * computed over the allocation's user stack; a FREE record carries its
 * allocation's site and size, so frees add to the same entry whichever
 * shard sees them, and shards' tables merge by site at flush time. An entry
 * learns its stack from the first ALLOC record of the site (a table that
 * only saw frees has none until merged with one that did).
 *
 * Single-threaded, like stack_agg: each shard worker owns two (swapped at a
 * flush) and the flush thread owns the cumulative one. Bounded at
 * max_sites: a new site beyond it is refused and the caller counts it.
 */
#ifndef PIPELINE_ALLOC_AGG_H
#define PIPELINE_ALLOC_AGG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "profile.h"
#include "symbolizer.h"

struct alloc_site {
	uint32_t tgid;
	uint64_t site;
	char comm[PROFILE_COMM_LEN];	 /* thread of the first allocation seen */
	char pcomm[PROFILE_COMM_LEN];	 /* its process */
	const struct sym_frame **frames; /* user frames, leaf first; owned; NULL until known */
	uint32_t n_frames;
	double alloc_objects, alloc_bytes; /* weighted: estimates of the true totals */
	double free_objects, free_bytes;
	/* Growth (cumulative table only): the in-use bytes at the last flush,
	 * and the decayed sums of in-use change and of time (alloc_report.c). */
	double last_inuse;
	uint64_t last_ns; /* 0: no flush yet */
	double growth_bytes, growth_secs;
	double leaked_bytes, leaked_objects; /* set by the leak scan (cumulative only) */
};

struct alloc_agg;

/* Returns an empty table bounded at max_sites, or NULL with errno set. */
struct alloc_agg *alloc_agg__new(size_t max_sites);
/* Accepts NULL. */
void alloc_agg__free(struct alloc_agg *agg);

/* The weight of a sampled allocation of size bytes at period bytes: the
 * inverse of its probability of being sampled (1 when period is 1). */
double alloc_agg__weight(uint64_t size, uint64_t period);

/* Adds one sampled allocation (frames copied when the site has none yet).
 * Returns 0, -ENOSPC (new site, table full) or -ENOMEM. */
int alloc_agg__add_alloc(struct alloc_agg *agg, uint32_t tgid, uint64_t site, const char *comm,
			 const char *pcomm, const struct sym_frame *const *frames,
			 uint32_t n_frames, uint64_t size, uint64_t period);
/* Adds count frees (free: true) or allocations of sampled blocks of that
 * site and size; an allocation's stack stays unknown until a record of the
 * site brings it. Returns as add_alloc(). */
int alloc_agg__add_n(struct alloc_agg *agg, uint32_t tgid, uint64_t site, bool free, uint64_t size,
		     uint64_t period, uint64_t count);
/* Gives site (tgid, site) its stack if it has none (frames copied).
 * Returns 0, -ENOENT (no such site) or -ENOMEM. */
int alloc_agg__set_stack(struct alloc_agg *agg, uint32_t tgid, uint64_t site, const char *comm,
			 const char *pcomm, const struct sym_frame *const *frames,
			 uint32_t n_frames);

/* Adds every site of src into dst. Returns the number of sites that did not
 * fit, or -ENOMEM. */
int64_t alloc_agg__merge(struct alloc_agg *dst, const struct alloc_agg *src);
/* Forgets every site (keeps the memory of the index). */
void alloc_agg__reset(struct alloc_agg *agg);

size_t alloc_agg__size(const struct alloc_agg *agg);
/* The i-th site (0 <= i < size), stable until the next add, merge or reset. */
struct alloc_site *alloc_agg__site(struct alloc_agg *agg, size_t i);
/* The site of (tgid, site), or NULL. */
struct alloc_site *alloc_agg__find(struct alloc_agg *agg, uint32_t tgid, uint64_t site);

#endif /* PIPELINE_ALLOC_AGG_H */
