/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * encoder: pure functions from an aggregated profile (profile.h) to bytes.
 * No I/O: every function returns a malloc'ed buffer that the caller owns and
 * frees with free().
 */
#ifndef PIPELINE_ENCODER_H
#define PIPELINE_ENCODER_H

#include <stddef.h>
#include <stdint.h>

#include "profile.h"

/* A malloc'ed byte buffer; the caller frees data. */
struct encoded_buf {
	uint8_t *data;
	size_t len;
};

/*
 * pprof (perftools.profiles.Profile), gzip-compressed, as `go tool pprof`
 * reads it: sample types samples/count and cpu/nanoseconds, period type
 * cpu/nanoseconds, labels pid, tid, thread_name; one mapping per module,
 * addresses pprof-normalized (file offsets), non-leaf addresses already
 * adjusted by the symbolizer. Returns 0 or -errno.
 */
int pprof__encode(const struct profile *p, struct encoded_buf *out);

/*
 * Folded stacks, one line per distinct stack: `pcomm;outermost;...;leaf count`,
 * kernel frames suffixed `_[k]`, unknown frames as `[module+0xoff]` or
 * `[unknown]`. Stacks that fold to the same line are summed. Readable by
 * flamegraph.pl and speedscope. Returns 0 or -errno.
 */
int folded__encode(const struct profile *p, struct encoded_buf *out);

struct flamegraph_opts {
	const char *title; /* NULL: "CPU flame graph" */
	unsigned width;	   /* pixels; 0: 1200 */
};

/*
 * A self-contained interactive SVG flame graph (no external URLs): frame
 * widths proportional to samples, tooltips, click to zoom, search with matched
 * percent, reset; kernel, user and idle frames coloured apart; a subtitle with
 * host, duration, frequency and total samples. Returns 0 or -errno.
 */
int flamegraph__encode_svg(const struct profile *p, const struct flamegraph_opts *opts,
			   struct encoded_buf *out);

#endif /* PIPELINE_ENCODER_H */
