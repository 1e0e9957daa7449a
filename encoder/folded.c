/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Folded-stack encoder: struct profile -> text, one line per distinct stack,
 *
 *	pcomm;user_outermost;...;user_leaf;kernel_outermost;...;kernel_leaf_[k] count
 *
 * the format flamegraph.pl, speedscope and inferno read.
 *
 * Functions inlined at a frame's address are frames of their own, after the
 * function they were inlined into (caller before callee: the frame's
 * function, then inlined[n-1] ... inlined[0]), each suffixed `_[i]` as
 * stackcollapse-perf.pl marks inlined frames (flamegraph.pl's java palette
 * colours them apart).
 *
 * Why it is built this way:
 *
 * - Two stacks can fold to the same text (different tids of one process, two
 *   addresses in one function), and readers expect one line per stack, so
 *   lines are summed in a hash table keyed by the text, then sorted with
 *   strcmp so the output is stable from run to run and diffs cleanly.
 * - The format has no quoting: ';' separates frames and the last space
 *   separates the count. Names are sanitized as they are written: ';' becomes
 *   ':', control characters (newlines, tabs) become spaces, and trailing
 *   spaces are dropped; an empty name becomes "[unknown]".
 * - Frames without a symbol are written `[module+0xaddr]` (module basename,
 *   brackets of pseudo files like "[vdso]" stripped) so they still tell a
 *   reader where they are, or `[unknown]` when even the module is unknown.
 * - One owner: the line texts live in one bump arena, interned by a string
 *   table (encoder_internal.h); the counts, the table's arrays and the
 *   scratch line are realloc'ed buffers of the context. fold_ctx_deinit()
 *   frees everything on every path.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "encoder.h"
#include "encoder_internal.h"

/* A growable byte string: the line being built. */
struct strbuf {
	char *s;
	size_t len, cap;
};

struct fold_ctx {
	struct arena arena;  /* the line texts */
	struct strtab lines; /* distinct line texts; id -> counts[id] */
	uint64_t *counts;
	size_t n_counts, cap_counts;
	struct strbuf line;
};

static void fold_ctx_deinit(struct fold_ctx *c)
{
	strtab__deinit(&c->lines);
	arena__free(&c->arena);
	free(c->counts);
	free(c->line.s);
}

static int sb_reserve(struct strbuf *b, size_t extra)
{
	if (extra > SIZE_MAX - b->len - 1)
		return -E2BIG;
	size_t need = b->len + extra + 1; /* room for a NUL */
	if (need <= b->cap)
		return 0;
	size_t ncap = b->cap ? b->cap : 256;
	while (ncap < need) {
		if (ncap > SIZE_MAX / 2)
			return -E2BIG;
		ncap *= 2;
	}
	char *s = realloc(b->s, ncap);
	if (!s)
		return -ENOMEM;
	b->s = s;
	b->cap = ncap;
	return 0;
}

static int sb_append(struct strbuf *b, const char *s, size_t len)
{
	int err = sb_reserve(b, len);

	if (err)
		return err;
	memcpy(b->s + b->len, s, len);
	b->len += len;
	return 0;
}

/* Appends s[0..len) sanitized for the folded format (see the top comment).
 * Returns 0 or -errno. */
static int sb_append_name(struct strbuf *b, const char *s, size_t len)
{
	size_t start = b->len;
	int err = sb_reserve(b, len);

	if (err)
		return err;
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (ch == ';')
			ch = ':';
		else if (ch < 0x20 || ch == 0x7f)
			ch = ' ';
		b->s[b->len++] = (char)ch;
	}
	while (b->len > start && b->s[b->len - 1] == ' ')
		b->len--;
	if (b->len == start)
		return sb_append(b, "[unknown]", strlen("[unknown]"));
	return 0;
}

/* `[module+0xaddr]`, or `[unknown]` when the module is unknown too. */
static int sb_append_unknown(struct strbuf *b, const struct sym_frame *f)
{
	const char *name = f->module ? f->module->name : NULL;
	size_t len = name ? strlen(name) : 0;
	char tail[32];
	int err;

	if (len >= 2 && name[0] == '[' && name[len - 1] == ']') {
		name++; /* "[vdso]" -> "vdso" */
		len -= 2;
	}
	if (!len || (len == 7 && memcmp(name, "unknown", 7) == 0))
		return sb_append(b, "[unknown]", strlen("[unknown]"));
	err = sb_append(b, "[", 1);
	if (!err)
		err = sb_append_name(b, name, len);
	if (err)
		return err;
	int n = snprintf(tail, sizeof(tail), "+0x%" PRIx64 "]", f->address);
	return sb_append(b, tail, (size_t)n);
}

static int sb_append_frame(struct strbuf *b, const struct sym_frame *f, bool kernel)
{
	int err = sb_append(b, ";", 1);

	if (err)
		return err;
	if (f->function && f->function[0])
		err = sb_append_name(b, f->function, strlen(f->function));
	else
		err = sb_append_unknown(b, f);
	if (!err && kernel)
		err = sb_append(b, "_[k]", strlen("_[k]"));
	/* the inlined calls, outermost (the caller's callee) first */
	for (size_t i = f->inlined ? f->n_inlined : 0; !err && i-- > 0;) {
		const char *name = enc_inline_name(&f->inlined[i]);

		err = sb_append(b, ";", 1);
		if (!err)
			err = sb_append_name(b, name, strlen(name));
		if (!err)
			err = sb_append(b, "_[i]", strlen("_[i]"));
	}
	return err;
}

/* Folds one stack into c->line. Returns 0 or -errno. */
static int line_build(struct fold_ctx *c, const struct profile_stack *st)
{
	size_t n_frames = (size_t)st->n_kernel + st->n_user;
	size_t pcomm_len = strnlen(st->pcomm, sizeof(st->pcomm));
	int err;

	if (n_frames && !st->frames)
		return -EINVAL;
	c->line.len = 0;
	err = sb_append_name(&c->line, st->pcomm, pcomm_len);
	/* frames[] is kernel then user, each leaf first: walk it backwards */
	for (size_t i = n_frames; !err && i-- > 0;) {
		if (!st->frames[i])
			return -EINVAL;
		err = sb_append_frame(&c->line, st->frames[i], i < st->n_kernel);
	}
	if (!err)
		c->line.s[c->line.len] = '\0';
	return err;
}

/* Adds count to the line whose text is c->line, creating it if new.
 * Returns 0 or -errno. */
static int line_add(struct fold_ctx *c, uint64_t count)
{
	uint32_t id;
	int err = strtab__findnew(&c->lines, c->line.s, c->line.len, &id);

	if (err)
		return err;
	if (id == c->n_counts) {
		uint64_t *counts =
			array__grow(c->counts, &c->cap_counts, c->n_counts + 1, sizeof(*counts));

		if (!counts)
			return -ENOMEM;
		c->counts = counts;
		c->counts[c->n_counts++] = 0;
	}
	if (__builtin_add_overflow(c->counts[id], count, &c->counts[id]))
		return -EOVERFLOW;
	return 0;
}

/* One output line, for sorting. */
struct fold_line {
	const char *text; /* NUL-terminated, in the arena */
	size_t len;
	uint64_t count;
};

static int fold_line_cmp(const void *a, const void *b)
{
	const struct fold_line *x = a, *y = b;

	return strcmp(x->text, y->text);
}

static size_t u64_to_dec(uint64_t v, char *out)
{
	char tmp[20];
	size_t n = 0;

	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	for (size_t i = 0; i < n; i++)
		out[i] = tmp[n - 1 - i];
	return n;
}

/* Writes the lines, sorted, as `text count\n` into out (NUL-terminated, len
 * excludes the NUL). Zero counts are left out. Returns 0 or -errno. */
static int output_write(struct fold_ctx *c, struct encoded_buf *out)
{
	size_t n = c->n_counts, total = 1, pos = 0;
	struct fold_line *lines;
	char *buf;
	int err = 0;

	if (n > SIZE_MAX / sizeof(*lines))
		return -E2BIG;
	lines = malloc((n ? n : 1) * sizeof(*lines));
	if (!lines)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		lines[i] = (struct fold_line){.text = strtab__str(&c->lines, (uint32_t)i),
					      .len = strtab__len(&c->lines, (uint32_t)i),
					      .count = c->counts[i]};
		size_t line = lines[i].len + 1 + 20 + 1;

		if (total > SIZE_MAX - line) {
			err = -E2BIG;
			goto cleanup;
		}
		total += line;
	}
	buf = malloc(total);
	if (!buf) {
		err = -ENOMEM;
		goto cleanup;
	}
	if (n)
		qsort(lines, n, sizeof(*lines), fold_line_cmp);
	for (size_t i = 0; i < n; i++) {
		const struct fold_line *e = &lines[i];

		if (!e->count)
			continue;
		memcpy(buf + pos, e->text, e->len);
		pos += e->len;
		buf[pos++] = ' ';
		pos += u64_to_dec(e->count, buf + pos);
		buf[pos++] = '\n';
	}
	buf[pos] = '\0';
	out->data = (uint8_t *)buf;
	out->len = pos;
cleanup:
	free(lines);
	return err;
}

int folded__encode(const struct profile *p, struct encoded_buf *out)
{
	struct fold_ctx c;
	int err = 0;

	if (!p || !out || (p->n_stacks && !p->stacks))
		return -EINVAL;
	out->data = NULL;
	out->len = 0;
	memset(&c, 0, sizeof(c));
	strtab__init(&c.lines, &c.arena, UINT32_MAX - 1);

	for (size_t i = 0; !err && i < p->n_stacks; i++) {
		err = line_build(&c, &p->stacks[i]);
		if (!err)
			err = line_add(&c, p->stacks[i].count);
	}
	if (!err)
		err = output_write(&c, out);
	fold_ctx_deinit(&c);
	return err;
}
