/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * OTEL_RESOURCE_ATTRIBUTES parsing (OpenTelemetry specification, Resource SDK:
 * "a list of key value pairs ... in a format matching the W3C Baggage,
 * except that additional semi-colon delimited metadata is not supported").
 *
 * - Entries are separated by ','; each is key=value split at its first '='
 *   (a value may contain '='); optional whitespace (space, tab) around keys
 *   and values is trimmed, then keys and values are percent-decoded (%HH),
 *   so an encoded space (%20) survives the trim.
 * - Errors, for which the specification says to discard the whole value:
 *   an entry without '=' (an empty entry, as in "a=1,,b=2" or a trailing
 *   comma, included), an empty key, a malformed escape ('%' not followed by
 *   two hex digits), and an escape decoding to NUL, which a C string cannot
 *   hold. Each returns -EINVAL.
 * - An empty or all-blank text is no attributes. Duplicate keys are all
 *   returned in order; the encoder keeps the last.
 *
 * One allocation holds the array and every decoded string.
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "encoder.h"

static bool is_ows(char c)
{
	return c == ' ' || c == '\t';
}

static int hex_val(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Trims s[0..*len) of surrounding whitespace; returns the new start. */
static const char *trim(const char *s, size_t *len)
{
	size_t n = *len;

	while (n && is_ows(*s)) {
		s++;
		n--;
	}
	while (n && is_ows(s[n - 1]))
		n--;
	*len = n;
	return s;
}

/* Percent-decodes s[0..len) into dst (NUL-terminated); returns the bytes
 * written (without the NUL) or -EINVAL. */
static long decode(const char *s, size_t len, char *dst)
{
	size_t o = 0;

	for (size_t i = 0; i < len; i++) {
		if (s[i] != '%') {
			dst[o++] = s[i];
			continue;
		}
		if (len - i < 3)
			return -EINVAL;
		int hi = hex_val(s[i + 1]);
		int lo = hex_val(s[i + 2]);
		if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
			return -EINVAL;
		dst[o++] = (char)(hi << 4 | lo);
		i += 2;
	}
	dst[o] = '\0';
	return (long)o;
}

int otlp__parse_resource_attrs(const char *text, struct otlp_attr **attrs, size_t *n)
{
	size_t len, count = 1;
	const char *t;

	if (!attrs || !n)
		return -EINVAL;
	*attrs = NULL;
	*n = 0;
	if (!text)
		return 0;
	len = strlen(text);
	t = trim(text, &len);
	if (!len)
		return 0;
	for (size_t i = 0; i < len; i++)
		count += t[i] == ',';

	/* the array, then the strings: each entry's key and value take at most
	 * its own length (the '=' makes room for one NUL) plus one NUL */
	if (count > (SIZE_MAX - len) / (sizeof(struct otlp_attr) + 1))
		return -ENOMEM;
	struct otlp_attr *a = malloc(count * sizeof(*a) + len + count);
	if (!a)
		return -ENOMEM;
	char *dst = (char *)(a + count);
	size_t k = 0;

	const char *end = t + len;
	for (const char *e = t;; k++) {
		const char *comma = memchr(e, ',', (size_t)(end - e));
		const char *stop = comma ? comma : end;
		const char *eq = memchr(e, '=', (size_t)(stop - e));
		size_t klen, vlen;
		const char *key, *val;
		long w;

		if (!eq)
			goto invalid;
		klen = (size_t)(eq - e);
		key = trim(e, &klen);
		vlen = (size_t)(stop - eq - 1);
		val = trim(eq + 1, &vlen);

		w = decode(key, klen, dst);
		if (w <= 0)
			goto invalid; /* malformed, or an empty key */
		a[k].key = dst;
		dst += w + 1;
		w = decode(val, vlen, dst);
		if (w < 0)
			goto invalid;
		a[k].value = dst;
		dst += w + 1;
		if (!comma)
			break;
		e = comma + 1;
	}
	*attrs = a;
	*n = k + 1;
	return 0;

invalid:
	free(a);
	return -EINVAL;
}
