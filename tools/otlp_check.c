/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * otlp-check FILE...: validates OTLP Profiles ExportProfilesServiceRequests
 * (binary protobuf, gunzipped first when the file starts with the gzip magic)
 * against the rules of ../shared/reference/otlp-profiles.md, sections 2-7
 * and 9 (opentelemetry-proto v1.11.0, profiles v1development).
 *
 * Output: one line per finding, `FILE: PATH: RULE` for a violation and
 * `FILE: PATH: warning: RULE` for a SHOULD that is not met (orphans,
 * unmerged samples, timestamps outside the window, empty envelopes), then
 * one summary line per file. Exit status: 0 when no file has a violation,
 * 1 otherwise (an unreadable or undecodable file is a violation), 2 on a
 * usage error.
 *
 * Checked: the dictionary and its 7 tables, each with its exact zero value
 * at index 0 (link_table[0]: trace_id/span_id empty or 16/8 zero bytes); no
 * duplicate entries in any table (identity = packed value); every index in
 * range (mapping, location, function, string, attribute, stack, link);
 * no attribute_indices list with two entries of one key; unique keys in
 * Resource and InstrumentationScope attributes (key or key_strindex, never
 * both); non-zero links with 16/8-byte ids; non-zero functions with a name,
 * system name or file name; a build id attribute (.gnu, .go or .htlhash) on
 * every mapping but [0]; profile.frame.type values from the semantic
 * conventions' list; sample_type and period_type set with their strings;
 * original_payload_format and original_payload set together; profile_id
 * empty or 16 bytes, not all zero; every sample with values or timestamps,
 * of equal length when both, and one shape per profile. Warnings: orphans
 * (entries no sample reaches), samples of equal identity not merged,
 * timestamps outside [time_unix_nano, time_unix_nano + duration_nano),
 * location index 0 inside a stack, addresses outside their mapping, empty
 * envelopes.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "encoder_internal.h"
#include "otlp_types.h"

#define MAX_PRINTED	1000		/* findings printed per file */
#define MAX_INPUT_BYTES (1024ull << 20) /* after gunzip */

static const char *const frame_types[] = {"native", "kernel", "jvm",   "cpython", "php",
					  "ruby",   "perl",   "v8js",  "dotnet",  "beam",
					  "go",	    "rust",   "luajit"};

static const char *const build_id_keys[] = {"process.executable.build_id.gnu",
					    "process.executable.build_id.go",
					    "process.executable.build_id.htlhash"};

enum { T_STR, T_MAP, T_LOC, T_FN, T_LINK, T_ATTR, T_STACK, T__COUNT };

static const char *const table_names[T__COUNT] = {
	[T_STR] = "string_table",  [T_MAP] = "mapping_table", [T_LOC] = "location_table",
	[T_FN] = "function_table", [T_LINK] = "link_table",   [T_ATTR] = "attribute_table",
	[T_STACK] = "stack_table",
};

struct check {
	const char *file;
	const OtlpRequest *req;
	const OtlpDictionary *d;
	size_t n[T__COUNT];
	uint8_t *reached[T__COUNT]; /* per entry: reachable from a sample */
	size_t violations, warnings, printed;
	size_t profiles, samples;
	uint64_t events; /* what the samples count: the sum of values, else of timestamps */
	char path[256];
};

static void vreport(struct check *c, bool warn, const char *fmt, va_list ap)
{
	if (warn)
		c->warnings++;
	else
		c->violations++;
	if (c->printed++ >= MAX_PRINTED)
		return;
	printf("%s: %s: %s", c->file, c->path, warn ? "warning: " : "");
	vprintf(fmt, ap);
	putchar('\n');
}

/* A violation at c->path. */
static void __attribute__((format(printf, 2, 3))) bad(struct check *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vreport(c, false, fmt, ap);
	va_end(ap);
}

static void __attribute__((format(printf, 2, 3))) warn(struct check *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vreport(c, true, fmt, ap);
	va_end(ap);
}

static void __attribute__((format(printf, 2, 3))) at(struct check *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->path, sizeof(c->path), fmt, ap);
	va_end(ap);
}

/*
 * s made printable for a report line: at most 64 bytes, non-printable bytes
 * (and '"', '\\') escaped. Returns one of two rotating buffers, so a report
 * may show two strings.
 */
static const char *shown(const char *s)
{
	static char bufs[2][64 * 4 + 8];
	static int which;
	char *out = bufs[which ^= 1], *o = out;
	size_t i;

	for (i = 0; s[i] && i < 64; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (ch < 0x20 || ch >= 0x7f || ch == '"' || ch == '\\')
			o += sprintf(o, "\\x%02x", ch);
		else
			*o++ = (char)ch;
	}
	strcpy(o, s[i] ? "..." : "");
	return out;
}

/* Whether index i is valid for table t; reports it otherwise. */
static bool in_range(struct check *c, int t, int64_t i, const char *field)
{
	if (i >= 0 && (uint64_t)i < c->n[t])
		return true;
	bad(c, "%s %" PRId64 " out of range (%s has %zu entries)", field, i, table_names[t],
	    c->n[t]);
	return false;
}

static const char *str_at(const struct check *c, int64_t i)
{
	return i >= 0 && (uint64_t)i < c->n[T_STR] ? c->d->string_table[i] : NULL;
}

/* The string an AnyValue holds (string_value or string_value_strindex), or NULL. */
static const char *any_string(const struct check *c, const OtlpAnyValue *v)
{
	if (!v)
		return NULL;
	if (v->value_case == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE)
		return v->string_value;
	if (v->value_case ==
	    OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE_STRINDEX)
		return str_at(c, v->string_value_strindex);
	return NULL;
}

static const char *attr_key(const struct check *c, int32_t a)
{
	if (a < 0 || (size_t)a >= c->n[T_ATTR])
		return NULL;
	return str_at(c, c->d->attribute_table[a]->key_strindex);
}

/* An attribute_indices list: every index in range, no key twice. */
static void check_attr_list(struct check *c, const int32_t *a, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (!in_range(c, T_ATTR, a[i], "attribute index"))
			continue;
		const char *ki = attr_key(c, a[i]);
		for (size_t j = 0; j < i && ki; j++) {
			const char *kj = attr_key(c, a[j]);

			if (kj && strcmp(ki, kj) == 0) {
				bad(c,
				    "attribute_indices reference two entries with key \"%s\" ([%d] "
				    "and [%d])",
				    shown(ki), a[j], a[i]);
				break;
			}
		}
	}
}

/* KeyValue lists (Resource, InstrumentationScope): keys unique, key or
 * key_strindex but not both, string indices in range. */
static void check_kv_list(struct check *c, OtlpKeyValue *const *kv, size_t n)
{
	const char **keys = calloc(n ? n : 1, sizeof(*keys));
	char base[sizeof(c->path)];

	snprintf(base, sizeof(base), "%s", c->path);
	for (size_t i = 0; i < n; i++) {
		const OtlpKeyValue *a = kv[i];
		const char *k = a->key && a->key[0] ? a->key : NULL;

		at(c, "%s.attributes[%zu]", base, i);
		if (k && a->key_strindex)
			bad(c, "both key and key_strindex are set");
		if (!k && a->key_strindex && in_range(c, T_STR, a->key_strindex, "key_strindex"))
			k = str_at(c, a->key_strindex);
		if (!k || !k[0])
			bad(c, "attribute without a key");
		if (a->value &&
		    a->value->value_case ==
			    OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE_STRINDEX)
			in_range(c, T_STR, a->value->string_value_strindex,
				 "string_value_strindex");
		for (size_t j = 0; j < i && k && keys; j++) {
			if (keys[j] && strcmp(keys[j], k) == 0) {
				bad(c, "key \"%s\" appears twice (also attributes[%zu])", shown(k),
				    j);
				break;
			}
		}
		if (keys)
			keys[i] = k;
	}
	free(keys);
	snprintf(c->path, sizeof(c->path), "%s", base);
}

/* ---- dictionary ---- */

static bool bytes_zero(const ProtobufCBinaryData *b)
{
	for (size_t i = 0; i < b->len; i++) {
		if (b->data[i])
			return false;
	}
	return true;
}

static void check_zero_entries(struct check *c)
{
	const OtlpDictionary *d = c->d;

	for (int t = 0; t < T__COUNT; t++) {
		if (!c->n[t]) {
			at(c, "dictionary.%s", table_names[t]);
			bad(c, "table missing: index 0 must hold the zero value");
		}
	}
	at(c, "dictionary.string_table[0]");
	if (c->n[T_STR] && d->string_table[0][0])
		bad(c, "zero entry must be \"\", is \"%s\"", shown(d->string_table[0]));
	at(c, "dictionary.mapping_table[0]");
	if (c->n[T_MAP]) {
		const OtlpMapping *m = d->mapping_table[0];

		if (m->memory_start || m->memory_limit || m->file_offset || m->filename_strindex ||
		    m->n_attribute_indices)
			bad(c, "zero entry must be Mapping{}");
	}
	at(c, "dictionary.location_table[0]");
	if (c->n[T_LOC]) {
		const OtlpLocation *l = d->location_table[0];

		if (l->mapping_index || l->address || l->n_lines || l->n_attribute_indices)
			bad(c, "zero entry must be Location{}");
	}
	at(c, "dictionary.function_table[0]");
	if (c->n[T_FN]) {
		const OtlpFunction *f = d->function_table[0];

		if (f->name_strindex || f->system_name_strindex || f->filename_strindex ||
		    f->start_line)
			bad(c, "zero entry must be Function{}");
	}
	at(c, "dictionary.link_table[0]");
	if (c->n[T_LINK]) {
		const OtlpLink *k = d->link_table[0];

		if ((k->trace_id.len != 0 && k->trace_id.len != 16) || !bytes_zero(&k->trace_id) ||
		    (k->span_id.len != 0 && k->span_id.len != 8) || !bytes_zero(&k->span_id))
			bad(c, "zero entry must be Link{} (empty or 16/8 zero bytes)");
	}
	at(c, "dictionary.attribute_table[0]");
	if (c->n[T_ATTR]) {
		const OtlpKeyValueAndUnit *a = d->attribute_table[0];

		if (a->key_strindex || a->value || a->unit_strindex)
			bad(c, "zero entry must be KeyValueAndUnit{}");
	}
	at(c, "dictionary.stack_table[0]");
	if (c->n[T_STACK] && d->stack_table[0]->n_location_indices)
		bad(c, "zero entry must be Stack{}");
	for (int t = 0; t < T__COUNT; t++) {
		if (c->n[t] > INT32_MAX) {
			at(c, "dictionary.%s", table_names[t]);
			bad(c, "%zu entries: more than int32 indices can address", c->n[t]);
		}
	}
}

/* Duplicates in each table, by packed value (strings by content). */
static int check_duplicates(struct check *c)
{
	const OtlpDictionary *d = c->d;
	ProtobufCMessage *const *tables[T__COUNT] = {
		[T_MAP] = (ProtobufCMessage *const *)d->mapping_table,
		[T_LOC] = (ProtobufCMessage *const *)d->location_table,
		[T_FN] = (ProtobufCMessage *const *)d->function_table,
		[T_LINK] = (ProtobufCMessage *const *)d->link_table,
		[T_ATTR] = (ProtobufCMessage *const *)d->attribute_table,
		[T_STACK] = (ProtobufCMessage *const *)d->stack_table,
	};
	uint8_t *buf = NULL;
	size_t cap = 0;
	int err = 0;

	for (int t = 0; t < T__COUNT && !err; t++) {
		struct arena arena = {0};
		struct strtab seen;
		size_t *first = calloc(c->n[t] ? c->n[t] : 1, sizeof(*first));

		strtab__init(&seen, &arena, UINT32_MAX - 1);
		for (size_t i = 0; i < c->n[t] && first; i++) {
			const char *key;
			size_t len;
			uint32_t id;

			if (t == T_STR) {
				key = d->string_table[i];
				len = strlen(key);
			} else {
				len = protobuf_c_message_get_packed_size(tables[t][i]);
				uint8_t *b = array__grow(buf, &cap, len + 1, 1);
				if (!b) {
					err = -ENOMEM;
					break;
				}
				buf = b;
				protobuf_c_message_pack(tables[t][i], buf);
				key = (const char *)buf;
			}
			size_t before = seen.n;
			err = strtab__findnew(&seen, key, len, &id);
			if (err)
				break;
			if (seen.n == before) {
				at(c, "dictionary.%s[%zu]", table_names[t], i);
				bad(c, "duplicate of [%zu]", first[id]);
			} else {
				first[id] = i;
			}
		}
		if (!first)
			err = -ENOMEM;
		free(first);
		strtab__deinit(&seen);
		arena__free(&arena);
	}
	free(buf);
	return err;
}

static void check_mappings(struct check *c)
{
	for (size_t i = 1; i < c->n[T_MAP]; i++) {
		const OtlpMapping *m = c->d->mapping_table[i];
		bool has_build_id = false;

		at(c, "dictionary.mapping_table[%zu]", i);
		in_range(c, T_STR, m->filename_strindex, "filename_strindex");
		check_attr_list(c, m->attribute_indices, m->n_attribute_indices);
		for (size_t k = 0; k < m->n_attribute_indices; k++) {
			const char *key = attr_key(c, m->attribute_indices[k]);

			for (size_t b = 0;
			     key && b < sizeof(build_id_keys) / sizeof(*build_id_keys); b++) {
				const char *v = any_string(
					c, c->d->attribute_table[m->attribute_indices[k]]->value);

				if (!strcmp(key, build_id_keys[b]) && v && v[0])
					has_build_id = true;
			}
		}
		if (!has_build_id)
			bad(c, "mapping without a build id attribute "
			       "(process.executable.build_id.gnu, .go or .htlhash)");
		if (m->memory_limit < m->memory_start)
			bad(c, "memory_limit below memory_start");
	}
}

static void check_locations(struct check *c)
{
	for (size_t i = 1; i < c->n[T_LOC]; i++) {
		const OtlpLocation *l = c->d->location_table[i];

		at(c, "dictionary.location_table[%zu]", i);
		if (in_range(c, T_MAP, l->mapping_index, "mapping_index") && l->mapping_index) {
			const OtlpMapping *m = c->d->mapping_table[l->mapping_index];

			if (m->memory_limit > m->memory_start &&
			    (l->address < m->memory_start || l->address >= m->memory_limit))
				warn(c,
				     "address 0x%" PRIx64 " outside its mapping [0x%" PRIx64
				     ", 0x%" PRIx64 ")",
				     l->address, m->memory_start, m->memory_limit);
		}
		for (size_t k = 0; k < l->n_lines; k++) {
			in_range(c, T_FN, l->lines[k]->function_index, "lines[].function_index");
			if (l->lines[k]->line < 0 || l->lines[k]->column < 0)
				bad(c, "lines[%zu]: negative line or column", k);
		}
		check_attr_list(c, l->attribute_indices, l->n_attribute_indices);
	}
}

static void check_functions(struct check *c)
{
	for (size_t i = 1; i < c->n[T_FN]; i++) {
		const OtlpFunction *f = c->d->function_table[i];

		at(c, "dictionary.function_table[%zu]", i);
		in_range(c, T_STR, f->name_strindex, "name_strindex");
		in_range(c, T_STR, f->system_name_strindex, "system_name_strindex");
		in_range(c, T_STR, f->filename_strindex, "filename_strindex");
		if (!f->name_strindex && !f->system_name_strindex && !f->filename_strindex)
			bad(c, "function without name, system_name or filename");
		if (f->start_line < 0)
			bad(c, "negative start_line");
	}
}

static void check_links(struct check *c)
{
	for (size_t i = 1; i < c->n[T_LINK]; i++) {
		const OtlpLink *k = c->d->link_table[i];

		at(c, "dictionary.link_table[%zu]", i);
		if (k->trace_id.len != 16 || k->span_id.len != 8)
			bad(c, "trace_id must be 16 bytes and span_id 8 (are %zu and %zu)",
			    k->trace_id.len, k->span_id.len);
		else if (bytes_zero(&k->trace_id) || bytes_zero(&k->span_id))
			warn(c, "all-zero trace_id or span_id (invalid ids)");
	}
}

static void check_attributes(struct check *c)
{
	for (size_t i = 1; i < c->n[T_ATTR]; i++) {
		const OtlpKeyValueAndUnit *a = c->d->attribute_table[i];

		at(c, "dictionary.attribute_table[%zu]", i);
		in_range(c, T_STR, a->unit_strindex, "unit_strindex");
		if (!in_range(c, T_STR, a->key_strindex, "key_strindex"))
			continue;
		const char *key = str_at(c, a->key_strindex);
		if (!key[0])
			bad(c, "attribute without a key");
		if (a->value &&
		    a->value->value_case ==
			    OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE_STRINDEX &&
		    !in_range(c, T_STR, a->value->string_value_strindex, "string_value_strindex"))
			continue;
		if (!strcmp(key, "profile.frame.type")) {
			const char *v = any_string(c, a->value);
			bool ok = false;

			for (size_t k = 0; v && k < sizeof(frame_types) / sizeof(*frame_types); k++)
				ok |= !strcmp(v, frame_types[k]);
			if (!ok)
				bad(c,
				    "profile.frame.type \"%s\" is not a semantic-conventions value",
				    v ? shown(v) : "(not a string)");
		}
	}
}

static void check_stacks(struct check *c)
{
	for (size_t i = 1; i < c->n[T_STACK]; i++) {
		const OtlpStack *s = c->d->stack_table[i];

		at(c, "dictionary.stack_table[%zu]", i);
		for (size_t k = 0; k < s->n_location_indices; k++) {
			if (in_range(c, T_LOC, s->location_indices[k], "location index") &&
			    !s->location_indices[k])
				warn(c, "location_indices[%zu] is 0 (the null location)", k);
		}
	}
}

/* ---- resources, scopes, profiles, samples ---- */

static bool value_type_ok(struct check *c, const OtlpValueType *vt, const char *name)
{
	if (!vt) {
		bad(c, "%s not set", name);
		return false;
	}
	bool ok = in_range(c, T_STR, vt->type_strindex, name) &
		  in_range(c, T_STR, vt->unit_strindex, name);
	if (ok && (!vt->type_strindex || !vt->unit_strindex))
		bad(c, "%s: type and unit strings must be set", name);
	return ok;
}

/* Identity key of a sample: stack, link, sorted attribute indices. */
static size_t sample_key(const OtlpSample *s, int32_t *key, size_t cap)
{
	size_t n = 0;

	key[n++] = s->stack_index;
	key[n++] = s->link_index;
	for (size_t i = 0; i < s->n_attribute_indices && n < cap; i++) {
		int32_t v = s->attribute_indices[i];
		size_t j = n;

		while (j > 2 && key[j - 1] > v) { /* insertion sort: lists are short */
			key[j] = key[j - 1];
			j--;
		}
		key[j] = v;
		n++;
	}
	return n;
}

static int check_profile(struct check *c, const OtlpProfile *p, const char *base)
{
	struct arena arena = {0};
	struct strtab ids;
	size_t *first = calloc(p->n_samples ? p->n_samples : 1, sizeof(*first));
	int32_t key[64];
	int shape0 = -1;
	int err = 0;

	if (!first)
		return -ENOMEM;
	strtab__init(&ids, &arena, UINT32_MAX - 1);
	at(c, "%s", base);
	value_type_ok(c, p->sample_type, "sample_type");
	value_type_ok(c, p->period_type, "period_type");
	check_attr_list(c, p->attribute_indices, p->n_attribute_indices);
	if ((p->original_payload_format && p->original_payload_format[0]) !=
	    (p->original_payload.len > 0))
		bad(c, "original_payload_format and original_payload must be set together");
	if (p->profile_id.len && (p->profile_id.len != 16 || bytes_zero(&p->profile_id)))
		bad(c, "profile_id must be 16 bytes, not all zero");
	if (!p->n_samples)
		warn(c, "profile without samples");

	uint64_t lo = p->time_unix_nano;
	uint64_t hi = p->duration_nano > UINT64_MAX - lo ? UINT64_MAX : lo + p->duration_nano;
	for (size_t i = 0; i < p->n_samples; i++) {
		const OtlpSample *s = p->samples[i];
		int shape = (s->n_values > 0) | (s->n_timestamps_unix_nano > 0) << 1;
		size_t outside = 0;

		c->samples++;
		if (s->n_values)
			for (size_t k = 0; k < s->n_values; k++)
				c->events += s->values[k] > 0 ? (uint64_t)s->values[k] : 0;
		else
			c->events += s->n_timestamps_unix_nano;
		at(c, "%s.samples[%zu]", base, i);
		if (in_range(c, T_STACK, s->stack_index, "stack_index"))
			c->reached[T_STACK][s->stack_index] = 1;
		if (in_range(c, T_LINK, s->link_index, "link_index"))
			c->reached[T_LINK][s->link_index] = 1;
		check_attr_list(c, s->attribute_indices, s->n_attribute_indices);
		for (size_t k = 0; k < s->n_attribute_indices; k++) {
			if (s->attribute_indices[k] >= 0 &&
			    (size_t)s->attribute_indices[k] < c->n[T_ATTR])
				c->reached[T_ATTR][s->attribute_indices[k]] = 1;
		}
		if (!shape)
			bad(c, "sample without values or timestamps");
		if (shape == 3 && s->n_values != s->n_timestamps_unix_nano)
			bad(c, "%zu values but %zu timestamps", s->n_values,
			    s->n_timestamps_unix_nano);
		if (shape0 < 0)
			shape0 = shape;
		else if (shape != shape0)
			bad(c,
			    "shape (values %s, timestamps %s) differs from the profile's first "
			    "sample",
			    shape & 1 ? "yes" : "no", shape & 2 ? "yes" : "no");
		for (size_t k = 0; k < s->n_timestamps_unix_nano; k++) {
			uint64_t t = s->timestamps_unix_nano[k];

			outside += t < lo || t >= hi;
		}
		if (outside)
			warn(c,
			     "%zu timestamps outside [time_unix_nano, time_unix_nano + "
			     "duration_nano)",
			     outside);

		size_t n = sample_key(s, key, sizeof(key) / sizeof(*key));
		size_t before = ids.n;
		uint32_t id;
		err = strtab__findnew(&ids, (const char *)key, n * sizeof(*key), &id);
		if (err)
			break;
		if (ids.n == before)
			warn(c,
			     "same identity (stack, attributes, link) as samples[%zu]: should be "
			     "merged",
			     first[id]);
		else
			first[id] = i;
	}
	strtab__deinit(&ids);
	arena__free(&arena);
	free(first);
	return err;
}

static int check_resources(struct check *c)
{
	const OtlpRequest *r = c->req;
	char base[sizeof(c->path)];
	int err = 0;

	for (size_t i = 0; i < r->n_resource_profiles && !err; i++) {
		const OtlpResourceProfiles *rp = r->resource_profiles[i];

		at(c, "resource_profiles[%zu].resource", i);
		if (rp->resource)
			check_kv_list(c, rp->resource->attributes, rp->resource->n_attributes);
		at(c, "resource_profiles[%zu]", i);
		if (!rp->n_scope_profiles)
			warn(c, "empty envelope: no scope_profiles");
		for (size_t s = 0; s < rp->n_scope_profiles && !err; s++) {
			const OtlpScopeProfiles *sp = rp->scope_profiles[s];

			at(c, "resource_profiles[%zu].scope_profiles[%zu].scope", i, s);
			if (sp->scope)
				check_kv_list(c, sp->scope->attributes, sp->scope->n_attributes);
			at(c, "resource_profiles[%zu].scope_profiles[%zu]", i, s);
			if (!sp->n_profiles)
				warn(c, "empty envelope: no profiles");
			for (size_t p = 0; p < sp->n_profiles && !err; p++) {
				snprintf(base, sizeof(base),
					 "resource_profiles[%zu].scope_profiles[%zu].profiles[%zu]",
					 i, s, p);
				c->profiles++;
				err = check_profile(c, sp->profiles[p], base);
			}
		}
	}
	return err;
}

/* Marks what the samples reach, then reports the rest as orphans. */
static void check_orphans(struct check *c)
{
	const OtlpDictionary *d = c->d;
	uint8_t **R = c->reached;

#define REACH(t, i)                                                                                \
	do {                                                                                       \
		int64_t _i = (i);                                                                  \
		if (_i >= 0 && (uint64_t)_i < c->n[t])                                             \
			R[t][_i] = 1;                                                              \
	} while (0)

	for (size_t i = 0; i < c->req->n_resource_profiles; i++) {
		const OtlpResourceProfiles *rp = c->req->resource_profiles[i];

		for (size_t k = 0; rp->resource && k < rp->resource->n_attributes; k++) {
			const OtlpAnyValue *v = rp->resource->attributes[k]->value;

			REACH(T_STR, rp->resource->attributes[k]->key_strindex);
			if (v &&
			    v->value_case ==
				    OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE_STRINDEX)
				REACH(T_STR, v->string_value_strindex);
		}
		for (size_t s = 0; s < rp->n_scope_profiles; s++) {
			const OtlpScopeProfiles *sp = rp->scope_profiles[s];

			for (size_t p = 0; p < sp->n_profiles; p++) {
				const OtlpProfile *pr = sp->profiles[p];

				if (pr->sample_type) {
					REACH(T_STR, pr->sample_type->type_strindex);
					REACH(T_STR, pr->sample_type->unit_strindex);
				}
				if (pr->period_type) {
					REACH(T_STR, pr->period_type->type_strindex);
					REACH(T_STR, pr->period_type->unit_strindex);
				}
				for (size_t k = 0; k < pr->n_attribute_indices; k++)
					REACH(T_ATTR, pr->attribute_indices[k]);
			}
		}
	}
	for (size_t i = 0; i < c->n[T_STACK]; i++) {
		for (size_t k = 0; R[T_STACK][i] && k < d->stack_table[i]->n_location_indices; k++)
			REACH(T_LOC, d->stack_table[i]->location_indices[k]);
	}
	for (size_t i = 0; i < c->n[T_LOC]; i++) {
		const OtlpLocation *l = d->location_table[i];

		if (!R[T_LOC][i])
			continue;
		REACH(T_MAP, l->mapping_index);
		for (size_t k = 0; k < l->n_lines; k++)
			REACH(T_FN, l->lines[k]->function_index);
		for (size_t k = 0; k < l->n_attribute_indices; k++)
			REACH(T_ATTR, l->attribute_indices[k]);
	}
	for (size_t i = 0; i < c->n[T_MAP]; i++) {
		if (!R[T_MAP][i])
			continue;
		REACH(T_STR, d->mapping_table[i]->filename_strindex);
		for (size_t k = 0; k < d->mapping_table[i]->n_attribute_indices; k++)
			REACH(T_ATTR, d->mapping_table[i]->attribute_indices[k]);
	}
	for (size_t i = 0; i < c->n[T_FN]; i++) {
		if (!R[T_FN][i])
			continue;
		REACH(T_STR, d->function_table[i]->name_strindex);
		REACH(T_STR, d->function_table[i]->system_name_strindex);
		REACH(T_STR, d->function_table[i]->filename_strindex);
	}
	for (size_t i = 0; i < c->n[T_ATTR]; i++) {
		const OtlpKeyValueAndUnit *a = d->attribute_table[i];

		if (!R[T_ATTR][i])
			continue;
		REACH(T_STR, a->key_strindex);
		REACH(T_STR, a->unit_strindex);
		if (a->value &&
		    a->value->value_case ==
			    OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE_STRINDEX)
			REACH(T_STR, a->value->string_value_strindex);
	}
#undef REACH
	for (int t = 0; t < T__COUNT; t++) {
		for (size_t i = 1; i < c->n[t]; i++) {
			if (!R[t][i]) {
				at(c, "dictionary.%s[%zu]", table_names[t], i);
				warn(c, "orphan: no sample reaches it");
			}
		}
	}
}

/* Checks one decoded request; returns 0 or -ENOMEM. */
static int check_request(struct check *c)
{
	const OtlpDictionary *d = c->req->dictionary;
	int err = 0;

	c->d = d;
	if (!d) {
		at(c, "dictionary");
		if (c->req->n_resource_profiles)
			bad(c, "missing: the request has no dictionary");
		else
			warn(c, "empty request: no resource_profiles and no dictionary");
		return 0;
	}
	c->n[T_STR] = d->n_string_table;
	c->n[T_MAP] = d->n_mapping_table;
	c->n[T_LOC] = d->n_location_table;
	c->n[T_FN] = d->n_function_table;
	c->n[T_LINK] = d->n_link_table;
	c->n[T_ATTR] = d->n_attribute_table;
	c->n[T_STACK] = d->n_stack_table;
	for (int t = 0; t < T__COUNT; t++) {
		c->reached[t] = calloc(c->n[t] ? c->n[t] : 1, 1);
		if (!c->reached[t])
			return -ENOMEM;
	}
	if (!c->req->n_resource_profiles) {
		at(c, "resource_profiles");
		warn(c, "empty request: no resource_profiles");
	}
	check_zero_entries(c);
	err = check_duplicates(c);
	if (err)
		return err;
	check_mappings(c);
	check_locations(c);
	check_functions(c);
	check_links(c);
	check_attributes(c);
	check_stacks(c);
	err = check_resources(c);
	if (!err)
		check_orphans(c);
	return err;
}

/* ---- files ---- */

static int read_all(FILE *f, uint8_t **data, size_t *len)
{
	size_t cap = 1 << 16, n = 0;
	uint8_t *buf = malloc(cap);

	while (buf) {
		n += fread(buf + n, 1, cap - n, f);
		if (n < cap)
			break;
		if (cap >= MAX_INPUT_BYTES) {
			free(buf);
			return -EFBIG;
		}
		uint8_t *nb = realloc(buf, cap * 2);
		if (!nb)
			break;
		buf = nb;
		cap *= 2;
	}
	if (!buf)
		return -ENOMEM;
	if (ferror(f)) {
		free(buf);
		return -EIO;
	}
	*data = buf;
	*len = n;
	return 0;
}

static int gunzip(const uint8_t *in, size_t len, uint8_t **out, size_t *out_len)
{
	z_stream zs;
	size_t cap = len * 4 + 4096;
	uint8_t *buf;
	int zerr = Z_OK;

	memset(&zs, 0, sizeof(zs));
	if (inflateInit2(&zs, 15 + 16) != Z_OK)
		return -ENOMEM;
	buf = malloc(cap);
	zs.next_in = (Bytef *)in;
	zs.avail_in = (uInt)len;
	do {
		if (!buf)
			break;
		if (zs.total_out == cap) {
			uint8_t *nb = cap < MAX_INPUT_BYTES ? realloc(buf, cap * 2) : NULL;

			if (!nb) {
				free(buf);
				buf = NULL;
				break;
			}
			buf = nb;
			cap *= 2;
		}
		zs.next_out = buf + zs.total_out;
		zs.avail_out = (uInt)(cap - zs.total_out);
		zerr = inflate(&zs, Z_NO_FLUSH);
	} while (zerr == Z_OK);
	size_t n = zs.total_out;
	inflateEnd(&zs);
	if (!buf)
		return -ENOMEM;
	if (zerr != Z_STREAM_END) {
		free(buf);
		return -EINVAL;
	}
	*out = buf;
	*out_len = n;
	return 0;
}

/* Checks one file; returns its violation count, or -errno on a read error
 * (reported). */
static long check_file(const char *path)
{
	struct check c = {.file = path};
	uint8_t *data = NULL, *raw = NULL;
	size_t len = 0, raw_len;
	FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
	int err;

	if (!f) {
		printf("%s: file: cannot open: %s\n", path, strerror(errno));
		return 1;
	}
	err = read_all(f, &data, &len);
	if (f != stdin)
		fclose(f);
	if (err) {
		printf("%s: file: cannot read: %s\n", path, strerror(-err));
		return 1;
	}
	if (len >= 2 && data[0] == 0x1f && data[1] == 0x8b) {
		err = gunzip(data, len, &raw, &raw_len);
		if (err) {
			printf("%s: file: gzip: %s\n", path,
			       err == -EINVAL ? "corrupt or truncated" : strerror(-err));
			free(data);
			return 1;
		}
		free(data);
		data = raw;
		len = raw_len;
	}
	c.req = opentelemetry__proto__collector__profiles__v1development__export_profiles_service_request__unpack(
		NULL, len, data);
	if (!c.req) {
		printf("%s: file: not a decodable ExportProfilesServiceRequest (%zu bytes)\n", path,
		       len);
		free(data);
		return 1;
	}
	err = check_request(&c);
	if (err)
		printf("%s: file: check aborted: %s\n", path, strerror(-err));
	if (c.printed > MAX_PRINTED)
		printf("%s: (%zu more findings not shown)\n", path, c.printed - MAX_PRINTED);
	printf("%s: %s: %zu violations, %zu warnings; resources %zu, profiles %zu, samples %zu, "
	       "events %" PRIu64 ", stacks %zu, locations %zu, functions %zu, mappings %zu, "
	       "strings %zu\n",
	       path, c.violations || err ? "FAIL" : "ok", c.violations, c.warnings,
	       c.req->n_resource_profiles, c.profiles, c.samples, c.events, c.n[T_STACK],
	       c.n[T_LOC], c.n[T_FN], c.n[T_MAP], c.n[T_STR]);
	for (int t = 0; t < T__COUNT; t++)
		free(c.reached[t]);
	opentelemetry__proto__collector__profiles__v1development__export_profiles_service_request__free_unpacked(
		(OtlpRequest *)c.req, NULL);
	free(data);
	return err ? 1 : (long)c.violations;
}

static void usage(FILE *to)
{
	fprintf(to, "usage: otlp-check FILE...\n"
		    "Validates OTLP Profiles ExportProfilesServiceRequests (binary protobuf,\n"
		    "gzip accepted; '-' reads stdin). Prints one line per violation or warning\n"
		    "and a summary per file; exits 1 if any file has a violation.\n");
}

int main(int argc, char **argv)
{
	bool failed = false;

	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
		usage(stdout);
		return 0;
	}
	for (int i = 1; i < argc; i++)
		failed |= check_file(argv[i]) != 0;
	return failed ? 1 : 0;
}
