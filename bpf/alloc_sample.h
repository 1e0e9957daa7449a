/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Allocation records of bpf/alloc_sample.bpf.c, shared with user space.
 * They travel in the same per-CPU rings as the on-CPU samples
 * (cpu_sample.h) and start with the same header; flags tells them apart
 * (CPU_SAMPLE_KIND_*, cpu_sample.h).
 *
 * ALLOC: one sampled allocation, with the user stack of its caller
 *        (user_frames; the leaf is a return address). aux is the sampling
 *        period in bytes (1: every allocation).
 * FREE:  the free (or realloc) of a sampled allocation still tracked, no
 *        stack. size and site are the allocation's, so any shard can
 *        subtract it from the right site; aux is the allocation's ts_ns.
 */
#ifndef PIPELINE_BPF_ALLOC_SAMPLE_H
#define PIPELINE_BPF_ALLOC_SAMPLE_H

#include "cpu_sample.h"

/* Entry points, as the programs' fn argument and in stats. */
#define ALLOC_SAMPLE_EXP_TABLE 1024 /* quantiles of the exponential distribution */

struct alloc_event {
	__u64 addr;
	__u64 size; /* bytes asked for */
	__u64 site; /* hash of the allocation's user stack (and tgid) */
	__u64 aux;  /* ALLOC: sampling period in bytes; FREE: the allocation's ts_ns */
};

struct alloc_sample_rec {
	CPU_SAMPLE_HEADER
	struct alloc_event ev;
	__u64 frames[CPU_SAMPLE_MAX_FRAMES]; /* user, leaf first (ALLOC only) */
};

/* A FREE record: the header and the event, nothing more. */
struct alloc_free_rec {
	CPU_SAMPLE_HEADER
	struct alloc_event ev;
};

#define ALLOC_SAMPLE_REC_HEADER_SIZE ((__u64) __builtin_offsetof(struct alloc_sample_rec, frames))
#define ALLOC_SAMPLE_REC_SIZE(nu)    (ALLOC_SAMPLE_REC_HEADER_SIZE + 8 * (__u64)(nu))

/* What the kernel tracks per sampled allocation until it is freed. */
struct alloc_key {
	__u32 tgid;
	__u32 pad;
	__u64 addr;
};

struct alloc_val {
	__u64 size;
	__u64 site;
	__u64 ts_ns;
};

/* Records the ring had no room for are not lost: they are counted here
 * per (process, kind, site, size), and user space folds them into the
 * profile at each flush, so a burst never leaves a freed block outstanding. */
struct alloc_lost_key {
	__u32 tgid;
	__u32 kind; /* CPU_SAMPLE_KIND_ALLOC or CPU_SAMPLE_KIND_FREE */
	__u64 site;
	__u64 size;
};

/* The stack of a site whose ALLOC record the ring had no room for (the
 * first such record of the site), for user space to name a site it may
 * never have seen a record of. */
struct alloc_site_key {
	__u32 tgid;
	__u32 pad;
	__u64 site;
};

/* Per-CPU counters. */
struct alloc_sample_stats {
	__u64 calls;	      /* allocation calls seen (outermost) */
	__u64 nested;	      /* allocator calls inside another (not counted again) */
	__u64 failed;	      /* returned NULL or an error */
	__u64 sampled;	      /* allocations sampled */
	__u64 frees;	      /* free calls with a non-NULL pointer */
	__u64 frees_tracked;  /* of which freed a tracked (sampled) allocation */
	__u64 tracked_full;   /* sampled but the tracking map was full: not tracked */
	__u64 ring_full;      /* records the ring had no room for: counted in `lost` instead */
	__u64 lost_full;      /* ... and `lost` was full too: dropped */
	__u64 no_ring;	      /* records dropped: no ring for the CPU */
	__u64 no_task_state;  /* per-thread state unavailable: call not seen */
	__u64 unmatched_ret;  /* a return without its entry (probe attached mid-call) */
	__u64 stack_failed;   /* user stack capture errors (record still sent) */
	__u64 stale_replaced; /* a new block at a still-tracked address: the old one's
			       * free, never seen, reported then */
	__u64 mmaps;	      /* anonymous private mmaps of the program (counted) */
	__u64 mmaps_internal; /* ... made by the allocator or libc itself (left out) */
	__u64 mmaps_failed;
	__u64 mmaps_unknown; /* caller not known (mm busy): left out */
};

/* The executable mappings of a --pid process's allocator and C library,
 * filled by user space: an mmap returning into one of them is theirs. */
#define ALLOC_TEXT_RANGES 4
struct alloc_text {
	__u64 start[ALLOC_TEXT_RANGES], end[ALLOC_TEXT_RANGES];
};

/* A file whose own mmap calls are the allocator's (its arenas, large blocks,
 * thread stacks): the allocator's file and the C library. */
struct alloc_file_key {
	__u64 ino;
	__u32 dev; /* the kernel's encoding: major << 20 | minor */
	__u32 pad;
};

#endif /* PIPELINE_BPF_ALLOC_SAMPLE_H */
