/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The ProfilesDictionary of one OTLP request (see otlp_internal.h), drawn
 * from the store (otlp_store.c).
 *
 * - Every table starts with its zero value ("", Mapping{}, Location{},
 *   Function{}, KeyValueAndUnit{}, Stack{}; the Link with 16 and 8 zero bytes
 *   is otlp_wire.c's), so index 0 means "none" everywhere.
 *
 * - A store record enters the request on first use, after what it refers
 *   to: a location after its mapping (after the mapping's build id
 *   attributes and file name), its functions (those of its inlined calls,
 *   innermost first, then its own; each after the function's strings) and
 *   its frame type attribute; an attribute after its key string. Indices
 *   are handed out in that order, so the output depends only on the
 *   request's input, and nothing unreferenced is added (no orphans). A
 *   record's stamp (gen, idx) makes each later use one load and compare.
 *
 * - Stacks are per request: hash-consed through a hash set that compares
 *   against the stored location indices, which sit end to end in one array.
 *
 * - Per frame of a stack the work is one frame cache probe (otlp_store.c),
 *   whose slot carries the location's index in the current request.
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "otlp_internal.h"

/* Frame caches from this size up are probed a stack at a time with the
 * probes overlapped (about a per-core L2 cache: below it, probes hit it,
 * and overlapping them costs more than it saves). */
#define DICT_OVERLAP_MIN_BYTES (512u * 1024)

/* ---- uint64 -> uint32 map ---- */

uint32_t otlp_idmap_get(const struct otlp_idmap *m, uint64_t key)
{
	if (!m->cap)
		return 0;
	size_t mask = m->cap - 1;
	for (size_t i = enc_hash_u64(key) & mask;; i = (i + 1) & mask) {
		if (!m->slots[i].val || m->slots[i].key == key)
			return m->slots[i].val;
	}
}

static void idmap_place(struct otlp_idmap_slot *slots, size_t mask, uint64_t key, uint32_t val)
{
	size_t i = enc_hash_u64(key) & mask;

	while (slots[i].val)
		i = (i + 1) & mask;
	slots[i].key = key;
	slots[i].val = val;
}

int otlp_idmap_put(struct otlp_idmap *m, uint64_t key, uint32_t val)
{
	if ((m->n + 1) * 2 > m->cap) {
		size_t ncap = m->cap ? m->cap * 2 : 256;
		struct otlp_idmap_slot *slots = calloc(ncap, sizeof(*slots));

		if (!slots)
			return -ENOMEM;
		for (size_t i = 0; i < m->cap; i++) {
			if (m->slots[i].val)
				idmap_place(slots, ncap - 1, m->slots[i].key, m->slots[i].val);
		}
		free(m->slots);
		m->slots = slots;
		m->cap = ncap;
	}
	idmap_place(m->slots, m->cap - 1, key, val);
	m->n++;
	return 0;
}

void otlp_idmap_clear(struct otlp_idmap *m)
{
	if (m->n)
		memset(m->slots, 0, m->cap * sizeof(*m->slots));
	m->n = 0;
}

void otlp_idmap_deinit(struct otlp_idmap *m)
{
	free(m->slots);
	memset(m, 0, sizeof(*m));
}

/* ---- hash set of indices ---- */

static void hset_place(uint64_t *slots, size_t mask, uint64_t slot)
{
	size_t i = (size_t)(slot >> 32) & mask;

	while (slots[i])
		i = (i + 1) & mask;
	slots[i] = slot;
}

static int hset_resize(struct otlp_hset *s, size_t ncap)
{
	/* zeroed by writing, not calloc: fresh pages that a probe read first
	 * would fault twice, for the zero page and again on the write */
	uint64_t *slots = ncap <= SIZE_MAX / sizeof(*slots) ? malloc(ncap * sizeof(*slots)) : NULL;

	if (!slots)
		return -ENOMEM;
	mem__prefault(slots, ncap * sizeof(*slots));
	memset(slots, 0, ncap * sizeof(*slots));
	for (size_t i = 0; i < s->cap; i++) {
		if (s->slots[i])
			hset_place(slots, ncap - 1, s->slots[i]);
	}
	free(s->slots);
	s->slots = slots;
	s->cap = ncap;
	return 0;
}

int otlp_hset_reserve(struct otlp_hset *s, size_t n)
{
	size_t ncap = s->cap ? s->cap : 1024;

	if (s->cap && n * 2 <= s->cap)
		return 0;
	if (n > SIZE_MAX / 4)
		return -ENOMEM;
	while (n * 2 > ncap)
		ncap *= 2;
	return hset_resize(s, ncap);
}

void otlp_hset_clear(struct otlp_hset *s)
{
	if (s->n)
		memset(s->slots, 0, s->cap * sizeof(*s->slots));
	s->n = 0;
}

void otlp_hset_deinit(struct otlp_hset *s)
{
	free(s->slots);
	memset(s, 0, sizeof(*s));
}

/* ---- the request's tables ---- */

int otlp_dict_begin(struct otlp_dict *d, struct otlp_store *st)
{
	d->st = st;
	d->gen = ++st->gen; /* the caller starts the store over before this wraps */
	d->n_strs = d->n_attrs = d->n_maps = d->n_fns = d->n_locs = d->n_stacks = 0;
	d->n_stack_locs = d->n_lines = 0;
	otlp_hset_clear(&d->stack_set);
	if (OTLP_RESERVE(d, strs) || OTLP_RESERVE(d, attrs) || OTLP_RESERVE(d, maps) ||
	    OTLP_RESERVE(d, fns) || OTLP_RESERVE(d, locs) || OTLP_RESERVE(d, stacks))
		return -ENOMEM;
	d->strs[d->n_strs++] = (struct otlp_dstr){.s = "", .len = 0};
	d->attrs[d->n_attrs++] = (struct otlp_dattr){0};
	d->maps[d->n_maps++] = (struct otlp_dmap){0};
	d->fns[d->n_fns++] = (struct otlp_dfn){0};
	d->locs[d->n_locs++] = (struct otlp_dloc){0};
	d->stacks[d->n_stacks++] = (struct otlp_dstack){0};
	return 0;
}

void otlp_dict_deinit(struct otlp_dict *d)
{
	free(d->strs);
	free(d->attrs);
	free(d->maps);
	free(d->fns);
	free(d->locs);
	free(d->lines);
	free(d->stacks);
	free(d->stack_locs);
	otlp_hset_deinit(&d->stack_set);
	memset(d, 0, sizeof(*d));
}

size_t otlp_dict_bytes(const struct otlp_dict *d)
{
	return d->cap_strs * sizeof(*d->strs) + d->cap_attrs * sizeof(*d->attrs) +
	       d->cap_maps * sizeof(*d->maps) + d->cap_fns * sizeof(*d->fns) +
	       d->cap_locs * sizeof(*d->locs) + d->cap_lines * sizeof(*d->lines) +
	       d->cap_stacks * sizeof(*d->stacks) + d->cap_stack_locs * sizeof(*d->stack_locs) +
	       d->stack_set.cap * sizeof(*d->stack_set.slots);
}

/* Makes room for one more entry in table name, within int32 indices. */
#define DICT_RESERVE(d, name) ((d)->n_##name >= OTLP_MAX_ENTRIES ? -E2BIG : OTLP_RESERVE(d, name))

int otlp_dict_use_str(struct otlp_dict *d, uint32_t g, int32_t *idx)
{
	struct otlp_gstr *s = &d->st->strs[g];
	int err;

	if (!g || s->gen == d->gen) {
		*idx = g ? s->idx : 0;
		return 0;
	}
	err = DICT_RESERVE(d, strs);
	if (err)
		return err;
	d->strs[d->n_strs] = (struct otlp_dstr){.s = s->s, .len = s->len};
	s->gen = d->gen;
	*idx = s->idx = (int32_t)d->n_strs++;
	return 0;
}

int otlp_dict_use_attr(struct otlp_dict *d, uint32_t g, int32_t *idx)
{
	struct otlp_gattr *a = &d->st->attrs[g];
	int32_t key;
	int err;

	if (!g || a->gen == d->gen) {
		*idx = g ? a->idx : 0;
		return 0;
	}
	err = otlp_dict_use_str(d, d->st->key_str[a->key], &key);
	if (!err)
		err = DICT_RESERVE(d, attrs);
	if (err)
		return err;
	const struct otlp_gstr *v = &d->st->strs[a->sval];
	d->attrs[d->n_attrs] = (struct otlp_dattr){
		.ival = a->ival,
		.s = a->kind == OTLP_ATTR_STR ? v->s : NULL,
		.len = a->kind == OTLP_ATTR_STR ? v->len : 0,
		.key = key,
		.kind = a->kind,
	};
	a->gen = d->gen;
	*idx = a->idx = (int32_t)d->n_attrs++;
	return 0;
}

/* Mapping g: its build id attributes, its file name, then itself. */
static int use_map(struct otlp_dict *d, uint32_t g, int32_t *idx)
{
	struct otlp_gmap *m = &d->st->maps[g];
	struct otlp_dmap dm = {.limit = UINT64_MAX};
	int err = 0;

	if (!g || m->gen == d->gen) {
		*idx = g ? m->idx : 0;
		return 0;
	}
	for (int i = 0; i < 2 && !err; i++) {
		if (m->attrs[i])
			err = otlp_dict_use_attr(d, m->attrs[i], &dm.attrs[dm.n_attrs++]);
	}
	if (!err)
		err = otlp_dict_use_str(d, m->file, &dm.file);
	if (!err)
		err = DICT_RESERVE(d, maps);
	if (err)
		return err;
	d->maps[d->n_maps] = dm;
	m->gen = d->gen;
	*idx = m->idx = (int32_t)d->n_maps++;
	return 0;
}

/* Function g: its name, system name and file name, then itself. */
static int use_fn(struct otlp_dict *d, uint32_t g, int32_t *idx)
{
	struct otlp_gfn *f = &d->st->fns[g];
	struct otlp_dfn df;
	int err;

	if (!g || f->gen == d->gen) {
		*idx = g ? f->idx : 0;
		return 0;
	}
	err = otlp_dict_use_str(d, f->name, &df.name);
	if (!err)
		err = otlp_dict_use_str(d, f->sys, &df.sys);
	if (!err)
		err = otlp_dict_use_str(d, f->file, &df.file);
	if (!err)
		err = DICT_RESERVE(d, fns);
	if (err)
		return err;
	d->fns[d->n_fns] = df;
	f->gen = d->gen;
	*idx = f->idx = (int32_t)d->n_fns++;
	return 0;
}

/* The Lines of location l's inlined calls, innermost first, into dl. */
static int use_inlined(struct otlp_dict *d, const struct otlp_gloc *l, struct otlp_dloc *dl)
{
	int err = 0;

	if (l->n_inl > UINT32_MAX - d->n_lines)
		return -E2BIG;
	if (d->n_lines + l->n_inl > d->cap_lines) {
		struct otlp_dline *a =
			array__grow(d->lines, &d->cap_lines, d->n_lines + l->n_inl, sizeof(*a));

		if (!a)
			return -ENOMEM;
		d->lines = a;
	}
	dl->inl = (uint32_t)d->n_lines;
	for (uint32_t i = 0; i < l->n_inl && !err; i++) {
		const struct otlp_gline *gl = &d->st->lines[l->inl + i];
		struct otlp_dline *ln = &d->lines[d->n_lines + i];

		err = use_fn(d, gl->fn, &ln->fn);
		ln->line = gl->line;
	}
	if (err)
		return err;
	d->n_lines += l->n_inl;
	dl->n_inl = l->n_inl;
	return 0;
}

/* Location g: its mapping, its inlined calls' functions (innermost first),
 * its own function, its frame type, then itself. */
static int use_loc(struct otlp_dict *d, uint32_t g, int32_t *idx)
{
	struct otlp_gloc *l = &d->st->locs[g];
	struct otlp_dloc dl = {.address = l->address, .line = l->line};
	int err;

	if (l->gen == d->gen) {
		*idx = l->idx;
		return 0;
	}
	err = use_map(d, l->map, &dl.map);
	if (!err && l->n_inl)
		err = use_inlined(d, l, &dl);
	if (!err)
		err = use_fn(d, l->fn, &dl.fn);
	if (!err)
		err = otlp_dict_use_attr(d, l->kernel ? d->st->attr_kernel : d->st->attr_native,
					 &dl.attr);
	if (!err)
		err = DICT_RESERVE(d, locs);
	if (err)
		return err;
	d->locs[d->n_locs] = dl;
	l->gen = d->gen;
	*idx = l->idx = (int32_t)d->n_locs++;
	return 0;
}

int otlp_dict_string(struct otlp_dict *d, const char *s, size_t len, int32_t *idx)
{
	uint32_t g;
	int err = otlp_store_str(d->st, s, len, &g);

	return err ? err : otlp_dict_use_str(d, g, idx);
}

/* The location of a frame not yet used by this request. */
static int frame_loc_slow(struct otlp_dict *d, const struct sym_frame *f, int32_t *idx)
{
	struct otlp_store *st = d->st;
	const struct otlp_fslot *s = otlp_store_frame_find(st, f);
	size_t pos = s ? (size_t)(s - st->frames) : 0;
	int err = s ? 0 : otlp_store_frame(st, f, &pos); /* new to the store */

	if (!err)
		err = use_loc(d, st->frames_aux[pos].loc, idx);
	if (err)
		return err;
	st->frames[pos].gen = d->gen;
	st->frames[pos].idx = *idx;
	return 0;
}

int otlp_dict_reserve_stacks(struct otlp_dict *d, size_t n, size_t n_frames)
{
	void *a;

	if (n > SIZE_MAX - d->n_stacks || n_frames > SIZE_MAX - d->n_stack_locs)
		return -ENOMEM;
	if (d->n_stacks + n > d->cap_stacks) {
		a = array__grow(d->stacks, &d->cap_stacks, d->n_stacks + n, sizeof(*d->stacks));
		if (!a)
			return -ENOMEM;
		d->stacks = a;
	}
	if (d->n_stack_locs + n_frames > d->cap_stack_locs) {
		a = array__grow(d->stack_locs, &d->cap_stack_locs, d->n_stack_locs + n_frames,
				sizeof(*d->stack_locs));
		if (!a)
			return -ENOMEM;
		d->stack_locs = a;
		/* new room that the stacks will fill: faulted in at once */
		mem__prefault(d->stack_locs + d->n_stack_locs, n_frames * sizeof(*d->stack_locs));
	}
	return otlp_hset_reserve(&d->stack_set, d->stack_set.n + n);
}

struct stack_probe {
	const struct otlp_dict *d;
	const int32_t *locs;
	size_t n;
};

static bool stack_eq(const void *ctx, uint32_t idx)
{
	const struct stack_probe *p = ctx;
	const struct otlp_dstack *s = &p->d->stacks[idx];

	return s->n == p->n &&
	       memcmp(p->d->stack_locs + s->off, p->locs, p->n * sizeof(*p->locs)) == 0;
}

/* The locations of a stack's frames into locs[0 .. n), each frame's
 * probe followed by the work of a miss: for a frame cache that the per-core
 * caches hold. Returns 0 or -errno. */
static int stack_locs_inline(struct otlp_dict *d, const struct sym_frame *const *frames, size_t n,
			     int32_t *locs)
{
	for (size_t i = 0; i < n; i++) {
		if (!frames[i])
			return -EINVAL;
		const struct otlp_fslot *s = otlp_store_frame_find(d->st, frames[i]);

		if (s && s->gen == d->gen) {
			locs[i] = s->idx;
			continue;
		}
		int err = frame_loc_slow(d, frames[i], &locs[i]);
		if (err)
			return err;
	}
	return 0;
}

/* The same for a frame cache bigger than those caches, where most probes
 * miss them: the stack's probes overlap, and so do the reads of its frames
 * new to the store, whose misses are done in a second pass. */
static int stack_locs_overlapped(struct otlp_dict *d, const struct sym_frame *const *frames,
				 size_t n, int32_t *locs)
{
	const struct otlp_store *st = d->st;
	int err;

	/* every slot requested before the first is read */
	size_t mask = st->cap_frames - 1;
	for (size_t i = 0; i < n; i++)
		__builtin_prefetch(&st->frames[otlp_frame_hash(frames[i]) & mask]);
	/* hits first; a miss is marked negative, to be done in a second pass */
	size_t n_miss = 0;
	for (size_t i = 0; i < n; i++) {
		if (!frames[i])
			return -EINVAL;
		const struct otlp_fslot *s = otlp_store_frame_find(st, frames[i]);

		if (s && s->gen == d->gen) {
			locs[i] = s->idx;
			continue;
		}
		n_miss++;
		locs[i] = -1; /* in the store: the slot gives the location */
		if (!s) {     /* new to the store: its frame will be read */
			locs[i] = -2;
			__builtin_prefetch(frames[i]);
		}
	}
	/* then the misses, in stack order: that order numbers new entries; the
	 * next miss's function name is requested while this one is stored */
	for (size_t i = 0; n_miss && i < n; i++) {
		if (locs[i] >= 0)
			continue;
		for (size_t j = i + 1; locs[i] == -2 && j < n; j++) {
			if (locs[j] == -2) {
				__builtin_prefetch(frames[j]->function);
				break;
			}
		}
		err = frame_loc_slow(d, frames[i], &locs[i]);
		if (err)
			return err;
		n_miss--;
	}
	return 0;
}

int otlp_dict_stack(struct otlp_dict *d, const struct sym_frame *const *frames, size_t n,
		    int32_t *idx)
{
	const struct otlp_store *st = d->st;
	uint32_t found;
	int32_t *locs;
	int err;

	if (!n) {
		*idx = 0;
		return 0;
	}
	if (n > UINT32_MAX || n > SIZE_MAX / sizeof(*locs) - d->n_stack_locs)
		return -E2BIG;
	if (d->n_stacks >= OTLP_MAX_ENTRIES)
		return -E2BIG;
	/* the locations go straight to the end of stack_locs, kept if the stack is new */
	locs = array__grow(d->stack_locs, &d->cap_stack_locs, d->n_stack_locs + n, sizeof(*locs));
	if (!locs)
		return -ENOMEM;
	d->stack_locs = locs;
	locs += d->n_stack_locs;
	err = st->cap_frames * sizeof(*st->frames) < DICT_OVERLAP_MIN_BYTES
		      ? stack_locs_inline(d, frames, n, locs)
		      : stack_locs_overlapped(d, frames, n, locs);
	if (err)
		return err;

	struct stack_probe probe = {d, locs, n};
	err = OTLP_RESERVE(d, stacks);
	if (!err)
		err = otlp_hset_findnew(&d->stack_set, otlp_hash_i32(locs, n), stack_eq, &probe,
					(uint32_t)d->n_stacks, &found);
	if (err)
		return err;
	if (found) {
		*idx = (int32_t)found;
		return 0;
	}
	/* the packed size now, while the indices are at hand */
	size_t body = 0;
	for (size_t i = 0; i < n; i++)
		body += otlp_varint_size((uint64_t)locs[i]);
	if (body > UINT32_MAX)
		return -E2BIG;
	d->stacks[d->n_stacks] = (struct otlp_dstack){
		.off = d->n_stack_locs, .n = (uint32_t)n, .body = (uint32_t)body};
	d->n_stack_locs += n;
	*idx = (int32_t)d->n_stacks++;
	return 0;
}
