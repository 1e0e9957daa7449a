// SPDX-License-Identifier: BSD-2-Clause
/*
 * The few protobuf fields the client reads from a response, hand-parsed so
 * the exporter does not depend on the encoder's generated code:
 *   ExportProfilesServiceResponse { 1 partial_success: ExportProfilesPartialSuccess }
 *   ExportProfilesPartialSuccess  { 1 rejected_profiles: int64, 2 error_message: string }
 *   google.rpc.Status             { 1 code: int32, 2 message: string, 3 details }
 * Unknown fields are skipped, as protobuf requires.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "exporter_internal.h"

struct pb {
	const uint8_t *p, *end;
};

static int pb_varint(struct pb *r, uint64_t *v)
{
	uint64_t x = 0;
	for (unsigned shift = 0; shift < 64; shift += 7) {
		if (r->p >= r->end)
			return -EPROTO;
		uint8_t b = *r->p++;
		x |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80)) {
			*v = x;
			return 0;
		}
	}
	return -EPROTO;
}

/* Reads one field key and, for length-delimited fields, the payload bounds. */
static int pb_field(struct pb *r, unsigned *num, unsigned *wt, uint64_t *val, const uint8_t **data,
		    size_t *len)
{
	uint64_t key;
	if (pb_varint(r, &key))
		return -EPROTO;
	*num = (unsigned)(key >> 3);
	*wt = key & 7;
	if (*num == 0)
		return -EPROTO;
	switch (*wt) {
	case 0:
		return pb_varint(r, val);
	case 1:
		if (r->end - r->p < 8)
			return -EPROTO;
		r->p += 8;
		return 0;
	case 2: {
		uint64_t n;
		if (pb_varint(r, &n) || n > (uint64_t)(r->end - r->p))
			return -EPROTO;
		*data = r->p;
		*len = (size_t)n;
		r->p += n;
		return 0;
	}
	case 5:
		if (r->end - r->p < 4)
			return -EPROTO;
		r->p += 4;
		return 0;
	default:
		return -EPROTO; /* groups (3, 4) are not used by these messages */
	}
}

static void printable(const uint8_t *b, size_t n, char *out, size_t cap)
{
	size_t o = 0;
	if (!cap)
		return;
	for (size_t i = 0; i < n && o + 1 < cap; i++)
		out[o++] = b[i] >= 0x20 && b[i] < 0x7f ? (char)b[i] : '.';
	if (n > cap - 1 && cap > 4)
		memcpy(out + cap - 4, "...", 3), o = cap - 1;
	out[o] = '\0';
}

int pb_partial_success__parse(const uint8_t *b, size_t n, int64_t *rejected, char *msg,
			      size_t msg_cap)
{
	struct pb r = {b, b + n};
	const uint8_t *ps = NULL;
	size_t ps_len = 0;
	bool present = false;

	*rejected = 0;
	if (msg_cap)
		msg[0] = '\0';
	while (r.p < r.end) {
		unsigned num, wt;
		uint64_t v;
		const uint8_t *d;
		size_t l;
		if (pb_field(&r, &num, &wt, &v, &d, &l))
			return -EPROTO;
		if (num == 1) {
			if (wt != 2)
				return -EPROTO;
			/* Repeated occurrences of a message field merge; the last wins here,
			 * which is what matters for these two scalars. */
			ps = d;
			ps_len = l;
			present = true;
		}
	}
	if (!present)
		return 0;
	struct pb s = {ps, ps + ps_len};
	while (s.p < s.end) {
		unsigned num, wt;
		uint64_t v = 0;
		const uint8_t *d = NULL;
		size_t l = 0;
		if (pb_field(&s, &num, &wt, &v, &d, &l))
			return -EPROTO;
		if (num == 1 && wt == 0)
			*rejected = (int64_t)v;
		else if (num == 2 && wt == 2)
			printable(d, l, msg, msg_cap);
		else if (num == 1 || num == 2)
			return -EPROTO;
	}
	return *rejected != 0 || (msg_cap && msg[0]);
}

void pb_error_body__describe(const uint8_t *b, size_t n, char *out, size_t cap)
{
	struct pb r = {b, b + n};
	bool ok = n > 0;
	const uint8_t *m = NULL;
	size_t ml = 0;

	if (!cap)
		return;
	out[0] = '\0';
	while (ok && r.p < r.end) {
		unsigned num, wt;
		uint64_t v;
		const uint8_t *d = NULL;
		size_t l = 0;
		if (pb_field(&r, &num, &wt, &v, &d, &l) || num > 3 || (num == 1 && wt != 0) ||
		    (num != 1 && wt != 2)) {
			ok = false;
			break;
		}
		if (num == 2) {
			m = d;
			ml = l;
		}
	}
	if (ok && m) {
		/* A Status message should be text; if it is not, this was no Status. */
		size_t bad = 0;
		for (size_t i = 0; i < ml; i++)
			bad += m[i] < 0x20 && m[i] != '\t';
		if (!bad) {
			printable(m, ml, out, cap);
			return;
		}
	}
	printable(b, n, out, cap);
}
