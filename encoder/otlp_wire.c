/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Serializing an ExportProfilesServiceRequest from the model (see
 * otlp_internal.h).
 *
 * protobuf-c's pack writes a length prefix before every submessage by
 * computing that submessage's size, recursively: a message at depth k is
 * sized k times. A request is deep (request > resource > scope > profile >
 * sample), and most of its bytes are the deepest messages, so the envelope
 * (request, ResourceProfiles, ScopeProfiles, Profile, ValueType, Sample,
 * dictionary, Stack) is written here by hand, in two passes: the first
 * computes every size once, in traversal order, into an array; the second
 * writes, reading the sizes back in the same order. Profiles and samples come
 * straight from the model's compact records, their indices passed through the
 * view's maps (a split request's dictionary numbers its entries anew). The
 * other leaves (Resource, InstrumentationScope, the dictionary's mappings,
 * locations, functions, links and attributes) go through the generated code.
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

static size_t varint_size(uint64_t v)
{
	size_t n = 1;

	while (v >= 0x80) {
		v >>= 7;
		n++;
	}
	return n;
}

static uint8_t *put_varint(uint8_t *p, uint64_t v)
{
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

#define MAP(m, i) ((m) ? (m)[i] : (i))

/* Sample: 1 stack_index, 2 attribute_indices, 3 link_index (always 0),
 * 4 values (aggregated), 5 timestamps_unix_nano (timestamps shape). */
static size_t sample_len(const struct otlp_view *v, const struct otlp_smp *s, bool timestamps)
{
	int32_t stack = MAP(v->map_stack, s->key.stack);
	size_t len = 0, attrs = 0;

	if (stack)
		len += 1 + i64_size(stack);
	for (int i = 0; i < 3; i++) {
		if (s->key.attrs[i])
			attrs += i64_size(MAP(v->map_attr, s->key.attrs[i]));
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
	int32_t stack = MAP(v->map_stack, s->key.stack), attrs[3];
	size_t n_attrs = 0;

	if (stack) {
		p = put_tag(p, 1, WT_VARINT);
		p = put_varint(p, (uint64_t)(int64_t)stack);
	}
	for (int i = 0; i < 3; i++) {
		if (s->key.attrs[i])
			attrs[n_attrs++] = MAP(v->map_attr, s->key.attrs[i]);
	}
	p = put_packed_i32(p, 2, attrs, n_attrs);
	if (timestamps) {
		p = put_tag(p, 5, WT_LEN);
		p = put_varint(p, 8 * (size_t)s->n_ts);
		for (size_t i = 0; i < s->n_ts; i++)
			p = put_fixed64(p, s->ts[i]);
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
	int32_t t = MAP(v->map_str, type), u = MAP(v->map_str, unit);

	return (t ? 1 + i64_size(t) : 0) + (u ? 1 + i64_size(u) : 0);
}

static uint8_t *put_value_type(uint8_t *p, unsigned field, const struct otlp_view *v, int32_t type,
			       int32_t unit)
{
	int32_t t = MAP(v->map_str, type), u = MAP(v->map_str, unit);

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

static size_t stack_len(const OtlpStack *s)
{
	if (!s->n_location_indices)
		return 0;
	return len_field(packed_i32_len(s->location_indices, s->n_location_indices));
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

/* A table of messages: each element's length. */
static size_t measure_table(struct otlp_wire *w, void *const *t, size_t n, size_t *len)
{
	for (size_t i = 0; i < n; i++) {
		size_t sub = measure_leaf(w, t[i]);

		if (sub == SIZE_MAX)
			return SIZE_MAX;
		*len += len_field(sub);
	}
	return 0;
}

static size_t measure_dictionary(struct otlp_wire *w, const OtlpDictionary *d)
{
	size_t pos, len = 0;

	PUSH(w, 0, pos);
	if (measure_table(w, (void *const *)d->mapping_table, d->n_mapping_table, &len) ||
	    measure_table(w, (void *const *)d->location_table, d->n_location_table, &len) ||
	    measure_table(w, (void *const *)d->function_table, d->n_function_table, &len) ||
	    measure_table(w, (void *const *)d->link_table, d->n_link_table, &len))
		return SIZE_MAX;
	for (size_t i = 0; i < d->n_string_table; i++)
		len += len_field(strlen(d->string_table[i]));
	if (measure_table(w, (void *const *)d->attribute_table, d->n_attribute_table, &len))
		return SIZE_MAX;
	for (size_t i = 0; i < d->n_stack_table; i++) {
		size_t at, sub = stack_len(d->stack_table[i]);

		PUSH(w, sub, at);
		len += len_field(sub);
	}
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
		if ((sub = measure_dictionary(w, v->dict)) == SIZE_MAX)
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

static void write_table(struct writer *wr, unsigned field, void *const *t, size_t n)
{
	for (size_t i = 0; i < n; i++)
		write_leaf(wr, field, t[i]);
}

static void write_dictionary(struct writer *wr, const OtlpDictionary *d)
{
	open_msg(wr, 2);
	write_table(wr, 1, (void *const *)d->mapping_table, d->n_mapping_table);
	write_table(wr, 2, (void *const *)d->location_table, d->n_location_table);
	write_table(wr, 3, (void *const *)d->function_table, d->n_function_table);
	write_table(wr, 4, (void *const *)d->link_table, d->n_link_table);
	for (size_t i = 0; i < d->n_string_table; i++)
		wr->p = put_str_always(wr->p, 5, d->string_table[i]);
	write_table(wr, 6, (void *const *)d->attribute_table, d->n_attribute_table);
	for (size_t i = 0; i < d->n_stack_table; i++) {
		const OtlpStack *s = d->stack_table[i];

		open_msg(wr, 7);
		wr->p = put_packed_i32(wr->p, 1, s->location_indices, s->n_location_indices);
	}
}

size_t otlp_wire_write(const struct otlp_wire *w, const struct otlp_view *v, uint8_t *buf)
{
	struct writer wr = {.sizes = w->sizes, .p = buf};

	for (size_t i = v->first_res; i < v->last_res; i++)
		write_resource_profiles(&wr, v, v->e->res[i]);
	if (v->dict)
		write_dictionary(&wr, v->dict);
	return (size_t)(wr.p - buf);
}

void otlp_wire_deinit(struct otlp_wire *w)
{
	free(w->sizes);
	memset(w, 0, sizeof(*w));
}
