/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * A log-linear histogram of unsigned 64-bit values (the load generator
 * records nanoseconds), HdrHistogram style: values below 128 get a bucket
 * each; above, every power of two [2^m, 2^(m+1)) is cut into 128 equal
 * buckets. A percentile is reported as the middle of its bucket, so its
 * relative error is at most 1/256 (0.4 %) for every value below 2^37
 * (137 s in nanoseconds); larger values share the top bucket, and the exact
 * minimum and maximum are kept besides. 3968 buckets, 31 KiB.
 *
 * Not thread-safe: one writer per histogram (a thread each), merged into
 * one after the writers are done. The caller owns what histogram__new
 * returns.
 */
#ifndef PIPELINE_BENCH_HISTOGRAM_H
#define PIPELINE_BENCH_HISTOGRAM_H

#include <stdint.h>

#define HISTOGRAM_SUB_BITS 7  /* 128 buckets per power of two */
#define HISTOGRAM_MAX_EXP  37 /* values >= 2^37 go to the top bucket */

struct histogram;

/* Returns an empty histogram, or NULL with errno set. */
struct histogram *histogram__new(void);
/* Accepts NULL. */
void histogram__free(struct histogram *h);
/* Empties h. */
void histogram__reset(struct histogram *h);

/* Records value v once, or n times. */
void histogram__record(struct histogram *h, uint64_t v);
void histogram__record_n(struct histogram *h, uint64_t v, uint64_t n);
/* Adds every value of src to dst. */
void histogram__merge(struct histogram *dst, const struct histogram *src);

/* Returns the number of values recorded. */
uint64_t histogram__count(const struct histogram *h);
/* Returns the smallest / largest value recorded, exactly (0 when empty). */
uint64_t histogram__min(const struct histogram *h);
uint64_t histogram__max(const struct histogram *h);
/* Returns the mean of the recorded values (0 when empty). */
double histogram__mean(const struct histogram *h);
/* Returns the pct-th percentile (0-100) by nearest rank: the value of rank
 * ceil(pct / 100 * count) (at least 1) in sorted order, within 0.4 %; the
 * exact maximum for 100, 0 when empty. */
uint64_t histogram__percentile(const struct histogram *h, double pct);

#endif /* PIPELINE_BENCH_HISTOGRAM_H */
