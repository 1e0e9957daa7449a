/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Serializing an ExportProfilesServiceRequest from the model (see
 * otlp_internal.h).
 *
 * protobuf-c's pack writes a length prefix before every submessage by
 * computing that submessage's size, recursively: a message at depth k is
 * sized k times. A request is deep (request > resource > scope > profile >
 * sample), and most of its bytes are the deepest messages, so the envelope
 * (request, ResourceProfiles, ScopeProfiles, Profile, ValueType, Sample) and
 * the dictionary (its Mapping, Location, Line, Function, Link, string,
 * KeyValueAndUnit, AnyValue and Stack entries) are written here by hand, in
 * two passes: the first computes every size once, in traversal order, into
 * an array; the second writes, reading the sizes back in the same order.
 * Profiles, samples and dictionary entries come straight from the model's
 * compact records, their indices passed through the view's maps (a split
 * request's dictionary numbers its entries anew). The two other leaves
 * (Resource, InstrumentationScope) go through the generated code.
 *
 * The bytes are those protobuf-c writes for the same message (fields in
 * number order, proto3 defaults omitted, repeated scalars packed); the unit
 * test repacks decoded requests with protobuf-c and compares.
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "otlp_internal.h"

enum { WT_VARINT = 0, WT_I64 = 1, WT_LEN = 2 };

static inline size_t varint_size(uint64_t v)
{
	return otlp_varint_size(v);
}

/* Indices, lengths and counts are mostly below 2^14: one or two bytes
 * straight, the loop for the rest. */
static inline uint8_t *put_varint(uint8_t *p, uint64_t v)
{
	if (v < 0x80) {
		*p = (uint8_t)v;
		return p + 1;
	}
	if (v < 0x4000) {
		p[0] = (uint8_t)(v | 0x80);
		p[1] = (uint8_t)(v >> 7);
		return p + 2;
	}
	while (v >= 0x80) {
		*p++ = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	*p++ = (uint8_t)v;
	return p;
}

/* Tags of fields 1..15 are one byte. */
static uint8_t *put_tag(uint8_t *p, unsigned field, unsigned wt)
{
	*p++ = (uint8_t)(field << 3 | wt);
	return p;
}

static uint8_t *put_fixed64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		*p++ = (uint8_t)(v >> (8 * i));
	return p;
}

/* int32 and int64 are varints of their two's complement, sign-extended. */
static size_t i64_size(int64_t v)
{
	return varint_size((uint64_t)v);
}

/* Bytes of a length-delimited field holding len bytes. */
static size_t len_field(size_t len)
{
	return 1 + varint_size(len) + len;
}

static size_t packed_i32_len(const int32_t *v, size_t n)
{
	size_t len = 0;

	for (size_t i = 0; i < n; i++)
		len += i64_size(v[i]);
	return len;
}

static uint8_t *put_packed_i32(uint8_t *p, unsigned field, const int32_t *v, size_t n)
{
	if (!n)
		return p;
	p = put_tag(p, field, WT_LEN);
	p = put_varint(p, packed_i32_len(v, n));
	for (size_t i = 0; i < n; i++)
		p = put_varint(p, (uint64_t)(int64_t)v[i]);
	return p;
}

/* An element of a repeated string field: written even when empty. */
static uint8_t *put_str_always(uint8_t *p, unsigned field, const char *s)
{
	size_t n = strlen(s);

	p = put_tag(p, field, WT_LEN);
	p = put_varint(p, n);
	memcpy(p, s, n);
	return p + n;
}

static size_t str_field(const char *s)
{
	size_t n = s ? strlen(s) : 0;

	return n ? len_field(n) : 0;
}

static uint8_t *put_str(uint8_t *p, unsigned field, const char *s)
{
	if (!s || !s[0])
		return p;
	return put_str_always(p, field, s);
}

/* ---- model records ---- */

/* Index i of table t in the request v describes. */
#define MAP(v, t, i) ((v)->map[t] ? (v)->map[t][i] : (i))

/* Sample: 1 stack_index, 2 attribute_indices, 3 link_index (always 0),
 * 4 values (aggregated), 5 timestamps_unix_nano (timestamps shape). */
static size_t sample_len(const struct otlp_view *v, const struct otlp_smp *s, bool timestamps)
{
	int32_t stack = MAP(v, T_STACK, s->key.stack);
	size_t len = 0, attrs = 0;

	if (stack)
		len += 1 + i64_size(stack);
	for (int i = 0; i < 3; i++) {
		if (s->key.attrs[i])
			attrs += i64_size(MAP(v, T_ATTR, s->key.attrs[i]));
	}
	if (attrs)
		len += len_field(attrs);
	if (timestamps)
		len += len_field(8 * (size_t)s->n_ts);
	else
		len += len_field(i64_size(s->value));
	return len;
}

static uint8_t *put_sample(uint8_t *p, const struct otlp_view *v, const struct otlp_smp *s,
			   bool timestamps)
{
	int32_t stack = MAP(v, T_STACK, s->key.stack), attrs[3];
	size_t n_attrs = 0;

	if (stack) {
		p = put_tag(p, 1, WT_VARINT);
		p = put_varint(p, (uint64_t)(int64_t)stack);
	}
	for (int i = 0; i < 3; i++) {
		if (s->key.attrs[i])
			attrs[n_attrs++] = MAP(v, T_ATTR, s->key.attrs[i]);
	}
	p = put_packed_i32(p, 2, attrs, n_attrs);
	if (timestamps) {
		p = put_tag(p, 5, WT_LEN);
		p = put_varint(p, 8 * (size_t)s->n_ts);
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
		memcpy(p, s->ts, 8 * (size_t)s->n_ts); /* fixed64 is little-endian */
		p += 8 * (size_t)s->n_ts;
#else
		for (size_t i = 0; i < s->n_ts; i++)
			p = put_fixed64(p, s->ts[i]);
#endif
	} else {
		p = put_tag(p, 4, WT_LEN);
		p = put_varint(p, i64_size(s->value));
		p = put_varint(p, (uint64_t)s->value);
	}
	return p;
}

/* ValueType: 1 type_strindex, 2 unit_strindex. */
static size_t value_type_len(const struct otlp_view *v, int32_t type, int32_t unit)
{
	int32_t t = MAP(v, T_STR, type), u = MAP(v, T_STR, unit);

	return (t ? 1 + i64_size(t) : 0) + (u ? 1 + i64_size(u) : 0);
}

static uint8_t *put_value_type(uint8_t *p, unsigned field, const struct otlp_view *v, int32_t type,
			       int32_t unit)
{
	int32_t t = MAP(v, T_STR, type), u = MAP(v, T_STR, unit);

	p = put_tag(p, field, WT_LEN);
	p = put_varint(p, value_type_len(v, type, unit));
	if (t) {
		p = put_tag(p, 1, WT_VARINT);
		p = put_varint(p, (uint64_t)(int64_t)t);
	}
	if (u) {
		p = put_tag(p, 2, WT_VARINT);
		p = put_varint(p, (uint64_t)(int64_t)u);
	}
	return p;
}

/* ---- dictionary entries ---- */

/* Bytes of a varint field holding v, or 0 for 0 (proto3 omits it). */
static size_t opt_varint(uint64_t v)
{
	return v ? 1 + varint_size(v) : 0;
}

static uint8_t *put_opt_varint(uint8_t *p, unsigned field, uint64_t v)
{
	if (!v)
		return p;
	p = put_tag(p, field, WT_VARINT);
	return put_varint(p, v);
}

/* The packed body of an entry's indices a[0..n) of table t. */
static size_t packed_map_len(const struct otlp_view *v, int t, const int32_t *a, size_t n)
{
	const int32_t *m = v->map[t];
	size_t len = 0;

	if (!m)
		return packed_i32_len(a, n);
	for (size_t i = 0; i < n; i++)
		len += i64_size(m[a[i]]);
	return len;
}

/* The packed values alone, whose length the caller has written. */
static uint8_t *put_packed_body(uint8_t *p, const struct otlp_view *v, int t, const int32_t *a,
				size_t n)
{
	const int32_t *m = v->map[t];

	if (!m) {
		for (size_t i = 0; i < n; i++)
			p = put_varint(p, (uint64_t)(int64_t)a[i]);
		return p;
	}
	for (size_t i = 0; i < n; i++)
		p = put_varint(p, (uint64_t)(int64_t)m[a[i]]);
	return p;
}

static uint8_t *put_packed_map(uint8_t *p, unsigned field, const struct otlp_view *v, int t,
			       const int32_t *a, size_t n)
{
	if (!n)
		return p;
	p = put_tag(p, field, WT_LEN);
	p = put_varint(p, packed_map_len(v, t, a, n));
	return put_packed_body(p, v, t, a, n);
}

/* Mapping: 1 memory_start, 2 memory_limit, 3 file_offset (0 and 0 here),
 * 4 filename_strindex, 5 attribute_indices. */
static size_t map_len(const struct otlp_view *v, const struct otlp_dmap *m)
{
	size_t len = opt_varint(m->limit) + opt_varint((uint64_t)MAP(v, T_STR, m->file));

	if (m->n_attrs)
		len += len_field(packed_map_len(v, T_ATTR, m->attrs, m->n_attrs));
	return len;
}

static uint8_t *put_map(uint8_t *p, const struct otlp_view *v, const struct otlp_dmap *m)
{
	p = put_opt_varint(p, 2, m->limit);
	p = put_opt_varint(p, 4, (uint64_t)MAP(v, T_STR, m->file));
	return put_packed_map(p, 5, v, T_ATTR, m->attrs, m->n_attrs);
}

/* Line: 1 function_index, 2 line, 3 column (0 here). */
static size_t line_len(int32_t fn, int64_t line)
{
	return opt_varint((uint64_t)fn) + opt_varint((uint64_t)line);
}

/* Location: 1 mapping_index, 2 address, 3 lines (innermost first: one per
 * inlined call, then one when the frame has a function), 4
 * attribute_indices (its frame type). */
static size_t loc_len(const struct otlp_view *v, const struct otlp_dline *lines,
		      const struct otlp_dloc *l)
{
	size_t len = opt_varint((uint64_t)MAP(v, T_MAP, l->map)) + opt_varint(l->address);

	for (uint32_t i = 0; i < l->n_inl; i++) {
		const struct otlp_dline *ln = &lines[l->inl + i];

		len += len_field(line_len(MAP(v, T_FN, ln->fn), ln->line));
	}
	if (l->fn)
		len += len_field(line_len(MAP(v, T_FN, l->fn), l->line));
	if (l->attr)
		len += len_field(i64_size(MAP(v, T_ATTR, l->attr)));
	return len;
}

static uint8_t *put_loc(uint8_t *p, const struct otlp_view *v, const struct otlp_dline *lines,
			const struct otlp_dloc *l)
{
	p = put_opt_varint(p, 1, (uint64_t)MAP(v, T_MAP, l->map));
	p = put_opt_varint(p, 2, l->address);
	for (uint32_t i = 0; i < l->n_inl; i++) {
		const struct otlp_dline *ln = &lines[l->inl + i];
		int32_t fn = MAP(v, T_FN, ln->fn);

		p = put_tag(p, 3, WT_LEN);
		p = put_varint(p, line_len(fn, ln->line));
		p = put_opt_varint(p, 1, (uint64_t)fn);
		p = put_opt_varint(p, 2, (uint64_t)ln->line);
	}
	if (l->fn) {
		int32_t fn = MAP(v, T_FN, l->fn);

		p = put_tag(p, 3, WT_LEN);
		p = put_varint(p, line_len(fn, l->line));
		p = put_opt_varint(p, 1, (uint64_t)fn);
		p = put_opt_varint(p, 2, (uint64_t)l->line);
	}
	if (l->attr)
		p = put_packed_map(p, 4, v, T_ATTR, &l->attr, 1);
	return p;
}

/* Function: 1 name_strindex, 2 system_name_strindex, 3 filename_strindex,
 * 4 start_line (0 here). */
static size_t fn_len(const struct otlp_view *v, const struct otlp_dfn *f)
{
	return opt_varint((uint64_t)MAP(v, T_STR, f->name)) +
	       opt_varint((uint64_t)MAP(v, T_STR, f->sys)) +
	       opt_varint((uint64_t)MAP(v, T_STR, f->file));
}

static uint8_t *put_fn(uint8_t *p, const struct otlp_view *v, const struct otlp_dfn *f)
{
	p = put_opt_varint(p, 1, (uint64_t)MAP(v, T_STR, f->name));
	p = put_opt_varint(p, 2, (uint64_t)MAP(v, T_STR, f->sys));
	return put_opt_varint(p, 3, (uint64_t)MAP(v, T_STR, f->file));
}

/* AnyValue: 1 string_value or 3 int_value, written even when empty or 0 (a
 * oneof member that is set). */
static size_t any_len(const struct otlp_dattr *a)
{
	return a->kind == OTLP_ATTR_STR ? len_field(a->len) : 1 + i64_size(a->ival);
}

/* KeyValueAndUnit: 1 key_strindex, 2 value, 3 unit_strindex (0 here). */
static size_t attr_len(const struct otlp_view *v, const struct otlp_dattr *a)
{
	size_t len = opt_varint((uint64_t)MAP(v, T_STR, a->key));

	if (a->kind)
		len += len_field(any_len(a));
	return len;
}

static uint8_t *put_attr(uint8_t *p, const struct otlp_view *v, const struct otlp_dattr *a)
{
	p = put_opt_varint(p, 1, (uint64_t)MAP(v, T_STR, a->key));
	if (!a->kind)
		return p;
	p = put_tag(p, 2, WT_LEN);
	p = put_varint(p, any_len(a));
	if (a->kind == OTLP_ATTR_STR) {
		p = put_tag(p, 1, WT_LEN);
		p = put_varint(p, a->len);
		memcpy(p, a->s, a->len);
		return p + a->len;
	}
	p = put_tag(p, 3, WT_VARINT);
	return put_varint(p, (uint64_t)a->ival);
}

/* Stack: 1 location_indices. The body of that packed field; the message is
 * len_field() of it, or empty. */
static size_t stack_body(const struct otlp_view *v, const struct otlp_dict *d,
			 const struct otlp_dstack *s)
{
	if (!v->map[T_LOC])
		return s->body; /* measured when the stack was added */
	return packed_map_len(v, T_LOC, d->stack_locs + s->off, s->n);
}

static size_t stack_len(size_t body)
{
	return body ? len_field(body) : 0;
}

/* link_table[0], the only link: Link{trace_id: 16 zero bytes, span_id: 8},
 * the SHOULD form, for codecs that insist on the lengths; with its field's
 * tag (4) and length. */
static const uint8_t zero_link[] = {
	4 << 3 | WT_LEN,
	28,
	1 << 3 | WT_LEN,
	16,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	2 << 3 | WT_LEN,
	8,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
};

size_t otlp_wire_link_size(void)
{
	return sizeof(zero_link);
}

static const struct otlp_view identity_view;

size_t otlp_wire_entry_size(const struct otlp_dict *d, enum otlp_table t, size_t i)
{
	const struct otlp_view *v = &identity_view;

	switch (t) {
	case T_STR:
		return len_field(d->strs[i].len);
	case T_MAP:
		return len_field(map_len(v, &d->maps[i]));
	case T_LOC:
		return len_field(loc_len(v, d->lines, &d->locs[i]));
	case T_FN:
		return len_field(fn_len(v, &d->fns[i]));
	case T_ATTR:
		return len_field(attr_len(v, &d->attrs[i]));
	case T_STACK:
		return len_field(stack_len(stack_body(v, d, &d->stacks[i])));
	default:
		return 0;
	}
}

/* Entry k of table t of the request v describes, and how many it has. */
#define ENTRY(v, t, k) ((v)->list[t] ? (size_t)(v)->list[t][k] : (k))

static size_t n_entries(const struct otlp_view *v, enum otlp_table t)
{
	const struct otlp_dict *d = &v->e->dict;
	const size_t all[T__COUNT] = {d->n_strs, d->n_maps,  d->n_locs,
				      d->n_fns,	 d->n_attrs, d->n_stacks};

	return v->list[t] ? v->n_list[t] : all[t];
}

/* ---- the sizes pass ---- */

/* Appends a size to w->sizes; returns its position, or SIZE_MAX on ENOMEM. */
static size_t push(struct otlp_wire *w, size_t v)
{
	if (w->n == w->cap) {
		size_t *a = array__grow(w->sizes, &w->cap, w->n + 1, sizeof(*a));

		if (!a)
			return SIZE_MAX;
		w->sizes = a;
	}
	w->sizes[w->n] = v;
	return w->n++;
}

#define PUSH(w, v, pos)                                                                            \
	do {                                                                                       \
		if (((pos) = push((w), (v))) == SIZE_MAX)                                          \
			return SIZE_MAX;                                                           \
	} while (0)

/* Each measure_* returns the message's length (without tag and prefix),
 * having pushed its own length first and then those of its parts, or
 * SIZE_MAX. */

static size_t measure_leaf(struct otlp_wire *w, const ProtobufCMessage *m)
{
	size_t pos, len = protobuf_c_message_get_packed_size(m);

	PUSH(w, len, pos);
	return len;
}

/* Profile: 1 sample_type, 2 samples, 3 time_unix_nano, 4 duration_nano,
 * 5 period_type, 6 period (7-11 unused). */
static size_t measure_profile(struct otlp_wire *w, const struct otlp_view *v,
			      const struct otlp_prof *p)
{
	const struct otlp_smp *smps = v->e->smps + p->first_smp;
	size_t pos, len = 0;

	PUSH(w, 0, pos);
	len += len_field(value_type_len(v, p->sample_type, p->sample_unit));
	for (size_t i = 0; i < p->n_smps; i++) {
		size_t at, sub = sample_len(v, &smps[i], p->timestamps);

		PUSH(w, sub, at);
		len += len_field(sub);
	}
	if (p->time_ns)
		len += 1 + 8;
	if (p->duration_ns)
		len += 1 + varint_size(p->duration_ns);
	len += len_field(value_type_len(v, p->period_type, p->period_unit));
	if (p->period)
		len += 1 + i64_size(p->period);
	w->sizes[pos] = len;
	return len;
}

/* ResourceProfiles: 1 resource, 2 scope_profiles (one here), 3 schema_url;
 * ScopeProfiles: 1 scope, 2 profiles, 3 schema_url. */
static size_t measure_resource_profiles(struct otlp_wire *w, const struct otlp_view *v,
					const struct otlp_res *r)
{
	size_t pos, sp_pos, sub, len = 0, sp_len = 0;

	PUSH(w, 0, pos);
	if ((sub = measure_leaf(w, &r->resource.base)) == SIZE_MAX)
		return SIZE_MAX;
	len += len_field(sub);
	PUSH(w, 0, sp_pos);
	if ((sub = measure_leaf(w, &v->e->scope.base)) == SIZE_MAX)
		return SIZE_MAX;
	sp_len += len_field(sub);
	for (size_t i = 0; i < r->n_profs; i++) {
		const struct otlp_prof *p = &v->e->profs[v->e->prof_order[r->first_prof + i]];

		if ((sub = measure_profile(w, v, p)) == SIZE_MAX)
			return SIZE_MAX;
		sp_len += len_field(sub);
	}
	sp_len += str_field(OTLP_SCHEMA_URL);
	w->sizes[sp_pos] = sp_len;
	len += len_field(sp_len) + str_field(OTLP_SCHEMA_URL);
	w->sizes[pos] = len;
	return len;
}

/* Makes room for n more sizes. Returns 0 or -ENOMEM. */
static int reserve(struct otlp_wire *w, size_t n)
{
	size_t *a = array__grow(w->sizes, &w->cap, w->n + n, sizeof(*a));

	if (!a)
		return -ENOMEM;
	w->sizes = a;
	return 0;
}

/* Each entry's length, table by table in field order (strings excepted: their
 * length is at hand; stacks: the body of their one field); returns the
 * dictionary's. */
static size_t measure_dictionary(struct otlp_wire *w, const struct otlp_view *v)
{
	const struct otlp_dict *d = &v->e->dict;
	size_t pos, len = 0, n = 0;

	PUSH(w, 0, pos);
	for (int t = 0; t < T__COUNT; t++)
		n += t == T_STR ? 0 : n_entries(v, t);
	if (reserve(w, n))
		return SIZE_MAX;
	size_t *sz = w->sizes + w->n;
	for (size_t k = 0, n_t = n_entries(v, T_MAP); k < n_t; k++)
		len += len_field(*sz++ = map_len(v, &d->maps[ENTRY(v, T_MAP, k)]));
	for (size_t k = 0, n_t = n_entries(v, T_LOC); k < n_t; k++)
		len += len_field(*sz++ = loc_len(v, d->lines, &d->locs[ENTRY(v, T_LOC, k)]));
	for (size_t k = 0, n_t = n_entries(v, T_FN); k < n_t; k++)
		len += len_field(*sz++ = fn_len(v, &d->fns[ENTRY(v, T_FN, k)]));
	len += sizeof(zero_link);
	for (size_t k = 0, n_t = n_entries(v, T_STR); k < n_t; k++)
		len += len_field(d->strs[ENTRY(v, T_STR, k)].len);
	for (size_t k = 0, n_t = n_entries(v, T_ATTR); k < n_t; k++)
		len += len_field(*sz++ = attr_len(v, &d->attrs[ENTRY(v, T_ATTR, k)]));
	for (size_t k = 0, n_t = n_entries(v, T_STACK); k < n_t; k++) {
		*sz = stack_body(v, d, &d->stacks[ENTRY(v, T_STACK, k)]);
		len += len_field(stack_len(*sz++));
	}
	w->n += n;
	w->sizes[pos] = len;
	return len;
}

int otlp_wire_measure(struct otlp_wire *w, const struct otlp_view *v, size_t *len)
{
	size_t sub, total = 0;

	w->n = 0;
	for (size_t i = v->first_res; i < v->last_res; i++) {
		if ((sub = measure_resource_profiles(w, v, v->e->res[i])) == SIZE_MAX)
			return -ENOMEM;
		total += len_field(sub);
	}
	if (v->dict) {
		if ((sub = measure_dictionary(w, v)) == SIZE_MAX)
			return -ENOMEM;
		total += len_field(sub);
	}
	*len = total;
	return 0;
}

/* ---- the write pass: the same traversal, reading the sizes back ---- */

struct writer {
	const size_t *sizes;
	size_t next;
	uint8_t *p;
};

/* Tag and length prefix of the next measured message. */
static void open_msg(struct writer *wr, unsigned field)
{
	wr->p = put_tag(wr->p, field, WT_LEN);
	wr->p = put_varint(wr->p, wr->sizes[wr->next++]);
}

static void write_leaf(struct writer *wr, unsigned field, const ProtobufCMessage *m)
{
	open_msg(wr, field);
	wr->p += protobuf_c_message_pack(m, wr->p);
}

static void write_profile(struct writer *wr, const struct otlp_view *v, const struct otlp_prof *p)
{
	const struct otlp_smp *smps = v->e->smps + p->first_smp;

	open_msg(wr, 2);
	wr->p = put_value_type(wr->p, 1, v, p->sample_type, p->sample_unit);
	for (size_t i = 0; i < p->n_smps; i++) {
		open_msg(wr, 2);
		wr->p = put_sample(wr->p, v, &smps[i], p->timestamps);
	}
	if (p->time_ns) {
		wr->p = put_tag(wr->p, 3, WT_I64);
		wr->p = put_fixed64(wr->p, p->time_ns);
	}
	if (p->duration_ns) {
		wr->p = put_tag(wr->p, 4, WT_VARINT);
		wr->p = put_varint(wr->p, p->duration_ns);
	}
	wr->p = put_value_type(wr->p, 5, v, p->period_type, p->period_unit);
	if (p->period) {
		wr->p = put_tag(wr->p, 6, WT_VARINT);
		wr->p = put_varint(wr->p, (uint64_t)p->period);
	}
}

static void write_resource_profiles(struct writer *wr, const struct otlp_view *v,
				    const struct otlp_res *r)
{
	open_msg(wr, 1);
	write_leaf(wr, 1, &r->resource.base);
	open_msg(wr, 2);
	write_leaf(wr, 1, &v->e->scope.base);
	for (size_t i = 0; i < r->n_profs; i++)
		write_profile(wr, v, &v->e->profs[v->e->prof_order[r->first_prof + i]]);
	wr->p = put_str(wr->p, 3, OTLP_SCHEMA_URL); /* ScopeProfiles.schema_url */
	wr->p = put_str(wr->p, 3, OTLP_SCHEMA_URL); /* ResourceProfiles.schema_url */
}

static void write_dictionary(struct writer *wr, const struct otlp_view *v)
{
	const struct otlp_dict *d = &v->e->dict;

	open_msg(wr, 2);
	for (size_t k = 0, n = n_entries(v, T_MAP); k < n; k++) {
		open_msg(wr, 1);
		wr->p = put_map(wr->p, v, &d->maps[ENTRY(v, T_MAP, k)]);
	}
	for (size_t k = 0, n = n_entries(v, T_LOC); k < n; k++) {
		open_msg(wr, 2);
		wr->p = put_loc(wr->p, v, d->lines, &d->locs[ENTRY(v, T_LOC, k)]);
	}
	for (size_t k = 0, n = n_entries(v, T_FN); k < n; k++) {
		open_msg(wr, 3);
		wr->p = put_fn(wr->p, v, &d->fns[ENTRY(v, T_FN, k)]);
	}
	memcpy(wr->p, zero_link, sizeof(zero_link));
	wr->p += sizeof(zero_link);
	for (size_t k = 0, n = n_entries(v, T_STR); k < n; k++) {
		const struct otlp_dstr *s = &d->strs[ENTRY(v, T_STR, k)];

		wr->p = put_tag(wr->p, 5, WT_LEN);
		wr->p = put_varint(wr->p, s->len);
		memcpy(wr->p, s->s, s->len);
		wr->p += s->len;
	}
	for (size_t k = 0, n = n_entries(v, T_ATTR); k < n; k++) {
		open_msg(wr, 6);
		wr->p = put_attr(wr->p, v, &d->attrs[ENTRY(v, T_ATTR, k)]);
	}
	for (size_t k = 0, n = n_entries(v, T_STACK); k < n; k++) {
		const struct otlp_dstack *s = &d->stacks[ENTRY(v, T_STACK, k)];
		size_t body = wr->sizes[wr->next++];

		wr->p = put_tag(wr->p, 7, WT_LEN);
		wr->p = put_varint(wr->p, stack_len(body));
		if (!body)
			continue;
		wr->p = put_tag(wr->p, 1, WT_LEN);
		wr->p = put_varint(wr->p, body);
		wr->p = put_packed_body(wr->p, v, T_LOC, d->stack_locs + s->off, s->n);
	}
}

size_t otlp_wire_write(const struct otlp_wire *w, const struct otlp_view *v, uint8_t *buf)
{
	struct writer wr = {.sizes = w->sizes, .p = buf};

	for (size_t i = v->first_res; i < v->last_res; i++)
		write_resource_profiles(&wr, v, v->e->res[i]);
	if (v->dict)
		write_dictionary(&wr, v);
	return (size_t)(wr.p - buf);
}

void otlp_wire_deinit(struct otlp_wire *w)
{
	free(w->sizes);
	memset(w, 0, sizeof(*w));
}
