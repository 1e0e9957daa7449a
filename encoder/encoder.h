/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * encoder: pure functions from an aggregated profile (profile.h) to bytes.
 * No I/O: every function returns a malloc'ed buffer that the caller owns and
 * frees with free(). The one object is the OTLP encoder's optional context
 * (struct otlp_encoder), which only makes repeated OTLP encodes cheaper.
 */
#ifndef PIPELINE_ENCODER_H
#define PIPELINE_ENCODER_H

#include <stdbool.h>
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
 * adjusted by the symbolizer; functions inlined at a frame are Lines of its
 * Location before its own, innermost first. Returns 0 or -errno.
 */
int pprof__encode(const struct profile *p, struct encoded_buf *out);

/*
 * Folded stacks, one line per distinct stack: `pcomm;outermost;...;leaf count`,
 * kernel frames suffixed `_[k]`, functions inlined at a frame as frames of
 * their own after it (caller first) suffixed `_[i]`, unknown frames as
 * `[module+0xoff]` or `[unknown]`. Stacks that fold to the same line are
 * summed. Readable by flamegraph.pl and speedscope. Returns 0 or -errno.
 */
int folded__encode(const struct profile *p, struct encoded_buf *out);

struct flamegraph_opts {
	const char *title; /* NULL: "CPU flame graph" */
	unsigned width;	   /* pixels; 0: 1200 */
};

/*
 * A self-contained interactive SVG flame graph (no external URLs): frame
 * widths proportional to samples, tooltips, click to zoom, search with matched
 * percent, reset; kernel, user, inlined (class fg-inline, "(inlined)" in the
 * tooltip) and idle frames coloured apart; a subtitle with host, duration,
 * frequency and total samples. Returns 0 or -errno.
 */
int flamegraph__encode_svg(const struct profile *p, const struct flamegraph_opts *opts,
			   struct encoded_buf *out);

/* One resource attribute of the agent's own environment (service.name,
 * OTEL_RESOURCE_ATTRIBUTES entries), added to every resource. */
struct otlp_attr {
	const char *key;
	const char *value;
};

struct otlp_encode_opts {
	const char *agent_name;			/* scope name, e.g. "pipeline" */
	const char *agent_version;		/* scope version */
	const struct otlp_attr *resource_attrs; /* added to every Resource */
	size_t n_resource_attrs;
	bool timestamps;	  /* per-sample timestamps_unix_nano where the profile's
				   * times are complete; else aggregated values */
	size_t max_request_bytes; /* split into several requests, by resource, so that
				   * each stays under this many bytes; 0 = one request */
};

/*
 * OTLP Profiles: encodes n profiles (one per interval, in time order) into
 * ExportProfilesServiceRequests (uncompressed protobuf): one shared,
 * deduplicated dictionary per request, one ResourceProfiles per process
 * (process.pid, process.executable.name/path, container.id, host.name and
 * opts->resource_attrs), one ScopeProfiles (agent name and version), one
 * Profile per interval and sample type. *out receives a malloc'ed array of
 * *n_out buffers; free each data and then the array. Returns 0 or -errno.
 */
int otlp__encode(const struct profile *const *profiles, size_t n,
		 const struct otlp_encode_opts *opts, struct encoded_buf **out, size_t *n_out);

/*
 * An OTLP encoder context, for a caller that encodes interval after interval
 * (the flusher). From one call to the next it keeps what the requests'
 * dictionaries are made of, as far as that does not depend on the request
 * (strings, functions, mappings, locations and attributes, each once by
 * value, and a cache from frame to location), and the working memory of the
 * last call, reset rather than freed. A steady-state call then does
 * per-frame work only for frames it has not seen before, and does not fault
 * its pages in again. The output of every call is the same, byte for byte,
 * as otlp__encode() gives for the same arguments.
 *
 * Threads: none inside; a context is not thread-safe. Use one per encoding
 * thread.
 * Ownership: the caller owns the context. It identifies frames and modules
 * by pointer, as the symbolizer interns them, so the frames and modules it
 * has seen must stay valid and unchanged while it is used: free it before the
 * symbolizer (a new symbolizer needs a new context). It borrows nothing else
 * beyond a call. Memory: its cache, bounded by max_cache_bytes (checked before
 * each call: a cache over the bound is emptied and rebuilt from the next
 * profiles), plus the working memory of the largest call so far.
 */
struct otlp_encoder;

struct otlp_encoder_opts {
	size_t max_cache_bytes; /* bound on the cache; 0: 32 MiB */
};

struct otlp_encoder_stats {
	uint64_t encodes;      /* calls that succeeded */
	uint64_t cache_clears; /* times the cache was over its bound and emptied */
	size_t cache_frames;   /* frames the cache knows */
	size_t cache_bytes;    /* memory the cache holds */
	size_t work_bytes;     /* working memory kept from the last calls for the next */
};

/* Returns a new, empty context (opts NULL: defaults), or NULL with errno set. */
struct otlp_encoder *otlp_encoder__new(const struct otlp_encoder_opts *opts);
/* Frees the context and all it holds. Accepts NULL. */
void otlp_encoder__free(struct otlp_encoder *enc);
/*
 * otlp__encode() on the context enc: the same arguments and the same output.
 * Returns 0 or -errno (-EINVAL also for a NULL enc); after an error the
 * context stays usable.
 */
int otlp_encoder__encode(struct otlp_encoder *enc, const struct profile *const *profiles, size_t n,
			 const struct otlp_encode_opts *opts, struct encoded_buf **out,
			 size_t *n_out);
/* Fills *stats with the context's counters and the cache's current size. */
void otlp_encoder__stats(const struct otlp_encoder *enc, struct otlp_encoder_stats *stats);

/*
 * Parses an OTEL_RESOURCE_ATTRIBUTES value ("k1=v1,k2=v2", values
 * percent-decoded, surrounding spaces trimmed) into a malloc'ed array of
 * *n attributes whose strings live in the same allocation: free(*attrs)
 * frees all. Returns 0, or -EINVAL naming nothing (the caller names the
 * variable) when an entry has no '=' or an empty key.
 */
int otlp__parse_resource_attrs(const char *text, struct otlp_attr **attrs, size_t *n);

#endif /* PIPELINE_ENCODER_H */
