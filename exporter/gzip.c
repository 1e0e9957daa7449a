// SPDX-License-Identifier: BSD-2-Clause
/*
 * gzip for the OTLP client: request bodies are compressed on the exporter
 * thread (never on the pipeline's threads), and a gzip-encoded response body
 * is decoded under the same cap as the raw body.
 */
#include <errno.h>
#include <stdlib.h>
#include <zlib.h>

#include "exporter_internal.h"

int gzip__compress(const void *in, size_t n, int level, uint8_t **out, size_t *out_len)
{
	z_stream zs = {0};
	uint8_t *buf = NULL;
	int err = 0;

	/* 15 + 16: a gzip wrapper rather than zlib's. */
	if (deflateInit2(&zs, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
		return -ENOMEM;
	/* zlib counts in uInt: feed and drain in pieces of at most 1 GiB. */
	size_t cap = deflateBound(&zs, (uLong)n) + 64;
	buf = malloc(cap);
	if (!buf) {
		err = -ENOMEM;
		goto cleanup;
	}
	zs.next_in = (Bytef *)in;
	size_t in_left = n;
	for (;;) {
		if (zs.avail_in == 0 && in_left) {
			uInt chunk = in_left > (1u << 30) ? (1u << 30) : (uInt)in_left;
			zs.avail_in = chunk;
			in_left -= chunk;
		}
		size_t out_left = cap - zs.total_out;
		zs.next_out = buf + zs.total_out;
		zs.avail_out = out_left > (1u << 30) ? (1u << 30) : (uInt)out_left;
		int rc = deflate(&zs, in_left || zs.avail_in ? Z_NO_FLUSH : Z_FINISH);
		if (rc == Z_STREAM_END)
			break;
		if (rc != Z_OK) {
			err = -EIO;
			goto cleanup;
		}
	}
	*out = buf;
	*out_len = zs.total_out;
	buf = NULL;
cleanup:
	deflateEnd(&zs);
	free(buf);
	return err;
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
