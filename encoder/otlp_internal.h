/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * OTLP Profiles encoder internals (otlp*.c). Not part of the public API
 * (encoder.h).
 *
 *   otlp_store.c  the store: what a request's dictionary is made of, as far
 *                 as it does not depend on the request (distinct strings,
 *                 attributes, mappings, functions, locations, each
 *                 hash-consed once), and the frame cache in front of it
 *   otlp_dict.c   the dictionary of one request, drawn from the store in
 *                 order of first use; stacks; the small hash tables
 *   otlp.c        otlp__encode() and the context: the model of resources,
 *                 profiles and samples over that dictionary
 *   otlp_wire.c   the serializer, from the model
 *   otlp_split.c  several requests by resource under max_request_bytes, each
 *                 with a dictionary holding only what it references
 *   otlp_attrs.c  otlp__parse_resource_attrs()
 *
 * Ownership: everything belongs to one struct otlp_encoder (otlp.c): the
 * store, which lives as long as the context (or until its bound clears it),
 * and the request's model and dictionary, whose memory (arena chunks,
 * growable arrays, hash slots) is reset rather than freed between calls.
 * otlp__encode() uses a context of its own for one call. The output buffers
 * are handed to the caller.
 *
 * Indices: the store's records have global ids (0 is the zero or "none"
 * entry of every table); a request numbers the records it uses 0, 1, 2, ...
 * in order of first use, so its output does not depend on what earlier
 * requests put into the store. Each store record carries a stamp, the
 * generation of the last request that used it and its index there, so
 * translating a global id into the request's index is one load and compare.
 *
 * Threads: none; a context is used by one thread at a time.
 */
#ifndef PIPELINE_ENCODER_OTLP_INTERNAL_H
#define PIPELINE_ENCODER_OTLP_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "encoder.h"
#include "encoder_internal.h"
#include "otlp_types.h"

/* The semantic conventions whose attribute names this encoder writes. */
#define OTLP_SCHEMA_URL "https://opentelemetry.io/schemas/1.44.0"

/* Indices are int32 on the wire: every table stays below this many entries. */
#define OTLP_MAX_ENTRIES ((uint32_t)INT32_MAX - 1)

/* ---- hashing ---- */

/* Hash of n int32 words, word at a time. */
static inline uint32_t otlp_hash_i32(const int32_t *v, size_t n)
{
	uint64_t h = n;

	for (size_t i = 0; i < n; i++)
		h = (h ^ (uint32_t)v[i]) * 0x9e3779b97f4a7c15ULL;
	return (uint32_t)enc_hash_u64(h);
}

/* Hash of p[0..n), eight bytes at a time (the value depends on the host's
 * byte order, which only changes where entries sit in a table). */
static inline uint32_t otlp_hash_bytes(const void *p, size_t n)
{
	const unsigned char *s = p;
	uint64_t h = n * 0x9e3779b97f4a7c15ULL, w;

	for (; n >= 8; n -= 8, s += 8) {
		memcpy(&w, s, 8);
		h = (h ^ w) * 0xbf58476d1ce4e5b9ULL;
		h ^= h >> 29;
	}
	if (n) {
		w = 0;
		memcpy(&w, s, n);
		h = (h ^ w) * 0x94d049bb133111ebULL;
	}
	return (uint32_t)enc_hash_u64(h);
}

/* ---- uint64 key -> nonzero uint32 value, open addressing (otlp_dict.c) ---- */
struct otlp_idmap_slot {
	uint64_t key;
	uint32_t val; /* 0 = empty slot */
};

struct otlp_idmap {
	struct otlp_idmap_slot *slots; /* key and value side by side: one miss per probe */
	size_t cap;		       /* power of two, or 0 before the first insert */
	size_t n;
};

/* Returns the value of key, or 0 when absent. */
uint32_t otlp_idmap_get(const struct otlp_idmap *m, uint64_t key);
/* Inserts key (absent) -> val (nonzero). Returns 0 or -ENOMEM. */
int otlp_idmap_put(struct otlp_idmap *m, uint64_t key, uint32_t val);
/* Empties the map, keeping its slots. */
void otlp_idmap_clear(struct otlp_idmap *m);
void otlp_idmap_deinit(struct otlp_idmap *m);

/*
 * A hash set of nonzero uint32 values (indices) whose keys live elsewhere:
 * a slot holds the key's 32-bit hash and the value, and the caller's eq()
 * compares a candidate with the key being looked up. Kept at most half full.
 */
struct otlp_hset {
	uint64_t *slots; /* hash << 32 | value; 0 = empty */
	size_t cap;	 /* power of two, or 0 before the first insert */
	size_t n;
};

/* Makes room for n values without growing. Returns 0 or -ENOMEM. */
int otlp_hset_reserve(struct otlp_hset *s, size_t n);
/* Empties the set, keeping its slots. */
void otlp_hset_clear(struct otlp_hset *s);
void otlp_hset_deinit(struct otlp_hset *s);

/* The value with hash h for which eq(ctx, value) holds, or 0. Inline, so
 * that a caller's static eq() is inlined too. */
static inline uint32_t otlp_hset_find(const struct otlp_hset *s, uint32_t h,
				      bool (*eq)(const void *ctx, uint32_t value), const void *ctx)
{
	if (!s->cap)
		return 0;
	size_t mask = s->cap - 1;
	for (size_t i = h & mask; s->slots[i]; i = (i + 1) & mask) {
		uint64_t slot = s->slots[i];

		if ((uint32_t)(slot >> 32) == h && eq(ctx, (uint32_t)slot))
			return (uint32_t)slot;
	}
	return 0;
}

/* Adds value (nonzero, absent) with hash h; room was made with
 * otlp_hset_reserve(s, s->n + 1). */
static inline void otlp_hset_add(struct otlp_hset *s, uint32_t h, uint32_t value)
{
	size_t mask = s->cap - 1, i;

	for (i = h & mask; s->slots[i]; i = (i + 1) & mask)
		;
	s->slots[i] = (uint64_t)h << 32 | value;
	s->n++;
}

/* Finds and adds in one probe: *found receives the value with hash h for
 * which eq(ctx, value) holds, or 0 after value (nonzero) was added in its
 * place. Returns 0 or -ENOMEM. */
static inline int otlp_hset_findnew(struct otlp_hset *s, uint32_t h,
				    bool (*eq)(const void *ctx, uint32_t value), const void *ctx,
				    uint32_t value, uint32_t *found)
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

/* Makes room for one more element in a growable array p with n_ and cap_
 * counters: 0 or -ENOMEM. */
#define OTLP_RESERVE(o, name)                                                                      \
	({                                                                                         \
		__typeof__((o)->name) _a = array__grow((o)->name, &(o)->cap_##name,                \
						       (o)->n_##name + 1, sizeof(*(o)->name));     \
		if (_a)                                                                            \
			(o)->name = _a;                                                            \
		_a ? 0 : -ENOMEM;                                                                  \
	})

/* ---- the store (otlp_store.c) ---- */

/* Attribute keys the encoder writes. */
enum otlp_key {
	OTLP_K_FRAME_TYPE,	 /* profile.frame.type (Location) */
	OTLP_K_BUILD_ID_GNU,	 /* process.executable.build_id.gnu (Mapping) */
	OTLP_K_BUILD_ID_HTLHASH, /* process.executable.build_id.htlhash (Mapping) */
	OTLP_K_THREAD_ID,	 /* thread.id (Sample) */
	OTLP_K_THREAD_NAME,	 /* thread.name (Sample) */
	OTLP_K_CPU,		 /* cpu.logical_number (Sample) */
	OTLP_K__COUNT,
};

enum otlp_attr_kind { OTLP_ATTR_INT = 1, OTLP_ATTR_STR = 2 };

/* Every record below ends with its stamp: gen, the generation of the last
 * request that used it, and idx, its index in that request's table. */

struct otlp_gstr {
	const char *s; /* NUL-terminated copy in the store's arena */
	uint32_t len;
	uint32_t gen;
	int32_t idx;
};

struct otlp_gattr {
	int64_t ival;  /* OTLP_ATTR_INT */
	uint32_t sval; /* OTLP_ATTR_STR: the value, a string id */
	uint8_t key;   /* enum otlp_key */
	uint8_t kind;  /* enum otlp_attr_kind; 0 for the zero entry */
	uint32_t gen;
	int32_t idx;
};

/* A module file, spanning [0, UINT64_MAX) at file offset 0. */
struct otlp_gmap {
	uint32_t file;	   /* string id of its path */
	uint32_t attrs[2]; /* build ids: gnu, htlhash attribute ids (0: none) */
	uint32_t gen;
	int32_t idx;
};

struct otlp_gfn {
	uint32_t name, sys, file; /* string ids; file 0 ("") when unknown */
	uint32_t gen;
	int32_t idx;
};

/* A Line of a function inlined at a location (function id, line). */
struct otlp_gline {
	uint32_t fn, line;
};

/* A location's Lines are, innermost first, its inlined calls
 * (store lines[inl .. inl + n_inl)), then its own function (fn, line). */
struct otlp_gloc {
	uint64_t address;
	uint32_t line;	 /* 0 without a function */
	uint32_t map;	 /* mapping id, 0: none */
	uint32_t fn;	 /* function id, 0: none (no Line of its own) */
	uint32_t kernel; /* profile.frame.type "kernel", else "native" */
	uint32_t inl;	 /* its inlined calls' Lines: store lines[inl ..] */
	uint32_t n_inl;	 /* how many; 0 for most frames */
	uint32_t gen;
	int32_t idx;
};

/* A frame cache slot: frame -> the index of its location in the request
 * that last used the frame (the hot path's single load). The slot's location
 * id and hash sit apart, in struct otlp_faux. */
struct otlp_fslot {
	const struct sym_frame *f; /* NULL: empty; never dereferenced once stored */
	uint32_t gen;
	int32_t idx;
};

struct otlp_faux {
	uint32_t hash; /* of the frame's pointer, for regrowing */
	uint32_t loc;  /* location id */
};

#define OTLP_CPU_CACHE 4096 /* CPUs below this number have a direct slot */

/*
 * Request-independent data: one record per distinct value, each table
 * hash-consed (an otlp_hset over the record array), so two frames with equal
 * values share a location, and so on down. Frames reach their location
 * through the frame cache, keyed by pointer: frames and modules are interned
 * and immutable while the symbolizer lives.
 */
struct otlp_store {
	struct arena arena; /* the string copies */
	struct otlp_gstr *strs;
	size_t n_strs, cap_strs;
	struct otlp_hset str_set;
	struct otlp_gattr *attrs;
	size_t n_attrs, cap_attrs;
	struct otlp_hset attr_set;
	struct otlp_gmap *maps;
	size_t n_maps, cap_maps;
	struct otlp_hset map_set;
	struct otlp_gfn *fns;
	size_t n_fns, cap_fns;
	struct otlp_hset fn_set;
	struct otlp_gloc *locs;
	size_t n_locs, cap_locs;
	struct otlp_hset loc_set;
	struct otlp_gline *lines; /* the inlined calls' Lines of every location, end to end */
	size_t n_lines, cap_lines;

	struct otlp_fslot *frames;	   /* the frame cache: open addressing, at most half full */
	struct otlp_faux *frames_aux;	   /* beside frames[] */
	size_t n_frames, cap_frames;	   /* cap_frames: a power of two */
	struct otlp_idmap map_by_module;   /* module -> mapping id + 1 */
	uint32_t key_str[OTLP_K__COUNT];   /* string id of each attribute key */
	uint32_t attr_native, attr_kernel; /* the profile.frame.type attributes */
	uint32_t *cpu_attr;		   /* cpu -> cpu.logical_number attribute, 0: not yet */

	uint32_t gen; /* generation of the request being built; stamps below it are stale */
	bool ready;   /* initialized (otlp_store_init succeeded) */
};

/* Creates the zero entries and the constant strings and attributes. Returns
 * 0 or -ENOMEM; on error the store is deinitialized. */
int otlp_store_init(struct otlp_store *st);
/* Frees everything; accepts a zeroed or deinitialized store. */
void otlp_store_deinit(struct otlp_store *st);
/* Bytes the store holds (records, hash slots, string copies). */
size_t otlp_store_bytes(const struct otlp_store *st);

/* Each returns 0 with the record's id in *id, adding the record on first
 * sight, or -ENOMEM, or -E2BIG when a table would outgrow int32 indices. */
int otlp_store_str(struct otlp_store *st, const char *s, size_t len, uint32_t *id);
int otlp_store_attr_int(struct otlp_store *st, enum otlp_key k, int64_t v, uint32_t *id);
int otlp_store_attr_str(struct otlp_store *st, enum otlp_key k, const char *s, size_t len,
			uint32_t *id);
/* Makes room for n more frames, with as many locations, functions and
 * strings, so that a fresh store fills without growing; fewer when that
 * would take more than about a third of max_bytes. Returns 0 or -ENOMEM. */
int otlp_store_reserve(struct otlp_store *st, size_t n, size_t max_bytes);
/* The position of f in the frame cache, added with its location on first
 * sight, in *pos. */
int otlp_store_frame(struct otlp_store *st, const struct sym_frame *f, size_t *pos);

/*
 * Hash of a frame for the frame cache, to be masked: the high half of its
 * pointer times the golden ratio, whose low bits spread frames sitting at a
 * fixed stride (the symbolizer's arrays) evenly; the top bits would not.
 * Not of its id: reading the id would cost the hot path a cache miss on the
 * frame itself, and the pointer identifies it as well.
 */
static inline uint32_t otlp_frame_hash(const struct sym_frame *f)
{
	return (uint32_t)(((uint64_t)(uintptr_t)f * 0x9e3779b97f4a7c15ULL) >> 32);
}

/* Bytes of v as a protobuf varint: 7 bits a byte. */
static inline size_t otlp_varint_size(uint64_t v)
{
	return (size_t)((63 - __builtin_clzll(v | 1)) * 9 + 73) >> 6;
}

/* The slot of f in the frame cache, or NULL. */
static inline struct otlp_fslot *otlp_store_frame_find(const struct otlp_store *st,
						       const struct sym_frame *f)
{
	size_t mask = st->cap_frames - 1;

	for (size_t i = otlp_frame_hash(f) & mask;; i = (i + 1) & mask) {
		struct otlp_fslot *s = &st->frames[i];

		if (s->f == f)
			return s;
		if (!s->f)
			return NULL;
	}
}

/* ---- the dictionary of one request (otlp_dict.c) ---- */

/* Its records, in index order ([0] the zero entry), with the request's
 * indices: what otlp_wire.c writes and otlp_split.c renumbers. */
struct otlp_dstr {
	const char *s;
	size_t len;
};

struct otlp_dattr {
	int64_t ival;
	const char *s; /* OTLP_ATTR_STR value */
	uint32_t len;
	int32_t key;  /* string index */
	uint8_t kind; /* enum otlp_attr_kind; 0: the zero entry (no value) */
};

struct otlp_dmap {
	uint64_t limit; /* memory_limit: UINT64_MAX, 0 for the zero entry */
	int32_t file;
	int32_t attrs[2];
	uint32_t n_attrs;
};

struct otlp_dfn {
	int32_t name, sys, file;
};

/* A Line of an inlined call, with the request's function index. */
struct otlp_dline {
	int32_t fn;
	uint32_t line;
};

struct otlp_dloc {
	uint64_t address;
	uint32_t line;
	int32_t map, fn, attr; /* fn 0: no Line of its own; attr 0: no attribute (zero entry) */
	uint32_t inl, n_inl;   /* its inlined calls' Lines, innermost first: dict lines[inl ..] */
};

struct otlp_dstack {
	size_t off; /* its location indices: otlp_dict.stack_locs[off .. off + n) */
	uint32_t n;
	uint32_t body; /* bytes of those indices packed, as numbered here */
};

/* Tables of a dictionary, for otlp_wire.c's views and otlp_split.c. */
enum otlp_table { T_STR, T_MAP, T_LOC, T_FN, T_ATTR, T_STACK, T__COUNT };

struct otlp_dict {
	struct otlp_store *st; /* borrowed */
	uint32_t gen;	       /* st->gen when this request began */
	struct otlp_dstr *strs;
	size_t n_strs, cap_strs;
	struct otlp_dattr *attrs;
	size_t n_attrs, cap_attrs;
	struct otlp_dmap *maps;
	size_t n_maps, cap_maps;
	struct otlp_dfn *fns;
	size_t n_fns, cap_fns;
	struct otlp_dloc *locs;
	size_t n_locs, cap_locs;
	struct otlp_dline *lines; /* the inlined calls' Lines of every location, end to end */
	size_t n_lines, cap_lines;
	struct otlp_dstack *stacks;
	size_t n_stacks, cap_stacks;
	int32_t *stack_locs;
	size_t n_stack_locs, cap_stack_locs;
	struct otlp_hset stack_set; /* by location indices */
};

/* Starts the dictionary of a new request over st: a new generation, every
 * table holding its zero entry. Returns 0 or -errno. Keeps the tables'
 * memory from the previous request. */
int otlp_dict_begin(struct otlp_dict *d, struct otlp_store *st);
/* Frees the tables; accepts a zeroed or partly built dictionary. */
void otlp_dict_deinit(struct otlp_dict *d);
/* Bytes the tables hold. */
size_t otlp_dict_bytes(const struct otlp_dict *d);

/* Each returns 0 and the request's index of the store record g in *idx,
 * adding it (and what it references, in that order) on first use, or
 * -ENOMEM, or -E2BIG. */
int otlp_dict_use_str(struct otlp_dict *d, uint32_t g, int32_t *idx);
int otlp_dict_use_attr(struct otlp_dict *d, uint32_t g, int32_t *idx);

/* The string s[0..len) as a string table index. */
int otlp_dict_string(struct otlp_dict *d, const char *s, size_t len, int32_t *idx);
/* Makes room for n more stacks of n_frames frames in all. Returns 0 or
 * -ENOMEM. */
int otlp_dict_reserve_stacks(struct otlp_dict *d, size_t n, size_t n_frames);
/* The stack of frames[0..n) (leaf first), its locations created on first
 * use; n == 0 is the empty stack, index 0. -EINVAL for a NULL frame. */
int otlp_dict_stack(struct otlp_dict *d, const struct sym_frame *const *frames, size_t n,
		    int32_t *idx);

/* ---- the request model (otlp.c) ---- */

/* Identity of a sample within the request (link_index is always 0). */
struct otlp_smp_key {
	uint32_t prof; /* index into otlp_enc.profs */
	int32_t stack;
	int32_t attrs[3]; /* thread.id, thread.name or 0, cpu.logical_number or 0 */
};

/* One Sample, compact: the bulk of a request, walked by several passes. */
struct otlp_smp {
	struct otlp_smp_key key;
	uint32_t n_ts; /* timestamps shape: how many */
	uint32_t next; /* while building: next sample of its group, index + 1 (0: none);
			* then, while regrouping, where the sample goes */
	int64_t value; /* aggregated shape: the count */
	uint64_t *ts;  /* timestamps shape: n_ts of them, sorted, in the arena */
};

/* One Profile: an interval (input profile) of one resource. */
struct otlp_prof {
	uint32_t res; /* index into otlp_enc.res */
	bool timestamps;
	uint64_t time_ns, duration_ns;
	int64_t period;
	int32_t sample_type, sample_unit, period_type, period_unit; /* string indices */
	size_t first_smp, n_smps; /* its samples in otlp_enc.smps, once finished */
};

/* One ResourceProfiles (a process), with one ScopeProfiles. */
struct otlp_res {
	OtlpResource resource;
	size_t first_prof, n_profs; /* its profiles in otlp_enc.prof_order, once finished */
	uint32_t last_interval;	    /* interval + 1 of its newest profile; 0: none */
	uint32_t last_prof;	    /* index of that profile */
};

/* What a request knows of a thread (per request, by tid). */
struct otlp_thread {
	char comm[16];	   /* the name its thread.name attribute holds */
	int32_t id_attr;   /* thread.id */
	int32_t name_attr; /* thread.name, 0 when the name is empty */
};

/* ---- serializing (otlp_wire.c) ---- */

/* What one request holds: resources [first_res, last_res) of the model and,
 * with dict, the dictionary entries list[t][0 .. n_list[t]) of each table t
 * (NULL: all of them, in order). map[t] turns the model's indices into the
 * request's (NULL: the identity); a split request numbers its entries anew. */
struct otlp_view {
	const struct otlp_enc *e;
	size_t first_res, last_res;
	bool dict;
	const int32_t *list[T__COUNT];
	size_t n_list[T__COUNT];
	const int32_t *map[T__COUNT];
};

/* Scratch of the two-pass writer: message sizes in traversal order. */
struct otlp_wire {
	size_t *sizes;
	size_t n, cap;
};

/* Computes the packed size of the request v describes into *len, keeping the
 * sizes of its parts for otlp_wire_write(). Returns 0 or -ENOMEM. */
int otlp_wire_measure(struct otlp_wire *w, const struct otlp_view *v, size_t *len);
/* Writes the request v describes, measured last by w, into buf (room for
 * *len bytes); returns the bytes written. */
size_t otlp_wire_write(const struct otlp_wire *w, const struct otlp_view *v, uint8_t *buf);
void otlp_wire_deinit(struct otlp_wire *w);
/* Bytes of entry i of table t of d as an element of its repeated field (tag
 * and length included), with the model's indices. */
size_t otlp_wire_entry_size(const struct otlp_dict *d, enum otlp_table t, size_t i);
/* Bytes of link_table[0] as an element of its repeated field. */
size_t otlp_wire_link_size(void);

struct otlp_enc {
	struct arena arena; /* reset by each call */
	struct otlp_dict dict;
	const struct otlp_encode_opts *opts;
	OtlpScope scope;

	struct otlp_res **res;
	size_t n_res, cap_res;
	struct strtab res_keys;	       /* resource identity -> index */
	struct otlp_idmap res_by_tgid; /* this interval: tgid -> resource index + 1 */
	struct otlp_prof *profs;
	size_t n_profs, cap_profs;
	uint32_t *prof_order; /* profile indices grouped by resource, once finished */
	size_t cap_prof_order;
	struct otlp_smp *smps; /* grouped by profile once finished */
	size_t n_smps, cap_smps;
	struct otlp_hset smp_set;	 /* sample groups by (profile, stack, thread): first
					  * sample's index + 1 (while building) */
	struct otlp_idmap thread_by_tid; /* tid -> index into threads + 1 */
	struct otlp_thread *threads;
	size_t n_threads, cap_threads;

	OtlpKeyValue **opt_kvs; /* opts->resource_attrs, one per key (the last wins) */
	size_t n_opt_kvs;

	struct profile_sample_time *tbuf; /* scratch: one stack's times, sorted */
	size_t tcap;
	uint32_t *tcount; /* scratch of the sort by CPU: OTLP_CPU_CACHE + 1 counters */
	uint8_t *kbuf;	  /* scratch: resource keys */
	size_t kcap;

	struct otlp_wire wire;
	struct encoded_buf *out; /* the serialized requests */
	size_t n_out, cap_out;
	size_t store_max_bytes; /* the context's bound on its store */
	bool fresh;		/* the context's first call since its store began: its
				 * allocations are new pages, worth faulting in at once */
};

/* Serializes the request v describes, just measured with e->wire as len
 * bytes, into a new buffer appended to e->out. Returns 0 or -errno. */
int otlp_enc_emit(struct otlp_enc *e, const struct otlp_view *v, size_t len);

/* ---- splitting (otlp_split.c) ---- */

/* Emits the model as several requests, resources grouped greedily in order so
 * that each request stays within max_bytes (a resource bigger than that alone
 * goes alone). Returns 0 or -errno. */
int otlp_split_emit(struct otlp_enc *e, size_t max_bytes);

/* Bytes of a length-delimited field with a one-byte tag and a len-byte body. */
static inline size_t otlp_field_size(size_t len)
{
	size_t n = 1 + len;

	do {
		n++;
		len >>= 7;
	} while (len);
	return n;
}

#endif /* PIPELINE_ENCODER_OTLP_INTERNAL_H */
