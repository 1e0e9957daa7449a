/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Wire compatibility of the project's own .proto files (encoder/proto/) with
 * the pinned upstream schemas (shared/reference/proto, outside this repo).
 *
 * The build generates C only from our own files, so a wrong field number or
 * type would go unnoticed by every other test: both ends would agree with
 * each other and disagree with the world. Here the other end is the official
 * schema, read by `protoc`:
 *
 * - bytes our code writes (pprof__encode's output, and an OTLP
 *   ExportProfilesServiceRequest built with the generated code) are decoded
 *   with `protoc --decode` against the official files; protoc must succeed,
 *   the text must name the expected fields and values, and no field may come
 *   out as a bare number (a field the official schema does not know);
 * - the official text samples are encoded with `protoc --encode` against the
 *   official files, unpacked with our generated code, checked field by field,
 *   and packed again: the bytes must be identical, which holds only if every
 *   field was known to our schema with the same number and type.
 *
 * The official files are found at $PIPELINE_SOURCE_DIR/../shared/reference.
 * Without them (or without protoc) the test fails when CI is set, and is
 * skipped (77) otherwise.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <zlib.h>

#include "encoder.h"
#include "otlp_types.h"
#include "perftools/profiles/profile.pb-c.h"
#include "profile_fixture.h"
#include "test_helpers.h"

#ifndef PIPELINE_PROTOC
#define PIPELINE_PROTOC "protoc"
#endif
#ifndef PIPELINE_SOURCE_DIR_DEFAULT
#define PIPELINE_SOURCE_DIR_DEFAULT "."
#endif

#define OTLP_PROTO  "opentelemetry/proto/collector/profiles/v1development/profiles_service.proto"
#define OTLP_MSG    "opentelemetry.proto.collector.profiles.v1development.ExportProfilesServiceRequest"
#define PPROF_PROTO "perftools/profiles/profile.proto"
#define PPROF_MSG   "perftools.profiles.Profile"

static char g_ref_dir[4096]; /* .../shared/reference */
static char g_tmp_dir[4096];

/* 0 when the official files and protoc are usable; otherwise what the test
 * returns: a failure under CI, a skip elsewhere. */
static int check_reference(void)
{
	const char *ci = getenv("CI");
	bool under_ci = ci && ci[0];
	const char *src = getenv("PIPELINE_SOURCE_DIR");
	char probe[4200];
	struct stat sb;

	if (!src || !src[0])
		src = PIPELINE_SOURCE_DIR_DEFAULT;
	snprintf(g_ref_dir, sizeof(g_ref_dir), "%s/../shared/reference", src);
	snprintf(probe, sizeof(probe), "%s/proto/%s", g_ref_dir, OTLP_PROTO);
	if (stat(probe, &sb) != 0) {
		fprintf(stderr, "official schemas not found at %s/proto (%s)%s\n", g_ref_dir,
			strerror(errno), under_ci ? "" : ": skipping");
		return under_ci ? 1 : TEST_SKIP;
	}
	if (strchr(g_ref_dir, '\'')) {
		fprintf(stderr, "path with a quote: %s\n", g_ref_dir);
		return 1;
	}
	if (system("'" PIPELINE_PROTOC "' --version >/dev/null 2>&1") != 0) {
		fprintf(stderr, "protoc (%s) does not run%s\n", PIPELINE_PROTOC,
			under_ci ? "" : ": skipping");
		return under_ci ? 1 : TEST_SKIP;
	}
	return 0;
}

static int need_reference(void)
{
	static int verdict = -1; /* checked once, reported once */

	if (verdict < 0)
		verdict = check_reference();
	return verdict;
}

/* Makes the scratch directory on first use; main() removes it. */
static int make_tmp_dir(void)
{
	const char *t = getenv("TMPDIR");

	if (g_tmp_dir[0])
		return 0;
	snprintf(g_tmp_dir, sizeof(g_tmp_dir), "%s/proto_compat.XXXXXX", t && t[0] ? t : "/tmp");
	if (!mkdtemp(g_tmp_dir) || strchr(g_tmp_dir, '\'')) {
		perror("mkdtemp");
		g_tmp_dir[0] = '\0';
		return -1;
	}
	return 0;
}

static void tmp_path(char *buf, size_t n, const char *name)
{
	snprintf(buf, n, "%s/%s", g_tmp_dir, name);
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
static int read_file(const char *path, uint8_t **data, size_t *len)
{
	FILE *f = fopen(path, "rb");
	size_t cap = 4096, n = 0;
	uint8_t *buf;

	if (!f)
		return -errno;
	buf = malloc(cap);
	while (buf) {
		n += fread(buf + n, 1, cap - n - 1, f);
		if (n < cap - 1)
			break;
		uint8_t *nb = realloc(buf, cap * 2);
		if (!nb) {
			free(buf);
			buf = NULL;
			break;
		}
		buf = nb;
		cap *= 2;
	}
	fclose(f);
	if (!buf)
		return -ENOMEM;
	buf[n] = 0;
	*data = buf;
	*len = n;
	return 0;
}

/* Runs protoc on the official schema: `cd proto && protoc -I. MODE PROTO < in
 * > out`. Returns protoc's exit status, or -1. */
static int run_protoc(const char *mode, const char *proto, const char *in, const char *out)
{
	char cmd[16384];
	char err_path[4200];
	int rc;

	tmp_path(err_path, sizeof(err_path), "protoc.err");
	snprintf(cmd, sizeof(cmd), "cd '%s/proto' && '%s' -I. '%s' '%s' < '%s' > '%s' 2> '%s'",
		 g_ref_dir, PIPELINE_PROTOC, mode, proto, in, out, err_path);
	rc = system(cmd);
	if (rc == -1 || !WIFEXITED(rc))
		return -1;
	rc = WEXITSTATUS(rc);
	if (rc) {
		uint8_t *msg;
		size_t n;

		if (read_file(err_path, &msg, &n) == 0) {
			fprintf(stderr, "protoc %s failed (%d): %s\n", mode, rc, (char *)msg);
			free(msg);
		}
	}
	return rc;
}

/* A line of protoc's text output that starts with a field number instead of
 * a name is a field the official schema does not know. */
static bool has_unknown_fields(const char *text)
{
	for (const char *line = text; *line;) {
		const char *p = line;

		while (*p == ' ')
			p++;
		if (*p >= '0' && *p <= '9') {
			fprintf(stderr, "unknown field in decoded text: %.60s\n", p);
			return true;
		}
		const char *nl = strchr(line, '\n');
		if (!nl)
			break;
		line = nl + 1;
	}
	return false;
}

#define CHECK_HAS(text, needle)                                                                    \
	do {                                                                                       \
		if (!strstr((text), (needle))) {                                                   \
			fprintf(stderr, "%s:%d: decoded text lacks \"%s\"\n", __FILE__, __LINE__,  \
				(needle));                                                         \
			return 1;                                                                  \
		}                                                                                  \
	} while (0)

/* ---- our bytes, the official schema ---- */

static const struct sym_module m_app = {.path = "/usr/bin/demo",
					.name = "demo",
					.build_id = "c89b11207f6479603b0d49bf291c092c2b719293"};
static const struct sym_frame f_main = FIXTURE_UFRAME(&m_app, 0x1200, "main", "demo.c", 42, 1);
static const struct sym_frame f_compute =
	FIXTURE_UFRAME(&m_app, 0x1136, "compute", "demo.c", 17, 2);
static const struct sym_frame f_sys = FIXTURE_KFRAME(0xffffffff81a0009bULL, "do_syscall_64", 3);
static const struct sym_frame *const st_user[] = {&f_compute, &f_main};
static const struct sym_frame *const st_sys[] = {&f_sys, &f_compute, &f_main};

static int test_pprof_encoder_vs_official(void)
{
	int rc = need_reference();
	if (rc)
		return rc;

	struct profile_stack stacks[3] = {
		fixture_stack(4242, 4243, "worker", "demo", 0, 2, st_user, 3),
		fixture_stack(4242, 4243, "worker", "demo", 1, 2, st_sys, 1),
		fixture_stack(4242, 4244, "idler", "demo", 0, 0, NULL, 2),
	};
	struct profile p = fixture_profile("host-a", 1767225600000000000ULL, 20, stacks, 3);
	struct encoded_buf enc = {0};
	char bin[4200], txt[4200];
	uint8_t *text = NULL;
	size_t len;

	CHECK(pprof__encode(&p, &enc) == 0);
	CHECK(make_tmp_dir() == 0);
	tmp_path(bin, sizeof(bin), "cpu.pb.gz");
	tmp_path(txt, sizeof(txt), "cpu.txt");
	/* the official schema reads the uncompressed message; gunzip with zlib */
	{
		uint8_t raw[1 << 16];
		z_stream zs = {0};
		CHECK(inflateInit2(&zs, 15 + 16) == Z_OK);
		zs.next_in = enc.data;
		zs.avail_in = (uInt)enc.len;
		zs.next_out = raw;
		zs.avail_out = sizeof(raw);
		rc = inflate(&zs, Z_FINISH);
		len = zs.total_out;
		inflateEnd(&zs);
		CHECK(rc == Z_STREAM_END);
		CHECK(write_file(bin, raw, len) == 0);
	}
	free(enc.data);

	CHECK_EQ_U64(run_protoc("--decode=" PPROF_MSG, PPROF_PROTO, bin, txt), 0);
	CHECK(read_file(txt, &text, &len) == 0);
	const char *t = (const char *)text;
	CHECK(!has_unknown_fields(t));
	CHECK_HAS(t, "sample_type {");
	CHECK_HAS(t, "string_table: \"\"\n");
	CHECK_HAS(t, "string_table: \"do_syscall_64\"");
	CHECK_HAS(t, "string_table: \"c89b11207f6479603b0d49bf291c092c2b719293\"");
	CHECK_HAS(t, "string_table: \"thread_name\"");
	CHECK_HAS(t, "location_id: ");
	CHECK_HAS(t, "value: 150000000"); /* 3 samples * 50 ms */
	CHECK_HAS(t, "value: 100000000"); /* the frameless stack: 2 * 50 ms */
	CHECK_HAS(t, "address: 4406");	  /* 0x1136 */
	CHECK_HAS(t, "has_functions: true");
	CHECK_HAS(t, "memory_limit: 18446744073709551615");
	CHECK_HAS(t, "time_nanos: 1767225600000000000");
	CHECK_HAS(t, "duration_nanos: 10000000000");
	CHECK_HAS(t, "period: 50000000");
	CHECK_HAS(t, "period_type {");
	CHECK_HAS(t, "default_sample_type: ");
	CHECK_HAS(t, "comment: ");
	CHECK_HAS(t, "num: 4244");
	free(text);
	unlink(bin);
	unlink(txt);
	return 0;
}

static int test_otlp_generated_vs_official(void)
{
	int rc = need_reference();
	if (rc)
		return rc;

	/* the string table, by index */
	static char *strings[] = {"",
				  "samples",
				  "count",
				  "cpu",
				  "nanoseconds",
				  "/usr/bin/demo",
				  "main",
				  "demo.c",
				  "compute",
				  "do_syscall_64",
				  "process.executable.build_id.gnu",
				  "profile.frame.type",
				  "thread.id",
				  "thread.name",
				  "worker"};
	/* dictionary tables; index 0 of each is the zero value */
	OtlpMapping map0 = OPENTELEMETRY__PROTO__PROFILES__V1DEVELOPMENT__MAPPING__INIT;
	OtlpMapping map1 = OPENTELEMETRY__PROTO__PROFILES__V1DEVELOPMENT__MAPPING__INIT;
	int32_t map1_attrs[] = {1};
	map1.memory_start = 0x400000;
	map1.memory_limit = 0x500000;
	map1.filename_strindex = 5;
	map1.attribute_indices = map1_attrs;
	map1.n_attribute_indices = 1;
	OtlpMapping *mappings[] = {&map0, &map1};

	OtlpFunction fn0 = OPENTELEMETRY__PROTO__PROFILES__V1DEVELOPMENT__FUNCTION__INIT;
	OtlpFunction fn_main = OPENTELEMETRY__PROTO__PROFILES__V1DEVELOPMENT__FUNCTION__INIT;
	OtlpFunction fn_compute = OPENTELEMETRY__PROTO__PROFILES__V1DEVELOPMENT__FUNCTION__INIT;
	fn_main.name_strindex = fn_main.system_name_strindex = 6;
	fn_main.filename_strindex = 7;
	fn_main.start_line = 40;
	fn_compute.name_strindex = fn_compute.system_name_strindex = 8;
	fn_compute.filename_strindex = 7;
	OtlpFunction *functions[] = {&fn0, &fn_main, &fn_compute};

	OtlpLine line_compute = OPENTELEMETRY__PROTO__PROFILES__V1DEVELOPMENT__LINE__INIT;
	OtlpLine line_main = OPENTELEMETRY__PROTO__PROFILES__V1DEVELOPMENT__LINE__INIT;
	line_compute.function_index = 2;
	line_compute.line = 17;
	line_main.function_index = 1;
	line_main.line = 42;
	line_main.column = 5;
	OtlpLine *lines_compute[] = {&line_compute}, *lines_main[] = {&line_main};
	int32_t loc_attrs[] = {2};
	OtlpLocation loc0 = OPENTELEMETRY__PROTO__PROFILES__V1DEVELOPMENT__LOCATION__INIT;
	OtlpLocation loc1 = OPENTELEMETRY__PROTO__PROFILES__V1DEVELOPMENT__LOCATION__INIT;
	OtlpLocation loc2 = OPENTELEMETRY__PROTO__PROFILES__V1DEVELOPMENT__LOCATION__INIT;
	loc1.mapping_index = 1;
	loc1.address = 0x401136;
	loc1.lines = lines_compute;
	loc1.n_lines = 1;
	loc1.attribute_indices = loc_attrs;
	loc1.n_attribute_indices = 1;
	loc2.mapping_index = 1;
	loc2.address = 0x401200;
	loc2.lines = lines_main;
	loc2.n_lines = 1;
	loc2.attribute_indices = loc_attrs;
	loc2.n_attribute_indices = 1;
	OtlpLocation *locations[] = {&loc0, &loc1, &loc2};

	static uint8_t zero_trace[16], zero_span[8];
	static uint8_t trace[16] = {0x5b, 0x8e, 0xff, 0xf7, 0x98, 0x03, 0x81, 0x03,
				    0xd2, 0x69, 0xb6, 0x33, 0x81, 0x3f, 0xc6, 0x0c};
	static uint8_t span[8] = {0xee, 0xe1, 0x9b, 0x7e, 0xc3, 0xc1, 0xb1, 0x74};
	OtlpLink link0 = OPENTELEMETRY__PROTO__PROFILES__V1DEVELOPMENT__LINK__INIT;
	OtlpLink link1 = OPENTELEMETRY__PROTO__PROFILES__V1DEVELOPMENT__LINK__INIT;
	link0.trace_id = (ProtobufCBinaryData){sizeof(zero_trace), zero_trace};
	link0.span_id = (ProtobufCBinaryData){sizeof(zero_span), zero_span};
	link1.trace_id = (ProtobufCBinaryData){sizeof(trace), trace};
	link1.span_id = (ProtobufCBinaryData){sizeof(span), span};
	OtlpLink *links[] = {&link0, &link1};

	OtlpKeyValueAndUnit attr0 =
		OPENTELEMETRY__PROTO__PROFILES__V1DEVELOPMENT__KEY_VALUE_AND_UNIT__INIT;
	OtlpKeyValueAndUnit attr_bid =
		OPENTELEMETRY__PROTO__PROFILES__V1DEVELOPMENT__KEY_VALUE_AND_UNIT__INIT;
	OtlpKeyValueAndUnit attr_native =
		OPENTELEMETRY__PROTO__PROFILES__V1DEVELOPMENT__KEY_VALUE_AND_UNIT__INIT;
	OtlpKeyValueAndUnit attr_tid =
		OPENTELEMETRY__PROTO__PROFILES__V1DEVELOPMENT__KEY_VALUE_AND_UNIT__INIT;
	OtlpKeyValueAndUnit attr_tname =
		OPENTELEMETRY__PROTO__PROFILES__V1DEVELOPMENT__KEY_VALUE_AND_UNIT__INIT;
	OtlpAnyValue v_bid = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__INIT;
	OtlpAnyValue v_native = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__INIT;
	OtlpAnyValue v_tid = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__INIT;
	OtlpAnyValue v_tname = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__INIT;
	v_bid.value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
	v_bid.string_value = "c89b11207f6479603b0d49bf291c092c2b719293";
	v_native.value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
	v_native.string_value = "native";
	v_tid.value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE;
	v_tid.int_value = 4243;
	v_tname.value_case =
		OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE_STRINDEX;
	v_tname.string_value_strindex = 14;
	attr_bid.key_strindex = 10;
	attr_bid.value = &v_bid;
	attr_native.key_strindex = 11;
	attr_native.value = &v_native;
	attr_tid.key_strindex = 12;
	attr_tid.value = &v_tid;
	attr_tname.key_strindex = 13;
	attr_tname.value = &v_tname;
	OtlpKeyValueAndUnit *attrs[] = {&attr0, &attr_bid, &attr_native, &attr_tid, &attr_tname};

	int32_t stack1_locs[] = {1, 2};
	OtlpStack stack0 = OPENTELEMETRY__PROTO__PROFILES__V1DEVELOPMENT__STACK__INIT;
	OtlpStack stack1 = OPENTELEMETRY__PROTO__PROFILES__V1DEVELOPMENT__STACK__INIT;
	stack1.location_indices = stack1_locs;
	stack1.n_location_indices = 2;
	OtlpStack *stacks[] = {&stack0, &stack1};

	OtlpDictionary dict =
		OPENTELEMETRY__PROTO__PROFILES__V1DEVELOPMENT__PROFILES_DICTIONARY__INIT;
	dict.mapping_table = mappings;
	dict.n_mapping_table = 2;
	dict.location_table = locations;
	dict.n_location_table = 3;
	dict.function_table = functions;
	dict.n_function_table = 3;
	dict.link_table = links;
	dict.n_link_table = 2;
	dict.string_table = strings;
	dict.n_string_table = sizeof(strings) / sizeof(strings[0]);
	dict.attribute_table = attrs;
	dict.n_attribute_table = 5;
	dict.stack_table = stacks;
	dict.n_stack_table = 2;

	/* one profile: sample_type samples/count, two samples on stack 1 */
	OtlpValueType st = OPENTELEMETRY__PROTO__PROFILES__V1DEVELOPMENT__VALUE_TYPE__INIT;
	OtlpValueType pt = OPENTELEMETRY__PROTO__PROFILES__V1DEVELOPMENT__VALUE_TYPE__INIT;
	st.type_strindex = 1;
	st.unit_strindex = 2;
	pt.type_strindex = 3;
	pt.unit_strindex = 4;
	int32_t sample_attrs[] = {3, 4};
	int64_t values[] = {3};
	uint64_t stamps[] = {1767225600050000000ULL, 1767225600100000000ULL};
	OtlpSample s1 = OPENTELEMETRY__PROTO__PROFILES__V1DEVELOPMENT__SAMPLE__INIT;
	OtlpSample s2 = OPENTELEMETRY__PROTO__PROFILES__V1DEVELOPMENT__SAMPLE__INIT;
	s1.stack_index = 1;
	s1.attribute_indices = sample_attrs;
	s1.n_attribute_indices = 2;
	s1.values = values;
	s1.n_values = 1;
	s2.stack_index = 1;
	s2.link_index = 1;
	s2.timestamps_unix_nano = stamps;
	s2.n_timestamps_unix_nano = 2;
	OtlpSample *samples[] = {&s1, &s2};
	static uint8_t profile_id[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
	OtlpProfile prof = OPENTELEMETRY__PROTO__PROFILES__V1DEVELOPMENT__PROFILE__INIT;
	prof.sample_type = &st;
	prof.samples = samples;
	prof.n_samples = 2;
	prof.time_unix_nano = 1767225600000000000ULL;
	prof.duration_nano = 10000000000ULL;
	prof.period_type = &pt;
	prof.period = 10101010;
	prof.profile_id = (ProtobufCBinaryData){sizeof(profile_id), profile_id};
	prof.dropped_attributes_count = 7;
	prof.original_payload_format = "pprof";
	OtlpProfile *profiles[] = {&prof};

	OtlpAnyValue v_service = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__INIT;
	OtlpAnyValue v_pid = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__INIT;
	v_service.value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
	v_service.string_value = "demo";
	v_pid.value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE;
	v_pid.int_value = 4242;
	OtlpKeyValue kv_service = OPENTELEMETRY__PROTO__COMMON__V1__KEY_VALUE__INIT;
	OtlpKeyValue kv_pid = OPENTELEMETRY__PROTO__COMMON__V1__KEY_VALUE__INIT;
	kv_service.key = "service.name";
	kv_service.value = &v_service;
	kv_pid.key = "process.pid";
	kv_pid.value = &v_pid;
	OtlpKeyValue *res_attrs[] = {&kv_service, &kv_pid};
	OtlpResource resource = OPENTELEMETRY__PROTO__RESOURCE__V1__RESOURCE__INIT;
	resource.attributes = res_attrs;
	resource.n_attributes = 2;

	OtlpScope scope = OPENTELEMETRY__PROTO__COMMON__V1__INSTRUMENTATION_SCOPE__INIT;
	scope.name = "pipeline";
	scope.version = "0.1.0";
	OtlpScopeProfiles sp = OPENTELEMETRY__PROTO__PROFILES__V1DEVELOPMENT__SCOPE_PROFILES__INIT;
	sp.scope = &scope;
	sp.profiles = profiles;
	sp.n_profiles = 1;
	OtlpScopeProfiles *sps[] = {&sp};
	OtlpResourceProfiles rp =
		OPENTELEMETRY__PROTO__PROFILES__V1DEVELOPMENT__RESOURCE_PROFILES__INIT;
	rp.resource = &resource;
	rp.scope_profiles = sps;
	rp.n_scope_profiles = 1;
	rp.schema_url = "https://opentelemetry.io/schemas/1.34.0";
	OtlpResourceProfiles *rps[] = {&rp};

	OtlpRequest req =
		OPENTELEMETRY__PROTO__COLLECTOR__PROFILES__V1DEVELOPMENT__EXPORT_PROFILES_SERVICE_REQUEST__INIT;
	req.resource_profiles = rps;
	req.n_resource_profiles = 1;
	req.dictionary = &dict;

	size_t len =
		opentelemetry__proto__collector__profiles__v1development__export_profiles_service_request__get_packed_size(
			&req);
	uint8_t *buf = malloc(len);
	CHECK(buf != NULL);
	CHECK_EQ_U64(
		opentelemetry__proto__collector__profiles__v1development__export_profiles_service_request__pack(
			&req, buf),
		len);

	char bin[4200], txt[4200];
	uint8_t *text = NULL;
	CHECK(make_tmp_dir() == 0);
	tmp_path(bin, sizeof(bin), "otlp.binpb");
	tmp_path(txt, sizeof(txt), "otlp.txt");
	CHECK(write_file(bin, buf, len) == 0);
	free(buf);
	CHECK_EQ_U64(run_protoc("--decode=" OTLP_MSG, OTLP_PROTO, bin, txt), 0);
	CHECK(read_file(txt, &text, &len) == 0);
	const char *t = (const char *)text;
	CHECK(!has_unknown_fields(t));
	/* all 7 tables, their zero entries included */
	CHECK_HAS(t, "mapping_table {\n  }");
	CHECK_HAS(t, "location_table {\n  }");
	CHECK_HAS(t, "function_table {\n  }");
	CHECK_HAS(t, "attribute_table {\n  }");
	CHECK_HAS(t, "stack_table {\n  }");
	CHECK_HAS(t, "string_table: \"\"\n");
	CHECK_HAS(t, "link_table {\n    trace_id: \"\\000\\000");
	CHECK_HAS(t, "stack_table {\n    location_indices: 1\n    location_indices: 2\n");
	CHECK_HAS(t, "string_table: \"compute\"");
	CHECK_HAS(t, "filename_strindex: 5");
	CHECK_HAS(t, "memory_limit: 5242880");
	CHECK_HAS(t, "function_index: 2");
	CHECK_HAS(t, "column: 5");
	CHECK_HAS(t, "start_line: 40");
	CHECK_HAS(t, "string_value_strindex: 14");
	CHECK_HAS(t, "int_value: 4243");
	CHECK_HAS(t, "key: \"service.name\"");
	CHECK_HAS(t, "int_value: 4242");
	CHECK_HAS(t, "name: \"pipeline\"");
	CHECK_HAS(t, "version: \"0.1.0\"");
	CHECK_HAS(t, "schema_url: \"https://opentelemetry.io/schemas/1.34.0\"");
	CHECK_HAS(t, "sample_type {\n        type_strindex: 1\n        unit_strindex: 2\n");
	CHECK_HAS(t, "stack_index: 1");
	CHECK_HAS(t, "attribute_indices: 3\n");
	CHECK_HAS(t, "values: 3\n");
	CHECK_HAS(t, "link_index: 1");
	CHECK_HAS(t, "timestamps_unix_nano: 1767225600050000000\n");
	CHECK_HAS(t, "timestamps_unix_nano: 1767225600100000000\n");
	CHECK_HAS(t, "time_unix_nano: 1767225600000000000\n");
	CHECK_HAS(t, "duration_nano: 10000000000");
	CHECK_HAS(t, "period: 10101010");
	CHECK_HAS(t, "profile_id: \"\\001\\002\\003");
	CHECK_HAS(t, "dropped_attributes_count: 7");
	CHECK_HAS(t, "original_payload_format: \"pprof\"");
	free(text);
	unlink(bin);
	unlink(txt);
	return 0;
}

/* ---- official bytes, our generated code ---- */

/* protoc --encode the official text sample; returns the bytes in *data. */
static int encode_sample(const char *msg_flag, const char *proto, const char *sample,
			 uint8_t **data, size_t *len)
{
	char in[4200], out[4200];

	snprintf(in, sizeof(in), "%s/samples/%s", g_ref_dir, sample);
	if (make_tmp_dir() != 0)
		return -1;
	tmp_path(out, sizeof(out), "sample.binpb");
	if (run_protoc(msg_flag, proto, in, out) != 0)
		return -1;
	int rc = read_file(out, data, len);
	unlink(out);
	return rc;
}

/* Packs m, unpacked from bytes[0..len), again: the bytes must be the same,
 * which holds only if every field was known with the right number and type. */
static int check_repacks(const ProtobufCMessage *m, const uint8_t *bytes, size_t len)
{
	size_t n = protobuf_c_message_get_packed_size(m);
	uint8_t *again = malloc(n ? n : 1);

	CHECK(again != NULL);
	CHECK_EQ_U64(protobuf_c_message_pack(m, again), n);
	CHECK_EQ_U64(n, len);
	CHECK(memcmp(again, bytes, len) == 0);
	free(again);
	return 0;
}

static int test_official_pprof_sample(void)
{
	int rc = need_reference();
	if (rc)
		return rc;

	uint8_t *bytes = NULL;
	size_t len = 0;
	CHECK(encode_sample("--encode=" PPROF_MSG, PPROF_PROTO, "pprof-profile.txtpb", &bytes,
			    &len) == 0);
	Perftools__Profiles__Profile *p = perftools__profiles__profile__unpack(NULL, len, bytes);
	CHECK(p != NULL);
	CHECK_EQ_U64(p->base.n_unknown_fields, 0);
	CHECK_EQ_U64(p->n_sample_type, 2);
	CHECK_STR(p->string_table[p->sample_type[1]->type], "cpu");
	CHECK_EQ_U64(p->n_sample, 2);
	CHECK_EQ_U64(p->sample[1]->n_location_id, 3);
	CHECK_EQ_U64(p->sample[1]->location_id[0], 3);
	CHECK_EQ_U64(p->sample[1]->location_id[2], 2);
	CHECK_EQ_U64(p->sample[0]->value[1], 150000000);
	CHECK_EQ_U64(p->sample[0]->n_label, 2);
	CHECK_STR(p->string_table[p->sample[0]->label[0]->str], "worker");
	CHECK_EQ_U64(p->sample[0]->label[1]->num, 4243);
	CHECK_EQ_U64(p->n_mapping, 2);
	CHECK_STR(p->string_table[p->mapping[0]->build_id],
		  "c89b11207f6479603b0d49bf291c092c2b719293");
	CHECK(p->mapping[0]->has_line_numbers && !p->mapping[0]->has_inline_frames);
	CHECK_EQ_U64(p->mapping[1]->memory_start, 0xffffffff81000000ULL);
	CHECK_EQ_U64(p->location[2]->address, 0xffffffff81a0009bULL);
	CHECK_EQ_U64(p->location[1]->line[0]->column, 5);
	CHECK_EQ_U64(p->function[0]->start_line, 40);
	CHECK_STR(p->string_table[p->function[2]->name], "do_syscall_64");
	CHECK_EQ_U64(p->time_nanos, 1767225600000000000ULL);
	CHECK_EQ_U64(p->duration_nanos, 10000000000ULL);
	CHECK_EQ_U64(p->period, 50000000);
	CHECK_STR(p->string_table[p->period_type->unit], "nanoseconds");

	CHECK(check_repacks(&p->base, bytes, len) == 0);
	perftools__profiles__profile__free_unpacked(p, NULL);
	free(bytes);
	return 0;
}

static int test_official_otlp_sample(void)
{
	int rc = need_reference();
	if (rc)
		return rc;

	uint8_t *bytes = NULL;
	size_t len = 0;
	CHECK(encode_sample("--encode=" OTLP_MSG, OTLP_PROTO, "otlp-export-request.txtpb", &bytes,
			    &len) == 0);
	OtlpRequest *req =
		opentelemetry__proto__collector__profiles__v1development__export_profiles_service_request__unpack(
			NULL, len, bytes);
	CHECK(req != NULL);
	CHECK_EQ_U64(req->base.n_unknown_fields, 0);

	const OtlpDictionary *d = req->dictionary;
	CHECK(d != NULL);
	CHECK_EQ_U64(d->n_mapping_table, 2);
	CHECK_EQ_U64(d->n_location_table, 4);
	CHECK_EQ_U64(d->n_function_table, 4);
	CHECK_EQ_U64(d->n_link_table, 2);
	CHECK_EQ_U64(d->n_string_table, 14);
	CHECK_EQ_U64(d->n_attribute_table, 6);
	CHECK_EQ_U64(d->n_stack_table, 3);
	CHECK_STR(d->string_table[0], "");
	CHECK_STR(d->string_table[9], "do_syscall_64");
	CHECK_EQ_U64(d->stack_table[0]->n_location_indices, 0);
	CHECK_EQ_U64(d->stack_table[2]->n_location_indices, 3);
	CHECK_EQ_U64(d->stack_table[2]->location_indices[0], 3);
	CHECK_EQ_U64(d->mapping_table[1]->memory_start, 0x400000);
	CHECK_EQ_U64(d->mapping_table[1]->attribute_indices[0], 1);
	CHECK_EQ_U64(d->location_table[3]->address, 0xffffffff81a0009bULL);
	CHECK_EQ_U64(d->location_table[2]->lines[0]->column, 5);
	CHECK_EQ_U64(d->function_table[1]->start_line, 40);
	CHECK_EQ_U64(d->link_table[0]->trace_id.len, 16);
	CHECK_EQ_U64(d->link_table[1]->span_id.len, 8);
	CHECK_EQ_U64(d->link_table[1]->span_id.data[0], 0xee);
	CHECK(d->attribute_table[4]->value->value_case ==
	      OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE);
	CHECK_EQ_U64(d->attribute_table[4]->value->int_value, 4243);
	CHECK_STR(d->attribute_table[2]->value->string_value, "native");

	CHECK_EQ_U64(req->n_resource_profiles, 1);
	const OtlpResourceProfiles *rp = req->resource_profiles[0];
	CHECK_EQ_U64(rp->resource->n_attributes, 4);
	CHECK_STR(rp->resource->attributes[1]->key, "process.pid");
	CHECK_EQ_U64(rp->resource->attributes[1]->value->int_value, 4242);
	CHECK_STR(rp->scope_profiles[0]->scope->name, "example-ebpf-profiler");
	const OtlpProfile *prof = rp->scope_profiles[0]->profiles[0];
	CHECK_EQ_U64(prof->sample_type->type_strindex, 1);
	CHECK_EQ_U64(prof->n_samples, 2);
	CHECK_EQ_U64(prof->samples[0]->n_timestamps_unix_nano, 3);
	CHECK_EQ_U64(prof->samples[0]->timestamps_unix_nano[2], 1767225600150000000ULL);
	CHECK_EQ_U64(prof->samples[0]->n_attribute_indices, 2);
	CHECK_EQ_U64(prof->samples[1]->stack_index, 2);
	CHECK_EQ_U64(prof->samples[1]->link_index, 1);
	CHECK_EQ_U64(prof->time_unix_nano, 1767225600000000000ULL);
	CHECK_EQ_U64(prof->duration_nano, 10000000000ULL);
	CHECK_EQ_U64(prof->period, 50000000);
	CHECK_EQ_U64(prof->period_type->unit_strindex, 4);
	CHECK_EQ_U64(prof->profile_id.len, 16);

	CHECK(check_repacks(&req->base, bytes, len) == 0);
	opentelemetry__proto__collector__profiles__v1development__export_profiles_service_request__free_unpacked(
		req, NULL);
	free(bytes);
	return 0;
}

static const struct test_case cases[] = {
	{"pprof_encoder_vs_official", test_pprof_encoder_vs_official},
	{"otlp_generated_vs_official", test_otlp_generated_vs_official},
	{"official_pprof_sample", test_official_pprof_sample},
	{"official_otlp_sample", test_official_otlp_sample},
};

int main(int argc, char **argv)
{
	static const char *const scratch[] = {"cpu.pb.gz", "cpu.txt",	   "otlp.binpb",
					      "otlp.txt",  "sample.binpb", "protoc.err"};
	int rc = test_run_all(cases, sizeof(cases) / sizeof(cases[0]), argc, argv);

	if (g_tmp_dir[0]) {
		char path[4200];

		for (size_t i = 0; i < sizeof(scratch) / sizeof(scratch[0]); i++) {
			tmp_path(path, sizeof(path), scratch[i]);
			unlink(path);
		}
		rmdir(g_tmp_dir);
	}
	return rc;
}
