/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Where this benchmark process's own code is: the executable text ranges of
 * its executable and of libc, from /proc/self/maps, and addresses spread
 * over them. The symbolizer and shard stages resolve such addresses as
 * stand-ins for sampled stacks.
 */
#ifndef PIPELINE_BENCH_SELF_TEXT_H
#define PIPELINE_BENCH_SELF_TEXT_H

#include <stddef.h>
#include <stdint.h>

struct bench_text_range {
	uint64_t lo, hi; /* [lo, hi); both 0 when not found */
};

/* Finds the first executable mapping of our executable and of glibc's libc.
 * Returns 0 or -errno (-ENOENT: no executable text; libc may be absent). */
int bench_self_text__find(struct bench_text_range *exe, struct bench_text_range *libc);

/* Spreads n addresses evenly over r (the midpoints of n equal parts). */
void bench_self_text__spread(uint64_t *out, size_t n, const struct bench_text_range *r);

#endif /* PIPELINE_BENCH_SELF_TEXT_H */
