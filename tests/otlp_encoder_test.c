/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Unit tests of the OTLP Profiles encoder (encoder/otlp*.c) and of the
 * otlp-check validator (tools/otlp_check.c).
 *
 * Every request the encoder produces is checked two ways: unpacked with the
 * generated protobuf-c code and inspected field by field against hand-built
 * profiles (zero entries, dedup, resources, scope, profile fields, sample
 * shapes, frame types, build ids, splitting, intervals), and handed to the
 * otlp-check executable, which must accept it with no violation and no
 * warning (so no orphans, no unmerged samples, no stragglers). otlp-check
 * must also reject hand-corrupted requests, and accept the reference sample.
 * `protoc --decode` against the pinned official schema reads an encoded
 * request (skipped, 77, without ../shared unless CI is set). A 20,000-stack
 * interval is timed (printed; only a loose sanity bound is asserted), and
 * every allocation of the encoder is failed in turn (-ENOMEM, nothing
 * leaked).
 *
 * The encoder context (struct otlp_encoder): a sequence of calls on one
 * context gives, call by call, the same bytes as fresh otlp__encode() calls;
 * its cache bound empties it and the bytes stay the same; every allocation
 * of a call on a warm context is failed in turn (-ENOMEM, the context still
 * usable and right afterwards, nothing leaked once it is freed).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "encoder.h"
#include "opentelemetry/proto/collector/profiles/v1development/profiles_service.pb-c.h"
#include "inline_fixture.h"
#include "profile_fixture.h"
#include "test_helpers.h"

#ifndef OTLP_CHECK_BIN
#define OTLP_CHECK_BIN "otlp-check"
#endif
#ifndef PIPELINE_PROTOC
#define PIPELINE_PROTOC "protoc"
#endif
#ifndef PIPELINE_SOURCE_DIR_DEFAULT
#define PIPELINE_SOURCE_DIR_DEFAULT "."
#endif

#define OTLP_PROTO "opentelemetry/proto/collector/profiles/v1development/profiles_service.proto"
#define OTLP_MSG   "opentelemetry.proto.collector.profiles.v1development.ExportProfilesServiceRequest"

typedef Opentelemetry__Proto__Collector__Profiles__V1development__ExportProfilesServiceRequest
	OtlpRequest;
typedef Opentelemetry__Proto__Profiles__V1development__ProfilesDictionary OtlpDictionary;
typedef Opentelemetry__Proto__Profiles__V1development__ResourceProfiles OtlpResourceProfiles;
typedef Opentelemetry__Proto__Profiles__V1development__Profile OtlpProfile;
typedef Opentelemetry__Proto__Profiles__V1development__Sample OtlpSample;
typedef Opentelemetry__Proto__Profiles__V1development__Mapping OtlpMapping;
typedef Opentelemetry__Proto__Profiles__V1development__Location OtlpLocation;
typedef Opentelemetry__Proto__Profiles__V1development__Function OtlpFunction;
typedef Opentelemetry__Proto__Profiles__V1development__KeyValueAndUnit OtlpKeyValueAndUnit;
typedef Opentelemetry__Proto__Common__V1__KeyValue OtlpKeyValue;
typedef Opentelemetry__Proto__Common__V1__AnyValue OtlpAnyValue;

#define REQ_UNPACK(len, data)                                                                              \
	opentelemetry__proto__collector__profiles__v1development__export_profiles_service_request__unpack( \
		NULL, (len), (data))
#define REQ_FREE(r)                                                                                               \
	opentelemetry__proto__collector__profiles__v1development__export_profiles_service_request__free_unpacked( \
		(r), NULL)
#define REQ_SIZE(r)                                                                                                 \
	opentelemetry__proto__collector__profiles__v1development__export_profiles_service_request__get_packed_size( \
		(r))
#define REQ_PACK(r, buf)                                                                                 \
	opentelemetry__proto__collector__profiles__v1development__export_profiles_service_request__pack( \
		(r), (buf))

#define ANY_STRING OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE
#define ANY_INT	   OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE

/* ---- allocation failure injection (tests/otlp.cmake links with --wrap) ---- */

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);
void __real_free(void *p);

static long g_fail_after = -1; /* -1: never fail */
static bool g_injected;
static long g_live;

static bool inject_failure(void)
{
	if (g_fail_after < 0)
		return false;
	if (g_fail_after-- > 0)
		return false;
	g_injected = true;
	return true;
}

void *__wrap_malloc(size_t n)
{
	void *p = inject_failure() ? NULL : __real_malloc(n);

	g_live += p != NULL;
	return p;
}

void *__wrap_calloc(size_t n, size_t size)
{
	void *p = inject_failure() ? NULL : __real_calloc(n, size);

	g_live += p != NULL;
	return p;
}

void *__wrap_realloc(void *old, size_t n)
{
	void *p = inject_failure() ? NULL : __real_realloc(old, n);

	g_live += p != NULL && old == NULL;
	return p;
}

void __wrap_free(void *p)
{
	g_live -= p != NULL;
	__real_free(p);
}

/* ---- scratch files and the reference directory ---- */

static char g_tmp_dir[4096];
static char g_ref_dir[4096];

static int make_tmp_dir(void)
{
	const char *t = getenv("TMPDIR");

	if (g_tmp_dir[0])
		return 0;
	snprintf(g_tmp_dir, sizeof(g_tmp_dir), "%s/otlp_encoder_test.XXXXXX",
		 t && t[0] ? t : "/tmp");
	if (!mkdtemp(g_tmp_dir) || strchr(g_tmp_dir, '\'')) {
		perror("mkdtemp");
		g_tmp_dir[0] = '\0';
		return -1;
	}
	return 0;
}

static void remove_tmp_dir(void)
{
	char cmd[4200];

	if (!g_tmp_dir[0])
		return;
	snprintf(cmd, sizeof(cmd), "rm -rf -- '%s'", g_tmp_dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", g_tmp_dir);
}

static int write_file(const char *path, const void *data, size_t len)
{
	FILE *f = fopen(path, "wb");
	int ok;

	if (!f)
		return -errno;
	ok = fwrite(data, 1, len, f) == len;
	ok &= fclose(f) == 0;
	return ok ? 0 : -EIO;
}

/* Reads a whole file into a malloc'ed, NUL-terminated buffer. */
static char *read_text(const char *path)
{
	FILE *f = fopen(path, "rb");
	size_t cap = 1 << 16, n = 0;
	char *buf;

	if (!f)
		return NULL;
	buf = malloc(cap);
	while (buf) {
		n += fread(buf + n, 1, cap - n - 1, f);
		if (n < cap - 1)
			break;
		char *nb = realloc(buf, cap * 2);
		if (!nb) {
			free(buf);
			buf = NULL;
			break;
		}
		buf = nb;
		cap *= 2;
	}
	fclose(f);
	if (buf)
		buf[n] = '\0';
	return buf;
}

/* 0 when ../shared/reference is there; else 1 under CI, 77 otherwise. */
static int need_reference(bool need_protoc)
{
	const char *ci = getenv("CI");
	bool under_ci = ci && ci[0];
	const char *src = getenv("PIPELINE_SOURCE_DIR");
	char probe[4300];
	struct stat sb;

	if (!src || !src[0])
		src = PIPELINE_SOURCE_DIR_DEFAULT;
	snprintf(g_ref_dir, sizeof(g_ref_dir), "%s/../shared/reference", src);
	snprintf(probe, sizeof(probe), "%s/proto/%s", g_ref_dir, OTLP_PROTO);
	if (stat(probe, &sb) != 0 || strchr(g_ref_dir, '\'')) {
		fprintf(stderr, "reference not found at %s%s\n", g_ref_dir,
			under_ci ? "" : ": skipping");
		return under_ci ? 1 : TEST_SKIP;
	}
	if (need_protoc && system("'" PIPELINE_PROTOC "' --version >/dev/null 2>&1") != 0) {
		fprintf(stderr, "protoc (%s) does not run%s\n", PIPELINE_PROTOC,
			under_ci ? "" : ": skipping");
		return under_ci ? 1 : TEST_SKIP;
	}
	return 0;
}

/*
 * Runs otlp-check on bufs[0..n) (written to scratch files) or on the file
 * `path` when n == 0; *output receives its stdout (malloc'ed). Returns its
 * exit status, or -1.
 */
static int run_check(const struct encoded_buf *bufs, size_t n, const char *path, char **output)
{
	size_t cap = 8192 + n * 4200;
	char *cmd = malloc(cap);
	char out_path[4200], file[4200];
	size_t len;
	int rc;

	*output = NULL;
	if (!cmd || make_tmp_dir() != 0) {
		free(cmd);
		return -1;
	}
	len = (size_t)snprintf(cmd, cap, "'%s'", OTLP_CHECK_BIN);
	for (size_t i = 0; i < n; i++) {
		snprintf(file, sizeof(file), "%s/req-%zu.binpb", g_tmp_dir, i);
		if (write_file(file, bufs[i].data, bufs[i].len) != 0) {
			free(cmd);
			return -1;
		}
		len += (size_t)snprintf(cmd + len, cap - len, " '%s'", file);
	}
	if (!n)
		len += (size_t)snprintf(cmd + len, cap - len, " '%s'", path);
	snprintf(out_path, sizeof(out_path), "%s/check.out", g_tmp_dir);
	snprintf(cmd + len, cap - len, " > '%s' 2>&1", out_path);
	rc = system(cmd);
	free(cmd);
	*output = read_text(out_path);
	if (rc == -1 || !WIFEXITED(rc))
		return -1;
	return WEXITSTATUS(rc);
}

/* otlp-check must accept bufs[0..n) with no violation and no warning. */
static int check_accepts(const struct encoded_buf *bufs, size_t n)
{
	char *out = NULL;
	int rc = run_check(bufs, n, NULL, &out);
	bool clean = out && !strstr(out, ": warning: ") && !strstr(out, ": FAIL: ");

	if (rc != 0 || !clean)
		fprintf(stderr, "otlp-check rc=%d:\n%s\n", rc, out ? out : "(no output)");
	free(out);
	return rc == 0 && clean ? 0 : 1;
}

/* ---- the fixture ---- */

#define T0	  1767225600000000000ULL /* 2026-01-01T00:00:00Z */
#define MS	  1000000ULL
#define PERIOD_NS 10101010ULL /* 99 Hz */

static const struct sym_module m_app = {.path = "/usr/bin/app",
					.name = "app",
					.build_id = "0a1b2c3d4e5f",
					.htlhash = "00112233445566778899aabbccddeeff"};
/* another module object for the same file: must give the same mapping */
static const struct sym_module m_app_dup = {.path = "/usr/bin/app",
					    .name = "app",
					    .build_id = "0a1b2c3d4e5f",
					    .htlhash = "00112233445566778899aabbccddeeff"};
static const struct sym_module m_libc = {.path = "/usr/lib/x86_64-linux-gnu/libc.so.6",
					 .name = "libc.so.6",
					 .build_id = "",
					 .htlhash = "ffeeddccbbaa99887766554433221100"};
static const struct sym_module m_anon = {
	.path = "[anon]", .name = "[anon]", .build_id = "", .htlhash = ""};

static const struct sym_frame f_main = FIXTURE_UFRAME(&m_app, 0x1100, "main", "app.c", 10, 1);
static const struct sym_frame f_work = FIXTURE_UFRAME(&m_app, 0x1200, "work", "app.c", 20, 2);
/* the same function as f_work at another address */
static const struct sym_frame f_work2 = FIXTURE_UFRAME(&m_app, 0x1208, "work", "app.c", 21, 3);
/* the same (file, address, function, line) as f_main through another module object */
static const struct sym_frame f_main_dup =
	FIXTURE_UFRAME(&m_app_dup, 0x1100, "main", "app.c", 10, 4);
static const struct sym_frame f_libc_unk = FIXTURE_UFRAME(&m_libc, 0x2a0f0, NULL, NULL, 0, 5);
static const struct sym_frame f_anon = FIXTURE_UFRAME(&m_anon, 0x7f0000001000ULL, NULL, NULL, 0, 6);
static const struct sym_frame f_k_sys = FIXTURE_KFRAME(0xffffffff81000100ULL, "do_syscall_64", 7);
static const struct sym_frame f_k_entry =
	FIXTURE_KFRAME(0xffffffff81000200ULL, "entry_SYSCALL_64", 8);
static const struct sym_frame f_k_idle = FIXTURE_KFRAME(0xffffffff81000300ULL, "default_idle", 9);

/* leaf first: kernel frames, then user frames */
static const struct sym_frame *const st_work[] = {&f_work, &f_main};
static const struct sym_frame *const st_sys[] = {&f_k_sys, &f_k_entry, &f_libc_unk, &f_main};
static const struct sym_frame *const st_work2[] = {&f_work2, &f_main};
static const struct sym_frame *const st_anon[] = {&f_anon, &f_main_dup};
static const struct sym_frame *const st_idle[] = {&f_k_idle};
static const struct sym_frame *const st_work_dup[] = {&f_work, &f_main_dup};

#define TS(off_ns, c)                                                                              \
	{                                                                                          \
		.ns = T0 + (off_ns), .cpu = (c)                                                    \
	}

static const struct profile_sample_time t_work[] = {TS(100 * MS, 0), TS(200 * MS, 1),
						    TS(300 * MS, 0)};
static const struct profile_sample_time t_sys[] = {TS(400 * MS, 1), TS(500 * MS, 1)};
static const struct profile_sample_time t_work2[] = {TS(600 * MS, 2)};
/* two stragglers: before the window, and at its (open) end */
static const struct profile_sample_time t_anon[] = {
	{.ns = T0 - 5, .cpu = 3}, TS(1000 * MS, 3), TS(2000 * MS, 2), TS(10000 * MS, 3)};
static const struct profile_sample_time t_idle[] = {TS(10 * MS, 0), TS(11 * MS, 1), TS(12 * MS, 2),
						    TS(13 * MS, 3), TS(14 * MS, 4)};
static const struct profile_sample_time t_empty[] = {TS(700 * MS, 0)};
static const struct profile_sample_time t_work_dup[] = {TS(250 * MS, 0), TS(50 * MS, 0)};

enum { S_WORK, S_SYS, S_WORK2, S_ANON, S_IDLE, S_EMPTY, S_ZERO, S_WORK_DUP, N_STACKS };

static struct profile_stack g_stacks[N_STACKS];
static const struct profile_process g_procs[] = {
	{.tgid = 100, .exe_path = "/usr/bin/app", .exe_name = "app", .container_id = "abc123"},
};

static void set_times(struct profile_stack *s, const struct profile_sample_time *t, size_t n)
{
	s->times = t;
	s->n_times = (uint32_t)n;
}

#define SET_TIMES(s, arr) set_times((s), (arr), sizeof(arr) / sizeof((arr)[0]))

static struct profile fixture(void)
{
	g_stacks[S_WORK] = fixture_stack(100, 101, "worker", "app", 0, 2, st_work, 3);
	SET_TIMES(&g_stacks[S_WORK], t_work);
	g_stacks[S_SYS] = fixture_stack(100, 101, "worker", "app", 2, 2, st_sys, 2);
	SET_TIMES(&g_stacks[S_SYS], t_sys);
	g_stacks[S_WORK2] = fixture_stack(100, 102, "other", "app", 0, 2, st_work2, 1);
	SET_TIMES(&g_stacks[S_WORK2], t_work2);
	g_stacks[S_ANON] = fixture_stack(200, 200, "proc2", "proc2", 0, 2, st_anon, 4);
	SET_TIMES(&g_stacks[S_ANON], t_anon);
	g_stacks[S_IDLE] = fixture_stack(0, 0, "swapper/0", "[idle]", 1, 0, st_idle, 5);
	SET_TIMES(&g_stacks[S_IDLE], t_idle);
	g_stacks[S_EMPTY] = fixture_stack(100, 101, "worker", "app", 0, 0, NULL, 1);
	SET_TIMES(&g_stacks[S_EMPTY], t_empty);
	g_stacks[S_ZERO] = fixture_stack(100, 103, "unused", "app", 0, 2, st_work, 0);
	/* same identity as S_WORK once frames are deduplicated: must merge */
	g_stacks[S_WORK_DUP] = fixture_stack(100, 101, "worker", "app", 0, 2, st_work_dup, 2);
	SET_TIMES(&g_stacks[S_WORK_DUP], t_work_dup);

	struct profile p = fixture_profile("host-a", T0, 99, g_stacks, N_STACKS);
	p.processes = g_procs;
	p.n_processes = sizeof(g_procs) / sizeof(g_procs[0]);
	p.times_complete = true;
	return p;
}

/* The profile of inline_fixture.h (frames with inlined calls), in
 * g_inline_stacks. */
static struct profile_stack g_inline_stacks[2];
static const struct profile_process g_inline_procs[] = {
	{.tgid = INLINE_FIXTURE_TGID, .exe_path = "/usr/bin/server", .exe_name = "server"},
};

static struct profile inline_profile(void)
{
	inline_fixture_stacks(g_inline_stacks);
	struct profile p = fixture_profile("host-a", T0, 99, g_inline_stacks, 2);
	p.processes = g_inline_procs;
	p.n_processes = 1;
	return p;
}

static const struct otlp_attr g_env_attrs[] = {
	{"service.name", "svc"},
	{"deployment.environment", "prod"},
};

static struct otlp_encode_opts opts_default(bool timestamps)
{
	return (struct otlp_encode_opts){.agent_name = "pipeline",
					 .agent_version = "0.1.0",
					 .resource_attrs = g_env_attrs,
					 .n_resource_attrs = 2,
					 .timestamps = timestamps};
}

/* ---- decoding and lookups ---- */

struct decoded {
	struct encoded_buf *bufs;
	size_t n;
	OtlpRequest **req;
};

static void decoded_free(struct decoded *d)
{
	for (size_t i = 0; i < d->n; i++) {
		if (d->req && d->req[i])
			REQ_FREE(d->req[i]);
		free(d->bufs[i].data);
	}
	free(d->req);
	free(d->bufs);
	memset(d, 0, sizeof(*d));
}

/*
 * The encoder writes the envelope, samples and stacks itself (encoder/
 * otlp_wire.c): the bytes must be exactly what protobuf-c packs for the
 * decoded message, i.e. every field known, in order, with canonical
 * encodings.
 */
static int check_repacks(const OtlpRequest *r, const struct encoded_buf *b)
{
	size_t len = REQ_SIZE(r);
	uint8_t *again = malloc(len ? len : 1);

	CHECK(again != NULL);
	CHECK_EQ_U64(len, b->len);
	CHECK_EQ_U64(REQ_PACK(r, again), len);
	CHECK(memcmp(again, b->data, len) == 0);
	free(again);
	return 0;
}

/* Encodes and unpacks every request. Returns 0 or 1 (reported). */
static int encode_decode(const struct profile *const *ps, size_t n,
			 const struct otlp_encode_opts *o, struct decoded *d)
{
	int err;

	memset(d, 0, sizeof(*d));
	err = otlp__encode(ps, n, o, &d->bufs, &d->n);
	if (err) {
		fprintf(stderr, "otlp__encode: %s\n", strerror(-err));
		return 1;
	}
	d->req = calloc(d->n ? d->n : 1, sizeof(*d->req));
	CHECK(d->req != NULL);
	for (size_t i = 0; i < d->n; i++) {
		d->req[i] = REQ_UNPACK(d->bufs[i].len, d->bufs[i].data);
		CHECK(d->req[i] != NULL);
		CHECK_EQ_U64(d->req[i]->base.n_unknown_fields, 0);
		CHECK(check_repacks(d->req[i], &d->bufs[i]) == 0);
	}
	return 0;
}

static const char *S(const OtlpRequest *r, int32_t i)
{
	if (i < 0 || (size_t)i >= r->dictionary->n_string_table)
		return "(out of range)";
	return r->dictionary->string_table[i];
}

static const OtlpKeyValue *res_attr(const OtlpResourceProfiles *rp, const char *key)
{
	for (size_t i = 0; i < rp->resource->n_attributes; i++) {
		if (!strcmp(rp->resource->attributes[i]->key, key))
			return rp->resource->attributes[i];
	}
	return NULL;
}

static const char *res_str(const OtlpResourceProfiles *rp, const char *key)
{
	const OtlpKeyValue *kv = res_attr(rp, key);

	return kv && kv->value->value_case == ANY_STRING ? kv->value->string_value : NULL;
}

static const OtlpResourceProfiles *res_by_pid(const OtlpRequest *r, int64_t pid)
{
	for (size_t i = 0; i < r->n_resource_profiles; i++) {
		const OtlpKeyValue *kv = res_attr(r->resource_profiles[i], "process.pid");

		if (kv && kv->value->value_case == ANY_INT && kv->value->int_value == pid)
			return r->resource_profiles[i];
	}
	return NULL;
}

/* The attribute of key in list a[0..n), or NULL. */
static const OtlpKeyValueAndUnit *attr_in(const OtlpRequest *r, const int32_t *a, size_t n,
					  const char *key)
{
	for (size_t i = 0; i < n; i++) {
		const OtlpKeyValueAndUnit *kv = r->dictionary->attribute_table[a[i]];

		if (!strcmp(S(r, kv->key_strindex), key))
			return kv;
	}
	return NULL;
}

static int64_t sample_int(const OtlpRequest *r, const OtlpSample *s, const char *key)
{
	const OtlpKeyValueAndUnit *kv =
		attr_in(r, s->attribute_indices, s->n_attribute_indices, key);

	return kv && kv->value->value_case == ANY_INT ? kv->value->int_value : -1;
}

static const char *sample_str(const OtlpRequest *r, const OtlpSample *s, const char *key)
{
	const OtlpKeyValueAndUnit *kv =
		attr_in(r, s->attribute_indices, s->n_attribute_indices, key);

	return kv && kv->value->value_case == ANY_STRING ? kv->value->string_value : NULL;
}

/* The name of the function of location l's first line, or NULL. */
static const char *loc_fn(const OtlpRequest *r, int32_t l)
{
	const OtlpLocation *loc = r->dictionary->location_table[l];

	if (!loc->n_lines)
		return NULL;
	return S(r, r->dictionary->function_table[loc->lines[0]->function_index]->name_strindex);
}

/* The sample of profile p with thread tid on cpu (-1: no cpu attribute)
 * whose stack's leaf is function leaf (NULL: the empty stack). */
static const OtlpSample *find_sample(const OtlpRequest *r, const OtlpProfile *p, int64_t tid,
				     int64_t cpu, const char *leaf)
{
	for (size_t i = 0; i < p->n_samples; i++) {
		const OtlpSample *s = p->samples[i];
		const int32_t *locs = r->dictionary->stack_table[s->stack_index]->location_indices;
		size_t n = r->dictionary->stack_table[s->stack_index]->n_location_indices;
		const char *fn = n ? loc_fn(r, locs[0]) : NULL;

		if (sample_int(r, s, "thread.id") != tid ||
		    sample_int(r, s, "cpu.logical_number") != cpu)
			continue;
		if ((!leaf && !n) || (leaf && fn && !strcmp(fn, leaf)))
			return s;
	}
	return NULL;
}

/* Every table's zero entry, exactly; every index in range; no duplicate
 * entries (packed bytes compared pairwise: the fixture is small). */
static int check_dictionary(const OtlpRequest *r)
{
	const OtlpDictionary *d = r->dictionary;

	CHECK(d != NULL);
	CHECK(d->n_string_table > 0 && d->n_mapping_table > 0 && d->n_location_table > 0 &&
	      d->n_function_table > 0 && d->n_link_table > 0 && d->n_attribute_table > 0 &&
	      d->n_stack_table > 0);
	CHECK_STR(d->string_table[0], "");
	CHECK(!d->mapping_table[0]->memory_limit && !d->mapping_table[0]->filename_strindex &&
	      !d->mapping_table[0]->n_attribute_indices);
	CHECK(!d->location_table[0]->address && !d->location_table[0]->mapping_index &&
	      !d->location_table[0]->n_lines && !d->location_table[0]->n_attribute_indices);
	CHECK(!d->function_table[0]->name_strindex && !d->function_table[0]->system_name_strindex &&
	      !d->function_table[0]->filename_strindex);
	CHECK(!d->attribute_table[0]->key_strindex && !d->attribute_table[0]->value);
	CHECK_EQ_U64(d->stack_table[0]->n_location_indices, 0);
	CHECK_EQ_U64(d->n_link_table, 1);
	CHECK_EQ_U64(d->link_table[0]->trace_id.len, 16);
	CHECK_EQ_U64(d->link_table[0]->span_id.len, 8);
	for (size_t i = 0; i < 16; i++)
		CHECK(d->link_table[0]->trace_id.data[i] == 0);
	for (size_t i = 0; i < 8; i++)
		CHECK(d->link_table[0]->span_id.data[i] == 0);

	for (size_t i = 0; i < d->n_string_table; i++) {
		for (size_t j = 0; j < i; j++)
			CHECK(strcmp(d->string_table[i], d->string_table[j]) != 0);
	}
	const ProtobufCMessage *const *tables[] = {
		(const ProtobufCMessage *const *)d->mapping_table,
		(const ProtobufCMessage *const *)d->location_table,
		(const ProtobufCMessage *const *)d->function_table,
		(const ProtobufCMessage *const *)d->attribute_table,
		(const ProtobufCMessage *const *)d->stack_table};
	size_t sizes[] = {d->n_mapping_table, d->n_location_table, d->n_function_table,
			  d->n_attribute_table, d->n_stack_table};
	for (size_t t = 0; t < 5; t++) {
		if (sizes[t] > 2000)
			continue; /* quadratic: the checker covers big requests */
		for (size_t i = 0; i < sizes[t]; i++) {
			uint8_t a[4096], b[4096];
			size_t la = protobuf_c_message_get_packed_size(tables[t][i]);

			CHECK(la <= sizeof(a));
			protobuf_c_message_pack(tables[t][i], a);
			for (size_t j = 0; j < i; j++) {
				size_t lb = protobuf_c_message_get_packed_size(tables[t][j]);

				CHECK(lb <= sizeof(b));
				protobuf_c_message_pack(tables[t][j], b);
				CHECK(la != lb || memcmp(a, b, la) != 0);
			}
		}
	}
	for (size_t i = 0; i < d->n_stack_table; i++) {
		for (size_t k = 0; k < d->stack_table[i]->n_location_indices; k++) {
			int32_t l = d->stack_table[i]->location_indices[k];
			CHECK(l > 0 && (size_t)l < d->n_location_table);
		}
	}
	for (size_t i = 0; i < d->n_location_table; i++) {
		const OtlpLocation *l = d->location_table[i];

		CHECK(l->mapping_index >= 0 && (size_t)l->mapping_index < d->n_mapping_table);
		for (size_t k = 0; k < l->n_lines; k++)
			CHECK(l->lines[k]->function_index > 0 &&
			      (size_t)l->lines[k]->function_index < d->n_function_table);
	}
	return 0;
}

/* Sum over the samples of one resource: values, or timestamps counting 1. */
static uint64_t resource_total(const OtlpResourceProfiles *rp, bool *has_ts, bool *has_values)
{
	uint64_t total = 0;

	for (size_t p = 0; p < rp->scope_profiles[0]->n_profiles; p++) {
		const OtlpProfile *pr = rp->scope_profiles[0]->profiles[p];

		for (size_t i = 0; i < pr->n_samples; i++) {
			const OtlpSample *s = pr->samples[i];

			*has_ts |= s->n_timestamps_unix_nano > 0;
			*has_values |= s->n_values > 0;
			total += s->n_timestamps_unix_nano;
			for (size_t k = 0; k < s->n_values; k++)
				total += (uint64_t)s->values[k];
		}
	}
	return total;
}

/* ---- tests ---- */

static int test_structure_timestamps(void)
{
	struct profile p = fixture();
	const struct profile *ps[] = {&p};
	struct otlp_encode_opts o = opts_default(true);
	struct decoded d;

	CHECK(encode_decode(ps, 1, &o, &d) == 0);
	CHECK_EQ_U64(d.n, 1);
	const OtlpRequest *r = d.req[0];
	const OtlpDictionary *dict = r->dictionary;
	CHECK(check_dictionary(r) == 0);

	/* resources: one per process, in order of first appearance */
	CHECK_EQ_U64(r->n_resource_profiles, 3);
	const OtlpResourceProfiles *r100 = res_by_pid(r, 100), *r200 = res_by_pid(r, 200),
				   *r0 = res_by_pid(r, 0);
	CHECK(r100 == r->resource_profiles[0] && r200 == r->resource_profiles[1] &&
	      r0 == r->resource_profiles[2]);
	CHECK_STR(res_str(r100, "process.executable.name"), "app");
	CHECK_STR(res_str(r100, "process.executable.path"), "/usr/bin/app");
	CHECK_STR(res_str(r100, "container.id"), "abc123");
	CHECK_STR(res_str(r100, "host.name"), "host-a");
	CHECK_STR(res_str(r100, "service.name"), "svc");
	CHECK_STR(res_str(r100, "deployment.environment"), "prod");
	CHECK_EQ_U64(r100->resource->n_attributes, 7);
	CHECK_STR(res_str(r200, "process.executable.name"), "proc2"); /* no process entry */
	CHECK(!res_attr(r200, "process.executable.path") && !res_attr(r200, "container.id"));
	CHECK_STR(res_str(r0, "process.executable.name"), "[idle]");
	CHECK(!res_attr(r0, "process.executable.path"));
	for (size_t i = 0; i < r->n_resource_profiles; i++) {
		const OtlpResourceProfiles *rp = r->resource_profiles[i];

		CHECK_STR(rp->schema_url, "https://opentelemetry.io/schemas/1.44.0");
		CHECK_EQ_U64(rp->n_scope_profiles, 1);
		CHECK_STR(rp->scope_profiles[0]->scope->name, "pipeline");
		CHECK_STR(rp->scope_profiles[0]->scope->version, "0.1.0");
		CHECK_EQ_U64(rp->scope_profiles[0]->n_profiles, 1);
		for (size_t a = 0; a < rp->resource->n_attributes; a++) {
			for (size_t b = 0; b < a; b++)
				CHECK(strcmp(rp->resource->attributes[a]->key,
					     rp->resource->attributes[b]->key) != 0);
		}
		/* profile fields */
		const OtlpProfile *pr = rp->scope_profiles[0]->profiles[0];
		CHECK_STR(S(r, pr->sample_type->type_strindex), "samples");
		CHECK_STR(S(r, pr->sample_type->unit_strindex), "count");
		CHECK_STR(S(r, pr->period_type->type_strindex), "cpu");
		CHECK_STR(S(r, pr->period_type->unit_strindex), "nanoseconds");
		CHECK_EQ_U64(pr->period, PERIOD_NS);
		CHECK_EQ_U64(pr->time_unix_nano, T0);
		CHECK_EQ_U64(pr->duration_nano, 10000 * MS);
		/* timestamps-only shape, inside the window, each sample one CPU */
		for (size_t k = 0; k < pr->n_samples; k++) {
			const OtlpSample *s = pr->samples[k];

			CHECK_EQ_U64(s->n_values, 0);
			CHECK(s->n_timestamps_unix_nano > 0);
			CHECK(sample_int(r, s, "cpu.logical_number") >= 0);
			CHECK(sample_int(r, s, "thread.id") >= 0);
			CHECK_EQ_U64(s->link_index, 0);
			for (size_t t = 0; t < s->n_timestamps_unix_nano; t++) {
				CHECK(s->timestamps_unix_nano[t] >= T0 &&
				      s->timestamps_unix_nano[t] < T0 + 10000 * MS);
				if (t)
					CHECK(s->timestamps_unix_nano[t] >=
					      s->timestamps_unix_nano[t - 1]);
			}
		}
	}

	/* process 100: S_WORK split by CPU and merged with S_WORK_DUP */
	bool ts = false, vals = false;
	CHECK_EQ_U64(resource_total(r100, &ts, &vals), 3 + 2 + 1 + 1 + 2);
	CHECK(ts && !vals);
	CHECK_EQ_U64(resource_total(r200, &ts, &vals), 4);
	CHECK_EQ_U64(resource_total(r0, &ts, &vals), 5);
	const OtlpProfile *p100 = r100->scope_profiles[0]->profiles[0];
	CHECK_EQ_U64(p100->n_samples, 5);
	const OtlpSample *w0 = find_sample(r, p100, 101, 0, "work");
	const OtlpSample *w1 = find_sample(r, p100, 101, 1, "work");
	CHECK(w0 && w1 && w0 != w1);
	CHECK_EQ_U64(w0->n_timestamps_unix_nano, 4);
	CHECK_EQ_U64(w0->timestamps_unix_nano[0], T0 + 50 * MS);
	CHECK_EQ_U64(w0->timestamps_unix_nano[1], T0 + 100 * MS);
	CHECK_EQ_U64(w0->timestamps_unix_nano[2], T0 + 250 * MS);
	CHECK_EQ_U64(w0->timestamps_unix_nano[3], T0 + 300 * MS);
	CHECK_EQ_U64(w1->n_timestamps_unix_nano, 1);
	CHECK_EQ_U64(w0->stack_index, w1->stack_index);
	CHECK_STR(sample_str(r, w0, "thread.name"), "worker");
	CHECK_EQ_U64(w0->n_attribute_indices, 3);
	/* same stack and thread, other CPU: same thread attributes, other cpu attribute */
	CHECK(w0->attribute_indices[0] == w1->attribute_indices[0] &&
	      w0->attribute_indices[2] != w1->attribute_indices[2]);
	const OtlpSample *w2 = find_sample(r, p100, 102, 2, "work");
	CHECK(w2 != NULL);
	CHECK_STR(sample_str(r, w2, "thread.name"), "other");
	const OtlpSample *sys = find_sample(r, p100, 101, 1, "do_syscall_64");
	CHECK(sys != NULL && sys->n_timestamps_unix_nano == 2);
	const OtlpSample *empty = find_sample(r, p100, 101, 0, NULL);
	CHECK(empty != NULL && empty->stack_index == 0); /* the empty stack */

	/* stragglers clamped into [T0, T0 + 10 s) */
	const OtlpProfile *p200 = r200->scope_profiles[0]->profiles[0];
	const OtlpSample *a3 = find_sample(r, p200, 200, 3, NULL);
	CHECK(a3 == NULL); /* the anon stack's leaf has no function */
	for (size_t k = 0; k < p200->n_samples; k++) {
		const OtlpSample *s = p200->samples[k];

		if (sample_int(r, s, "cpu.logical_number") == 3) {
			CHECK_EQ_U64(s->n_timestamps_unix_nano, 3);
			CHECK_EQ_U64(s->timestamps_unix_nano[0], T0);
			CHECK_EQ_U64(s->timestamps_unix_nano[1], T0 + 1000 * MS);
			CHECK_EQ_U64(s->timestamps_unix_nano[2], T0 + 10000 * MS - 1);
		}
	}
	CHECK_EQ_U64(r0->scope_profiles[0]->profiles[0]->n_samples, 5); /* idle: 5 CPUs */

	/* dedup: work and work2 share one Function; main and main_dup one Location;
	 * stacks of S_WORK and S_WORK2 share main's location */
	const int32_t *sw = dict->stack_table[w0->stack_index]->location_indices;
	const int32_t *sw2 = dict->stack_table[w2->stack_index]->location_indices;
	CHECK(w0->stack_index != w2->stack_index);
	CHECK(sw[0] != sw2[0] && sw[1] == sw2[1]);
	CHECK_EQ_U64(dict->location_table[sw[0]]->lines[0]->function_index,
		     dict->location_table[sw2[0]]->lines[0]->function_index);
	CHECK_EQ_U64(dict->location_table[sw[0]]->lines[0]->line, 20);
	CHECK_EQ_U64(dict->location_table[sw2[0]]->lines[0]->line, 21);
	size_t n_main = 0, n_work = 0;
	for (size_t i = 1; i < dict->n_function_table; i++) {
		const OtlpFunction *f = dict->function_table[i];

		n_main += !strcmp(S(r, f->name_strindex), "main");
		n_work += !strcmp(S(r, f->name_strindex), "work");
		CHECK_EQ_U64(f->name_strindex, f->system_name_strindex); /* no demangling yet */
	}
	CHECK(n_main == 1 && n_work == 1);
	const OtlpFunction *fmain =
		dict->function_table[dict->location_table[sw[1]]->lines[0]->function_index];
	CHECK_STR(S(r, fmain->filename_strindex), "app.c");
	/* functions: main work do_syscall_64 entry_SYSCALL_64 default_idle */
	CHECK_EQ_U64(dict->n_function_table, 6);
	/* locations: main work work2 k_sys k_entry libc_unk anon k_idle */
	CHECK_EQ_U64(dict->n_location_table, 9);
	/* mappings: app (twice as a module object, once here) and libc; none for
	 * [anon] and the kernel, which have no build id */
	CHECK_EQ_U64(dict->n_mapping_table, 3);

	/* frame types, mappings and build ids */
	const int32_t *ss = dict->stack_table[sys->stack_index]->location_indices;
	CHECK_EQ_U64(dict->stack_table[sys->stack_index]->n_location_indices, 4);
	const char *types[] = {"kernel", "kernel", "native", "native"};
	for (size_t k = 0; k < 4; k++) {
		const OtlpLocation *l = dict->location_table[ss[k]];
		const OtlpKeyValueAndUnit *ft = attr_in(
			r, l->attribute_indices, l->n_attribute_indices, "profile.frame.type");

		CHECK(ft && ft->value->value_case == ANY_STRING);
		CHECK_STR(ft->value->string_value, types[k]);
	}
	const OtlpLocation *lk = dict->location_table[ss[0]];
	CHECK_EQ_U64(lk->mapping_index, 0);
	CHECK_EQ_U64(lk->address, 0xffffffff81000100ULL);
	CHECK_STR(loc_fn(r, ss[0]), "do_syscall_64");
	const OtlpLocation *lu = dict->location_table[ss[2]]; /* libc, unsymbolized */
	CHECK_EQ_U64(lu->n_lines, 0);
	CHECK_EQ_U64(lu->address, 0x2a0f0);
	CHECK(lu->mapping_index > 0);
	const OtlpMapping *mlibc = dict->mapping_table[lu->mapping_index];
	CHECK_STR(S(r, mlibc->filename_strindex), "/usr/lib/x86_64-linux-gnu/libc.so.6");
	CHECK_EQ_U64(mlibc->n_attribute_indices, 1);
	CHECK(!attr_in(r, mlibc->attribute_indices, 1, "process.executable.build_id.gnu"));
	CHECK_STR(attr_in(r, mlibc->attribute_indices, 1, "process.executable.build_id.htlhash")
			  ->value->string_value,
		  "ffeeddccbbaa99887766554433221100");
	const OtlpLocation *lmain = dict->location_table[ss[3]];
	CHECK_EQ_U64(lmain->address, 0x1100);
	const OtlpMapping *mapp = dict->mapping_table[lmain->mapping_index];
	CHECK_STR(S(r, mapp->filename_strindex), "/usr/bin/app");
	CHECK_EQ_U64(mapp->memory_start, 0);
	CHECK_EQ_U64(mapp->memory_limit, UINT64_MAX);
	CHECK_EQ_U64(mapp->file_offset, 0);
	CHECK_EQ_U64(mapp->n_attribute_indices, 2);
	CHECK_STR(attr_in(r, mapp->attribute_indices, 2, "process.executable.build_id.gnu")
			  ->value->string_value,
		  "0a1b2c3d4e5f");
	CHECK_STR(attr_in(r, mapp->attribute_indices, 2, "process.executable.build_id.htlhash")
			  ->value->string_value,
		  "00112233445566778899aabbccddeeff");
	/* [anon]: no build id, so no mapping; unsymbolized, so no lines */
	const OtlpSample *anon = p200->samples[0];
	const OtlpLocation *la =
		dict->location_table[dict->stack_table[anon->stack_index]->location_indices[0]];
	CHECK_EQ_U64(la->mapping_index, 0);
	CHECK_EQ_U64(la->n_lines, 0);
	CHECK_EQ_U64(la->address, 0x7f0000001000ULL);
	/* main through m_app_dup: main's location */
	CHECK_EQ_U64(dict->stack_table[anon->stack_index]->location_indices[1], ss[3]);

	CHECK(check_accepts(d.bufs, d.n) == 0);
	decoded_free(&d);
	return 0;
}

static int test_aggregated(void)
{
	struct profile p = fixture();
	const struct profile *ps[] = {&p};
	struct otlp_encode_opts o = opts_default(false);
	struct decoded d;

	/* opts->timestamps false, then times incomplete: both aggregate */
	for (int round = 0; round < 2; round++) {
		if (round == 1) {
			o.timestamps = true;
			p.times_complete = false;
		}
		CHECK(encode_decode(ps, 1, &o, &d) == 0);
		CHECK_EQ_U64(d.n, 1);
		const OtlpRequest *r = d.req[0];
		CHECK(check_dictionary(r) == 0);
		const OtlpResourceProfiles *r100 = res_by_pid(r, 100);
		const OtlpProfile *p100 = r100->scope_profiles[0]->profiles[0];
		bool ts = false, vals = false;

		CHECK_EQ_U64(resource_total(r100, &ts, &vals), 9);
		CHECK(vals && !ts);
		CHECK_EQ_U64(p100->n_samples, 4); /* work (merged), sys, work2, empty */
		const OtlpSample *w = find_sample(r, p100, 101, -1, "work");
		CHECK(w != NULL);
		CHECK_EQ_U64(w->n_values, 1);
		CHECK_EQ_U64(w->values[0], 5);
		CHECK_EQ_U64(w->n_timestamps_unix_nano, 0);
		CHECK_EQ_U64(w->n_attribute_indices, 2); /* thread.id, thread.name: no CPU */
		const OtlpSample *idle =
			res_by_pid(r, 0)->scope_profiles[0]->profiles[0]->samples[0];
		CHECK_EQ_U64(idle->values[0], 5);
		for (size_t i = 1; i < r->dictionary->n_string_table; i++)
			CHECK(strcmp(r->dictionary->string_table[i], "cpu.logical_number") != 0);
		CHECK(check_accepts(d.bufs, d.n) == 0);
		decoded_free(&d);
	}

	/* a stack whose times are short makes the whole interval aggregated */
	p = fixture();
	o.timestamps = true;
	g_stacks[S_ANON].n_times = 2;
	CHECK(encode_decode(ps, 1, &o, &d) == 0);
	for (size_t i = 0; i < d.req[0]->n_resource_profiles; i++) {
		bool ts = false, vals = false;

		resource_total(d.req[0]->resource_profiles[i], &ts, &vals);
		CHECK(vals && !ts);
	}
	decoded_free(&d);

	/* a zero-length window cannot hold timestamps */
	p = fixture();
	p.duration_ns = 0;
	CHECK(encode_decode(ps, 1, &o, &d) == 0);
	CHECK(d.req[0]->resource_profiles[0]
		      ->scope_profiles[0]
		      ->profiles[0]
		      ->samples[0]
		      ->n_values == 1);
	decoded_free(&d);
	return 0;
}

static int test_resource_attrs_merge(void)
{
	static const struct otlp_attr env[] = {
		{"process.pid", "999"},		  /* ours win for process.* */
		{"process.executable.name", "x"}, /* ours win */
		{"host.name", "override"},	  /* theirs win elsewhere */
		{"container.id", "from-env"},
		{"service.name", "a"},
		{"service.name", "b"}, /* the last of one key wins */
		{"", "no key"},	       /* ignored */
		{"k", NULL},	       /* empty value */
	};
	struct profile p = fixture();
	const struct profile *ps[] = {&p};
	struct otlp_encode_opts o = opts_default(true);
	struct decoded d;

	o.resource_attrs = env;
	o.n_resource_attrs = sizeof(env) / sizeof(env[0]);
	CHECK(encode_decode(ps, 1, &o, &d) == 0);
	const OtlpRequest *r = d.req[0];
	const OtlpResourceProfiles *r100 = res_by_pid(r, 100), *r200 = res_by_pid(r, 200);
	CHECK(r100 && r200);
	CHECK_STR(res_str(r100, "process.executable.name"), "app");
	CHECK_STR(res_str(r100, "host.name"), "override");
	CHECK_STR(res_str(r100, "container.id"), "from-env");
	CHECK_STR(res_str(r100, "service.name"), "b");
	CHECK_STR(res_str(r100, "k"), "");
	CHECK_EQ_U64(r100->resource->n_attributes, 7);
	/* r200 has no container of its own: the env one is added */
	CHECK_STR(res_str(r200, "container.id"), "from-env");
	CHECK_STR(res_str(r200, "host.name"), "override");
	for (size_t i = 0; i < r->n_resource_profiles; i++) {
		const OtlpResourceProfiles *rp = r->resource_profiles[i];

		for (size_t a = 0; a < rp->resource->n_attributes; a++) {
			CHECK(rp->resource->attributes[a]->key[0]);
			for (size_t b = 0; b < a; b++)
				CHECK(strcmp(rp->resource->attributes[a]->key,
					     rp->resource->attributes[b]->key) != 0);
		}
	}
	CHECK(check_accepts(d.bufs, d.n) == 0);
	decoded_free(&d);

	/* no opts at all: no scope name, no agent attributes */
	CHECK(encode_decode(ps, 1, NULL, &d) == 0);
	CHECK_EQ_U64(res_by_pid(d.req[0], 100)->resource->n_attributes, 5);
	CHECK(check_accepts(d.bufs, d.n) == 0);
	decoded_free(&d);
	return 0;
}

/* A pid reused by another executable is another resource. */
static int test_intervals(void)
{
	struct profile p1 = fixture();
	static struct profile_stack s2[3];
	static const struct profile_process procs2[] = {
		{.tgid = 100, .exe_path = "/usr/bin/app", .exe_name = "app"},
		{.tgid = 300, .exe_path = "/usr/bin/new", .exe_name = "new"},
	};
	static const struct profile_sample_time t2a[] = {TS(10500 * MS, 5)};
	static const struct profile_sample_time t2b[] = {TS(11000 * MS, 6), TS(12000 * MS, 6)};

	s2[0] = fixture_stack(100, 101, "worker", "app", 0, 2, st_work, 1);
	set_times(&s2[0], t2a, 1);
	s2[1] = fixture_stack(300, 301, "new", "new", 0, 2, st_work2, 2);
	set_times(&s2[1], t2b, 2);
	s2[2] = fixture_stack(0, 0, "swapper/1", "[idle]", 1, 0, st_idle, 0);
	struct profile p2 = fixture_profile("host-a", T0 + 10000 * MS, 99, s2, 3);
	p2.processes = procs2;
	p2.n_processes = 2;
	p2.times_complete = true;

	const struct profile *ps[] = {&p1, &p2};
	struct otlp_encode_opts o = opts_default(true);
	struct decoded d;

	CHECK(encode_decode(ps, 2, &o, &d) == 0);
	CHECK_EQ_U64(d.n, 1);
	const OtlpRequest *r = d.req[0];
	CHECK(check_dictionary(r) == 0);
	/* 100 lost its container id in interval 2: another resource (identity =
	 * attributes), as is the new process 300 */
	CHECK_EQ_U64(r->n_resource_profiles, 5);
	size_t n100 = 0;
	for (size_t i = 0; i < r->n_resource_profiles; i++) {
		const OtlpResourceProfiles *rp = r->resource_profiles[i];
		const OtlpKeyValue *pid = res_attr(rp, "process.pid");

		if (pid->value->int_value != 100)
			continue;
		n100++;
		const OtlpProfile *pr = rp->scope_profiles[0]->profiles[0];
		CHECK_EQ_U64(rp->scope_profiles[0]->n_profiles, 1);
		if (res_attr(rp, "container.id"))
			CHECK_EQ_U64(pr->time_unix_nano, T0);
		else
			CHECK_EQ_U64(pr->time_unix_nano, T0 + 10000 * MS);
	}
	CHECK_EQ_U64(n100, 2);
	const OtlpResourceProfiles *r300 = res_by_pid(r, 300);
	CHECK(r300 != NULL);
	CHECK_STR(res_str(r300, "process.executable.name"), "new");
	CHECK_EQ_U64(r300->scope_profiles[0]->profiles[0]->samples[0]->n_timestamps_unix_nano, 2);
	CHECK(check_accepts(d.bufs, d.n) == 0);
	decoded_free(&d);

	/* the same process in both intervals: one resource, two profiles, shared stacks */
	const struct profile_process procs3[] = {g_procs[0]};
	p2.processes = procs3;
	p2.n_processes = 1;
	s2[1].tgid = 100;
	CHECK(encode_decode(ps, 2, &o, &d) == 0);
	r = d.req[0];
	CHECK_EQ_U64(r->n_resource_profiles, 3);
	const OtlpResourceProfiles *r100 = res_by_pid(r, 100);
	CHECK_EQ_U64(r100->scope_profiles[0]->n_profiles, 2);
	const OtlpProfile *a = r100->scope_profiles[0]->profiles[0];
	const OtlpProfile *b = r100->scope_profiles[0]->profiles[1];
	CHECK_EQ_U64(a->time_unix_nano, T0);
	CHECK_EQ_U64(b->time_unix_nano, T0 + 10000 * MS);
	CHECK_EQ_U64(b->duration_nano, 10000 * MS);
	const OtlpSample *wa = find_sample(r, a, 101, 0, "work");
	const OtlpSample *wb = find_sample(r, b, 101, 5, "work");
	CHECK(wa && wb);
	CHECK_EQ_U64(wa->stack_index, wb->stack_index); /* one dictionary for both */
	CHECK_EQ_U64(wb->timestamps_unix_nano[0], T0 + 10500 * MS);
	CHECK(check_accepts(d.bufs, d.n) == 0);
	decoded_free(&d);
	return 0;
}

/* ---- many processes, for splitting ---- */

#define SPLIT_PROCS  40
#define SPLIT_FRAMES 8

static struct sym_module g_split_mods[SPLIT_PROCS];
static char g_split_names[SPLIT_PROCS][3][48];
static struct sym_frame g_split_frames[SPLIT_PROCS][SPLIT_FRAMES];
static const struct sym_frame *g_split_stacks[SPLIT_PROCS][2][SPLIT_FRAMES + 1];
static struct profile_stack g_split_st[SPLIT_PROCS * 2];
static struct profile_process g_split_procs[SPLIT_PROCS];
static struct profile_sample_time g_split_times[SPLIT_PROCS * 2][3];

/* SPLIT_PROCS processes with their own binary and frames, two stacks each
 * (each ending in the shared libc frame), counts 1..3. */
static struct profile split_fixture(void)
{
	for (int i = 0; i < SPLIT_PROCS; i++) {
		snprintf(g_split_names[i][0], 48, "/opt/bin/prog%d", i);
		snprintf(g_split_names[i][1], 48, "prog%d", i);
		snprintf(g_split_names[i][2], 48, "%040x", 0xb00 + i);
		g_split_mods[i] = (struct sym_module){.path = g_split_names[i][0],
						      .name = g_split_names[i][1],
						      .build_id = g_split_names[i][2],
						      .htlhash = ""};
		for (int f = 0; f < SPLIT_FRAMES; f++) {
			static char fn[SPLIT_PROCS][SPLIT_FRAMES][32];

			snprintf(fn[i][f], 32, "prog%d_fn%d", i, f);
			g_split_frames[i][f] = (struct sym_frame)FIXTURE_UFRAME(
				&g_split_mods[i], 0x1000 + 16 * f, fn[i][f], "prog.c", f + 1,
				1000 + i * 100 + f);
		}
		for (int s = 0; s < 2; s++) {
			int n = 0;

			g_split_stacks[i][s][n++] = &f_libc_unk;
			for (int f = s; f < SPLIT_FRAMES; f++)
				g_split_stacks[i][s][n++] = &g_split_frames[i][f];
			int k = i * 2 + s;
			uint32_t count = 1 + (uint32_t)(k % 3);
			g_split_st[k] = fixture_stack(1000 + i, 1000 + i, "t", g_split_names[i][1],
						      0, (uint32_t)n, g_split_stacks[i][s], count);
			for (uint32_t c = 0; c < count; c++)
				g_split_times[k][c] = (struct profile_sample_time){
					.ns = T0 + (uint64_t)(k * 10 + c) * MS, .cpu = c};
			set_times(&g_split_st[k], g_split_times[k], count);
		}
		g_split_procs[i] = (struct profile_process){.tgid = 1000 + i,
							    .exe_path = g_split_names[i][0],
							    .exe_name = g_split_names[i][1]};
	}
	struct profile p = fixture_profile("host-a", T0, 99, g_split_st, SPLIT_PROCS * 2);
	p.processes = g_split_procs;
	p.n_processes = SPLIT_PROCS;
	p.times_complete = true;
	return p;
}

static int check_split(size_t max_bytes, bool timestamps, size_t *n_requests)
{
	struct profile p = split_fixture();
	struct profile fx = fixture();
	const struct profile *ps[] = {&p, &fx};
	struct otlp_encode_opts o = opts_default(timestamps);
	uint64_t per_pid[SPLIT_PROCS] = {0};
	size_t seen[SPLIT_PROCS] = {0};
	struct decoded d;

	uint64_t total = 0;

	o.max_request_bytes = max_bytes;
	CHECK(encode_decode(ps, 2, &o, &d) == 0);
	*n_requests = d.n;
	for (size_t q = 0; q < d.n; q++) {
		const OtlpRequest *r = d.req[q];

		for (size_t i = 0; i < r->n_resource_profiles; i++) {
			bool ts = false, vals = false;

			total += resource_total(r->resource_profiles[i], &ts, &vals);
		}

		CHECK(check_dictionary(r) == 0);
		CHECK(r->n_resource_profiles > 0);
		/* within the limit unless a resource alone is bigger */
		if (max_bytes && r->n_resource_profiles > 1)
			CHECK(d.bufs[q].len <= max_bytes);
		for (size_t i = 0; i < r->n_resource_profiles; i++) {
			const OtlpResourceProfiles *rp = r->resource_profiles[i];
			int64_t pid = res_attr(rp, "process.pid")->value->int_value;
			bool ts = false, vals = false;

			if (pid < 1000)
				continue;
			CHECK(pid < 1000 + SPLIT_PROCS);
			seen[pid - 1000]++;
			per_pid[pid - 1000] += resource_total(rp, &ts, &vals);
			CHECK(ts == timestamps && vals == !timestamps);
			/* the stacks reach the process's own frames through this dictionary */
			const OtlpSample *s = rp->scope_profiles[0]->profiles[0]->samples[0];
			const OtlpDictionary *dict = r->dictionary;
			const int32_t *locs = dict->stack_table[s->stack_index]->location_indices;
			char want[32];
			snprintf(want, sizeof(want), "prog%d_fn", (int)(pid - 1000));
			CHECK(!strncmp(loc_fn(r, locs[1]), want, strlen(want)));
			CHECK(dict->location_table[locs[0]]->n_lines == 0); /* libc */
		}
	}
	for (int i = 0; i < SPLIT_PROCS; i++) {
		uint64_t want = 0;

		for (int s = 0; s < 2; s++)
			want += g_split_st[i * 2 + s].count;
		CHECK_EQ_U64(seen[i], 1);
		CHECK_EQ_U64(per_pid[i], want);
	}
	CHECK_EQ_U64(total, p.total_samples + fx.total_samples); /* each sample exactly once */
	CHECK(check_accepts(d.bufs, d.n) == 0);
	decoded_free(&d);
	return 0;
}

static int test_split(void)
{
	size_t n_all, n_small, n_tiny, n_agg;

	CHECK(check_split(0, true, &n_all) == 0);
	CHECK_EQ_U64(n_all, 1);
	CHECK(check_split(1 << 20, true, &n_all) == 0); /* fits: one request */
	CHECK_EQ_U64(n_all, 1);
	CHECK(check_split(3000, true, &n_small) == 0);
	CHECK(check_split(3000, false, &n_agg) == 0);
	CHECK(check_split(100, true, &n_tiny) == 0); /* every resource alone */
	printf("split: 43 resources -> %zu requests at 3000 bytes (%zu aggregated), %zu at 100\n",
	       n_small, n_agg, n_tiny);
	CHECK(n_small > 2 && n_small < SPLIT_PROCS);
	CHECK_EQ_U64(n_tiny, SPLIT_PROCS + 3);
	return 0;
}

static int test_empty_and_errors(void)
{
	struct profile p = fixture();
	const struct profile *ps[] = {&p};
	struct otlp_encode_opts o = opts_default(true);
	struct encoded_buf *bufs = (void *)1;
	size_t n = 99;

	/* nothing to send: no request */
	CHECK_EQ_U64(otlp__encode(NULL, 0, &o, &bufs, &n), 0);
	CHECK(bufs == NULL && n == 0);
	struct profile empty = fixture_profile("h", T0, 99, NULL, 0);
	const struct profile *pe[] = {&empty};
	CHECK_EQ_U64(otlp__encode(pe, 1, &o, &bufs, &n), 0);
	CHECK(bufs == NULL && n == 0);
	struct profile_stack zero = fixture_stack(1, 1, "a", "a", 0, 2, st_work, 0);
	struct profile pz = fixture_profile("h", T0, 99, &zero, 1);
	const struct profile *pzs[] = {&pz};
	CHECK_EQ_U64(otlp__encode(pzs, 1, &o, &bufs, &n), 0);
	CHECK(bufs == NULL && n == 0);

	CHECK_EQ_U64(otlp__encode(ps, 1, &o, NULL, &n), (uint64_t)-EINVAL);
	CHECK_EQ_U64(otlp__encode(ps, 1, &o, &bufs, NULL), (uint64_t)-EINVAL);
	CHECK_EQ_U64(otlp__encode(NULL, 1, &o, &bufs, &n), (uint64_t)-EINVAL);
	const struct profile *pnull[] = {NULL};
	CHECK_EQ_U64(otlp__encode(pnull, 1, &o, &bufs, &n), (uint64_t)-EINVAL);
	p.signal = "heap";
	CHECK_EQ_U64(otlp__encode(ps, 1, &o, &bufs, &n), (uint64_t)-EINVAL);
	p = fixture();
	g_stacks[S_WORK].frames = NULL;
	CHECK_EQ_U64(otlp__encode(ps, 1, &o, &bufs, &n), (uint64_t)-EINVAL);
	p = fixture();
	static const struct sym_frame *const holes[] = {&f_work, NULL};
	g_stacks[S_WORK].frames = holes;
	CHECK_EQ_U64(otlp__encode(ps, 1, &o, &bufs, &n), (uint64_t)-EINVAL);
	p = fixture();
	o.n_resource_attrs = 1;
	o.resource_attrs = NULL;
	CHECK_EQ_U64(otlp__encode(ps, 1, &o, &bufs, &n), (uint64_t)-EINVAL);
	CHECK(bufs == NULL && n == 0);
	return 0;
}

static int test_parse_resource_attrs(void)
{
	struct otlp_attr *a;
	size_t n;

	CHECK_EQ_U64(otlp__parse_resource_attrs("", &a, &n), 0);
	CHECK_EQ_U64(n, 0);
	free(a);
	CHECK_EQ_U64(otlp__parse_resource_attrs(NULL, &a, &n), 0);
	CHECK_EQ_U64(n, 0);
	CHECK_EQ_U64(otlp__parse_resource_attrs("  \t ", &a, &n), 0);
	CHECK_EQ_U64(n, 0);
	free(a);

	CHECK_EQ_U64(otlp__parse_resource_attrs("deployment.environment=prod", &a, &n), 0);
	CHECK_EQ_U64(n, 1);
	CHECK_STR(a[0].key, "deployment.environment");
	CHECK_STR(a[0].value, "prod");
	free(a);

	CHECK_EQ_U64(
		otlp__parse_resource_attrs(
			" k1 = v1 ,k2=a%20b%2Cc%3D,%6Bey%203=%e2%82%AC,empty=, eq=a=b ", &a, &n),
		0);
	CHECK_EQ_U64(n, 5);
	CHECK_STR(a[0].key, "k1");
	CHECK_STR(a[0].value, "v1");
	CHECK_STR(a[1].key, "k2");
	CHECK_STR(a[1].value, "a b,c=");
	CHECK_STR(a[2].key, "key 3");
	CHECK_STR(a[2].value, "\xe2\x82\xac"); /* EUR sign */
	CHECK_STR(a[3].key, "empty");
	CHECK_STR(a[3].value, "");
	CHECK_STR(a[4].key, "eq");
	CHECK_STR(a[4].value, "a=b");
	free(a);

	/* %20 survives trimming; '+' is not a space */
	CHECK_EQ_U64(otlp__parse_resource_attrs("k=%20x%20,p=a+b", &a, &n), 0);
	CHECK_STR(a[0].value, " x ");
	CHECK_STR(a[1].value, "a+b");
	free(a);
	/* duplicates are all returned, in order */
	CHECK_EQ_U64(otlp__parse_resource_attrs("a=1,a=2", &a, &n), 0);
	CHECK(n == 2 && !strcmp(a[1].value, "2"));
	free(a);

	static const char *const bad[] = {
		"novalue", "a=1,novalue", "a=1,",  ",a=1",  "a=1,,b=2", "=v",	     " =v",
		"a=%",	   "a=%4",	  "a=%zz", "a=%00", "%=v",	"a=1, ,b=2",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		a = (void *)1;
		int rc = otlp__parse_resource_attrs(bad[i], &a, &n);

		if (rc != -EINVAL || a != NULL || n != 0) {
			fprintf(stderr, "\"%s\": rc %d, want -EINVAL\n", bad[i], rc);
			return 1;
		}
	}
	CHECK_EQ_U64(otlp__parse_resource_attrs("a=1", NULL, &n), (uint64_t)-EINVAL);
	return 0;
}

/* ---- otlp-check on corrupted requests ---- */

static int expect_rejected(OtlpRequest *r, const char *needle)
{
	size_t len = REQ_SIZE(r);
	struct encoded_buf b = {.data = malloc(len ? len : 1), .len = len};
	char *out = NULL;
	int rc;

	CHECK(b.data != NULL);
	CHECK_EQ_U64(REQ_PACK(r, b.data), len);
	rc = run_check(&b, 1, NULL, &out);
	free(b.data);
	if (rc != 1 || !out || !strstr(out, needle)) {
		fprintf(stderr, "otlp-check rc=%d, want 1 and \"%s\":\n%s\n", rc, needle,
			out ? out : "(no output)");
		free(out);
		return 1;
	}
	free(out);
	return 0;
}

static int test_check_rejects(void)
{
	struct profile p = fixture();
	const struct profile *ps[] = {&p};
	struct otlp_encode_opts o = opts_default(true);
	struct decoded d;

	CHECK(encode_decode(ps, 1, &o, &d) == 0);
	OtlpRequest *r = d.req[0];
	OtlpDictionary *dict = r->dictionary;
	OtlpSample *s0 = r->resource_profiles[0]->scope_profiles[0]->profiles[0]->samples[0];

	/* a table without its zero entry */
	dict->mapping_table++;
	dict->n_mapping_table--;
	CHECK(expect_rejected(r, "mapping_table[0]: zero entry must be Mapping{}") == 0);
	dict->mapping_table--;
	dict->n_mapping_table++;
	dict->string_table++;
	dict->n_string_table--;
	CHECK(expect_rejected(r, "string_table[0]: zero entry must be \"\"") == 0);
	dict->string_table--;
	dict->n_string_table++;
	size_t n_links = dict->n_link_table;
	dict->n_link_table = 0;
	CHECK(expect_rejected(r, "dictionary.link_table: table missing") == 0);
	dict->n_link_table = n_links;

	/* indices out of range */
	int32_t stack = s0->stack_index;
	s0->stack_index = (int32_t)dict->n_stack_table;
	CHECK(expect_rejected(r, "samples[0]: stack_index") == 0);
	s0->stack_index = stack;
	int32_t fi = dict->location_table[1]->lines[0]->function_index;
	dict->location_table[1]->lines[0]->function_index = -1;
	CHECK(expect_rejected(r, "location_table[1]: lines[].function_index -1 out of range") == 0);
	dict->location_table[1]->lines[0]->function_index = fi;

	/* two attributes of one key in one list: thread.id of two threads */
	int32_t other_tid = 0;
	for (size_t i = 1; i < dict->n_attribute_table; i++) {
		const OtlpKeyValueAndUnit *kv = dict->attribute_table[i];

		if (!strcmp(S(r, kv->key_strindex), "thread.id") && kv->value->int_value == 102)
			other_tid = (int32_t)i;
	}
	CHECK(other_tid > 0);
	int32_t saved = s0->attribute_indices[1];
	s0->attribute_indices[1] = other_tid;
	CHECK(expect_rejected(
		      r, "attribute_indices reference two entries with key \"thread.id\"") == 0);
	s0->attribute_indices[1] = saved;

	/* duplicate keys in a resource */
	OtlpKeyValue *kv1 = r->resource_profiles[0]->resource->attributes[1];
	char *key = kv1->key;
	kv1->key = "process.pid";
	CHECK(expect_rejected(r, "key \"process.pid\" appears twice") == 0);
	kv1->key = key;

	/* a duplicate dictionary entry */
	OtlpFunction fsave = *dict->function_table[2];
	dict->function_table[2]->name_strindex = dict->function_table[1]->name_strindex;
	dict->function_table[2]->system_name_strindex =
		dict->function_table[1]->system_name_strindex;
	dict->function_table[2]->filename_strindex = dict->function_table[1]->filename_strindex;
	CHECK(expect_rejected(r, "function_table[2]: duplicate of [1]") == 0);
	*dict->function_table[2] = fsave;

	/* a mapping without a build id */
	size_t n_ai = dict->mapping_table[1]->n_attribute_indices;
	dict->mapping_table[1]->n_attribute_indices = 0;
	CHECK(expect_rejected(r, "mapping without a build id") == 0);
	dict->mapping_table[1]->n_attribute_indices = n_ai;

	/* a frame type outside the list */
	OtlpAnyValue *native = NULL;
	for (size_t i = 1; i < dict->n_attribute_table && !native; i++) {
		OtlpAnyValue *v = dict->attribute_table[i]->value;

		if (v->value_case == ANY_STRING && !strcmp(v->string_value, "native"))
			native = v;
	}
	CHECK(native != NULL);
	char *nv = native->string_value;
	native->string_value = "python";
	CHECK(expect_rejected(r, "profile.frame.type \"python\"") == 0);
	native->string_value = nv;

	/* a sample with neither values nor timestamps, and mixed shapes */
	size_t nts = s0->n_timestamps_unix_nano;
	s0->n_timestamps_unix_nano = 0;
	CHECK(expect_rejected(r, "sample without values or timestamps") == 0);
	s0->n_timestamps_unix_nano = nts;
	int64_t one = 1;
	s0->values = &one;
	s0->n_values = 1;
	CHECK(expect_rejected(r, "values but") == 0);
	s0->values = NULL;
	s0->n_values = 0;

	/* restored: accepted again */
	CHECK(check_accepts(d.bufs, d.n) == 0);
	decoded_free(&d);

	/* not a request at all */
	struct encoded_buf junk = {.data = (uint8_t *)"\xff\xff\xff\xff", .len = 4};
	char *out = NULL;
	CHECK_EQ_U64(run_check(&junk, 1, NULL, &out), 1);
	CHECK(out && strstr(out, "not a decodable"));
	free(out);
	return 0;
}

static int test_check_reference_sample(void)
{
	int rc = need_reference(false);
	char path[4300], *out = NULL;

	if (rc)
		return rc;
	snprintf(path, sizeof(path), "%s/samples/otlp-export-request.binpb", g_ref_dir);
	rc = run_check(NULL, 0, path, &out);
	if (rc != 0)
		fprintf(stderr, "%s\n", out ? out : "(no output)");
	CHECK_EQ_U64(rc, 0);
	CHECK(out && strstr(out, ": ok: 0 violations"));
	free(out);
	snprintf(path, sizeof(path), "%s/samples/otlp-export-request.binpb.gz", g_ref_dir);
	CHECK_EQ_U64(run_check(NULL, 0, path, &out), 0);
	free(out);
	return 0;
}

static int test_protoc_decode(void)
{
	int rc = need_reference(true);
	if (rc)
		return rc;

	struct profile p = fixture();
	const struct profile *ps[] = {&p};
	struct otlp_encode_opts o = opts_default(true);
	struct encoded_buf *bufs;
	size_t n;
	char bin[4300], txt[4300], cmd[16384];

	CHECK_EQ_U64(otlp__encode(ps, 1, &o, &bufs, &n), 0);
	CHECK_EQ_U64(n, 1);
	CHECK(make_tmp_dir() == 0);
	snprintf(bin, sizeof(bin), "%s/protoc-in.binpb", g_tmp_dir);
	snprintf(txt, sizeof(txt), "%s/protoc-out.txt", g_tmp_dir);
	CHECK(write_file(bin, bufs[0].data, bufs[0].len) == 0);
	free(bufs[0].data);
	free(bufs);
	snprintf(cmd, sizeof(cmd), "'%s' --decode=%s -I '%s/proto' %s < '%s' > '%s'",
		 PIPELINE_PROTOC, OTLP_MSG, g_ref_dir, OTLP_PROTO, bin, txt);
	CHECK_EQ_U64(system(cmd), 0);
	char *t = read_text(txt);
	CHECK(t != NULL);
	/* a line starting with a number is a field the official schema does not know */
	for (const char *line = t; *line;) {
		const char *q = line;

		while (*q == ' ')
			q++;
		CHECK(!(*q >= '0' && *q <= '9'));
		const char *nl = strchr(line, '\n');
		if (!nl)
			break;
		line = nl + 1;
	}
	static const char *const needles[] = {
		"mapping_table {\n  }",
		"location_table {\n  }",
		"function_table {\n  }",
		"attribute_table {\n  }",
		"stack_table {\n  }",
		"string_table: \"\"\n",
		"link_table {\n    trace_id: \"\\000\\000",
		"key: \"process.pid\"",
		"int_value: 100\n",
		"string_value: \"/usr/bin/app\"",
		"name: \"pipeline\"",
		"schema_url: \"https://opentelemetry.io/schemas/1.44.0\"",
		"timestamps_unix_nano: 1767225600050000000\n",
		"time_unix_nano: 1767225600000000000\n",
		"duration_nano: 10000000000",
		"period: 10101010",
		"string_table: \"process.executable.build_id.gnu\"",
		"string_table: \"profile.frame.type\"",
		"string_value: \"kernel\"",
		"string_table: \"cpu.logical_number\"",
		"memory_limit: 18446744073709551615",
	};
	for (size_t i = 0; i < sizeof(needles) / sizeof(needles[0]); i++) {
		if (!strstr(t, needles[i])) {
			fprintf(stderr, "decoded text lacks \"%s\"\n", needles[i]);
			free(t);
			return 1;
		}
	}
	free(t);
	return 0;
}

/* ---- performance: a 10 s interval with 20,000 distinct stacks ---- */

#define PERF_STACKS  20000
#define PERF_MODULES 60
#define PERF_FRAMES  6000
#define PERF_KFRAMES 400
#define PERF_PROCS   300
#define PERF_CPUS    64

static uint64_t rng_next(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

struct perf_data {
	struct sym_module mods[PERF_MODULES];
	char mod_strs[PERF_MODULES][3][48];
	struct sym_frame frames[PERF_FRAMES + PERF_KFRAMES];
	char names[PERF_FRAMES + PERF_KFRAMES][32];
	const struct sym_frame **stack_frames;
	struct profile_stack *stacks;
	struct profile_sample_time *times;
	struct profile_process procs[PERF_PROCS];
	char proc_strs[PERF_PROCS][2][32];
	size_t n_frames_total, n_times;
};

/* Frames drawn with a skew (low indices are hot, like libc and main loops):
 * stacks share prefixes and many frames, as real ones do. */
static int perf_build(struct perf_data *pd, struct profile *p)
{
	uint64_t rng = 0x9e3779b97f4a7c15ULL;

	for (int m = 0; m < PERF_MODULES; m++) {
		snprintf(pd->mod_strs[m][0], 48, "/usr/lib/libperf%d.so", m);
		snprintf(pd->mod_strs[m][1], 48, "libperf%d.so", m);
		snprintf(pd->mod_strs[m][2], 48, "%040" PRIx64, rng_next(&rng));
		pd->mods[m] = (struct sym_module){.path = pd->mod_strs[m][0],
						  .name = pd->mod_strs[m][1],
						  .build_id = m % 4 ? pd->mod_strs[m][2] : "",
						  .htlhash = pd->mod_strs[m][2]};
	}
	for (int f = 0; f < PERF_FRAMES + PERF_KFRAMES; f++) {
		bool kernel = f >= PERF_FRAMES;
		bool symbolized = kernel || f % 5 != 0;

		snprintf(pd->names[f], 32, "%s_%d", kernel ? "kfn" : "fn", f);
		if (kernel)
			pd->frames[f] = (struct sym_frame)FIXTURE_KFRAME(
				0xffffffff81000000ULL + 64 * f, pd->names[f], 1 + f);
		else
			pd->frames[f] = (struct sym_frame)FIXTURE_UFRAME(
				&pd->mods[f % PERF_MODULES], 0x1000 + 32 * f,
				symbolized ? pd->names[f] : NULL, symbolized ? "src.c" : NULL,
				symbolized ? f % 900 + 1 : 0, 1 + f);
	}
	for (int i = 0; i < PERF_PROCS; i++) {
		snprintf(pd->proc_strs[i][0], 32, "/usr/bin/svc%d", i);
		snprintf(pd->proc_strs[i][1], 32, "svc%d", i);
		pd->procs[i] = (struct profile_process){.tgid = 10000 + i,
							.exe_path = pd->proc_strs[i][0],
							.exe_name = pd->proc_strs[i][1],
							.container_id = i % 3 ? NULL : "c0ffee"};
	}
	pd->stack_frames = calloc((size_t)PERF_STACKS * 32, sizeof(*pd->stack_frames));
	pd->stacks = calloc(PERF_STACKS, sizeof(*pd->stacks));
	pd->times = calloc((size_t)PERF_STACKS * 8, sizeof(*pd->times));
	CHECK(pd->stack_frames && pd->stacks && pd->times);
	for (int s = 0; s < PERF_STACKS; s++) {
		const struct sym_frame **fr = pd->stack_frames + (size_t)s * 32;
		uint32_t n_user = 20 + (uint32_t)(rng_next(&rng) % 8);
		uint32_t n_kernel =
			rng_next(&rng) % 3 == 0 ? 1 + (uint32_t)(rng_next(&rng) % 3) : 0;
		uint32_t proc = (uint32_t)(rng_next(&rng) % PERF_PROCS);
		uint32_t root = (uint32_t)(rng_next(&rng) % 50); /* 50 common call chains */

		for (uint32_t k = 0; k < n_kernel; k++)
			fr[k] = &pd->frames[PERF_FRAMES + rng_next(&rng) % PERF_KFRAMES];
		for (uint32_t u = 0; u < n_user; u++) {
			size_t depth_from_root = n_user - 1 - u, f;

			if (depth_from_root < 10) /* shared outer frames */
				f = (root * 10 + depth_from_root) % PERF_FRAMES;
			else /* skewed towards hot frames */
				f = (size_t)((rng_next(&rng) % PERF_FRAMES) *
					     (rng_next(&rng) % PERF_FRAMES) / PERF_FRAMES);
			fr[n_kernel + u] = &pd->frames[f];
		}
		uint32_t count = 1 + (uint32_t)(rng_next(&rng) % 8);
		struct profile_sample_time *t = pd->times + pd->n_times;
		for (uint32_t c = 0; c < count; c++)
			t[c] = (struct profile_sample_time){
				.ns = T0 + rng_next(&rng) % (10000 * MS),
				.cpu = (uint32_t)(rng_next(&rng) % PERF_CPUS)};
		pd->n_times += count;
		char comm[16];
		snprintf(comm, sizeof(comm), "w%u", (unsigned)(rng_next(&rng) % 8));
		pd->stacks[s] =
			fixture_stack(10000 + proc, 20000 + proc * 8 + (comm[1] - '0'), comm,
				      pd->proc_strs[proc][1], n_kernel, n_user, fr, count);
		set_times(&pd->stacks[s], t, count);
		pd->n_frames_total += n_kernel + n_user;
	}
	*p = fixture_profile("host-perf", T0, 99, pd->stacks, PERF_STACKS);
	p->processes = pd->procs;
	p->n_processes = PERF_PROCS;
	p->times_complete = true;
	return 0;
}

static int perf_run(const struct profile *p, struct otlp_encode_opts *o, const char *what,
		    bool validate)
{
	const struct profile *ps[] = {p};
	double best = 1e9, first = 0;
	struct encoded_buf *bufs = NULL;
	size_t n = 0, bytes = 0;

	for (int round = 0; round < 5; round++) {
		double t0 = now_ms();
		int err = otlp__encode(ps, 1, o, &bufs, &n);
		double ms = now_ms() - t0;

		CHECK_EQ_U64(err, 0);
		if (!round)
			first = ms;
		best = ms < best ? ms : best;
		bytes = 0;
		for (size_t i = 0; i < n; i++)
			bytes += bufs[i].len;
		if (round == 4 && validate) {
			CHECK(check_accepts(bufs, n) == 0);
			for (size_t i = 0; i < n; i++) {
				OtlpRequest *r = REQ_UNPACK(bufs[i].len, bufs[i].data);

				CHECK(r != NULL);
				CHECK(check_repacks(r, &bufs[i]) == 0);
				REQ_FREE(r);
			}
		}
		for (size_t i = 0; i < n; i++)
			free(bufs[i].data);
		free(bufs);
	}
	printf("perf: %-34s %zu request(s), %zu bytes: best of 5 %.1f ms (first %.1f ms)\n", what,
	       n, bytes, best, first);
	CHECK(best < 500.0); /* a sanity bound, loose enough for sanitizers */
	return 0;
}

static int test_perf_20k_stacks(void)
{
	struct perf_data *pd = calloc(1, sizeof(*pd));
	struct profile p;

	CHECK(pd != NULL);
	CHECK(perf_build(pd, &p) == 0);
	printf("perf: %d stacks, %zu frames, %zu samples, %d processes, %d CPUs\n", PERF_STACKS,
	       pd->n_frames_total, pd->n_times, PERF_PROCS, PERF_CPUS);
	struct otlp_encode_opts o = opts_default(true);
	CHECK(perf_run(&p, &o, "timestamps, one request", true) == 0);
	o.timestamps = false;
	CHECK(perf_run(&p, &o, "aggregated, one request", false) == 0);
	o.timestamps = true;
	o.max_request_bytes = 4u << 20;
	CHECK(perf_run(&p, &o, "timestamps, max 4 MiB", false) == 0);
	o.max_request_bytes = 1u << 20;
	CHECK(perf_run(&p, &o, "timestamps, max 1 MiB", true) == 0);
	free(pd->stack_frames);
	free(pd->stacks);
	free(pd->times);
	free(pd);
	return 0;
}

/* ---- the encoder context (struct otlp_encoder) ---- */

struct bufs {
	struct encoded_buf *b;
	size_t n;
};

static void bufs_free(struct bufs *x)
{
	for (size_t i = 0; i < x->n; i++)
		free(x->b[i].data);
	free(x->b);
	x->b = NULL;
	x->n = 0;
}

static int bufs_same(const struct bufs *a, const struct bufs *b)
{
	CHECK_EQ_U64(a->n, b->n);
	for (size_t i = 0; i < a->n; i++) {
		CHECK_EQ_U64(a->b[i].len, b->b[i].len);
		CHECK(memcmp(a->b[i].data, b->b[i].data, a->b[i].len) == 0);
	}
	return 0;
}

/* Encodes ps on enc and with a fresh otlp__encode(): the same bytes, which
 * otlp-check accepts when check. */
static int check_same_as_fresh(struct otlp_encoder *enc, const struct profile *const *ps, size_t n,
			       const struct otlp_encode_opts *o, bool check)
{
	struct bufs fresh = {0}, reused = {0};

	CHECK_EQ_U64(otlp__encode(ps, n, o, &fresh.b, &fresh.n), 0);
	CHECK_EQ_U64(otlp_encoder__encode(enc, ps, n, o, &reused.b, &reused.n), 0);
	CHECK(bufs_same(&fresh, &reused) == 0);
	if (check && reused.n)
		CHECK(check_accepts(reused.b, reused.n) == 0);
	bufs_free(&fresh);
	bufs_free(&reused);
	return 0;
}

struct ctx_call {
	const struct profile *const *ps;
	size_t n;
	const struct otlp_encode_opts *o;
	bool check;
};

/* The location of address addr in r's dictionary, or NULL. */
static const OtlpLocation *loc_by_addr(const OtlpRequest *r, uint64_t addr)
{
	for (size_t i = 1; i < r->dictionary->n_location_table; i++) {
		if (r->dictionary->location_table[i]->address == addr)
			return r->dictionary->location_table[i];
	}
	return NULL;
}

/* Line k of l is function name (system name sys) of file, at line. */
static int check_otlp_line(const OtlpRequest *r, const OtlpLocation *l, size_t k, const char *name,
			   const char *sys, const char *file, int64_t line)
{
	CHECK(k < l->n_lines);
	int32_t fi = l->lines[k]->function_index;
	CHECK(fi > 0 && (size_t)fi < r->dictionary->n_function_table);
	const OtlpFunction *fn = r->dictionary->function_table[fi];
	CHECK_STR(S(r, fn->name_strindex), name);
	CHECK_STR(S(r, fn->system_name_strindex), sys);
	CHECK_STR(S(r, fn->filename_strindex), file);
	CHECK_EQ_U64(l->lines[k]->line, line);
	return 0;
}

static int test_inlined(void)
{
	struct profile ip = inline_profile(), p = fixture(), sp = split_fixture();
	const struct profile *ps[] = {&ip};
	struct otlp_encode_opts o = opts_default(false);
	struct decoded d;

	CHECK(encode_decode(ps, 1, &o, &d) == 0);
	CHECK_EQ_U64(d.n, 1);
	const OtlpRequest *r = d.req[0];
	CHECK(check_dictionary(r) == 0);
	CHECK(check_accepts(d.bufs, d.n) == 0);

	const OtlpLocation *run = loc_by_addr(r, inline_f_run.address);
	const OtlpLocation *run2 = loc_by_addr(r, inline_f_run2.address);
	const OtlpLocation *plain = loc_by_addr(r, inline_f_plain.address);
	CHECK(run && run2 && plain);
	/* several Lines per Location, innermost first, then the frame's function */
	CHECK_EQ_U64(run->n_lines, 3);
	CHECK(check_otlp_line(r, run, 0, "app::hash<int>(int)", "_ZN3app4hashIiEEiT_", "hash.h",
			      7) == 0);
	CHECK(check_otlp_line(r, run, 1, "app::Table::lookup(int) const", "_ZNK3app5Table6lookupEi",
			      "table.h", 15) == 0);
	CHECK(check_otlp_line(r, run, 2, "app::Server::run()", "_ZN3app6Server3runEv", "server.cc",
			      42) == 0);
	CHECK_EQ_U64(run2->n_lines, 2);
	CHECK(check_otlp_line(r, run2, 0, "app::Table::lookup(int) const",
			      "_ZNK3app5Table6lookupEi", "table.h", 16) == 0);
	CHECK(check_otlp_line(r, run2, 1, "app::Server::run()", "_ZN3app6Server3runEv", "server.cc",
			      44) == 0);
	CHECK_EQ_U64(plain->n_lines, 1);
	CHECK(check_otlp_line(r, plain, 0, "app::hash<int>(int)", "app::hash<int>(int)", "hash.h",
			      9) == 0);
	/* one Function per (name, system_name, filename) */
	CHECK_EQ_U64(run2->lines[0]->function_index, run->lines[1]->function_index);
	CHECK_EQ_U64(run2->lines[1]->function_index, run->lines[2]->function_index);
	CHECK(plain->lines[0]->function_index != run->lines[0]->function_index);
	/* main, run, hash (mangled), lookup, hash (plain), ksys_read + the zero entry */
	CHECK_EQ_U64(r->dictionary->n_function_table, 7);
	decoded_free(&d);

	/* The context caches each frame's location with its inlined Lines: call
	 * after call, mixed with frames without inlined calls, split or not,
	 * its bytes are a fresh encode's. */
	struct otlp_encoder *enc = otlp_encoder__new(NULL);
	struct otlp_encode_opts ts = opts_default(true), split = opts_default(true);
	split.max_request_bytes = 3000;
	const struct profile *one[] = {&ip}, *mixed[] = {&p, &ip}, *three[] = {&sp, &ip, &p};
	const struct ctx_call seq[] = {
		{one, 1, &o, true},	  {mixed, 2, &ts, true}, {one, 1, &ts, true},
		{three, 3, &split, true}, {one, 1, &o, true},	 {mixed, 2, &split, true},
	};
	CHECK(enc != NULL);
	for (size_t i = 0; i < sizeof(seq) / sizeof(seq[0]); i++) {
		if (check_same_as_fresh(enc, seq[i].ps, seq[i].n, seq[i].o, seq[i].check)) {
			fprintf(stderr, "context call %zu\n", i);
			return 1;
		}
	}
	otlp_encoder__free(enc);
	return 0;
}

static int test_context_reuse(void)
{
	struct perf_data *pd = calloc(1, sizeof(*pd));
	struct otlp_encoder *enc = otlp_encoder__new(NULL);
	struct profile big, p = fixture(), sp = split_fixture();
	struct otlp_encoder_stats stats;
	struct bufs b = {0};

	CHECK(pd != NULL && enc != NULL);
	CHECK(perf_build(pd, &big) == 0);
	struct otlp_encode_opts ts = opts_default(true), agg = opts_default(false);
	struct otlp_encode_opts split = opts_default(true);
	split.max_request_bytes = 3000;
	const struct profile *one[] = {&p}, *two[] = {&p, &sp}, *rev[] = {&sp, &p};
	const struct profile *bigs[] = {&big}, *all[] = {&sp, &big, &p};
	/* Each call's dictionary holds only what it uses, numbered as a fresh
	 * encode numbers it, whatever earlier calls left in the cache: the
	 * small fixture after the big interval, a split, both shapes. */
	const struct ctx_call seq[] = {
		{one, 1, &ts, true},	 {bigs, 1, &ts, false},	 {one, 1, &ts, true},
		{two, 2, &split, true},	 {bigs, 1, &agg, false}, {rev, 2, &agg, true},
		{all, 3, &split, false}, {bigs, 1, &ts, false},	 {one, 1, &agg, true},
		{NULL, 0, &ts, false},
	};
	size_t n_seq = sizeof(seq) / sizeof(seq[0]);

	for (size_t i = 0; i < n_seq; i++) {
		if (check_same_as_fresh(enc, seq[i].ps, seq[i].n, seq[i].o, seq[i].check)) {
			fprintf(stderr, "context call %zu\n", i);
			return 1;
		}
	}
	otlp_encoder__stats(enc, &stats);
	printf("context: %" PRIu64 " encodes, %zu frames cached in %zu KiB, %zu KiB of working "
	       "memory kept\n",
	       stats.encodes, stats.cache_frames, stats.cache_bytes >> 10, stats.work_bytes >> 10);
	CHECK_EQ_U64(stats.encodes, n_seq);
	CHECK_EQ_U64(stats.cache_clears, 0);
	CHECK(stats.cache_frames > PERF_FRAMES / 2);
	CHECK(stats.cache_frames <= PERF_FRAMES + PERF_KFRAMES + SPLIT_PROCS * SPLIT_FRAMES + 20);
	CHECK(stats.cache_bytes > 0 && stats.cache_bytes < (32u << 20));
	CHECK(stats.work_bytes > 0);

	/* errors: nothing out, the context still usable and right */
	CHECK_EQ_U64(otlp_encoder__encode(NULL, one, 1, &ts, &b.b, &b.n), (uint64_t)-EINVAL);
	CHECK_EQ_U64(otlp_encoder__encode(enc, one, 1, &ts, NULL, &b.n), (uint64_t)-EINVAL);
	static const struct sym_frame *const holes[] = {&f_work, NULL};
	g_stacks[S_WORK].frames = holes;
	CHECK_EQ_U64(otlp_encoder__encode(enc, two, 2, &ts, &b.b, &b.n), (uint64_t)-EINVAL);
	CHECK(b.b == NULL && b.n == 0);
	p = fixture();
	CHECK(check_same_as_fresh(enc, two, 2, &split, true) == 0);
	otlp_encoder__stats(enc, &stats);
	CHECK_EQ_U64(stats.encodes, n_seq + 1);

	otlp_encoder__free(enc);
	otlp_encoder__free(NULL);
	free(pd->stack_frames);
	free(pd->stacks);
	free(pd->times);
	free(pd);
	return 0;
}

static int test_context_bound(void)
{
	struct perf_data *pd = calloc(1, sizeof(*pd));
	struct profile big, p = fixture(), sp = split_fixture();
	struct otlp_encoder_stats stats;
	struct otlp_encode_opts o = opts_default(true);
	const struct profile *one[] = {&p}, *two[] = {&p, &sp}, *bigs[] = {&big};

	CHECK(pd != NULL);
	CHECK(perf_build(pd, &big) == 0);

	/* a bound nothing fits under: emptied before every call but the first */
	struct otlp_encoder_opts tiny = {.max_cache_bytes = 1};
	struct otlp_encoder *enc = otlp_encoder__new(&tiny);
	CHECK(enc != NULL);
	for (int i = 0; i < 4; i++)
		CHECK(check_same_as_fresh(enc, i % 2 ? two : one, i % 2 ? 2 : 1, &o, i < 2) == 0);
	otlp_encoder__stats(enc, &stats);
	CHECK_EQ_U64(stats.encodes, 4);
	CHECK_EQ_U64(stats.cache_clears, 3);
	otlp_encoder__free(enc);

	/* what the small fixture leaves in a cache */
	enc = otlp_encoder__new(NULL);
	CHECK(enc != NULL);
	CHECK(check_same_as_fresh(enc, one, 1, &o, false) == 0);
	otlp_encoder__stats(enc, &stats);
	size_t small = stats.cache_bytes;
	otlp_encoder__free(enc);

	/* a bound above that: the big interval takes the cache over it (within
	 * a call nothing is dropped), the next call empties it first, and what
	 * is left is under the bound again */
	struct otlp_encoder_opts bound = {.max_cache_bytes = 2 * small};
	enc = otlp_encoder__new(&bound);
	CHECK(enc != NULL);
	CHECK(check_same_as_fresh(enc, one, 1, &o, false) == 0);
	CHECK(check_same_as_fresh(enc, one, 1, &o, false) == 0);
	otlp_encoder__stats(enc, &stats);
	CHECK_EQ_U64(stats.cache_clears, 0);
	CHECK(check_same_as_fresh(enc, bigs, 1, &o, false) == 0);
	otlp_encoder__stats(enc, &stats);
	CHECK_EQ_U64(stats.cache_clears, 0);
	CHECK(stats.cache_bytes > bound.max_cache_bytes);
	size_t frames_big = stats.cache_frames, bytes_big = stats.cache_bytes;
	CHECK(check_same_as_fresh(enc, one, 1, &o, true) == 0);
	otlp_encoder__stats(enc, &stats);
	printf("bound: %zu KiB; %zu KiB, %zu frames after the big interval; %zu KiB, %zu frames "
	       "after the next call\n",
	       bound.max_cache_bytes >> 10, bytes_big >> 10, frames_big, stats.cache_bytes >> 10,
	       stats.cache_frames);
	CHECK_EQ_U64(stats.cache_clears, 1);
	CHECK(stats.cache_bytes <= bound.max_cache_bytes);
	CHECK(stats.cache_frames < frames_big);
	otlp_encoder__free(enc);

	free(pd->stack_frames);
	free(pd->stacks);
	free(pd->times);
	free(pd);
	return 0;
}

/* Every allocation of a call on a warm context failed in turn. */
static int test_context_oom(void)
{
	struct profile p = fixture();
	struct profile sp = split_fixture();
	struct profile ip = inline_profile(); /* frames with inlined calls */
	const struct profile *one[] = {&p}, *two[] = {&p, &sp, &ip};
	long k, fails = 0;

	for (int variant = 0; variant < 2; variant++) {
		struct otlp_encode_opts o = opts_default(variant == 0);

		if (variant == 0)
			o.max_request_bytes = 3000; /* the split path */
		for (k = 0;; k++) {
			long live = g_live;
			struct otlp_encoder *enc = otlp_encoder__new(NULL);
			struct bufs b = {0};

			CHECK(enc != NULL);
			/* warm with the fixture: the split fixture's frames are new */
			CHECK_EQ_U64(otlp_encoder__encode(enc, one, 1, &o, &b.b, &b.n), 0);
			bufs_free(&b);
			g_injected = false;
			g_fail_after = k;
			int err = otlp_encoder__encode(enc, two, 3, &o, &b.b, &b.n);
			g_fail_after = -1;
			if (!g_injected) {
				CHECK_EQ_U64(err, 0);
				bufs_free(&b);
				otlp_encoder__free(enc);
				CHECK_EQ_U64(g_live, live);
				break;
			}
			if (err != -ENOMEM || b.b || b.n) {
				fprintf(stderr, "variant %d, failing allocation %ld: err %d\n",
					variant, k, err);
				return 1;
			}
			/* the context survives a failed call and stays right */
			CHECK(check_same_as_fresh(enc, two, 3, &o, false) == 0);
			otlp_encoder__free(enc);
			CHECK_EQ_U64(g_live, live); /* nothing leaked once it is freed */
			fails++;
		}
	}
	printf("context oom: %ld injected allocation failures, all -ENOMEM, context still right\n",
	       fails);

	g_fail_after = 0;
	errno = 0;
	CHECK(otlp_encoder__new(NULL) == NULL);
	g_fail_after = -1;
	CHECK_EQ_U64(errno, ENOMEM);
	return 0;
}

/* ---- allocation failures ---- */

static int test_oom(void)
{
	struct profile p = fixture();
	struct profile sp = split_fixture();
	struct profile ip = inline_profile(); /* frames with inlined calls */
	const struct profile *ps[] = {&p, &sp, &ip};
	long k, fails = 0;

	for (int variant = 0; variant < 3; variant++) {
		struct otlp_encode_opts o = opts_default(variant != 1);

		if (variant == 2)
			o.max_request_bytes = 3000; /* the split path */
		for (k = 0;; k++) {
			struct encoded_buf *bufs = NULL;
			size_t n = 0;
			long live = g_live;

			g_injected = false;
			g_fail_after = k;
			int err = otlp__encode(ps, 3, &o, &bufs, &n);
			g_fail_after = -1;
			if (!g_injected) {
				CHECK_EQ_U64(err, 0);
				CHECK(n > 0);
				for (size_t i = 0; i < n; i++)
					free(bufs[i].data);
				free(bufs);
				CHECK_EQ_U64(g_live, live);
				break;
			}
			if (err != -ENOMEM || bufs || n) {
				fprintf(stderr, "variant %d, failing allocation %ld: err %d\n",
					variant, k, err);
				return 1;
			}
			CHECK_EQ_U64(g_live, live); /* nothing leaked on the error path */
			fails++;
		}
	}
	printf("oom: %ld injected allocation failures, all -ENOMEM without leaks\n", fails);

	struct otlp_attr *a;
	size_t n;
	g_fail_after = 0;
	CHECK_EQ_U64(otlp__parse_resource_attrs("a=b", &a, &n), (uint64_t)-ENOMEM);
	g_fail_after = -1;
	return 0;
}

static const struct test_case cases[] = {
	{"structure_timestamps", test_structure_timestamps},
	{"aggregated", test_aggregated},
	{"inlined", test_inlined},
	{"resource_attrs_merge", test_resource_attrs_merge},
	{"intervals", test_intervals},
	{"split", test_split},
	{"empty_and_errors", test_empty_and_errors},
	{"parse_resource_attrs", test_parse_resource_attrs},
	{"check_rejects", test_check_rejects},
	{"check_reference_sample", test_check_reference_sample},
	{"protoc_decode", test_protoc_decode},
	{"perf_20k_stacks", test_perf_20k_stacks},
	{"oom", test_oom},
	{"context_reuse", test_context_reuse},
	{"context_bound", test_context_bound},
	{"context_oom", test_context_oom},
};

int main(int argc, char **argv)
{
	int rc = test_run_all(cases, sizeof(cases) / sizeof(cases[0]), argc, argv);

	remove_tmp_dir();
	return rc;
}
