/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Folded-stack encoder: struct profile -> text, one line per distinct stack,
 *
 *	pcomm;user_outermost;...;user_leaf;kernel_outermost;...;kernel_leaf_[k] count
 *
 * the format flamegraph.pl, speedscope and inferno read.
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
 * - One owner: the line texts live in one bump arena; the entry array, the
 *   hash slots and the scratch line are realloc'ed buffers of the context.
 *   fold_ctx_deinit() frees everything on every path.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdalign.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "encoder.h"

#define ARENA_CHUNK_BYTES (64u * 1024)

struct arena_chunk {
	struct arena_chunk *next;
	size_t used, cap;
	max_align_t data[];
};

struct arena {
	struct arena_chunk *head;
};

/* Returns len bytes (no alignment needed: text only), or NULL. */
static char *arena_alloc_text(struct arena *a, size_t len)
{
	struct arena_chunk *c = a->head;

	if (!c || c->cap - c->used < len) {
		size_t cap = len > ARENA_CHUNK_BYTES ? len : ARENA_CHUNK_BYTES;

		if (cap > SIZE_MAX - sizeof(*c))
			return NULL;
		struct arena_chunk *n = malloc(sizeof(*n) + cap);
		if (!n)
			return NULL;
		n->used = 0;
		n->cap = cap;
		if (c && len > ARENA_CHUNK_BYTES / 4) {
			/* a long line gets its own chunk; keep filling the current one */
			n->next = c->next;
			c->next = n;
		} else {
			n->next = c;
			a->head = n;
		}
		c = n;
	}
	char *p = (char *)c->data + c->used;
	c->used += len;
	return p;
}

static void arena_free(struct arena *a)
{
	struct arena_chunk *c = a->head;

	while (c) {
		struct arena_chunk *next = c->next;
		free(c);
		c = next;
	}
	a->head = NULL;
}

static uint64_t hash_text(const char *s, size_t len)
{
	uint64_t h = 0xcbf29ce484222325ULL; /* FNV-1a, then a splitmix64 finish */

	for (size_t i = 0; i < len; i++) {
		h ^= (unsigned char)s[i];
		h *= 0x100000001b3ULL;
	}
	h ^= h >> 30;
	h *= 0xbf58476d1ce4e5b9ULL;
	h ^= h >> 27;
	h *= 0x94d049bb133111ebULL;
	h ^= h >> 31;
	return h;
}

struct fold_entry {
	const char *text; /* NUL-terminated, in the arena */
	size_t len;
	uint64_t hash;
	uint64_t count;
};

/* A growable byte string: the line being built. */
struct strbuf {
	char *s;
	size_t len, cap;
};

struct fold_ctx {
	struct arena arena;
	struct fold_entry *entries;
	size_t n_entries, cap_entries;
	uint32_t *slots; /* entry index + 1; 0 = empty */
	size_t n_slots;	 /* power of two */
	struct strbuf line;
};

static void fold_ctx_deinit(struct fold_ctx *c)
{
	arena_free(&c->arena);
	free(c->entries);
	free(c->slots);
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

static int slots_grow(struct fold_ctx *c)
{
	size_t ncap = c->n_slots ? c->n_slots * 2 : 1024;
	uint32_t *slots = calloc(ncap, sizeof(*slots));

	if (!slots)
		return -ENOMEM;
	for (size_t e = 0; e < c->n_entries; e++) {
		size_t i = c->entries[e].hash & (ncap - 1);

		while (slots[i])
			i = (i + 1) & (ncap - 1);
		slots[i] = (uint32_t)(e + 1);
	}
	free(c->slots);
	c->slots = slots;
	c->n_slots = ncap;
	return 0;
}

/* Adds count to the entry whose text is c->line, creating it if new.
 * Returns 0 or -errno. */
static int entry_add(struct fold_ctx *c, uint64_t count)
{
	const char *text = c->line.s;
	size_t len = c->line.len;
	uint64_t h = hash_text(text, len);
	size_t mask = c->n_slots - 1;
	size_t i;

	for (i = h & mask; c->slots[i]; i = (i + 1) & mask) {
		struct fold_entry *e = &c->entries[c->slots[i] - 1];

		if (e->hash == h && e->len == len && memcmp(e->text, text, len) == 0) {
			if (__builtin_add_overflow(e->count, count, &e->count))
				return -EOVERFLOW;
			return 0;
		}
	}

	if (c->n_entries >= UINT32_MAX - 1)
		return -E2BIG;
	if (c->n_entries == c->cap_entries) {
		size_t ncap = c->cap_entries ? c->cap_entries * 2 : 256;
		struct fold_entry *entries;

		if (ncap > SIZE_MAX / sizeof(*entries))
			return -E2BIG;
		entries = realloc(c->entries, ncap * sizeof(*entries));
		if (!entries)
			return -ENOMEM;
		c->entries = entries;
		c->cap_entries = ncap;
	}
	char *copy = arena_alloc_text(&c->arena, len + 1);
	if (!copy)
		return -ENOMEM;
	memcpy(copy, text, len + 1);
	c->entries[c->n_entries++] =
		(struct fold_entry){.text = copy, .len = len, .hash = h, .count = count};

	if (c->n_entries * 2 > c->n_slots)
		return slots_grow(c); /* re-inserts every entry, the new one too */
	c->slots[i] = (uint32_t)c->n_entries;
	return 0;
}

static int entry_cmp(const void *a, const void *b)
{
	const struct fold_entry *x = a, *y = b;

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

/* Writes the sorted entries as `text count\n` lines into out (NUL-terminated,
 * len excludes the NUL). Zero counts are left out. Returns 0 or -errno. */
static int output_write(struct fold_ctx *c, struct encoded_buf *out)
{
	size_t total = 1;

	if (c->n_entries)
		qsort(c->entries, c->n_entries, sizeof(*c->entries), entry_cmp);
	for (size_t i = 0; i < c->n_entries; i++) {
		size_t line = c->entries[i].len + 1 + 20 + 1;

		if (total > SIZE_MAX - line)
			return -E2BIG;
		total += line;
	}
	char *buf = malloc(total);
	if (!buf)
		return -ENOMEM;
	size_t pos = 0;
	for (size_t i = 0; i < c->n_entries; i++) {
		const struct fold_entry *e = &c->entries[i];

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
	return 0;
}

int folded__encode(const struct profile *p, struct encoded_buf *out)
{
	struct fold_ctx c;
	int err;

	if (!p || !out || (p->n_stacks && !p->stacks))
		return -EINVAL;
	out->data = NULL;
	out->len = 0;
	memset(&c, 0, sizeof(c));

	err = slots_grow(&c);
	for (size_t i = 0; !err && i < p->n_stacks; i++) {
		err = line_build(&c, &p->stacks[i]);
		if (!err)
			err = entry_add(&c, p->stacks[i].count);
	}
	if (!err)
		err = output_write(&c, out);
	fold_ctx_deinit(&c);
	return err;
}
