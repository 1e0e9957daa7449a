/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * OTLP Profiles encoder internals (otlp*.c). Not part of the public API
 * (encoder.h).
 *
 *   otlp_dict.c   the hash-consed ProfilesDictionary of one encoding: strings,
 *                 attributes, mappings, functions, locations, stacks (and the
 *                 small hash tables everything uses)
 *   otlp.c        otlp__encode(): the model of resources, profiles and
 *                 samples over that dictionary; one request when it fits
 *   otlp_wire.c   the serializer, from the model
 *   otlp_split.c  several requests by resource under max_request_bytes, each
 *                 with a dictionary holding only what it references
 *   otlp_attrs.c  otlp__parse_resource_attrs()
 *
 * Ownership: one struct otlp_enc per otlp__encode() call, on its stack. The
 * dictionary's protobuf-c messages and the other small objects live in its
 * arena; the growable arrays (tables, samples, hash slots) are realloc'ed
 * buffers it holds; otlp.c's enc_deinit() frees it all, on success and on
 * every error path. The output buffers are handed to the caller.
 * Threads: none; nothing is shared between calls.
 */
#ifndef PIPELINE_ENCODER_OTLP_INTERNAL_H
#define PIPELINE_ENCODER_OTLP_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "encoder.h"
#include "encoder_internal.h"
#include "otlp_types.h"

/* The semantic conventions whose attribute names this encoder writes. */
#define OTLP_SCHEMA_URL "https://opentelemetry.io/schemas/1.44.0"

/* Indices are int32 on the wire: every table stays below this many entries. */
#define OTLP_MAX_ENTRIES ((uint32_t)INT32_MAX - 1)

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
 * compares a candidate with the key being looked up. Used where a key copy
 * would cost more than the entry (stacks, samples).
 */
struct otlp_hset {
	uint64_t *slots; /* hash << 32 | value; 0 = empty */
	size_t cap;	 /* power of two, or 0 before the first insert */
	size_t n;
};

/* Finds and adds in one probe: *found receives the value with hash h for
 * which eq(ctx, value) holds, or 0 after value (nonzero) was added in its
 * place. Returns 0 or -ENOMEM. */
int otlp_hset_findnew(struct otlp_hset *s, uint32_t h, bool (*eq)(const void *ctx, uint32_t value),
		      const void *ctx, uint32_t value, uint32_t *found);
/* Makes room for n values without growing. Returns 0 or -ENOMEM. */
int otlp_hset_reserve(struct otlp_hset *s, size_t n);
void otlp_hset_deinit(struct otlp_hset *s);

/* Hash of n int32 words, word at a time. */
static inline uint32_t otlp_hash_i32(const int32_t *v, size_t n)
{
	uint64_t h = n;

	for (size_t i = 0; i < n; i++)
		h = (h ^ (uint32_t)v[i]) * 0x9e3779b97f4a7c15ULL;
	return (uint32_t)enc_hash_u64(h);
}

/* ---- the dictionary (otlp_dict.c) ---- */

/* Attribute keys the encoder writes, interned on first use (no orphan strings). */
enum otlp_key {
	OTLP_K_FRAME_TYPE,	 /* profile.frame.type (Location) */
	OTLP_K_BUILD_ID_GNU,	 /* process.executable.build_id.gnu (Mapping) */
	OTLP_K_BUILD_ID_HTLHASH, /* process.executable.build_id.htlhash (Mapping) */
	OTLP_K_THREAD_ID,	 /* thread.id (Sample) */
	OTLP_K_THREAD_NAME,	 /* thread.name (Sample) */
	OTLP_K_CPU,		 /* cpu.logical_number (Sample) */
	OTLP_K__COUNT,
};

/*
 * Every table holds protobuf-c messages in index order, [0] being the zero
 * value. Mappings, locations, functions and attributes are hash-consed
 * through a strtab over a canonical byte key of the entry's value (key id k
 * is table index k + 1); stacks through an otlp_hset over their location
 * indices.
 */
struct otlp_dict {
	struct arena *arena; /* borrowed: holds every entry */
	struct strtab strings;
	OtlpMapping **mappings;
	size_t n_mappings, cap_mappings;
	struct strtab mapping_keys;
	OtlpLocation **locations;
	size_t n_locations, cap_locations;
	struct strtab location_keys;
	OtlpFunction **functions;
	size_t n_functions, cap_functions;
	struct strtab function_keys;
	OtlpKeyValueAndUnit **attrs;
	size_t n_attrs, cap_attrs;
	struct strtab attr_keys;
	OtlpStack **stacks;
	size_t n_stacks, cap_stacks;
	struct otlp_hset stack_set; /* by location_indices */
	OtlpLink *links[1];	    /* only the zero link: no sample is tied to a span yet */

	/* Fast paths: symbolizer objects are interned, so a pointer is an identity. */
	struct otlp_idmap location_by_frame; /* frame -> location index + 1 */
	struct otlp_idmap mapping_by_module; /* module -> mapping index + 1 (1: none) */

	int32_t key_str[OTLP_K__COUNT]; /* string index of each key; 0 until first use */
	int32_t attr_frame_native, attr_frame_kernel; /* 0 until first use */
	uint8_t *kbuf;				      /* scratch for variable-length keys */
	size_t kcap;
};

/* Creates the zero entry of every table. Returns 0 or -errno; on error the
 * caller still calls otlp_dict_deinit(). */
int otlp_dict_init(struct otlp_dict *d, struct arena *arena);
/* Frees the tables and indexes (not the entries: they live in the arena).
 * Accepts a zeroed or partly built dictionary. */
void otlp_dict_deinit(struct otlp_dict *d);

/* Each returns 0 and the index in *idx, creating the entry on first use, or
 * -ENOMEM, or -E2BIG when a table would outgrow int32 indices. */
int otlp_dict_string(struct otlp_dict *d, const char *s, size_t len, int32_t *idx);
int otlp_dict_key(struct otlp_dict *d, enum otlp_key k, int32_t *idx);
int otlp_dict_attr_int(struct otlp_dict *d, enum otlp_key k, int64_t v, int32_t *idx);
int otlp_dict_attr_str(struct otlp_dict *d, enum otlp_key k, const char *s, size_t len,
		       int32_t *idx);
/* The location of frame f (its mapping, function and line, frame type). */
int otlp_dict_location(struct otlp_dict *d, const struct sym_frame *f, int32_t *idx);
/* The stack of locs[0..n), leaf first; n == 0 is the empty stack, index 0. */
int otlp_dict_stack(struct otlp_dict *d, const int32_t *locs, size_t n, int32_t *idx);

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

/* ---- serializing (otlp_wire.c) ---- */

/* What one request holds: resources [first_res, last_res) of the model and a
 * dictionary; the map_* arrays turn the model's (global) indices into the
 * dictionary's, NULL meaning the identity. */
struct otlp_view {
	const struct otlp_enc *e;
	size_t first_res, last_res;
	const OtlpDictionary *dict; /* NULL: none (measuring resources alone) */
	const int32_t *map_str, *map_attr, *map_stack;
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

struct otlp_enc {
	struct arena arena;
	struct otlp_dict dict;
	const struct otlp_encode_opts *opts;
	OtlpScope scope;

	struct otlp_res **res;
	size_t n_res, cap_res;
	struct strtab res_keys;	       /* resource identity -> index */
	struct otlp_idmap res_by_tgid; /* this interval: tgid -> resource index + 1 */
	struct otlp_prof *profs;
	size_t n_profs, cap_profs;
	uint32_t *prof_order;  /* profile indices grouped by resource, once finished */
	struct otlp_smp *smps; /* grouped by profile once finished */
	size_t n_smps, cap_smps;
	struct otlp_hset smp_set;   /* by key, value index + 1 (while building) */
	struct otlp_idmap tid_attr; /* tid -> its thread.id attribute */
	int32_t *cpu_attr;	    /* cpu -> its cpu.logical_number attribute, 0: none yet */

	OtlpKeyValue **opt_kvs; /* opts->resource_attrs, one per key (the last wins) */
	size_t n_opt_kvs;

	struct profile_sample_time *tbuf; /* scratch: one stack's times, sorted */
	size_t tcap;
	int32_t *lbuf; /* scratch: one stack's location indices */
	size_t lcap;
	uint8_t *kbuf; /* scratch: resource keys */
	size_t kcap;

	struct otlp_wire wire;
	struct encoded_buf *out; /* the serialized requests */
	size_t n_out, cap_out;
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
