/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The allocation profile of the run: every shard's retired allocation sites
 * merged into one cumulative table (allocations minus frees is what is in
 * use, so it is never per interval), the in-use bytes of each site at each
 * flush for its growth rate, and at each flush the leak scan: the blocks
 * still tracked in the kernel at least --leak-min-age old, summed per site.
 * From it: the pprof/folded/SVG profile (four columns, as Go's heap
 * profiles) and leaks.txt. Runs on the flush thread only.
 */
#ifndef PIPELINE_ALLOC_REPORT_H
#define PIPELINE_ALLOC_REPORT_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "profile.h"

struct alloc_report;
struct alloc_agg;
struct alloc_probes;
struct symbolizer;

/* Returns an empty report, or NULL with errno set. probes (borrowed, may be
 * NULL) is read for the leak scan; create it once they are attached (growth
 * rates count from then). */
struct alloc_report *alloc_report__new(const struct pipeline_config *cfg,
				       struct alloc_probes *probes, struct symbolizer *sym);
void alloc_report__free(struct alloc_report *r);

/* Adds one shard's retired sites. Returns 0 or -ENOMEM (sites beyond the
 * bound are counted in sites_dropped). */
int alloc_report__merge(struct alloc_report *r, const struct alloc_agg *retired);

/* The profile of the run so far, built by alloc_report__build() and valid
 * until alloc_built__free(). */
struct alloc_built {
	struct profile p;
	struct profile_stack *stacks;
	int64_t *values;
	char *leaks; /* leaks.txt, malloc'd: the caller may take it (set NULL) */
	size_t leaks_len;
};

/* Records this flush's in-use bytes per site (now_ns: wall clock), scans
 * the live blocks for leaks, and builds the profile (signal "alloc") and
 * the leak report. Returns 0 or -ENOMEM. */
int alloc_report__build(struct alloc_report *r, uint64_t start_ns, uint64_t now_ns,
			struct alloc_built *b);
void alloc_built__free(struct alloc_built *b);

/* Sites dropped because the cumulative table was full. */
uint64_t alloc_report__sites_dropped(const struct alloc_report *r);

#endif /* PIPELINE_ALLOC_REPORT_H */
