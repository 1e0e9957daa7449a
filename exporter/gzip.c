// SPDX-License-Identifier: BSD-2-Clause
/*
 * gzip for the OTLP client: request bodies are compressed on the exporter
 * thread (never on the pipeline's threads) with libdeflate, and a
 * gzip-encoded response body is decoded with zlib's streaming inflate under
 * the same cap as the raw body (libdeflate needs the output size up front).
 */
#include <errno.h>
#include <stdlib.h>
#include <libdeflate.h>
#include <zlib.h>

#include "exporter_internal.h"

int gzip__compress(const void *in, size_t n, int level, uint8_t **out, size_t *out_len)
{
	/* libdeflate rather than zlib: one call over the whole body, about 2x
	 * faster than zlib's deflate at the same level and ratio (a 20,000-stack
	 * interval: docs/BENCHMARKS.md), which is what keeps encode + compress of
	 * a large interval inside its budget. Bodies are at most 64 MiB
	 * (--otlp-max-request-bytes), well inside libdeflate's size_t API. */
	struct libdeflate_compressor *c = libdeflate_alloc_compressor(level);
	if (!c)
		return -ENOMEM; /* also an out-of-range level; callers pass 1..12 */
	size_t cap = libdeflate_gzip_compress_bound(c, n);
	uint8_t *buf = malloc(cap);
	if (!buf) {
		libdeflate_free_compressor(c);
		return -ENOMEM;
	}
	size_t len = libdeflate_gzip_compress(c, in, n, buf, cap);
	libdeflate_free_compressor(c);
	if (!len) { /* cannot happen with a bound-sized buffer */
		free(buf);
		return -EIO;
	}
	*out = buf;
	*out_len = len;
	return 0;
}

int gzip__decompress(const void *in, size_t n, size_t max, uint8_t **out, size_t *out_len)
{
	z_stream zs = {0};
	uint8_t *buf = NULL;
	size_t cap = n * 4 + 256, len = 0;
	int err = 0, rc;

	if (n > UINT32_MAX)
		return -EMSGSIZE; /* zlib counts input in uInt; nothing here is that big */
	if (cap > max + 1)
		cap = max + 1;
	/* 15 + 32: detect gzip or zlib headers. */
	if (inflateInit2(&zs, 15 + 32) != Z_OK)
		return -ENOMEM;
	buf = malloc(cap);
	if (!buf) {
		err = -ENOMEM;
		goto cleanup;
	}
	zs.next_in = (Bytef *)in;
	zs.avail_in = (uInt)n;
	for (;;) {
		if (len == cap) {
			if (cap > max) {
				err = -EMSGSIZE;
				goto cleanup;
			}
			size_t ncap = cap * 2 > max + 1 ? max + 1 : cap * 2;
			uint8_t *nb = realloc(buf, ncap);
			if (!nb) {
				err = -ENOMEM;
				goto cleanup;
			}
			buf = nb;
			cap = ncap;
		}
		zs.next_out = buf + len;
		zs.avail_out = (uInt)(cap - len);
		rc = inflate(&zs, Z_NO_FLUSH);
		len = cap - zs.avail_out;
		if (rc == Z_STREAM_END)
			break;
		if (rc == Z_MEM_ERROR) {
			err = -ENOMEM;
			goto cleanup;
		}
		if (rc != Z_OK && !(rc == Z_BUF_ERROR && len == cap)) {
			err = -EPROTO; /* corrupt, or truncated input */
			goto cleanup;
		}
	}
	if (len > max) {
		err = -EMSGSIZE;
		goto cleanup;
	}
	*out = buf;
	*out_len = len;
	buf = NULL;
cleanup:
	inflateEnd(&zs);
	free(buf);
	return err;
}
