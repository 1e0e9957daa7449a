/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * pprof encoder: struct profile -> gzip(perftools.profiles.Profile).
 *
 * Why it is built this way:
 *
 * - One owner. An encoding context (struct pp_ctx) owns every byte it
 *   allocates: the protobuf-c message structs are carved from one bump arena
 *   and freed at once; the few arrays that must grow (the pointer arrays
 *   protobuf-c wants for repeated fields, the hash tables) are realloc'ed
 *   buffers held by the context. pp_ctx_deinit() frees all of it, on success
 *   and on every error path; nothing is freed message by message.
 *
 * - Everything is deduplicated with open-addressing hash tables, never by
 *   linear search: strings by content (string_table[0] is ""), mappings by
 *   module pointer, locations by frame pointer (the symbolizer interns frames,
 *   so one pointer is one (module, address)), functions by their string
 *   indices (name, system_name, file). A profile with S stacks of F frames
 *   costs O(S * F) expected time.
 *
 * - Inlined calls: a frame with functions inlined at its address becomes one
 *   Location with several Lines, innermost first (the frame's inlined[], then
 *   its own function), as pprof orders them; its mapping says
 *   has_inline_frames. A Function's system_name is the mangled name when the
 *   symbolizer has one, else the name itself.
 *
 * - Strings are copied into the arena when first seen, so the encoder never
 *   depends on a NUL inside the fixed-size comm fields of the profile.
 *
 * - Addresses are already pprof-normalized by the symbolizer (file offsets for
 *   user code, kernel virtual addresses for the kernel), so each mapping spans
 *   [0, UINT64_MAX) with file_offset 0 and pprof uses addresses as they are.
 *
 * - A stack with no frames (the capture failed, or the task was idle in a
 *   context with no stack) still yields a sample: it gets one synthetic,
 *   mapping-less location whose function is the process name, so its samples
 *   stay in the totals. Every sample carries pid, tid, thread_name and
 *   process_name labels. Drop counts and the host name go into comments.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libdeflate.h>

#include "encoder.h"
#include "encoder_internal.h"
#include "perftools/profiles/profile.pb-c.h"

#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

/* ---- uint64 -> id maps ---- */

/* uint64 key -> nonzero uint32 id; val 0 marks an empty slot. */
struct idmap {
	uint64_t *keys;
	uint32_t *vals;
	size_t cap; /* power of two, or 0 before the first insert */
	size_t n;
};

static uint32_t idmap_get(const struct idmap *m, uint64_t key)
{
	if (!m->cap)
		return 0;
	size_t mask = m->cap - 1;
	for (size_t i = enc_hash_u64(key) & mask;; i = (i + 1) & mask) {
		if (!m->vals[i] || m->keys[i] == key)
			return m->vals[i];
	}
}

static void idmap_place(uint64_t *keys, uint32_t *vals, size_t mask, uint64_t key, uint32_t val)
{
	size_t i = enc_hash_u64(key) & mask;

	while (vals[i])
		i = (i + 1) & mask;
	keys[i] = key;
	vals[i] = val;
}

/* Inserts key (absent) -> val (nonzero). Returns 0 or -ENOMEM. */
static int idmap_put(struct idmap *m, uint64_t key, uint32_t val)
{
	if ((m->n + 1) * 2 > m->cap) {
		size_t ncap = m->cap ? m->cap * 2 : 256;
		uint64_t *keys = calloc(ncap, sizeof(*keys));
		uint32_t *vals = calloc(ncap, sizeof(*vals));

		if (!keys || !vals) {
			free(keys);
			free(vals);
			return -ENOMEM;
		}
		for (size_t i = 0; i < m->cap; i++) {
			if (m->vals[i])
				idmap_place(keys, vals, ncap - 1, m->keys[i], m->vals[i]);
		}
		free(m->keys);
		free(m->vals);
		m->keys = keys;
		m->vals = vals;
		m->cap = ncap;
	}
	idmap_place(m->keys, m->vals, m->cap - 1, key, val);
	m->n++;
	return 0;
}

static void idmap_deinit(struct idmap *m)
{
	free(m->keys);
	free(m->vals);
	memset(m, 0, sizeof(*m));
}

/* ---- the encoding context ---- */

/* A mapping and the symbolization tallies behind its has_* flags. */
struct pp_mapping {
	Perftools__Profiles__Mapping pb;
	size_t n_locs, n_funcs, n_files, n_lines;
	size_t n_inline_locs; /* locations with inlined calls expanded */
};

struct pp_ctx {
	struct arena arena;

	/* Output tables in protobuf-c's shape; the elements live in the arena. */
	struct strtab strings; /* strings.strs is the string table */
	Perftools__Profiles__Mapping **mappings;
	size_t n_mappings, cap_mappings;
	Perftools__Profiles__Location **locations;
	size_t n_locations, cap_locations;
	Perftools__Profiles__Function **functions;
	size_t n_functions, cap_functions;
	int64_t *comments;
	size_t n_comments, cap_comments;

	/* Indexes. */
	struct idmap mapping_by_module;
	struct idmap location_by_frame;
	struct idmap synth_location_by_function;
	struct idmap function_by_strings;   /* (name, file) of unmangled functions */
	struct idmap name_pair_by_strings;  /* (name, system_name) -> dense pair id */
	struct idmap function_by_name_pair; /* (pair id, file) of mangled functions */

	/* Label keys, interned once. */
	int64_t k_pid, k_tid, k_thread_name, k_process_name;
};

static void pp_ctx_deinit(struct pp_ctx *c)
{
	strtab__deinit(&c->strings);
	arena__free(&c->arena);
	free(c->mappings);
	free(c->locations);
	free(c->functions);
	free(c->comments);
	idmap_deinit(&c->mapping_by_module);
	idmap_deinit(&c->location_by_frame);
	idmap_deinit(&c->synth_location_by_function);
	idmap_deinit(&c->function_by_strings);
	idmap_deinit(&c->name_pair_by_strings);
	idmap_deinit(&c->function_by_name_pair);
}

/* Interns s[0..len) and stores its string-table index in *idx.
 * Returns 0 or -errno. */
static int intern_n(struct pp_ctx *c, const char *s, size_t len, int64_t *idx)
{
	uint32_t id;
	int err = strtab__findnew(&c->strings, s, len, &id);

	if (!err)
		*idx = id;
	return err;
}

/* NULL interns as "" (index 0). */
static int intern(struct pp_ctx *c, const char *s, int64_t *idx)
{
	return intern_n(c, s ? s : "", s ? strlen(s) : 0, idx);
}

static int pp_ctx_init(struct pp_ctx *c)
{
	int64_t empty;
	int err;

	memset(c, 0, sizeof(*c));
	strtab__init(&c->strings, &c->arena, UINT32_MAX - 1);
	err = intern_n(c, "", 0, &empty); /* string_table[0] must be "" */
	if (!err)
		err = intern(c, "pid", &c->k_pid);
	if (!err)
		err = intern(c, "tid", &c->k_tid);
	if (!err)
		err = intern(c, "thread_name", &c->k_thread_name);
	if (!err)
		err = intern(c, "process_name", &c->k_process_name);
	return err;
}

static int add_comment(struct pp_ctx *c, const char *text)
{
	int64_t idx;
	int err = intern(c, text, &idx);

	if (err)
		return err;
	int64_t *comments =
		array__grow(c->comments, &c->cap_comments, c->n_comments + 1, sizeof(*comments));
	if (!comments)
		return -ENOMEM;
	c->comments = comments;
	c->comments[c->n_comments++] = idx;
	return 0;
}

/* Returns the id (nonzero) of the mapping of module m in *id, creating it on
 * first use. Returns 0 or -errno. */
static int mapping_findnew(struct pp_ctx *c, const struct sym_module *m, uint64_t *id)
{
	uint64_t key = (uint64_t)(uintptr_t)m;
	uint32_t found = idmap_get(&c->mapping_by_module, key);
	int err;

	if (found) {
		*id = found;
		return 0;
	}
	if (c->n_mappings >= UINT32_MAX - 1)
		return -E2BIG;
	Perftools__Profiles__Mapping **arr =
		array__grow(c->mappings, &c->cap_mappings, c->n_mappings + 1, sizeof(*arr));
	if (!arr)
		return -ENOMEM;
	c->mappings = arr;
	struct pp_mapping *pm = arena__alloc(&c->arena, sizeof(*pm));
	if (!pm)
		return -ENOMEM;
	*pm = (struct pp_mapping){.pb = PERFTOOLS__PROFILES__MAPPING__INIT};
	pm->pb.id = c->n_mappings + 1;
	pm->pb.memory_start = 0;
	pm->pb.memory_limit = UINT64_MAX;
	pm->pb.file_offset = 0;
	err = intern(c, m->path, &pm->pb.filename);
	if (!err)
		err = intern(c, m->build_id, &pm->pb.build_id);
	if (!err)
		err = idmap_put(&c->mapping_by_module, key, (uint32_t)pm->pb.id);
	if (err)
		return err;
	c->mappings[c->n_mappings++] = &pm->pb;
	*id = pm->pb.id;
	return 0;
}

/*
 * The index keyed by (name, system_name, file) for function_findnew(), and the
 * key in it. String indices are below UINT32_MAX (the string table's bound),
 * so two pack into one key. An unmangled function (system_name == name) is
 * keyed by (name, file); a mangled one by (pair id, file) in another index,
 * the pair id numbering distinct (name, system_name) pairs.
 */
static int function_key(struct pp_ctx *c, int64_t name_idx, int64_t sys_idx, int64_t file_idx,
			struct idmap **index, uint64_t *key)
{
	uint64_t pair_key = (uint64_t)name_idx << 32 | (uint64_t)sys_idx;
	uint32_t pair;
	int err;

	if (sys_idx == name_idx) {
		*index = &c->function_by_strings;
		*key = (uint64_t)name_idx << 32 | (uint64_t)file_idx;
		return 0;
	}
	pair = idmap_get(&c->name_pair_by_strings, pair_key);
	if (!pair) {
		if (c->name_pair_by_strings.n >= UINT32_MAX - 1)
			return -E2BIG;
		pair = (uint32_t)c->name_pair_by_strings.n + 1;
		err = idmap_put(&c->name_pair_by_strings, pair_key, pair);
		if (err)
			return err;
	}
	*index = &c->function_by_name_pair;
	*key = (uint64_t)pair << 32 | (uint64_t)file_idx;
	return 0;
}

/* Returns the id of the function (name, system_name, file) in *id; sys NULL
 * means not mangled: the name is both. Returns 0 or -errno. */
static int function_findnew(struct pp_ctx *c, const char *name, size_t name_len, const char *sys,
			    const char *file, uint64_t *id)
{
	int64_t name_idx, sys_idx, file_idx;
	struct idmap *index;
	uint64_t key;
	int err = intern_n(c, name, name_len, &name_idx);

	sys_idx = name_idx;
	if (!err && sys && sys[0])
		err = intern(c, sys, &sys_idx);
	if (!err)
		err = intern(c, file, &file_idx);
	if (!err)
		err = function_key(c, name_idx, sys_idx, file_idx, &index, &key);
	if (err)
		return err;
	uint32_t found = idmap_get(index, key);
	if (found) {
		*id = found;
		return 0;
	}
	if (c->n_functions >= UINT32_MAX - 1)
		return -E2BIG;
	Perftools__Profiles__Function **arr =
		array__grow(c->functions, &c->cap_functions, c->n_functions + 1, sizeof(*arr));
	if (!arr)
		return -ENOMEM;
	c->functions = arr;
	Perftools__Profiles__Function *fn = arena__alloc(&c->arena, sizeof(*fn));
	if (!fn)
		return -ENOMEM;
	*fn = (Perftools__Profiles__Function)PERFTOOLS__PROFILES__FUNCTION__INIT;
	fn->id = c->n_functions + 1;
	fn->name = name_idx;
	fn->system_name = sys_idx; /* the name itself when not mangled, as pprof asks */
	fn->filename = file_idx;
	err = idmap_put(index, key, (uint32_t)fn->id);
	if (err)
		return err;
	c->functions[c->n_functions++] = fn;
	*id = fn->id;
	return 0;
}

/* Appends a location (mapping_id, address, room for n_lines lines, filled
 * by the caller) and returns it, or NULL (out of memory or too many
 * locations). */
static Perftools__Profiles__Location *location_new(struct pp_ctx *c, uint64_t mapping_id,
						   uint64_t address, size_t n_lines)
{
	if (c->n_locations >= UINT32_MAX - 1)
		return NULL;
	Perftools__Profiles__Location **arr =
		array__grow(c->locations, &c->cap_locations, c->n_locations + 1, sizeof(*arr));
	if (!arr)
		return NULL;
	c->locations = arr;
	Perftools__Profiles__Location *loc = arena__alloc(&c->arena, sizeof(*loc));
	if (!loc)
		return NULL;
	*loc = (Perftools__Profiles__Location)PERFTOOLS__PROFILES__LOCATION__INIT;
	loc->id = c->n_locations + 1;
	loc->mapping_id = mapping_id;
	loc->address = address;
	if (n_lines) {
		Perftools__Profiles__Line **lines =
			arena__alloc(&c->arena, n_lines * sizeof(*lines));
		Perftools__Profiles__Line *ln = arena__alloc(&c->arena, n_lines * sizeof(*ln));

		if (!lines || !ln)
			return NULL;
		for (size_t i = 0; i < n_lines; i++) {
			ln[i] = (Perftools__Profiles__Line)PERFTOOLS__PROFILES__LINE__INIT;
			lines[i] = &ln[i];
		}
		loc->line = lines;
		loc->n_line = n_lines;
	}
	c->locations[c->n_locations++] = loc;
	return loc;
}

/* Fills line *ln with the function (name, sys, file) and its line number.
 * Returns 0 or -errno. */
static int line_fill(struct pp_ctx *c, Perftools__Profiles__Line *ln, const char *name,
		     const char *sys, const char *file, uint32_t line)
{
	int err = function_findnew(c, name, strlen(name), sys, file, &ln->function_id);

	ln->line = line;
	return err;
}

/* Returns the location id of frame f in *id. Returns 0 or -errno. */
static int location_findnew(struct pp_ctx *c, const struct sym_frame *f, uint64_t *id)
{
	uint64_t key = (uint64_t)(uintptr_t)f;
	uint32_t found = idmap_get(&c->location_by_frame, key);
	uint64_t mapping_id = 0;
	bool symbolized = f->function && f->function[0];
	size_t n_inl = f->inlined ? f->n_inlined : 0;
	struct pp_mapping *pm = NULL;
	int err;

	if (found) {
		*id = found;
		return 0;
	}
	if (f->module) {
		err = mapping_findnew(c, f->module, &mapping_id);
		if (err)
			return err;
		pm = container_of(c->mappings[mapping_id - 1], struct pp_mapping, pb);
	}
	Perftools__Profiles__Location *loc =
		location_new(c, mapping_id, f->address, n_inl + symbolized);
	if (!loc)
		return c->n_locations >= UINT32_MAX - 1 ? -E2BIG : -ENOMEM;
	/* innermost first: the inlined calls, then the function they are in */
	for (size_t i = 0; i < n_inl; i++) {
		const struct sym_inline *in = &f->inlined[i];

		err = line_fill(c, loc->line[i], enc_inline_name(in), in->system_name, in->file,
				in->line);
		if (err)
			return err;
	}
	if (symbolized) {
		err = line_fill(c, loc->line[n_inl], f->function, f->system_name, f->file, f->line);
		if (err)
			return err;
	}
	err = idmap_put(&c->location_by_frame, key, (uint32_t)loc->id);
	if (err)
		return err;
	if (pm) {
		pm->n_locs++;
		if (symbolized) {
			pm->n_funcs++;
			pm->n_files += f->file && f->file[0];
			pm->n_lines += f->line != 0;
		}
		pm->n_inline_locs += n_inl > 0;
	}
	*id = loc->id;
	return 0;
}

/* The location standing for a stack with no frames: no mapping, one line
 * whose function is the process name. Returns 0 or -errno. */
static int synth_location_findnew(struct pp_ctx *c, const struct profile_stack *st, uint64_t *id)
{
	static const char unknown[] = "[unknown]";
	size_t len = strnlen(st->pcomm, sizeof(st->pcomm));
	const char *name = len ? st->pcomm : unknown;
	uint64_t function_id;
	int err;

	err = function_findnew(c, name, len ? len : strlen(unknown), NULL, NULL, &function_id);
	if (err)
		return err;
	uint32_t found = idmap_get(&c->synth_location_by_function, function_id);
	if (found) {
		*id = found;
		return 0;
	}
	Perftools__Profiles__Location *loc = location_new(c, 0, 0, 1);
	if (!loc)
		return c->n_locations >= UINT32_MAX - 1 ? -E2BIG : -ENOMEM;
	loc->line[0]->function_id = function_id;
	err = idmap_put(&c->synth_location_by_function, function_id, (uint32_t)loc->id);
	if (err)
		return err;
	*id = loc->id;
	return 0;
}

static Perftools__Profiles__Label *label_num(Perftools__Profiles__Label *l, int64_t key,
					     int64_t num)
{
	*l = (Perftools__Profiles__Label)PERFTOOLS__PROFILES__LABEL__INIT;
	l->key = key;
	l->num = num;
	return l;
}

static Perftools__Profiles__Label *label_str(Perftools__Profiles__Label *l, int64_t key,
					     int64_t str)
{
	*l = (Perftools__Profiles__Label)PERFTOOLS__PROFILES__LABEL__INIT;
	l->key = key;
	l->str = str;
	return l;
}

#define PP_N_LABELS 4

/* Builds the sample of one stack into *out. Returns 0 or -errno. */
static int sample_build(struct pp_ctx *c, const struct profile *p, const struct profile_stack *st,
			Perftools__Profiles__Sample **out)
{
	size_t n_frames = (size_t)st->n_kernel + st->n_user;
	size_t n_ids = n_frames ? n_frames : 1;
	int64_t thread_name, process_name, cpu_ns = 0;
	int err;

	if (n_frames && !st->frames)
		return -EINVAL;
	if (p->n_value_types && !st->values)
		return -EINVAL;
	if (!p->n_value_types &&
	    (st->count > INT64_MAX || p->period_ns > INT64_MAX ||
	     __builtin_mul_overflow((int64_t)st->count, (int64_t)p->period_ns, &cpu_ns)))
		return -EOVERFLOW;
	size_t n_values = p->n_value_types ? p->n_value_types : 2;

	Perftools__Profiles__Sample *s = arena__alloc(&c->arena, sizeof(*s));
	uint64_t *ids = arena__alloc(&c->arena, n_ids * sizeof(*ids));
	int64_t *values = arena__alloc(&c->arena, n_values * sizeof(*values));
	Perftools__Profiles__Label **labels =
		arena__alloc(&c->arena, PP_N_LABELS * sizeof(*labels));
	Perftools__Profiles__Label *lab = arena__alloc(&c->arena, PP_N_LABELS * sizeof(*lab));
	if (!s || !ids || !values || !labels || !lab)
		return -ENOMEM;

	/*
	 * frames[] is kernel then user, each leaf first; walking it backwards
	 * creates locations user frames first, outermost first, so mapping 1 (by
	 * convention the main binary) is the root module of the first stack
	 * rather than the kernel. location_id keeps the leaf-first order.
	 */
	for (size_t i = n_frames; i-- > 0;) {
		const struct sym_frame *f = st->frames[i];

		if (!f)
			return -EINVAL;
		err = location_findnew(c, f, &ids[i]);
		if (err)
			return err;
	}
	if (!n_frames) {
		err = synth_location_findnew(c, st, &ids[0]);
		if (err)
			return err;
	}

	err = intern_n(c, st->comm, strnlen(st->comm, sizeof(st->comm)), &thread_name);
	if (!err)
		err = intern_n(c, st->pcomm, strnlen(st->pcomm, sizeof(st->pcomm)), &process_name);
	if (err)
		return err;

	if (p->n_value_types) {
		memcpy(values, st->values, n_values * sizeof(*values));
	} else {
		values[0] = (int64_t)st->count;
		values[1] = cpu_ns;
	}
	labels[0] = label_num(&lab[0], c->k_pid, st->tgid);
	labels[1] = label_num(&lab[1], c->k_tid, st->tid);
	labels[2] = label_str(&lab[2], c->k_thread_name, thread_name);
	labels[3] = label_str(&lab[3], c->k_process_name, process_name);

	*s = (Perftools__Profiles__Sample)PERFTOOLS__PROFILES__SAMPLE__INIT;
	s->location_id = ids;
	s->n_location_id = n_ids;
	s->value = values;
	s->n_value = n_values;
	s->label = labels;
	s->n_label = PP_N_LABELS;
	*out = s;
	return 0;
}

/* Sets each mapping's has_* flags from what its locations really carry. */
static void mappings_finish(struct pp_ctx *c)
{
	for (size_t i = 0; i < c->n_mappings; i++) {
		struct pp_mapping *pm = container_of(c->mappings[i], struct pp_mapping, pb);
		bool any = pm->n_locs > 0;

		pm->pb.has_functions = any && pm->n_funcs == pm->n_locs;
		pm->pb.has_filenames = any && pm->n_files == pm->n_locs;
		pm->pb.has_line_numbers = any && pm->n_lines == pm->n_locs;
		/* the symbolizer expands inlined calls where DWARF has them: a
		 * mapping with any says so */
		pm->pb.has_inline_frames = pm->n_inline_locs > 0;
	}
}

static Perftools__Profiles__ValueType *value_type_new(struct pp_ctx *c, const char *type,
						      const char *unit)
{
	Perftools__Profiles__ValueType *vt = arena__alloc(&c->arena, sizeof(*vt));

	if (!vt)
		return NULL;
	*vt = (Perftools__Profiles__ValueType)PERFTOOLS__PROFILES__VALUE_TYPE__INIT;
	if (intern(c, type, &vt->type) || intern(c, unit, &vt->unit))
		return NULL;
	return vt;
}

static int header_build(struct pp_ctx *c, const struct profile *p,
			Perftools__Profiles__Profile *prof)
{
	size_t n_types = p->n_value_types ? p->n_value_types : 2;
	Perftools__Profiles__ValueType **types = arena__alloc(&c->arena, n_types * sizeof(*types));
	char text[512];
	int err;

	if (!types)
		return -ENOMEM;
	if (p->n_value_types) {
		if (p->default_value >= p->n_value_types)
			return -EINVAL;
		for (size_t i = 0; i < n_types; i++) {
			types[i] =
				value_type_new(c, p->value_types[i].type, p->value_types[i].unit);
			if (!types[i])
				return -ENOMEM;
		}
		prof->period_type = value_type_new(c, p->period_type.type, p->period_type.unit);
		err = intern(c, p->value_types[p->default_value].type, &prof->default_sample_type);
		prof->period = p->period;
	} else {
		types[0] = value_type_new(c, "samples", "count");
		types[1] = value_type_new(c, "cpu", "nanoseconds");
		prof->period_type = value_type_new(c, "cpu", "nanoseconds");
		if (!types[0] || !types[1])
			return -ENOMEM;
		err = intern(c, "cpu", &prof->default_sample_type);
		if (p->period_ns > INT64_MAX)
			return -EOVERFLOW;
		prof->period = (int64_t)p->period_ns;
	}
	if (!prof->period_type)
		return -ENOMEM;
	if (err)
		return err;
	prof->sample_type = types;
	prof->n_sample_type = n_types;
	if (p->time_ns > INT64_MAX || p->duration_ns > INT64_MAX)
		return -EOVERFLOW;
	prof->time_nanos = (int64_t)p->time_ns;
	prof->duration_nanos = (int64_t)p->duration_ns;

	/* Nothing is dropped silently: the counts travel with the profile. */
	if (p->hostname && p->hostname[0]) {
		snprintf(text, sizeof(text), "host: %s", p->hostname);
		err = add_comment(c, text);
		if (err)
			return err;
	}
	if (p->frequency_hz) {
		snprintf(text, sizeof(text), "frequency_hz: %" PRIu32, p->frequency_hz);
		err = add_comment(c, text);
		if (err)
			return err;
	}
	snprintf(text, sizeof(text),
		 "drops: kernel_ring_full=%" PRIu64 " kernel_no_ring=%" PRIu64
		 " queue_full=%" PRIu64 " aggregator_full=%" PRIu64 " truncated_stacks=%" PRIu64
		 " stack_errors=%" PRIu64,
		 p->drops.kernel_ring_full, p->drops.kernel_no_ring, p->drops.queue_full,
		 p->drops.aggregator_full, p->drops.truncated_stacks, p->drops.stack_errors);
	return add_comment(c, text);
}

/* gzip (RFC 1952, mtime 0 so output is reproducible) of in[0..len) into out,
 * at level 1 with libdeflate, as the exporter compresses OTLP bodies: one
 * call over the whole buffer, about twice zlib's speed at the same ratio.
 * Returns 0 or -errno. */
static int gzip_buf(const uint8_t *in, size_t len, struct encoded_buf *out)
{
	struct libdeflate_compressor *c = libdeflate_alloc_compressor(1);
	if (!c)
		return -ENOMEM;
	size_t bound = libdeflate_gzip_compress_bound(c, len);
	uint8_t *dst = malloc(bound);
	if (!dst) {
		libdeflate_free_compressor(c);
		return -ENOMEM;
	}
	size_t n = libdeflate_gzip_compress(c, in, len, dst, bound);
	libdeflate_free_compressor(c);
	if (!n) { /* cannot happen with a bound-sized buffer */
		free(dst);
		return -EIO;
	}
	uint8_t *shrunk = realloc(dst, n);
	out->data = shrunk ? shrunk : dst;
	out->len = n;
	return 0;
}

int pprof__encode(const struct profile *p, struct encoded_buf *out)
{
	Perftools__Profiles__Profile prof = PERFTOOLS__PROFILES__PROFILE__INIT;
	Perftools__Profiles__Sample **samples = NULL;
	uint8_t *raw = NULL;
	struct pp_ctx c;
	int err;

	if (!p || !out || (p->n_stacks && !p->stacks))
		return -EINVAL;
	out->data = NULL;
	out->len = 0;

	err = pp_ctx_init(&c);
	if (err)
		goto cleanup;
	err = header_build(&c, p, &prof);
	if (err)
		goto cleanup;

	if (p->n_stacks > SIZE_MAX / sizeof(*samples)) {
		err = -E2BIG;
		goto cleanup;
	}
	samples = arena__alloc(&c.arena, (p->n_stacks ? p->n_stacks : 1) * sizeof(*samples));
	if (!samples) {
		err = -ENOMEM;
		goto cleanup;
	}
	for (size_t i = 0; i < p->n_stacks; i++) {
		err = sample_build(&c, p, &p->stacks[i], &samples[i]);
		if (err)
			goto cleanup;
	}
	mappings_finish(&c);

	prof.sample = samples;
	prof.n_sample = p->n_stacks;
	prof.mapping = c.mappings;
	prof.n_mapping = c.n_mappings;
	prof.location = c.locations;
	prof.n_location = c.n_locations;
	prof.function = c.functions;
	prof.n_function = c.n_functions;
	prof.string_table = c.strings.strs;
	prof.n_string_table = c.strings.n;
	prof.comment = c.comments;
	prof.n_comment = c.n_comments;

	size_t len = perftools__profiles__profile__get_packed_size(&prof);
	raw = malloc(len ? len : 1);
	if (!raw) {
		err = -ENOMEM;
		goto cleanup;
	}
	if (perftools__profiles__profile__pack(&prof, raw) != len) {
		err = -EIO;
		goto cleanup;
	}
	err = gzip_buf(raw, len, out);

cleanup:
	free(raw);
	pp_ctx_deinit(&c);
	return err;
}
