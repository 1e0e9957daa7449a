// SPDX-License-Identifier: BSD-2-Clause
/*
 * Log-linear histogram (see histogram.h). Bucket index of v:
 *   v < 128:  v itself (exact);
 *   else:     with m = floor(log2 v), (m - 6) * 128 + (v >> (m - 7)) - 128,
 * so bucket k * 128 + s (k >= 1) holds [(128 + s) << (k - 1), +2^(k - 1)).
 * One counter array, no allocation after histogram__new.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "histogram.h"

#define HIST_SUB     (1u << HISTOGRAM_SUB_BITS)
#define HIST_BUCKETS ((HISTOGRAM_MAX_EXP - HISTOGRAM_SUB_BITS + 1) * HIST_SUB)

struct histogram {
	uint64_t count;
	uint64_t min, max;
	double sum;
	uint64_t counts[HIST_BUCKETS];
};

static unsigned hist_index(uint64_t v)
{
	unsigned m;

	if (v < HIST_SUB)
		return (unsigned)v;
	m = 63 - (unsigned)__builtin_clzll(v);
	if (m >= HISTOGRAM_MAX_EXP)
		return HIST_BUCKETS - 1;
	return (m - HISTOGRAM_SUB_BITS + 1) * HIST_SUB + (unsigned)(v >> (m - HISTOGRAM_SUB_BITS)) -
	       HIST_SUB;
}

/* Returns the middle of bucket idx. */
static uint64_t hist_value(unsigned idx)
{
	unsigned k = idx / HIST_SUB, s = idx % HIST_SUB;
	uint64_t lo, width;

	if (k == 0)
		return idx;
	lo = (uint64_t)(HIST_SUB + s) << (k - 1);
	width = 1ull << (k - 1);
	return lo + width / 2;
}

struct histogram *histogram__new(void)
{
	return calloc(1, sizeof(struct histogram));
}

void histogram__free(struct histogram *h)
{
	free(h);
}

void histogram__reset(struct histogram *h)
{
	memset(h, 0, sizeof(*h));
}

void histogram__record_n(struct histogram *h, uint64_t v, uint64_t n)
{
	if (!n)
		return;
	if (!h->count || v < h->min)
		h->min = v;
	if (v > h->max)
		h->max = v;
	h->count += n;
	h->sum += (double)v * (double)n;
	h->counts[hist_index(v)] += n;
}

void histogram__record(struct histogram *h, uint64_t v)
{
	histogram__record_n(h, v, 1);
}

void histogram__merge(struct histogram *dst, const struct histogram *src)
{
	if (!src->count)
		return;
	if (!dst->count || src->min < dst->min)
		dst->min = src->min;
	if (src->max > dst->max)
		dst->max = src->max;
	dst->count += src->count;
	dst->sum += src->sum;
	for (unsigned i = 0; i < HIST_BUCKETS; i++)
		dst->counts[i] += src->counts[i];
}

uint64_t histogram__count(const struct histogram *h)
{
	return h->count;
}

uint64_t histogram__min(const struct histogram *h)
{
	return h->min;
}

uint64_t histogram__max(const struct histogram *h)
{
	return h->max;
}

double histogram__mean(const struct histogram *h)
{
	return h->count ? h->sum / (double)h->count : 0;
}

uint64_t histogram__percentile(const struct histogram *h, double pct)
{
	uint64_t rank, seen = 0;

	if (!h->count)
		return 0;
	if (pct >= 100)
		return h->max;
	if (pct < 0)
		pct = 0;
	rank = (uint64_t)ceil(pct / 100.0 * (double)h->count);
	if (rank < 1)
		rank = 1;
	for (unsigned i = 0; i < HIST_BUCKETS; i++) {
		seen += h->counts[i];
		if (seen >= rank) {
			uint64_t v = hist_value(i);

			/* the top bucket holds everything above 2^37: only max is known */
			if (i == HIST_BUCKETS - 1)
				return h->max;
			return v < h->min ? h->min : v > h->max ? h->max : v;
		}
	}
	return h->max;
}
