// SPDX-License-Identifier: BSD-2-Clause
/*
 * flamegraph: an aggregated profile -> one self-contained interactive SVG.
 *
 * Why this shape:
 * - The stacks are merged into a tree (root = every sample; then the process
 *   name; then user frames outermost to leaf; then kernel frames outermost to
 *   leaf). Functions the symbolizer found inlined at a frame's address are
 *   frames of their own above it, caller first, in a colour class of their
 *   own (fg-inline) and marked "(inlined)" in their tooltip. Child lookup goes through one
 * open-addressing hash table keyed by (parent, name, colour class), names are interned once, and
 * each distinct `struct sym_frame *` is named once (frames are interned by the symbolizer, so a
 * pointer-keyed cache skips formatting and hashing the same name per sample). 100k stacks cost a
 * few hash probes per frame, no linear scans.
 * - Layout sorts siblings by name (as flamegraph.pl does: stable, diffable),
 *   using precomputed string ranks so the sort compares integers only. Each
 *   frame's horizontal position is kept in samples (data-x, data-v), so the
 *   embedded script can zoom exactly, without floating-point drift.
 * - Frames narrower than FG_MIN_WIDTH px are not drawn (they would be
 *   invisible and bloat the file), but their samples stay in their ancestors,
 *   and they are listed compactly in the script so that search still counts
 *   them: the "Matched:" percent covers every sample.
 * - Every string that reaches the XML goes through one sanitizer (valid UTF-8,
 *   no control characters) at interning time and one escaper at output time,
 *   so a symbol such as `std::vector<int>::operator<` or `a&b` cannot break
 *   the document; strings placed in the script are JSON-escaped with `<`, `>`
 *   and `&` as \u escapes, so no "]]>" can end its CDATA section early.
 * - The output has no external reference at all: no DOCTYPE, no fonts, no
 *   href; the only URL is the SVG namespace.
 *
 * Ownership: everything is built in a `struct fg_tree` freed at once on return;
 * the profile and its frames are only read. The caller owns out->data.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "encoder.h"
#include "encoder_internal.h"

#define FG_NONE		 UINT32_MAX
#define FG_DEFAULT_WIDTH 1200u
#define FG_MIN_PX_WIDTH	 200u /* narrower requests are widened: controls need room */
#define FG_XPAD		 10.0
#define FG_TOP		 84.0 /* title, subtitle, legend */
#define FG_BOTTOM	 34.0 /* details line */
#define FG_FRAME_H	 16.0
#define FG_CHAR_W	 7.08		  /* px, average glyph width estimate at 12 px (0.59 em) */
#define FG_MIN_WIDTH	 0.1		  /* px: narrower frames are not drawn */
#define FG_MAX_STRS	 ((1u << 29) - 1) /* distinct names: node keys pack a name in 29 bits */
#define FG_MAX_NAME	 4096		  /* longer names are cut (C++ templates can be huge) */

/* Colour classes; the order is the sort tiebreak between same-named siblings. */
enum fg_cls {
	FG_ROOT = 0,
	FG_PROC,
	FG_USER,
	FG_KERNEL,
	FG_IDLE,
	FG_INLINE, /* a function inlined into the frame below it */
	FG_OFFCPU, /* wall-clock view: the "[off-CPU]" marker and the kernel frames above it */
};

static const char *const fg_cls_name[] = {
	[FG_ROOT] = "fg-root",	   [FG_PROC] = "fg-proc", [FG_USER] = "fg-user",
	[FG_KERNEL] = "fg-kernel", [FG_IDLE] = "fg-idle", [FG_INLINE] = "fg-inline",
	[FG_OFFCPU] = "fg-offcpu",
};

/* A growable byte buffer with a sticky error: appends after a failure are no-ops. */
struct fg_buf {
	char *data;
	size_t len, cap;
	int err; /* 0 or -errno */
};

/*
 * Open addressing, linear probing; an entry holds value + 1 (0 = empty) beside
 * its 64-bit hash, so a probe touches one cache line. For nodes and frames the
 * hash is mix64() of the whole key, a bijection: equal hashes mean equal keys,
 * and a lookup never reads the node or frame itself.
 */
struct fg_ht_ent {
	uint64_t hash;
	uint32_t val;
};

struct fg_ht {
	struct fg_ht_ent *ent;
	size_t mask, used;
};

struct fg_node {
	uint64_t value; /* samples in this frame and below */
	uint64_t x;	/* samples left of this frame (layout) */
	uint32_t parent, name, depth;
	uint8_t cls;
};

struct fg_tree {
	struct fg_node *nodes;
	size_t n_nodes, cap_nodes;
	struct fg_ht node_ht; /* mix64(parent << 32 | name << 3 | cls) -> node */

	struct arena arena; /* the interned names */
	struct strtab strs; /* sanitized name -> string id */

	uint32_t *frame_name; /* names of each distinct frame pointer seen: its own,
			       * then those of its inlined[0..n_inlined) */
	size_t n_frames, cap_frames;
	struct fg_ht frame_ht; /* mix64(frame pointer) -> index of its names */

	struct fg_buf scratch; /* sanitized name being interned */
	uint32_t max_depth;
};

/* ---- buffer ---- */

static bool buf_reserve(struct fg_buf *b, size_t more)
{
	if (b->err)
		return false;
	if (more <= b->cap - b->len)
		return true;
	size_t cap = b->cap ? b->cap : 4096;
	while (cap - b->len < more) {
		if (cap > SIZE_MAX / 2) {
			b->err = -ENOMEM;
			return false;
		}
		cap *= 2;
	}
	char *d = realloc(b->data, cap);
	if (!d) {
		b->err = -ENOMEM;
		return false;
	}
	b->data = d;
	b->cap = cap;
	return true;
}

static void buf_add(struct fg_buf *b, const void *s, size_t n)
{
	if (!n || !buf_reserve(b, n))
		return;
	memcpy(b->data + b->len, s, n);
	b->len += n;
}

static void buf_puts(struct fg_buf *b, const char *s)
{
	buf_add(b, s, strlen(s));
}

static void buf_putc(struct fg_buf *b, char c)
{
	buf_add(b, &c, 1);
}

__attribute__((format(printf, 2, 3))) static void buf_printf(struct fg_buf *b, const char *fmt, ...)
{
	va_list ap;
	if (!buf_reserve(b, 256))
		return;
	va_start(ap, fmt);
	int n = vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
	va_end(ap);
	if (n < 0) {
		b->err = -EINVAL;
		return;
	}
	if ((size_t)n >= b->cap - b->len) {
		if (!buf_reserve(b, (size_t)n + 1))
			return;
		va_start(ap, fmt);
		vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
		va_end(ap);
	}
	b->len += (size_t)n;
}

/* Appends v in decimal: the omitted-frame list has one triple per tiny frame. */
static void buf_put_u64(struct fg_buf *b, uint64_t v)
{
	char tmp[20];
	size_t i = sizeof(tmp);
	do {
		tmp[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	buf_add(b, tmp + i, sizeof(tmp) - i);
}

/*
 * Appends v >= 0 rounded to `decimals` (1 or 2) places, as "%.*f" would
 * print it. The frame loop writes five such numbers per frame; this is
 * about ten times cheaper than printf's floating-point path, which was most
 * of the cost of writing a large flame graph.
 */
static void buf_put_fixed(struct fg_buf *b, double v, int decimals)
{
	uint64_t scale = decimals == 1 ? 10 : 100;
	uint64_t n = (uint64_t)(v * (double)scale + 0.5);
	buf_put_u64(b, n / scale);
	buf_putc(b, '.');
	if (decimals == 2)
		buf_putc(b, (char)('0' + n / 10 % 10));
	buf_putc(b, (char)('0' + n % 10));
}

/* Appends s with the five XML special characters escaped. */
static void buf_put_xml(struct fg_buf *b, const char *s, size_t n)
{
	size_t run = 0;
	for (size_t i = 0; i < n; i++) {
		const char *rep;
		switch (s[i]) {
		case '<':
			rep = "&lt;";
			break;
		case '>':
			rep = "&gt;";
			break;
		case '&':
			rep = "&amp;";
			break;
		case '"':
			rep = "&quot;";
			break;
		case '\'':
			rep = "&apos;";
			break;
		default:
			continue;
		}
		buf_add(b, s + run, i - run);
		buf_puts(b, rep);
		run = i + 1;
	}
	buf_add(b, s + run, n - run);
}

/* Appends s as a JSON/JS string literal that is also safe inside CDATA. */
static void buf_put_js(struct fg_buf *b, const char *s)
{
	buf_putc(b, '"');
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			buf_printf(b, "\\%c", c);
		else if (c < 0x20 || c == '<' || c == '>' || c == '&')
			buf_printf(b, "\\u%04x", c);
		else
			buf_putc(b, (char)c);
	}
	buf_putc(b, '"');
}

/* ---- hashing ---- */

/*
 * MurmurHash3's 64-bit finalizer, a bijection. Not enc_hash_u64() (splitmix64):
 * frame colours are derived from mix64(enc_fnv1a(name)), so swapping it would
 * recolour every flame graph.
 */
static uint64_t mix64(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ULL;
	x ^= x >> 33;
	return x;
}

static int ht_init(struct fg_ht *t, size_t cap)
{
	t->ent = calloc(cap, sizeof(*t->ent));
	if (!t->ent)
		return -ENOMEM;
	t->mask = cap - 1;
	t->used = 0;
	return 0;
}

static void ht_deinit(struct fg_ht *t)
{
	free(t->ent);
	memset(t, 0, sizeof(*t));
}

/* Stores value v with hash h in the empty slot i (from a failed lookup); grows at 1/2 load. */
static int ht_insert_at(struct fg_ht *t, size_t i, uint64_t h, uint32_t v)
{
	t->ent[i].val = v + 1;
	t->ent[i].hash = h;
	if (++t->used * 2 <= t->mask + 1)
		return 0;

	size_t cap = (t->mask + 1) * 2;
	struct fg_ht nt;
	int err = ht_init(&nt, cap);
	if (err) {
		ht_deinit(&nt);
		return err; /* the old table still holds v */
	}
	for (size_t j = 0; j <= t->mask; j++) {
		if (!t->ent[j].val)
			continue;
		size_t k = t->ent[j].hash & nt.mask;
		while (nt.ent[k].val)
			k = (k + 1) & nt.mask;
		nt.ent[k] = t->ent[j];
	}
	nt.used = t->used;
	ht_deinit(t);
	*t = nt;
	return 0;
}

/* ---- strings ---- */

/*
 * Copies s into t->scratch as valid UTF-8 without control characters (each bad
 * byte becomes '?'), cut at FG_MAX_NAME bytes on a character boundary.
 */
static int sanitize(struct fg_tree *t, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	struct fg_buf *b = &t->scratch;
	b->len = 0;
	while (*p && b->len < FG_MAX_NAME) {
		unsigned char c = p[0];
		size_t n = 0;
		uint32_t cp = 0;
		if (c < 0x80)
			n = (c < 0x20 || c == 0x7f) ? 0 : 1;
		else if (c >= 0xc2 && c <= 0xdf)
			n = 2, cp = c & 0x1f;
		else if (c >= 0xe0 && c <= 0xef)
			n = 3, cp = c & 0x0f;
		else if (c >= 0xf0 && c <= 0xf4)
			n = 4, cp = c & 0x07;
		for (size_t i = 1; i < n; i++) {
			if ((p[i] & 0xc0) != 0x80) {
				n = 0;
				break;
			}
			cp = (cp << 6) | (p[i] & 0x3f);
		}
		/* overlong, surrogate, beyond U+10FFFF, or a non-character XML forbids */
		if ((n == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff) || cp >= 0xfffe)) ||
		    (n == 4 && (cp < 0x10000 || cp > 0x10ffff)))
			n = 0;
		if (n == 0) {
			buf_putc(b, '?');
			p++;
		} else {
			buf_add(b, p, n);
			p += n;
		}
	}
	buf_putc(b, '\0');
	return b->err;
}

static const char *str_at(const struct fg_tree *t, uint32_t id)
{
	return strtab__str(&t->strs, id);
}

/* Interns s (sanitized first); *id receives its string id. Returns 0 or -errno. */
static int intern(struct fg_tree *t, const char *s, uint32_t *id)
{
	int err = sanitize(t, s);
	if (err)
		return err;
	return strtab__findnew(&t->strs, t->scratch.data, t->scratch.len - 1, id);
}

/* ---- tree ---- */

static void tree_free(struct fg_tree *t)
{
	free(t->nodes);
	ht_deinit(&t->node_ht);
	strtab__deinit(&t->strs);
	arena__free(&t->arena);
	free(t->frame_name);
	ht_deinit(&t->frame_ht);
	free(t->scratch.data);
}

static int node_new(struct fg_tree *t, uint32_t parent, uint32_t name, uint8_t cls, uint32_t *out)
{
	if (t->n_nodes >= FG_NONE - 1)
		return -E2BIG;
	struct fg_node *nodes =
		array__grow(t->nodes, &t->cap_nodes, t->n_nodes + 1, sizeof(*nodes));
	if (!nodes)
		return -ENOMEM;
	t->nodes = nodes;
	struct fg_node *nd = &t->nodes[t->n_nodes];
	nd->value = 0;
	nd->x = 0;
	nd->parent = parent;
	nd->name = name;
	nd->cls = cls;
	nd->depth = parent == FG_NONE ? 0 : t->nodes[parent].depth + 1;
	if (nd->depth > t->max_depth)
		t->max_depth = nd->depth;
	*out = (uint32_t)t->n_nodes++;
	return 0;
}

/* Names are below FG_MAX_STRS, so the key packs into 64 bits and mix64 keeps it unique. */
static uint64_t node_hash(uint32_t parent, uint32_t name, uint8_t cls)
{
	return mix64((uint64_t)parent << 32 | (uint64_t)name << 3 | cls);
}

/* Finds or creates the child of parent named name with class cls. Returns 0 or -errno. */
static int child_findnew(struct fg_tree *t, uint32_t parent, uint32_t name, uint8_t cls,
			 uint32_t *out)
{
	uint64_t h = node_hash(parent, name, cls);
	size_t i = h & t->node_ht.mask;
	for (; t->node_ht.ent[i].val; i = (i + 1) & t->node_ht.mask) {
		if (t->node_ht.ent[i].hash == h) {
			*out = t->node_ht.ent[i].val - 1;
			return 0;
		}
	}
	int err = node_new(t, parent, name, cls, out);
	return err ? err : ht_insert_at(&t->node_ht, i, h, *out);
}

/*
 * Names a frame: function, else [module+0xoffset], else [unknown]; then its
 * inlined calls. Cached per frame pointer: *out receives the index in
 * t->frame_name of the frame's own name, followed by those of inlined[0..n).
 */
static int frame_names(struct fg_tree *t, const struct sym_frame *f, size_t *out)
{
	uint64_t h = mix64((uint64_t)(uintptr_t)f);
	size_t i = h & t->frame_ht.mask;
	for (; t->frame_ht.ent[i].val; i = (i + 1) & t->frame_ht.mask) {
		if (t->frame_ht.ent[i].hash == h) {
			*out = t->frame_ht.ent[i].val - 1;
			return 0;
		}
	}

	char tmp[512];
	const char *name = "[unknown]";
	if (f && f->function && f->function[0]) {
		name = f->function;
	} else if (f && f->module && f->module->name && f->module->name[0]) {
		snprintf(tmp, sizeof(tmp), "[%.400s+0x%" PRIx64 "]", f->module->name, f->address);
		name = tmp;
	}
	size_t n_inl = f && f->inlined ? f->n_inlined : 0;
	if (n_inl >= FG_NONE - 1 - t->n_frames)
		return -E2BIG;
	uint32_t *names =
		array__grow(t->frame_name, &t->cap_frames, t->n_frames + 1 + n_inl, sizeof(*names));
	if (!names)
		return -ENOMEM;
	t->frame_name = names;
	int err = intern(t, name, &names[t->n_frames]);
	for (size_t k = 0; !err && k < n_inl; k++)
		err = intern(t, enc_inline_name(&f->inlined[k]), &names[t->n_frames + 1 + k]);
	if (err)
		return err;
	*out = t->n_frames;
	t->n_frames += 1 + n_inl;
	return ht_insert_at(&t->frame_ht, i, h, (uint32_t)*out);
}

static bool is_idle(const struct profile_stack *s)
{
	return s->idle || strncmp(s->pcomm, "[idle]", PROFILE_COMM_LEN) == 0;
}

/* Adds a stack's count along: root, process, user outermost..leaf, kernel
 * outermost..leaf, each frame followed by its inlined calls, caller first. */
static int tree_add(struct fg_tree *t, const struct profile_stack *s)
{
	char comm[PROFILE_COMM_LEN + 1];
	bool idle = is_idle(s);
	uint32_t cur = 0, name;
	int err;

	/* pcomm/comm are fixed arrays that may lack their NUL: bound the copy. */
	const char *src = s->pcomm[0] ? s->pcomm : s->comm;
	size_t n = strnlen(src, PROFILE_COMM_LEN);
	memcpy(comm, src, n);
	comm[n] = '\0';
	if (!n)
		strcpy(comm, idle ? "[idle]" : "[unknown]");

	t->nodes[0].value += s->count;
	err = intern(t, comm, &name);
	if (!err)
		err = child_findnew(t, cur, name, idle ? FG_IDLE : FG_PROC, &cur);
	if (err)
		return err;
	t->nodes[cur].value += s->count;

	size_t nk = s->n_kernel, nt = nk + s->n_user;
	for (size_t k = 0; k < nt || (k == nt && s->off_cpu); k++) {
		if (k == s->n_user && s->off_cpu) {
			/* Where the thread left the CPU: its time off it sits on
			 * this marker, beside the on-CPU children of the same
			 * user frames. */
			err = intern(t, "[off-CPU]", &name);
			if (!err)
				err = child_findnew(t, cur, name, FG_OFFCPU, &cur);
			if (err)
				return err;
			t->nodes[cur].value += s->count;
			if (k == nt)
				break;
		}
		/* user frames (indexes nt-1 down to nk), then kernel (nk-1 down to 0) */
		size_t i = k < s->n_user ? nt - 1 - k : nk - 1 - (k - s->n_user);
		uint8_t cls = idle	   ? FG_IDLE
			      : i >= nk	   ? FG_USER
			      : s->off_cpu ? FG_OFFCPU
					   : FG_KERNEL;
		const struct sym_frame *f = s->frames[i];
		size_t names;
		err = frame_names(t, f, &names);
		if (!err)
			err = child_findnew(t, cur, t->frame_name[names], cls, &cur);
		if (err)
			return err;
		t->nodes[cur].value += s->count;
		for (size_t j = f && f->inlined ? f->n_inlined : 0; j-- > 0;) {
			err = child_findnew(t, cur, t->frame_name[names + 1 + j], FG_INLINE, &cur);
			if (err)
				return err;
			t->nodes[cur].value += s->count;
		}
	}
	return 0;
}

/* ---- layout ---- */

struct rank_ent {
	const char *s;
	uint32_t id;
};

static int cmp_rank(const void *a, const void *b)
{
	return strcmp(((const struct rank_ent *)a)->s, ((const struct rank_ent *)b)->s);
}

struct order_ent {
	uint64_t key; /* parent << 32 | name rank */
	uint32_t cls, idx;
};

static int cmp_order(const void *a, const void *b)
{
	const struct order_ent *x = a, *y = b;
	if (x->key != y->key)
		return x->key < y->key ? -1 : 1;
	if (x->cls != y->cls)
		return x->cls < y->cls ? -1 : 1;
	return 0;
}

/*
 * Sorts siblings by name and sets every node's x. Parents are created before
 * their children, so sorting by parent index visits a parent's group only
 * after the parent's own x is known. *order receives node indexes, root first.
 */
static int tree_layout(struct fg_tree *t, uint32_t **order)
{
	struct rank_ent *re = NULL;
	struct order_ent *oe = NULL;
	uint32_t *rank = NULL, *ord = NULL;
	int err = -ENOMEM;

	re = malloc((t->strs.n ? t->strs.n : 1) * sizeof(*re));
	rank = malloc((t->strs.n ? t->strs.n : 1) * sizeof(*rank));
	oe = malloc(t->n_nodes * sizeof(*oe));
	ord = malloc(t->n_nodes * sizeof(*ord));
	if (!re || !rank || !oe || !ord)
		goto cleanup;

	for (size_t i = 0; i < t->strs.n; i++) {
		re[i].s = str_at(t, (uint32_t)i);
		re[i].id = (uint32_t)i;
	}
	qsort(re, t->strs.n, sizeof(*re), cmp_rank);
	for (size_t i = 0; i < t->strs.n; i++)
		rank[re[i].id] = (uint32_t)i;

	for (size_t i = 1; i < t->n_nodes; i++) {
		const struct fg_node *nd = &t->nodes[i];
		oe[i - 1].key = (uint64_t)nd->parent << 32 | rank[nd->name];
		oe[i - 1].cls = nd->cls;
		oe[i - 1].idx = (uint32_t)i;
	}
	qsort(oe, t->n_nodes - 1, sizeof(*oe), cmp_order);

	ord[0] = 0;
	t->nodes[0].x = 0;
	uint32_t group = FG_NONE;
	uint64_t off = 0;
	for (size_t i = 0; i + 1 < t->n_nodes; i++) {
		struct fg_node *nd = &t->nodes[oe[i].idx];
		if (nd->parent != group) {
			group = nd->parent;
			off = t->nodes[group].x;
		}
		nd->x = off;
		off += nd->value;
		ord[i + 1] = oe[i].idx;
	}
	*order = ord;
	ord = NULL;
	err = 0;
cleanup:
	free(re);
	free(rank);
	free(oe);
	free(ord);
	return err;
}

/* ---- output ---- */

static void frame_fill(uint8_t cls, const char *name, int rgb[3])
{
	uint64_t h = mix64(enc_fnv1a(name, strlen(name)));
	double v1 = (double)(h & 0xffff) / 65535.0;
	double v2 = (double)((h >> 16) & 0xffff) / 65535.0;
	double v3 = (double)((h >> 32) & 0xffff) / 65535.0;
	switch (cls) {
	case FG_USER: /* hot: red to yellow */
		rgb[0] = 205 + (int)(50 * v3);
		rgb[1] = (int)(230 * v1);
		rgb[2] = (int)(55 * v2);
		break;
	case FG_KERNEL: /* aqua */
		rgb[0] = 50 + (int)(60 * v1);
		rgb[1] = 165 + (int)(55 * v1);
		rgb[2] = 165 + (int)(55 * v2);
		break;
	case FG_PROC: /* lavender */
		rgb[0] = 170 + (int)(40 * v1);
		rgb[1] = 150 + (int)(30 * v1);
		rgb[2] = 225 + (int)(20 * v2);
		break;
	case FG_INLINE: /* yellow-green: apart from the user frames' reds */
		rgb[0] = 150 + (int)(60 * v1);
		rgb[1] = 195 + (int)(40 * v2);
		rgb[2] = 60 + (int)(50 * v3);
		break;
	case FG_OFFCPU: /* blue: cold, as the off-CPU half of hot/cold flame graphs */
		rgb[0] = 60 + (int)(50 * v1);
		rgb[1] = 110 + (int)(60 * v1);
		rgb[2] = 200 + (int)(55 * v2);
		break;
	case FG_IDLE: /* blue-grey */
		rgb[0] = 175 + (int)(30 * v1);
		rgb[1] = 180 + (int)(30 * v1);
		rgb[2] = 200 + (int)(30 * v1);
		break;
	default: /* root */
		rgb[0] = 215;
		rgb[1] = 215;
		rgb[2] = 210;
		break;
	}
}

/* Writes the label that fits w px: the name, or its head and "..", or nothing. */
static void put_label(struct fg_buf *b, const char *name, double w)
{
	double fit = (w - 6) / FG_CHAR_W;
	if (fit < 3)
		return;
	size_t max = fit > (double)FG_MAX_NAME ? FG_MAX_NAME : (size_t)fit;
	size_t chars = 0, cut = 0, i = 0;
	for (; name[i]; i++) {
		if (((unsigned char)name[i] & 0xc0) == 0x80)
			continue; /* UTF-8 continuation byte */
		if (chars == max - 2)
			cut = i;
		if (++chars > max)
			break;
	}
	if (chars <= max) {
		buf_put_xml(b, name, i);
		return;
	}
	buf_put_xml(b, name, cut);
	buf_puts(b, "..");
}

static const char fg_style[] =
	"text { font-family: Verdana, 'DejaVu Sans', sans-serif; font-size: 12px; fill: #000; }\n"
	"#title { font-size: 17px; }\n"
	"#subtitle, text.legend { font-size: 12px; fill: #444; }\n"
	".ctl { cursor: pointer; fill: #1a4f9c; }\n"
	".ctl:hover { text-decoration: underline; }\n"
	".ctl.dim { opacity: 0.35; }\n"
	".func_g { cursor: pointer; }\n"
	".func_g:hover > rect { stroke: #000; stroke-width: 0.5; }\n"
	".func_g > text { pointer-events: none; }\n"
	".func_g.parent { opacity: 0.5; }\n"
	".func_g.hide { display: none; }\n";

/*
 * The interactive part. Frame geometry lives in samples (data-x, data-v,
 * data-d); px = XPAD + (x - zoom.x) * PLOTW / zoom.v. fgNames and fgOmitted
 * (name index, x, v triples) describe the frames too narrow to draw, so that
 * search counts them. Exposed: search(term), resetSearch(), unzoom(), zoom(g).
 * Keep the text free of the CDATA terminator.
 */
static const char fg_script[] =
	"'use strict';\n"
	"var fgFrames = [], fgZoomed = null, fgTerm = null;\n"
	"var fgSvg = document.documentElement;\n"
	"var XPAD = +fgSvg.getAttribute('data-xpad'), PLOTW = +fgSvg.getAttribute('data-plotw');\n"
	"var TOTAL = +fgSvg.getAttribute('data-total');\n"
	"var UNIT = fgSvg.getAttribute('data-unit') || 'samples';\n"
	"var CHARW = +fgSvg.getAttribute('data-charw'), MINW = +fgSvg.getAttribute('data-minw');\n"
	"var MATCH_FILL = 'rgb(230,0,230)';\n"
	"function fgPct(v) { return TOTAL ? (100 * v / TOTAL).toFixed(2) : '0.00'; }\n"
	"function fgLabel(f, x, w) {\n"
	"  f.t.setAttribute('x', (x + 3).toFixed(2));\n"
	"  var n = Math.floor((w - 6) / CHARW);\n"
	"  if (n < 3) { f.t.textContent = ''; return; }\n"
	"  var cps = Array.from(f.name);\n"
	"  f.t.textContent = cps.length <= n ? f.name : cps.slice(0, n - 2).join('') + '..';\n"
	"}\n"
	"function fgPlace(f, x, w) {\n"
	"  f.r.setAttribute('x', x.toFixed(2));\n"
	"  f.r.setAttribute('width', w.toFixed(2));\n"
	"  f.g.classList.remove('hide');\n"
	"  fgLabel(f, x, w);\n"
	"}\n"
	"function fgRestore(f) {\n"
	"  f.r.setAttribute('x', f.ox.toFixed(2));\n"
	"  f.r.setAttribute('width', f.ow.toFixed(2));\n"
	"  f.t.setAttribute('x', (f.ox + 3).toFixed(2));\n"
	"  if (f.t.textContent !== f.label) f.t.textContent = f.label;\n"
	"  f.g.classList.remove('hide', 'parent');\n"
	"}\n"
	"function zoom(g) {\n"
	"  var z = g.fg || g;\n"
	"  if (z.d === 0) { unzoom(); return; }\n"
	"  fgZoomed = z;\n"
	"  var scale = PLOTW / z.v;\n"
	"  for (var i = 0; i < fgFrames.length; i++) {\n"
	"    var f = fgFrames[i];\n"
	"    if (f.d <= z.d && f.x <= z.x && f.x + f.v >= z.x + z.v) {\n"
	"      fgPlace(f, XPAD, PLOTW);\n"
	"      f.g.classList.toggle('parent', f !== z);\n"
	"    } else if (f.d > z.d && f.x >= z.x && f.x + f.v <= z.x + z.v && f.v * scale >= MINW) "
	"{\n"
	"      fgPlace(f, XPAD + (f.x - z.x) * scale, f.v * scale);\n"
	"      f.g.classList.remove('parent');\n"
	"    } else {\n"
	"      f.g.classList.add('hide');\n"
	"    }\n"
	"  }\n"
	"  document.getElementById('unzoom').classList.remove('dim');\n"
	"}\n"
	"function unzoom() {\n"
	"  fgZoomed = null;\n"
	"  for (var i = 0; i < fgFrames.length; i++) {\n"
	"    fgRestore(fgFrames[i]);\n"
	"  }\n"
	"  document.getElementById('unzoom').classList.add('dim');\n"
	"}\n"
	"function fgRegExp(term) {\n"
	"  try { return new RegExp(term); } catch (e) {\n"
	"    return new RegExp(term.replace(/[.*+?^${}()|[\\]\\\\]/g, '\\\\$&'));\n"
	"  }\n"
	"}\n"
	"function resetSearch() {\n"
	"  fgTerm = null;\n"
	"  for (var i = 0; i < fgFrames.length; i++) {\n"
	"    fgFrames[i].r.setAttribute('fill', fgFrames[i].fill);\n"
	"    fgFrames[i].g.classList.remove('match');\n"
	"  }\n"
	"  document.getElementById('matched').textContent = '';\n"
	"  document.getElementById('search').textContent = 'Search';\n"
	"}\n"
	"function search(term) {\n"
	"  if (term === undefined || term === null || term === '') { resetSearch(); return null; "
	"}\n"
	"  var re = fgRegExp(String(term)), iv = [], i;\n"
	"  fgTerm = String(term);\n"
	"  for (i = 0; i < fgFrames.length; i++) {\n"
	"    var f = fgFrames[i];\n"
	"    if (re.test(f.name)) {\n"
	"      f.r.setAttribute('fill', MATCH_FILL);\n"
	"      f.g.classList.add('match');\n"
	"      iv.push([f.x, f.v]);\n"
	"    } else {\n"
	"      f.r.setAttribute('fill', f.fill);\n"
	"      f.g.classList.remove('match');\n"
	"    }\n"
	"  }\n"
	"  for (i = 0; i + 2 < fgOmitted.length; i += 3)\n"
	"    if (re.test(fgNames[fgOmitted[i]])) iv.push([fgOmitted[i + 1], fgOmitted[i + 2]]);\n"
	"  // nested matches lie inside their matching ancestor: count the outermost only\n"
	"  iv.sort(function (a, b) { return a[0] - b[0] || b[1] - a[1]; });\n"
	"  var samples = 0, end = -1;\n"
	"  for (i = 0; i < iv.length; i++) {\n"
	"    if (iv[i][0] >= end) { samples += iv[i][1]; end = iv[i][0] + iv[i][1]; }\n"
	"  }\n"
	"  var pct = TOTAL ? 100 * samples / TOTAL : 0;\n"
	"  document.getElementById('matched').textContent = 'Matched: ' + pct.toFixed(1) + '%';\n"
	"  document.getElementById('search').textContent = 'Search: ' + fgTerm;\n"
	"  return { term: fgTerm, samples: samples, percent: pct };\n"
	"}\n"
	"function fgPrompt() {\n"
	"  var t = window.prompt('Search for (regular expression; empty to clear):', fgTerm || "
	"'');\n"
	"  if (t !== null) search(t);\n"
	"}\n"
	"function fgInit() {\n"
	"  var gs = document.querySelectorAll('g.func_g');\n"
	"  for (var i = 0; i < gs.length; i++) {\n"
	"    var g = gs[i], r = g.querySelector('rect');\n"
	"    var f = { g: g, r: r, t: g.querySelector('text'), name: g.getAttribute('data-name'),\n"
	"      v: +g.getAttribute('data-v'), x: +g.getAttribute('data-x'),\n"
	"      d: +g.getAttribute('data-d'), fill: r.getAttribute('fill'),\n"
	"      ox: +r.getAttribute('x'), ow: +r.getAttribute('width') };\n"
	"    f.label = f.t.textContent;\n"
	"    g.fg = f;\n"
	"    fgFrames.push(f);\n"
	"  }\n"
	"  var details = document.getElementById('details');\n"
	"  fgSvg.addEventListener('click', function (e) {\n"
	"    var g = e.target.closest ? e.target.closest('g.func_g') : null;\n"
	"    if (g) zoom(g.fg);\n"
	"  });\n"
	"  fgSvg.addEventListener('mouseover', function (e) {\n"
	"    var g = e.target.closest ? e.target.closest('g.func_g') : null;\n"
	"    if (g) details.textContent = 'Function: ' + g.fg.name + ' (' + g.fg.v +\n"
	"      ' ' + UNIT + ', ' + fgPct(g.fg.v) + '%)';\n"
	"  });\n"
	"  fgSvg.addEventListener('mouseout', function () { details.textContent = ' '; });\n"
	"  document.getElementById('unzoom').addEventListener('click', unzoom);\n"
	"  document.getElementById('search').addEventListener('click', fgPrompt);\n"
	"  window.addEventListener('keydown', function (e) {\n"
	"    if ((e.ctrlKey || e.metaKey) && (e.key === 'f' || e.key === 'F')) {\n"
	"      e.preventDefault();\n"
	"      fgPrompt();\n"
	"    } else if (e.key === 'Escape') {\n"
	"      unzoom();\n"
	"    }\n"
	"  });\n"
	"}\n"
	"fgInit();\n";

static void put_subtitle(struct fg_buf *b, const struct profile *p)
{
	char tmp[160];
	buf_puts(b, "host: ");
	const char *host = p->hostname && p->hostname[0] ? p->hostname : "unknown";
	buf_put_xml(b, host, strlen(host));
	if (p->time_ns) {
		time_t secs = (time_t)(p->time_ns / 1000000000u);
		struct tm tm;
		if (gmtime_r(&secs, &tm) &&
		    strftime(tmp, sizeof(tmp), "%Y-%m-%d %H:%M:%S UTC", &tm))
			buf_printf(b, " \xc2\xb7 start: %s", tmp);
	}
	buf_printf(b, " \xc2\xb7 duration: %.2f s", (double)p->duration_ns / 1e9);
	if (p->frequency_hz)
		buf_printf(b, " \xc2\xb7 frequency: %" PRIu32 " Hz", p->frequency_hz);
	buf_printf(b, " \xc2\xb7 %s: %" PRIu64, p->count_unit ? p->count_unit : "samples",
		   p->total_samples);
	const struct profile_drops *d = &p->drops;
	uint64_t dropped =
		d->kernel_ring_full + d->kernel_no_ring + d->queue_full + d->aggregator_full;
	if (dropped)
		buf_printf(b, " \xc2\xb7 dropped: %" PRIu64, dropped);
}

/* off_cpu: the profile has off-CPU stacks (a wall-clock view). */
static void put_legend(struct fg_buf *b, double y, bool off_cpu)
{
	static const struct {
		uint8_t cls;
		const char *label;
	} items[] = {
		{FG_PROC, "process"},	{FG_USER, "user"}, {FG_KERNEL, "kernel"},
		{FG_INLINE, "inlined"}, {FG_IDLE, "idle"}, {FG_OFFCPU, "off-CPU"},
	};
	double x = FG_XPAD;
	size_t n = sizeof(items) / sizeof(items[0]) - !off_cpu;
	for (size_t i = 0; i < n; i++) {
		int rgb[3];
		frame_fill(items[i].cls, items[i].label, rgb);
		buf_printf(b,
			   "<rect class=\"legend %s\" x=\"%.1f\" y=\"%.1f\" width=\"12\" "
			   "height=\"12\" fill=\"rgb(%d,%d,%d)\" rx=\"2\" ry=\"2\"/>"
			   "<text class=\"legend\" x=\"%.1f\" y=\"%.1f\">%s</text>\n",
			   fg_cls_name[items[i].cls], x, y - 10, rgb[0], rgb[1], rgb[2], x + 16, y,
			   items[i].label);
		x += 90;
	}
}

static int tree_emit(struct fg_tree *t, const uint32_t *order, const struct profile *p,
		     const struct flamegraph_opts *opts, struct fg_buf *b)
{
	unsigned width = opts && opts->width ? opts->width : FG_DEFAULT_WIDTH;
	if (width < FG_MIN_PX_WIDTH)
		width = FG_MIN_PX_WIDTH;
	const char *title = opts && opts->title ? opts->title : "CPU flame graph";
	uint64_t total = t->nodes[0].value;
	double plotw = width - 2 * FG_XPAD;
	double height = FG_TOP + (t->max_depth + 1) * FG_FRAME_H + FG_BOTTOM;
	struct fg_buf js = {0};
	uint32_t *js_id = NULL;
	size_t n_js_names = 0, n_omitted = 0;
	int err;

	js_id = malloc((t->strs.n ? t->strs.n : 1) * sizeof(*js_id));
	if (!js_id) {
		err = -ENOMEM;
		goto cleanup;
	}
	memset(js_id, 0xff, (t->strs.n ? t->strs.n : 1) * sizeof(*js_id));

	buf_puts(b, "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n");
	buf_printf(b,
		   "<svg version=\"1.1\" xmlns=\"http://www.w3.org/2000/svg\" width=\"%u\" "
		   "height=\"%.0f\" viewBox=\"0 0 %u %.0f\" data-xpad=\"%.1f\" data-charw=\"%.2f\" "
		   "data-minw=\"%.2f\" "
		   "data-plotw=\"%.2f\" data-total=\"%" PRIu64 "\" data-unit=\"%s\">\n",
		   width, height, width, height, FG_XPAD, FG_CHAR_W, FG_MIN_WIDTH, plotw, total,
		   p->count_unit ? p->count_unit : "samples");
	buf_puts(b, "<style type=\"text/css\"><![CDATA[\n");
	buf_puts(b, fg_style);
	buf_puts(b, "]]></style>\n");
	buf_printf(b,
		   "<rect id=\"background\" x=\"0\" y=\"0\" width=\"%u\" height=\"%.0f\" "
		   "fill=\"#f6f6ee\"/>\n",
		   width, height);

	buf_printf(b, "<text id=\"title\" x=\"%.1f\" y=\"24\" text-anchor=\"middle\">",
		   width / 2.0);
	buf_put_xml(b, title, strlen(title));
	buf_puts(b, "</text>\n");
	buf_printf(b, "<text id=\"subtitle\" x=\"%.1f\" y=\"44\" text-anchor=\"middle\">",
		   width / 2.0);
	put_subtitle(b, p);
	buf_puts(b, "</text>\n");
	buf_printf(b,
		   "<text id=\"unzoom\" class=\"ctl dim\" x=\"%.1f\" y=\"24\">Reset Zoom</text>\n",
		   FG_XPAD);
	buf_printf(b,
		   "<text id=\"search\" class=\"ctl\" x=\"%.1f\" y=\"24\" "
		   "text-anchor=\"end\">Search</text>\n",
		   width - FG_XPAD);
	bool off_cpu = false;
	for (size_t i = 0; i < p->n_stacks && !off_cpu; i++)
		off_cpu = p->stacks[i].off_cpu;
	put_legend(b, 70, off_cpu);
	buf_printf(b, "<text id=\"matched\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\"></text>\n",
		   width - FG_XPAD, height - 12);
	buf_printf(b, "<text id=\"details\" x=\"%.1f\" y=\"%.1f\"> </text>\n", FG_XPAD,
		   height - 12);
	if (!total)
		buf_printf(b,
			   "<text id=\"empty\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">"
			   "No samples</text>\n",
			   width / 2.0, FG_TOP + 20);

	buf_puts(b, "<g id=\"frames\">\n");
	for (size_t k = 0; total && k < t->n_nodes && !b->err; k++) {
		const struct fg_node *nd = &t->nodes[order[k]];
		const char *name = str_at(t, nd->name);
		size_t nlen = strlen(name);
		double w = (double)nd->value * plotw / (double)total;
		double x = FG_XPAD + (double)nd->x * plotw / (double)total;
		double y = FG_TOP + (double)(t->max_depth - nd->depth) * FG_FRAME_H;
		int rgb[3];

		if (w < FG_MIN_WIDTH) {
			/* too narrow to draw: listed for search instead */
			if (js_id[nd->name] == FG_NONE) {
				js_id[nd->name] = (uint32_t)n_js_names++;
				buf_puts(&js, n_js_names > 1 ? ",\n" : "");
				buf_put_js(&js, name);
			}
			n_omitted++;
			continue;
		}
		frame_fill(nd->cls, name, rgb);
		/* Written piecewise, without printf: this loop is most of the
		 * encoder's time on a large profile. */
		buf_puts(b, "<g class=\"func_g ");
		buf_puts(b, fg_cls_name[nd->cls]);
		buf_puts(b, "\" data-name=\"");
		buf_put_xml(b, name, nlen);
		buf_puts(b, "\" data-v=\"");
		buf_put_u64(b, nd->value);
		buf_puts(b, "\" data-x=\"");
		buf_put_u64(b, nd->x);
		buf_puts(b, "\" data-d=\"");
		buf_put_u64(b, nd->depth);
		buf_puts(b, "\"><title>");
		buf_put_xml(b, name, nlen);
		if (nd->cls == FG_INLINE)
			buf_puts(b, " (inlined)");
		buf_puts(b, " (");
		buf_put_u64(b, nd->value);
		buf_puts(b, " ");
		buf_puts(b, p->count_unit ? p->count_unit : "samples");
		buf_puts(b, ", ");
		buf_put_fixed(b, 100.0 * (double)nd->value / (double)total, 2);
		buf_puts(b, "%)</title><rect x=\"");
		buf_put_fixed(b, x, 2);
		buf_puts(b, "\" y=\"");
		buf_put_fixed(b, y, 1);
		buf_puts(b, "\" width=\"");
		buf_put_fixed(b, w, 2);
		buf_puts(b, "\" height=\"");
		buf_put_fixed(b, FG_FRAME_H - 1, 1);
		buf_puts(b, "\" fill=\"rgb(");
		for (int c = 0; c < 3; c++) {
			buf_put_u64(b, (uint64_t)rgb[c]);
			buf_putc(b, c < 2 ? ',' : ')');
		}
		buf_puts(b, "\" rx=\"2\" ry=\"2\"/><text x=\"");
		buf_put_fixed(b, x + 3, 2);
		buf_puts(b, "\" y=\"");
		buf_put_fixed(b, y + 11.5, 1);
		buf_puts(b, "\">");
		put_label(b, name, w);
		buf_puts(b, "</text></g>\n");
	}
	buf_puts(b, "</g>\n");

	/* Second pass for the omitted triples, now that every name has its index. */
	buf_puts(b, "<script type=\"text/ecmascript\"><![CDATA[\n");
	buf_puts(b, "var fgNames = [");
	buf_add(b, js.data, js.len);
	buf_printf(b,
		   "];\n/* %zu frames narrower than %.1f px: name index, x, samples */\n"
		   "var fgOmitted = [",
		   n_omitted, FG_MIN_WIDTH);
	for (size_t k = 0, m = 0; total && k < t->n_nodes && !b->err; k++) {
		const struct fg_node *nd = &t->nodes[order[k]];
		if ((double)nd->value * plotw / (double)total >= FG_MIN_WIDTH)
			continue;
		if (m++)
			buf_puts(b, m % 8 == 1 ? ",\n" : ",");
		buf_put_u64(b, js_id[nd->name]);
		buf_putc(b, ',');
		buf_put_u64(b, nd->x);
		buf_putc(b, ',');
		buf_put_u64(b, nd->value);
	}
	buf_puts(b, "];\n");
	buf_puts(b, fg_script);
	buf_puts(b, "]]></script>\n</svg>\n");
	err = b->err ? b->err : js.err;
cleanup:
	free(js.data);
	free(js_id);
	return err;
}

int flamegraph__encode_svg(const struct profile *p, const struct flamegraph_opts *opts,
			   struct encoded_buf *out)
{
	struct fg_tree t = {0};
	struct fg_buf b = {0};
	uint32_t *order = NULL, name, root;
	int err;

	if (!p || !out || (p->n_stacks && !p->stacks))
		return -EINVAL;
	for (size_t i = 0; i < p->n_stacks; i++) {
		const struct profile_stack *s = &p->stacks[i];
		if ((s->n_kernel || s->n_user) && !s->frames)
			return -EINVAL;
	}

	strtab__init(&t.strs, &t.arena, FG_MAX_STRS);
	err = ht_init(&t.node_ht, 1024);
	if (!err)
		err = ht_init(&t.frame_ht, 1024);
	if (!err)
		err = intern(&t, "all", &name);
	if (!err)
		err = node_new(&t, FG_NONE, name, FG_ROOT, &root); /* root is node 0 */
	for (size_t i = 0; !err && i < p->n_stacks; i++) {
		if (p->stacks[i].count)
			err = tree_add(&t, &p->stacks[i]);
	}
	if (!err)
		err = tree_layout(&t, &order);
	if (!err)
		err = tree_emit(&t, order, p, opts, &b);
	if (err)
		goto cleanup;

	out->data = (uint8_t *)b.data;
	out->len = b.len;
	b.data = NULL;
cleanup:
	free(b.data);
	free(order);
	tree_free(&t);
	return err;
}
