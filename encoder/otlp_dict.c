/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The hash-consed ProfilesDictionary of one OTLP encoding (see otlp_internal.h).
 *
 * - Every table starts with its zero value ("", Mapping{}, Location{},
 *   Function{}, KeyValueAndUnit{}, Stack{}, and a Link with 16 and 8 zero
 *   bytes), so index 0 means "none" everywhere.
 *
 * - Identity is the value, as the spec defines duplicates: each table keeps a
 *   strtab from a canonical byte key of the entry (the indices it references,
 *   its scalars) to its index. Equal values get one entry; since referenced
 *   entries are themselves unique, comparing their indices compares them
 *   recursively. Lookups are O(1) expected; nothing is searched linearly.
 *   Stacks, the longest keys, are found through a hash set that compares
 *   against the stored location arrays instead of keeping a key copy.
 *
 * - Entries are created only when something references them (attribute keys
 *   included), so a dictionary built for emitted samples has no orphans.
 *
 * - Two pointer-keyed caches sit in front: the symbolizer interns frames and
 *   modules, so a frame pointer already names one location and a module
 *   pointer one mapping; the value tables are consulted once per distinct
 *   frame or module, not once per frame of every stack.
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
 * - Functions: name and system_name are both the symbol name the symbolizer
 *   gives (it does not demangle yet; frame_system_name() is where the linkage
 *   name goes once it does), filename the source file when known.
 *   Unsymbolized frames are locations with an address (and a mapping when
 *   possible) and no lines, for the backend to symbolize.
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "otlp_internal.h"

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
	uint64_t *slots = calloc(ncap, sizeof(*slots));

	if (!slots)
		return -ENOMEM;
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

	if (n > SIZE_MAX / 4)
		return -ENOMEM;
	while (n * 2 > ncap)
		ncap *= 2;
	return ncap == s->cap ? 0 : hset_resize(s, ncap);
}

int otlp_hset_findnew(struct otlp_hset *s, uint32_t h, bool (*eq)(const void *ctx, uint32_t value),
		      const void *ctx, uint32_t value, uint32_t *found)
{
	int err = otlp_hset_reserve(s, s->n + 1);
	size_t mask, i;

	if (err)
		return err;
	mask = s->cap - 1;
	for (i = h & mask; s->slots[i]; i = (i + 1) & mask) {
		uint64_t slot = s->slots[i];

		if ((uint32_t)(slot >> 32) == h && eq(ctx, (uint32_t)slot)) {
			*found = (uint32_t)slot;
			return 0;
		}
	}
	s->slots[i] = (uint64_t)h << 32 | value;
	s->n++;
	*found = 0;
	return 0;
}

void otlp_hset_deinit(struct otlp_hset *s)
{
	free(s->slots);
	memset(s, 0, sizeof(*s));
}

/* ---- tables ---- */

static const char *const key_names[OTLP_K__COUNT] = {
	[OTLP_K_FRAME_TYPE] = "profile.frame.type",
	[OTLP_K_BUILD_ID_GNU] = "process.executable.build_id.gnu",
	[OTLP_K_BUILD_ID_HTLHASH] = "process.executable.build_id.htlhash",
	[OTLP_K_THREAD_ID] = "thread.id",
	[OTLP_K_THREAD_NAME] = "thread.name",
	[OTLP_K_CPU] = "cpu.logical_number",
};

/* Makes room for one more element in a table's pointer array. */
#define TABLE_RESERVE(d, name)                                                                     \
	({                                                                                         \
		__typeof__((d)->name) _a = array__grow((d)->name, &(d)->cap_##name,                \
						       (d)->n_##name + 1, sizeof(*(d)->name));     \
		if (_a)                                                                            \
			(d)->name = _a;                                                            \
		_a ? 0 : -ENOMEM;                                                                  \
	})

/*
 * Looks up key[0..len) in keys; *idx receives its table index (key id + 1)
 * and *is_new whether it was just added, in which case the caller appends the
 * entry at that index (its array has room: reserved before). Returns 0 or
 * -errno.
 */
static int key_findnew(struct strtab *keys, const void *key, size_t len, int32_t *idx, bool *is_new)
{
	size_t before = keys->n;
	uint32_t id;
	int err = strtab__findnew(keys, key, len, &id);

	if (err)
		return err;
	*is_new = keys->n != before;
	*idx = (int32_t)id + 1;
	return 0;
}

/* Grows the scratch key buffer to n bytes. */
static int kbuf_reserve(struct otlp_dict *d, size_t n)
{
	uint8_t *b = array__grow(d->kbuf, &d->kcap, n, 1);

	if (!b)
		return -ENOMEM;
	d->kbuf = b;
	return 0;
}

int otlp_dict_init(struct otlp_dict *d, struct arena *arena)
{
	static uint8_t zero_trace[16], zero_span[8];
	int32_t empty;
	int err;

	memset(d, 0, sizeof(*d));
	d->arena = arena;
	strtab__init(&d->strings, arena, OTLP_MAX_ENTRIES);
	strtab__init(&d->mapping_keys, arena, OTLP_MAX_ENTRIES - 1);
	strtab__init(&d->location_keys, arena, OTLP_MAX_ENTRIES - 1);
	strtab__init(&d->function_keys, arena, OTLP_MAX_ENTRIES - 1);
	strtab__init(&d->attr_keys, arena, OTLP_MAX_ENTRIES - 1);

	err = otlp_dict_string(d, "", 0, &empty); /* string_table[0] = "" */
	if (err)
		return err;
	if (TABLE_RESERVE(d, mappings) || TABLE_RESERVE(d, locations) ||
	    TABLE_RESERVE(d, functions) || TABLE_RESERVE(d, attrs) || TABLE_RESERVE(d, stacks))
		return -ENOMEM;

	OtlpMapping *m = arena__alloc(arena, sizeof(*m));
	OtlpLocation *l = arena__alloc(arena, sizeof(*l));
	OtlpFunction *f = arena__alloc(arena, sizeof(*f));
	OtlpKeyValueAndUnit *a = arena__alloc(arena, sizeof(*a));
	OtlpStack *s = arena__alloc(arena, sizeof(*s));
	OtlpLink *k = arena__alloc(arena, sizeof(*k));
	if (!m || !l || !f || !a || !s || !k)
		return -ENOMEM;
	*m = (OtlpMapping)OPENTELEMETRY__PROTO__PROFILES__V1DEVELOPMENT__MAPPING__INIT;
	*l = (OtlpLocation)OPENTELEMETRY__PROTO__PROFILES__V1DEVELOPMENT__LOCATION__INIT;
	*f = (OtlpFunction)OPENTELEMETRY__PROTO__PROFILES__V1DEVELOPMENT__FUNCTION__INIT;
	*a = (OtlpKeyValueAndUnit)
		OPENTELEMETRY__PROTO__PROFILES__V1DEVELOPMENT__KEY_VALUE_AND_UNIT__INIT;
	*s = (OtlpStack)OPENTELEMETRY__PROTO__PROFILES__V1DEVELOPMENT__STACK__INIT;
	*k = (OtlpLink)OPENTELEMETRY__PROTO__PROFILES__V1DEVELOPMENT__LINK__INIT;
	/* the SHOULD form of link_table[0], for codecs that insist on 16/8 bytes */
	k->trace_id = (ProtobufCBinaryData){sizeof(zero_trace), zero_trace};
	k->span_id = (ProtobufCBinaryData){sizeof(zero_span), zero_span};
	d->mappings[d->n_mappings++] = m;
	d->locations[d->n_locations++] = l;
	d->functions[d->n_functions++] = f;
	d->attrs[d->n_attrs++] = a;
	d->stacks[d->n_stacks++] = s;
	d->links[0] = k;
	return 0;
}

void otlp_dict_deinit(struct otlp_dict *d)
{
	strtab__deinit(&d->strings);
	strtab__deinit(&d->mapping_keys);
	strtab__deinit(&d->location_keys);
	strtab__deinit(&d->function_keys);
	strtab__deinit(&d->attr_keys);
	otlp_hset_deinit(&d->stack_set);
	free(d->mappings);
	free(d->locations);
	free(d->functions);
	free(d->attrs);
	free(d->stacks);
	free(d->kbuf);
	otlp_idmap_deinit(&d->location_by_frame);
	otlp_idmap_deinit(&d->mapping_by_module);
	d->mappings = NULL;
	d->locations = NULL;
	d->functions = NULL;
	d->attrs = NULL;
	d->stacks = NULL;
	d->kbuf = NULL;
}

int otlp_dict_string(struct otlp_dict *d, const char *s, size_t len, int32_t *idx)
{
	uint32_t id;
	int err = strtab__findnew(&d->strings, s, len, &id);

	if (!err)
		*idx = (int32_t)id;
	return err;
}

int otlp_dict_key(struct otlp_dict *d, enum otlp_key k, int32_t *idx)
{
	if (!d->key_str[k]) {
		int err = otlp_dict_string(d, key_names[k], strlen(key_names[k]), &d->key_str[k]);

		if (err)
			return err;
	}
	*idx = d->key_str[k];
	return 0;
}

enum { ATTR_INT = 1, ATTR_STR = 2 };

/* The attribute (key k, value v or s[0..len)), by its key: key index, kind,
 * then the int64 or the string's bytes. */
static int attr_findnew(struct otlp_dict *d, enum otlp_key k, int kind, int64_t v, const char *s,
			size_t len, int32_t *idx)
{
	int32_t key;
	bool is_new;
	int err;

	err = otlp_dict_key(d, k, &key);
	if (err)
		return err;
	size_t head = sizeof(int32_t) + sizeof(int32_t);
	if (len > SIZE_MAX - head - sizeof(v))
		return -E2BIG;
	size_t klen = head + (kind == ATTR_INT ? sizeof(v) : len);
	err = kbuf_reserve(d, klen);
	if (!err)
		err = TABLE_RESERVE(d, attrs);
	if (err)
		return err;
	int32_t kind32 = kind;
	memcpy(d->kbuf, &key, sizeof(key));
	memcpy(d->kbuf + sizeof(key), &kind32, sizeof(kind32));
	if (kind == ATTR_INT)
		memcpy(d->kbuf + head, &v, sizeof(v));
	else if (len)
		memcpy(d->kbuf + head, s, len);
	err = key_findnew(&d->attr_keys, d->kbuf, klen, idx, &is_new);
	if (err || !is_new)
		return err;

	OtlpKeyValueAndUnit *a = arena__alloc(d->arena, sizeof(*a));
	OtlpAnyValue *val = arena__alloc(d->arena, sizeof(*val));
	if (!a || !val)
		return -ENOMEM;
	*val = (OtlpAnyValue)OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__INIT;
	if (kind == ATTR_INT) {
		val->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE;
		val->int_value = v;
	} else {
		/* a plain string_value, which every OTLP reader knows */
		val->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
		val->string_value = arena__strndup(d->arena, s, len);
		if (!val->string_value)
			return -ENOMEM;
	}
	*a = (OtlpKeyValueAndUnit)
		OPENTELEMETRY__PROTO__PROFILES__V1DEVELOPMENT__KEY_VALUE_AND_UNIT__INIT;
	a->key_strindex = key;
	a->value = val;
	d->attrs[d->n_attrs++] = a;
	return 0;
}

int otlp_dict_attr_int(struct otlp_dict *d, enum otlp_key k, int64_t v, int32_t *idx)
{
	return attr_findnew(d, k, ATTR_INT, v, NULL, 0, idx);
}

int otlp_dict_attr_str(struct otlp_dict *d, enum otlp_key k, const char *s, size_t len,
		       int32_t *idx)
{
	return attr_findnew(d, k, ATTR_STR, 0, s, len, idx);
}

/* An int32 array from the arena holding v[0..n), or NULL. */
static int32_t *arena_i32dup(struct arena *a, const int32_t *v, size_t n)
{
	int32_t *c;

	if (n > SIZE_MAX / sizeof(*v))
		return NULL;
	c = arena__alloc(a, n * sizeof(*v));
	if (c)
		memcpy(c, v, n * sizeof(*v));
	return c;
}

/* The mapping of module m: 0 when it has no build id of any kind. */
static int mapping_for_module(struct otlp_dict *d, const struct sym_module *m, int32_t *idx)
{
	uint32_t cached = otlp_idmap_get(&d->mapping_by_module, (uintptr_t)m);
	struct {
		int32_t filename, gnu, htlhash;
	} key = {0};
	int32_t attrs[2];
	size_t n_attrs = 0;
	bool is_new;
	int err = 0;

	if (cached) {
		*idx = (int32_t)(cached - 1);
		return 0;
	}
	if (m->build_id && m->build_id[0])
		err = otlp_dict_attr_str(d, OTLP_K_BUILD_ID_GNU, m->build_id, strlen(m->build_id),
					 &key.gnu);
	if (!err && m->htlhash && m->htlhash[0])
		err = otlp_dict_attr_str(d, OTLP_K_BUILD_ID_HTLHASH, m->htlhash, strlen(m->htlhash),
					 &key.htlhash);
	if (err)
		return err;
	if (!key.gnu && !key.htlhash) {
		*idx = 0;
		return otlp_idmap_put(&d->mapping_by_module, (uintptr_t)m, 1);
	}
	err = otlp_dict_string(d, m->path, strlen(m->path), &key.filename);
	if (!err)
		err = TABLE_RESERVE(d, mappings);
	if (!err)
		err = key_findnew(&d->mapping_keys, &key, sizeof(key), idx, &is_new);
	if (err)
		return err;
	if (is_new) {
		OtlpMapping *mp = arena__alloc(d->arena, sizeof(*mp));

		if (key.gnu)
			attrs[n_attrs++] = key.gnu;
		if (key.htlhash)
			attrs[n_attrs++] = key.htlhash;
		int32_t *ai = arena_i32dup(d->arena, attrs, n_attrs);
		if (!mp || !ai)
			return -ENOMEM;
		*mp = (OtlpMapping)OPENTELEMETRY__PROTO__PROFILES__V1DEVELOPMENT__MAPPING__INIT;
		mp->memory_start = 0;
		mp->memory_limit = UINT64_MAX;
		mp->file_offset = 0;
		mp->filename_strindex = key.filename;
		mp->attribute_indices = ai;
		mp->n_attribute_indices = n_attrs;
		d->mappings[d->n_mappings++] = mp;
	}
	return otlp_idmap_put(&d->mapping_by_module, (uintptr_t)m, (uint32_t)*idx + 1);
}

/*
 * The names of a symbolized frame. The symbolizer has one name per symbol
 * today (no demangling), so both are that name; once struct sym_frame carries
 * a demangled name, frame_name() returns it and frame_system_name() keeps the
 * linkage name.
 */
static const char *frame_name(const struct sym_frame *f)
{
	return f->function;
}

static const char *frame_system_name(const struct sym_frame *f)
{
	return f->function;
}

static int function_findnew(struct otlp_dict *d, const struct sym_frame *f, int32_t *idx)
{
	const char *name = frame_name(f), *sys = frame_system_name(f);
	struct {
		int32_t name, system_name, filename;
	} key = {0};
	bool is_new;
	int err;

	err = otlp_dict_string(d, name, strlen(name), &key.name);
	if (!err)
		err = otlp_dict_string(d, sys, strlen(sys), &key.system_name);
	if (!err && f->file)
		err = otlp_dict_string(d, f->file, strlen(f->file), &key.filename);
	if (!err)
		err = TABLE_RESERVE(d, functions);
	if (!err)
		err = key_findnew(&d->function_keys, &key, sizeof(key), idx, &is_new);
	if (err || !is_new)
		return err;

	OtlpFunction *fn = arena__alloc(d->arena, sizeof(*fn));
	if (!fn)
		return -ENOMEM;
	*fn = (OtlpFunction)OPENTELEMETRY__PROTO__PROFILES__V1DEVELOPMENT__FUNCTION__INIT;
	fn->name_strindex = key.name;
	fn->system_name_strindex = key.system_name;
	fn->filename_strindex = key.filename;
	d->functions[d->n_functions++] = fn;
	return 0;
}

/* profile.frame.type of a frame: "kernel" or "native" (no more precise value
 * applies to frame-pointer-unwound native code of unknown language). */
static int frame_type_attr(struct otlp_dict *d, const struct sym_frame *f, int32_t *idx)
{
	bool kernel = f->kind == SYM_FRAME_KERNEL || (f->module && f->module->is_kernel);
	int32_t *cache = kernel ? &d->attr_frame_kernel : &d->attr_frame_native;
	const char *v = kernel ? "kernel" : "native";

	if (!*cache) {
		int err = otlp_dict_attr_str(d, OTLP_K_FRAME_TYPE, v, strlen(v), cache);

		if (err)
			return err;
	}
	*idx = *cache;
	return 0;
}

int otlp_dict_location(struct otlp_dict *d, const struct sym_frame *f, int32_t *idx)
{
	uint32_t cached = otlp_idmap_get(&d->location_by_frame, (uintptr_t)f);
	struct {
		uint64_t address;
		int64_t line;
		int32_t mapping, function, frame_type, pad;
	} key;
	bool is_new;
	int err = 0;

	if (cached) {
		*idx = (int32_t)cached;
		return 0;
	}
	memset(&key, 0, sizeof(key)); /* the padding is part of the key bytes */
	key.address = f->address;
	if (f->module)
		err = mapping_for_module(d, f->module, &key.mapping);
	if (!err && f->function && f->function[0]) {
		err = function_findnew(d, f, &key.function);
		key.line = f->line;
	}
	if (!err)
		err = frame_type_attr(d, f, &key.frame_type);
	if (!err)
		err = TABLE_RESERVE(d, locations);
	if (!err)
		err = key_findnew(&d->location_keys, &key, sizeof(key), idx, &is_new);
	if (err)
		return err;
	if (is_new) {
		OtlpLocation *loc = arena__alloc(d->arena, sizeof(*loc));
		int32_t *ai = arena_i32dup(d->arena, &key.frame_type, 1);

		if (!loc || !ai)
			return -ENOMEM;
		*loc = (OtlpLocation)OPENTELEMETRY__PROTO__PROFILES__V1DEVELOPMENT__LOCATION__INIT;
		loc->mapping_index = key.mapping;
		loc->address = key.address;
		loc->attribute_indices = ai;
		loc->n_attribute_indices = 1;
		if (key.function) {
			OtlpLine **lines = arena__alloc(d->arena, sizeof(*lines));
			OtlpLine *ln = arena__alloc(d->arena, sizeof(*ln));

			if (!lines || !ln)
				return -ENOMEM;
			*ln = (OtlpLine)OPENTELEMETRY__PROTO__PROFILES__V1DEVELOPMENT__LINE__INIT;
			ln->function_index = key.function;
			ln->line = key.line;
			lines[0] = ln;
			loc->lines = lines;
			loc->n_lines = 1;
		}
		d->locations[d->n_locations++] = loc;
	}
	return otlp_idmap_put(&d->location_by_frame, (uintptr_t)f, (uint32_t)*idx);
}

struct stack_probe {
	const struct otlp_dict *d;
	const int32_t *locs;
	size_t n;
};

static bool stack_eq(const void *ctx, uint32_t idx)
{
	const struct stack_probe *p = ctx;
	const OtlpStack *s = p->d->stacks[idx];

	return s->n_location_indices == p->n &&
	       memcmp(s->location_indices, p->locs, p->n * sizeof(*p->locs)) == 0;
}

int otlp_dict_stack(struct otlp_dict *d, const int32_t *locs, size_t n, int32_t *idx)
{
	struct stack_probe probe = {d, locs, n};
	uint32_t found;
	int err;

	if (!n) {
		*idx = 0;
		return 0;
	}
	if (n > SIZE_MAX / sizeof(*locs))
		return -E2BIG;
	if (d->n_stacks >= OTLP_MAX_ENTRIES)
		return -E2BIG;
	err = TABLE_RESERVE(d, stacks);
	if (!err)
		err = otlp_hset_findnew(&d->stack_set, otlp_hash_i32(locs, n), stack_eq, &probe,
					(uint32_t)d->n_stacks, &found);
	if (err)
		return err;
	if (found) {
		*idx = (int32_t)found;
		return 0;
	}
	/* added to the set as n_stacks: an error from here on ends the encoding */
	OtlpStack *s = arena__alloc(d->arena, sizeof(*s));
	int32_t *li = arena_i32dup(d->arena, locs, n);
	if (!s || !li)
		return -ENOMEM;
	*s = (OtlpStack)OPENTELEMETRY__PROTO__PROFILES__V1DEVELOPMENT__STACK__INIT;
	s->location_indices = li;
	s->n_location_indices = n;
	*idx = (int32_t)d->n_stacks;
	d->stacks[d->n_stacks++] = s;
	return 0;
}
