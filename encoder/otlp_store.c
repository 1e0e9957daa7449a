/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The OTLP encoder's store (see otlp_internal.h): the values a request's
 * dictionary is made of, as far as they do not depend on the request, each
 * kept once.
 *
 * - Identity is the value, as the spec defines duplicates: every table is
 *   hash-consed (a hash set of ids over the record array, compared field by
 *   field), and records refer to each other by id, so equal ids mean equal
 *   values all the way down. A request numbers the records it uses in order
 *   of first use (otlp_dict.c); since ids are unique per value, so are its
 *   indices, and its dictionary has no duplicates.
 *
 * - A record is written whole before its id is added to its set, so an
 *   allocation failure leaves the store as it was, usable by the next call.
 *
 * - The frame cache sits in front: the symbolizer interns frames and modules
 *   and never changes or frees them while it lives, so a frame pointer names
 *   one location, and a module pointer one mapping. Frames are found by
 *   pointer (hashed, compared; a stored pointer is never followed), and the
 *   value tables are consulted once per distinct frame or module over the
 *   store's life, not once per request.
 *
 * - Mappings: one per module file identity, spanning [0, UINT64_MAX) with
 *   file_offset 0. User frame addresses are file offsets (the symbolizer
 *   normalizes them as pprof does), so with this mapping
 *   file_offset + (address - memory_start) is the address itself: locations
 *   are mapping-relative and a backend can symbolize them from the build id.
 *   The spec requires a build id attribute on every Mapping, so a module with
 *   neither a GNU build id nor an htlhash ([anon], [unknown], the kernel
 *   without a build id) gets no mapping: its locations have mapping_index 0.
 *
 * - Functions: name is the (demangled) name the symbolizer gives,
 *   system_name the mangled name when it has one, else the name again;
 *   filename the source file when known. Unsymbolized frames are locations
 *   with an address (and a mapping when possible) and no lines, for the
 *   backend to symbolize.
 *
 * - Inlined calls: a frame's inlined[] become Lines before the Line of its
 *   own function, innermost first. They are part of the location's value
 *   (compared and hashed with it), kept end to end in one array of the store;
 *   a location found already stored gives back the room its lines took.
 *
 * - Bound: the store only grows; the context (otlp.c) compares
 *   otlp_store_bytes() with its bound before each request and starts the
 *   store over when it is above.
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "otlp_internal.h"

#define STORE_MIN_FRAMES 1024 /* frame cache slots, a power of two */
/* A stored frame takes about 360 bytes with its location, function, strings
 * and their hash slots (6.0 MiB for 17,407 frames): a reservation stays
 * within about a third of the bound it is given. */
#define STORE_RESERVE_BYTES_PER_FRAME 1024

static const char *const key_names[OTLP_K__COUNT] = {
	[OTLP_K_FRAME_TYPE] = "profile.frame.type",
	[OTLP_K_BUILD_ID_GNU] = "process.executable.build_id.gnu",
	[OTLP_K_BUILD_ID_HTLHASH] = "process.executable.build_id.htlhash",
	[OTLP_K_THREAD_ID] = "thread.id",
	[OTLP_K_THREAD_NAME] = "thread.name",
	[OTLP_K_CPU] = "cpu.logical_number",
};

/* Makes room for one more record in table name and one more id in its set. */
#define STORE_RESERVE(st, name, set)                                                               \
	({                                                                                         \
		int _err = (st)->n_##name >= OTLP_MAX_ENTRIES ? -E2BIG : 0;                        \
		if (!_err)                                                                         \
			_err = OTLP_RESERVE(st, name);                                             \
		if (!_err)                                                                         \
			_err = otlp_hset_reserve(&(st)->set, (st)->set.n + 1);                     \
		_err;                                                                              \
	})

/* ---- strings ---- */

struct str_probe {
	const struct otlp_store *st;
	const char *s;
	size_t len;
};

static bool str_eq(const void *ctx, uint32_t id)
{
	const struct str_probe *p = ctx;
	const struct otlp_gstr *g = &p->st->strs[id];

	return g->len == p->len && memcmp(g->s, p->s, p->len) == 0;
}

int otlp_store_str(struct otlp_store *st, const char *s, size_t len, uint32_t *id)
{
	struct str_probe probe = {st, s, len};
	uint32_t h, found;
	char *copy;
	int err;

	if (!len) { /* "" is string 0, as in every string table */
		*id = 0;
		return 0;
	}
	if (len > UINT32_MAX)
		return -E2BIG;
	h = otlp_hash_bytes(s, len);
	found = otlp_hset_find(&st->str_set, h, str_eq, &probe);
	if (found) {
		*id = found;
		return 0;
	}
	err = STORE_RESERVE(st, strs, str_set);
	if (err)
		return err;
	copy = arena__strndup(&st->arena, s, len);
	if (!copy)
		return -ENOMEM;
	st->strs[st->n_strs] = (struct otlp_gstr){.s = copy, .len = (uint32_t)len};
	*id = (uint32_t)st->n_strs++;
	otlp_hset_add(&st->str_set, h, *id);
	return 0;
}

/* ---- attributes ---- */

struct attr_probe {
	const struct otlp_store *st;
	const struct otlp_gattr *a;
};

static bool attr_eq(const void *ctx, uint32_t id)
{
	const struct attr_probe *p = ctx;
	const struct otlp_gattr *g = &p->st->attrs[id], *a = p->a;

	return g->key == a->key && g->kind == a->kind && g->ival == a->ival && g->sval == a->sval;
}

static int attr_findnew(struct otlp_store *st, const struct otlp_gattr *a, uint32_t *id)
{
	struct attr_probe probe = {st, a};
	uint64_t v = a->kind == OTLP_ATTR_INT ? (uint64_t)a->ival : a->sval;
	uint32_t h = (uint32_t)enc_hash_u64(enc_hash_u64(v) ^ ((uint64_t)a->key << 8 | a->kind));
	uint32_t found = otlp_hset_find(&st->attr_set, h, attr_eq, &probe);
	int err;

	if (found) {
		*id = found;
		return 0;
	}
	err = STORE_RESERVE(st, attrs, attr_set);
	if (err)
		return err;
	st->attrs[st->n_attrs] = *a;
	*id = (uint32_t)st->n_attrs++;
	otlp_hset_add(&st->attr_set, h, *id);
	return 0;
}

int otlp_store_attr_int(struct otlp_store *st, enum otlp_key k, int64_t v, uint32_t *id)
{
	struct otlp_gattr a = {.ival = v, .key = (uint8_t)k, .kind = OTLP_ATTR_INT};

	return attr_findnew(st, &a, id);
}

int otlp_store_attr_str(struct otlp_store *st, enum otlp_key k, const char *s, size_t len,
			uint32_t *id)
{
	struct otlp_gattr a = {.key = (uint8_t)k, .kind = OTLP_ATTR_STR};
	int err = otlp_store_str(st, s, len, &a.sval);

	return err ? err : attr_findnew(st, &a, id);
}

/* ---- mappings, functions, locations ---- */

struct rec_probe {
	const struct otlp_store *st;
	const void *key;
};

static bool map_eq(const void *ctx, uint32_t id)
{
	const struct rec_probe *p = ctx;
	const struct otlp_gmap *g = &p->st->maps[id], *m = p->key;

	return g->file == m->file && g->attrs[0] == m->attrs[0] && g->attrs[1] == m->attrs[1];
}

static int map_findnew(struct otlp_store *st, const struct otlp_gmap *m, uint32_t *id)
{
	struct rec_probe probe = {st, m};
	int32_t k[3] = {(int32_t)m->file, (int32_t)m->attrs[0], (int32_t)m->attrs[1]};
	uint32_t h = otlp_hash_i32(k, 3), found = otlp_hset_find(&st->map_set, h, map_eq, &probe);
	int err;

	if (found) {
		*id = found;
		return 0;
	}
	err = STORE_RESERVE(st, maps, map_set);
	if (err)
		return err;
	st->maps[st->n_maps] = *m;
	*id = (uint32_t)st->n_maps++;
	otlp_hset_add(&st->map_set, h, *id);
	return 0;
}

static bool fn_eq(const void *ctx, uint32_t id)
{
	const struct rec_probe *p = ctx;
	const struct otlp_gfn *g = &p->st->fns[id], *f = p->key;

	return g->name == f->name && g->sys == f->sys && g->file == f->file;
}

static int fn_findnew(struct otlp_store *st, const struct otlp_gfn *f, uint32_t *id)
{
	struct rec_probe probe = {st, f};
	int32_t k[3] = {(int32_t)f->name, (int32_t)f->sys, (int32_t)f->file};
	uint32_t h = otlp_hash_i32(k, 3), found = otlp_hset_find(&st->fn_set, h, fn_eq, &probe);
	int err;

	if (found) {
		*id = found;
		return 0;
	}
	err = STORE_RESERVE(st, fns, fn_set);
	if (err)
		return err;
	st->fns[st->n_fns] = *f;
	*id = (uint32_t)st->n_fns++;
	otlp_hset_add(&st->fn_set, h, *id);
	return 0;
}

static bool loc_eq(const void *ctx, uint32_t id)
{
	const struct rec_probe *p = ctx;
	const struct otlp_gloc *g = &p->st->locs[id], *l = p->key;

	return g->address == l->address && g->line == l->line && g->map == l->map &&
	       g->fn == l->fn && g->kernel == l->kernel && g->n_inl == l->n_inl &&
	       (!l->n_inl || memcmp(&p->st->lines[g->inl], &p->st->lines[l->inl],
				    l->n_inl * sizeof(*p->st->lines)) == 0);
}

/* Finds or adds location *l, whose inlined Lines (if any) are the last
 * n_inl of st->lines: dropped again when an equal location is stored. */
static int loc_findnew(struct otlp_store *st, const struct otlp_gloc *l, uint32_t *id)
{
	struct rec_probe probe = {st, l};
	uint64_t k = enc_hash_u64(l->address) ^ ((uint64_t)l->fn << 32 | l->map);
	uint32_t h = (uint32_t)enc_hash_u64(k ^ enc_hash_u64((uint64_t)l->line << 1 | l->kernel));
	uint32_t found;
	int err;

	if (l->n_inl)
		h ^= otlp_hash_i32((const int32_t *)&st->lines[l->inl], 2 * (size_t)l->n_inl);
	found = otlp_hset_find(&st->loc_set, h, loc_eq, &probe);
	if (found) {
		st->n_lines -= l->n_inl;
		*id = found;
		return 0;
	}
	err = STORE_RESERVE(st, locs, loc_set);
	if (err)
		return err;
	st->locs[st->n_locs] = *l;
	*id = (uint32_t)st->n_locs++;
	otlp_hset_add(&st->loc_set, h, *id);
	return 0;
}

/* The mapping of module m: 0 when it has no build id of any kind. */
static int map_of_module(struct otlp_store *st, const struct sym_module *m, uint32_t *id)
{
	uint32_t cached = otlp_idmap_get(&st->map_by_module, (uintptr_t)m);
	struct otlp_gmap key = {0};
	int err = 0;

	if (cached) {
		*id = cached - 1;
		return 0;
	}
	if (m->build_id && m->build_id[0])
		err = otlp_store_attr_str(st, OTLP_K_BUILD_ID_GNU, m->build_id, strlen(m->build_id),
					  &key.attrs[0]);
	if (!err && m->htlhash && m->htlhash[0])
		err = otlp_store_attr_str(st, OTLP_K_BUILD_ID_HTLHASH, m->htlhash,
					  strlen(m->htlhash), &key.attrs[1]);
	if (err)
		return err;
	*id = 0;
	if (key.attrs[0] || key.attrs[1]) {
		err = otlp_store_str(st, m->path, strlen(m->path), &key.file);
		if (!err)
			err = map_findnew(st, &key, id);
		if (err)
			return err;
	}
	return otlp_idmap_put(&st->map_by_module, (uintptr_t)m, *id + 1);
}

/* The function name, sys (the mangled name; NULL or "": not mangled, the
 * name is both) and file (NULL: unknown). */
static int fn_of_names(struct otlp_store *st, const char *name, const char *sys, const char *file,
		       uint32_t *id)
{
	struct otlp_gfn key = {0};
	int err;

	err = otlp_store_str(st, name, strlen(name), &key.name);
	if (!err && !(sys && sys[0]))
		key.sys = key.name;
	else if (!err)
		err = otlp_store_str(st, sys, strlen(sys), &key.sys);
	if (!err && file)
		err = otlp_store_str(st, file, strlen(file), &key.file);
	return err ? err : fn_findnew(st, &key, id);
}

/* Appends the Lines of f's inlined calls to st->lines, innermost first, and
 * points key at them. Returns 0 or -errno (st->lines as it was). */
static int inlined_lines(struct otlp_store *st, const struct sym_frame *f, struct otlp_gloc *key)
{
	size_t n = f->inlined ? f->n_inlined : 0, start = st->n_lines;
	int err = 0;

	if (!n)
		return 0;
	if (n > UINT32_MAX - start || start > UINT32_MAX)
		return -E2BIG;
	if (st->n_lines + n > st->cap_lines) {
		struct otlp_gline *a =
			array__grow(st->lines, &st->cap_lines, st->n_lines + n, sizeof(*a));

		if (!a)
			return -ENOMEM;
		st->lines = a;
	}
	for (size_t i = 0; i < n && !err; i++) {
		const struct sym_inline *in = &f->inlined[i];
		struct otlp_gline *ln = &st->lines[start + i];

		err = fn_of_names(st, enc_inline_name(in), in->system_name, in->file, &ln->fn);
		ln->line = in->line;
	}
	if (err)
		return err;
	st->n_lines += n;
	key->inl = (uint32_t)start;
	key->n_inl = (uint32_t)n;
	return 0;
}

/* The location of frame f: its mapping, function and line, frame type. */
static int loc_of_frame(struct otlp_store *st, const struct sym_frame *f, uint32_t *id)
{
	struct otlp_gloc key = {.address = f->address};
	int err = 0;

	/* "kernel" or "native": no more precise profile.frame.type applies to
	 * frame-pointer-unwound native code of unknown language */
	key.kernel = f->kind == SYM_FRAME_KERNEL || (f->module && f->module->is_kernel);
	if (f->module)
		err = map_of_module(st, f->module, &key.map);
	if (!err && f->function && f->function[0]) {
		err = fn_of_names(st, f->function, f->system_name, f->file, &key.fn);
		key.line = f->line;
	}
	if (!err)
		err = inlined_lines(st, f, &key); /* last: loc_findnew() takes them over */
	if (!err) {
		err = loc_findnew(st, &key, id);
		if (err)
			st->n_lines -= key.n_inl;
	}
	return err;
}

/* ---- the frame cache ---- */

/* Grows the frame cache to at least min_cap slots, doubling. Returns 0 or
 * -ENOMEM. */
static int frames_grow(struct otlp_store *st, size_t min_cap)
{
	size_t ncap = st->cap_frames ? st->cap_frames * 2 : STORE_MIN_FRAMES;
	struct otlp_fslot *slots;
	struct otlp_faux *aux;

	while (ncap < min_cap && ncap <= UINT32_MAX)
		ncap *= 2;
	if (ncap > UINT32_MAX || ncap > SIZE_MAX / sizeof(*slots))
		return -ENOMEM;
	slots = malloc(ncap * sizeof(*slots));
	aux = malloc(ncap * sizeof(*aux));
	if (!slots || !aux) {
		free(slots);
		free(aux);
		return -ENOMEM;
	}
	/* zeroed by writing, not calloc: see hset_resize() (otlp_dict.c) */
	mem__prefault(slots, ncap * sizeof(*slots));
	mem__prefault(aux, ncap * sizeof(*aux));
	memset(slots, 0, ncap * sizeof(*slots));
	for (size_t i = 0; i < st->cap_frames; i++) {
		size_t j;

		if (!st->frames[i].f)
			continue;
		for (j = st->frames_aux[i].hash & (ncap - 1); slots[j].f; j = (j + 1) & (ncap - 1))
			;
		slots[j] = st->frames[i];
		aux[j] = st->frames_aux[i];
	}
	free(st->frames);
	free(st->frames_aux);
	st->frames = slots;
	st->frames_aux = aux;
	st->cap_frames = ncap;
	return 0;
}

int otlp_store_reserve(struct otlp_store *st, size_t n, size_t max_bytes)
{
	void *strs, *fns, *locs;

	if (n > max_bytes / STORE_RESERVE_BYTES_PER_FRAME)
		n = max_bytes / STORE_RESERVE_BYTES_PER_FRAME;
	if (n > OTLP_MAX_ENTRIES)
		n = OTLP_MAX_ENTRIES;
	if ((st->n_frames + n) * 2 > st->cap_frames && frames_grow(st, (st->n_frames + n) * 2))
		return -ENOMEM;
	strs = array__grow(st->strs, &st->cap_strs, st->n_strs + n, sizeof(*st->strs));
	if (strs)
		st->strs = strs;
	fns = array__grow(st->fns, &st->cap_fns, st->n_fns + n, sizeof(*st->fns));
	if (fns)
		st->fns = fns;
	locs = array__grow(st->locs, &st->cap_locs, st->n_locs + n, sizeof(*st->locs));
	if (locs)
		st->locs = locs;
	if (!strs || !fns || !locs || otlp_hset_reserve(&st->str_set, st->str_set.n + n) ||
	    otlp_hset_reserve(&st->fn_set, st->fn_set.n + n) ||
	    otlp_hset_reserve(&st->loc_set, st->loc_set.n + n))
		return -ENOMEM;
	return 0;
}

int otlp_store_frame(struct otlp_store *st, const struct sym_frame *f, size_t *pos)
{
	struct otlp_fslot *s = otlp_store_frame_find(st, f);
	uint32_t hash = otlp_frame_hash(f), loc;
	size_t mask, i;
	int err;

	if (s) {
		*pos = (size_t)(s - st->frames);
		return 0;
	}
	err = loc_of_frame(st, f, &loc);
	if (!err && (st->n_frames + 1) * 2 > st->cap_frames)
		err = frames_grow(st, 0);
	if (err)
		return err;
	mask = st->cap_frames - 1;
	for (i = hash & mask; st->frames[i].f; i = (i + 1) & mask)
		;
	st->frames[i] = (struct otlp_fslot){.f = f};
	st->frames_aux[i] = (struct otlp_faux){.hash = hash, .loc = loc};
	st->n_frames++;
	*pos = i;
	return 0;
}

/* ---- life ---- */

void otlp_store_deinit(struct otlp_store *st)
{
	free(st->strs);
	free(st->attrs);
	free(st->maps);
	free(st->fns);
	free(st->locs);
	free(st->lines);
	otlp_hset_deinit(&st->str_set);
	otlp_hset_deinit(&st->attr_set);
	otlp_hset_deinit(&st->map_set);
	otlp_hset_deinit(&st->fn_set);
	otlp_hset_deinit(&st->loc_set);
	free(st->frames);
	free(st->frames_aux);
	otlp_idmap_deinit(&st->map_by_module);
	free(st->cpu_attr);
	arena__free(&st->arena);
	memset(st, 0, sizeof(*st));
}

int otlp_store_init(struct otlp_store *st)
{
	int err;

	memset(st, 0, sizeof(*st));
	/* the zero entry (id 0) of every table: "", and records meaning "none" */
	if (OTLP_RESERVE(st, strs) || OTLP_RESERVE(st, attrs) || OTLP_RESERVE(st, maps) ||
	    OTLP_RESERVE(st, fns) || OTLP_RESERVE(st, locs))
		goto nomem;
	st->strs[st->n_strs++] = (struct otlp_gstr){.s = ""};
	st->attrs[st->n_attrs++] = (struct otlp_gattr){0};
	st->maps[st->n_maps++] = (struct otlp_gmap){0};
	st->fns[st->n_fns++] = (struct otlp_gfn){0};
	st->locs[st->n_locs++] = (struct otlp_gloc){0};
	st->cpu_attr = calloc(OTLP_CPU_CACHE, sizeof(*st->cpu_attr));
	if (!st->cpu_attr || frames_grow(st, 0))
		goto nomem;
	/* constants: records only; a request uses them on first need */
	for (int k = 0; k < OTLP_K__COUNT; k++) {
		err = otlp_store_str(st, key_names[k], strlen(key_names[k]), &st->key_str[k]);
		if (err)
			goto fail;
	}
	err = otlp_store_attr_str(st, OTLP_K_FRAME_TYPE, "native", strlen("native"),
				  &st->attr_native);
	if (!err)
		err = otlp_store_attr_str(st, OTLP_K_FRAME_TYPE, "kernel", strlen("kernel"),
					  &st->attr_kernel);
	if (err)
		goto fail;
	st->ready = true;
	return 0;
nomem:
	err = -ENOMEM;
fail:
	otlp_store_deinit(st);
	return err;
}

size_t otlp_store_bytes(const struct otlp_store *st)
{
	return st->arena.bytes + st->cap_strs * sizeof(*st->strs) +
	       st->cap_attrs * sizeof(*st->attrs) + st->cap_maps * sizeof(*st->maps) +
	       st->cap_fns * sizeof(*st->fns) + st->cap_locs * sizeof(*st->locs) +
	       st->cap_lines * sizeof(*st->lines) +
	       (st->str_set.cap + st->attr_set.cap + st->map_set.cap + st->fn_set.cap +
		st->loc_set.cap) *
		       sizeof(uint64_t) +
	       st->cap_frames * (sizeof(*st->frames) + sizeof(*st->frames_aux)) +
	       st->map_by_module.cap * sizeof(*st->map_by_module.slots) +
	       (st->cpu_attr ? OTLP_CPU_CACHE * sizeof(*st->cpu_attr) : 0);
}
