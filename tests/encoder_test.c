/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Unit tests of the folded and pprof encoders on a hand-built profile.
 *
 * The fixture covers what the encoders must get right: user and kernel
 * frames, two frames of one function (they must share a pprof Function and
 * fold to one text), frames without a symbol (in a known module, and in none),
 * a name containing ';' and '\n', an idle stack, a stack with no frames at all,
 * and a process name containing ';'; and, apart (inline_fixture.h), frames
 * with inlined calls and mangled names. The pprof output is checked the way a
 * reader sees it: gunzipped with zlib and unpacked with the generated
 * protobuf-c code. Every allocation of both encoders is failed in turn to
 * check that error paths return -ENOMEM and free everything.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "encoder.h"
#include "perftools/profiles/profile.pb-c.h"
#include "inline_fixture.h"
#include "profile_fixture.h"
#include "test_helpers.h"

#define PERIOD_NS 10101010ULL /* 99 Hz */

/*
 * Allocation failure injection. encoder_test is linked with --wrap for malloc,
 * calloc, realloc and free (tests/encoder.cmake), so every call made by the
 * encoders (linked in from the static pl_encoder) and by this file lands here.
 * g_fail_after counts the allocations left before exactly one fails; g_live
 * counts blocks handed out and not yet freed, so a leak on an error path shows
 * even without LeakSanitizer.
 */
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

static const struct sym_module m_app = {
	.path = "/usr/bin/app", .name = "app", .build_id = "0a1b2c3d4e5f"};
static const struct sym_module m_libc = {
	.path = "/usr/lib/x86_64-linux-gnu/libc.so.6", .name = "libc.so.6", .build_id = ""};
static const struct sym_module m_unknown = {
	.path = "[unknown]", .name = "[unknown]", .build_id = ""};

static const struct sym_frame f_main = FIXTURE_UFRAME(&m_app, 0x1100, "main", "app.c", 10, 1);
static const struct sym_frame f_work = FIXTURE_UFRAME(&m_app, 0x1200, "work", "app.c", 20, 2);
/* same function as f_work, another address */
static const struct sym_frame f_work2 = FIXTURE_UFRAME(&m_app, 0x1208, "work", "app.c", 21, 3);
static const struct sym_frame f_odd = FIXTURE_UFRAME(&m_app, 0x1300, "odd;name\n", "odd.c", 5, 4);
static const struct sym_frame f_libc_unk = FIXTURE_UFRAME(&m_libc, 0x2a0f0, NULL, NULL, 0, 5);
static const struct sym_frame f_k_sys = FIXTURE_KFRAME(0xffffffff81000100ULL, "do_syscall_64", 6);
static const struct sym_frame f_k_entry =
	FIXTURE_KFRAME(0xffffffff81000200ULL, "entry_SYSCALL_64", 7);
static const struct sym_frame f_k_idle = FIXTURE_KFRAME(0xffffffff81000300ULL, "default_idle", 8);
static const struct sym_frame f_unk = FIXTURE_UFRAME(&m_unknown, 0xdead, NULL, NULL, 0, 9);

/* leaf first: kernel frames, then user frames */
static const struct sym_frame *const st_work[] = {&f_work, &f_main};
static const struct sym_frame *const st_work2[] = {&f_work2, &f_main};
static const struct sym_frame *const st_sys[] = {&f_k_sys, &f_k_entry, &f_libc_unk, &f_main};
static const struct sym_frame *const st_odd[] = {&f_odd, &f_main};
static const struct sym_frame *const st_idle[] = {&f_k_idle};
static const struct sym_frame *const st_unk[] = {&f_unk};

#define N_STACKS 7
static struct profile_stack g_stacks[N_STACKS];

/* Index of each stack in g_stacks, for the checks below. */
enum { S_WORK, S_WORK2, S_SYS, S_ODD, S_IDLE, S_EMPTY, S_UNK };

static struct profile fixture(void)
{
	g_stacks[S_WORK] = fixture_stack(42, 42, "app", "app", 0, 2, st_work, 3);
	g_stacks[S_WORK2] = fixture_stack(42, 43, "worker", "app", 0, 2, st_work2, 2);
	g_stacks[S_SYS] = fixture_stack(42, 42, "app", "app", 2, 2, st_sys, 4);
	g_stacks[S_ODD] = fixture_stack(42, 43, "worker", "app", 0, 2, st_odd, 1);
	g_stacks[S_IDLE] = fixture_stack(0, 0, "swapper/0", "[idle]", 1, 0, st_idle, 7);
	g_stacks[S_EMPTY] = fixture_stack(42, 44, "app", "app", 0, 0, NULL, 2);
	g_stacks[S_UNK] = fixture_stack(77, 77, "x;y", "x;y", 0, 1, st_unk, 1);

	struct profile p =
		fixture_profile("host-a", 1767225600000000000ULL, 99, g_stacks, N_STACKS);

	p.drops = (struct profile_drops){.kernel_ring_full = 5, .queue_full = 6};
	return p;
}

/* The profile of inline_fixture.h, in g_inline_stacks. */
static struct profile_stack g_inline_stacks[2];

static struct profile inline_profile(void)
{
	inline_fixture_stacks(g_inline_stacks);
	return fixture_profile("host-a", 1767225600000000000ULL, 99, g_inline_stacks, 2);
}

/* ---- folded ---- */

static int test_folded_exact(void)
{
	struct profile p = fixture();
	struct encoded_buf out = {0};
	const char *want = "[idle];default_idle_[k] 7\n"
			   "app 2\n"
			   "app;main;[libc.so.6+0x2a0f0];entry_SYSCALL_64_[k];do_syscall_64_[k] 4\n"
			   "app;main;odd:name 1\n"
			   "app;main;work 5\n"
			   "x:y;[unknown] 1\n";

	CHECK(folded__encode(&p, &out) == 0);
	CHECK(out.data != NULL);
	CHECK_EQ_U64(out.len, strlen(want));
	CHECK(memcmp(out.data, want, out.len) == 0 || (fprintf(stderr, "%s", out.data), 0));
	free(out.data);
	return 0;
}

static int test_folded_inlined(void)
{
	struct profile p = inline_profile();
	struct encoded_buf out = {0};
	/* caller before callee: the frame's function, then its inlined calls
	 * outermost first, each marked _[i]; kernel frames keep _[k] */
	const char *want = "server;main;app::Server::run();app::Table::lookup(int) const_[i];"
			   "app::hash<int>(int)_[i] 6\n"
			   "server;main;app::hash<int>(int);app::Server::run();"
			   "app::Table::lookup(int) const_[i];ksys_read_[k] 2\n";

	CHECK(folded__encode(&p, &out) == 0);
	CHECK(out.data != NULL);
	CHECK(strcmp((const char *)out.data, want) == 0 ||
	      (fprintf(stderr, "got:\n%s", out.data), 0));
	CHECK_EQ_U64(out.len, strlen(want));
	free(out.data);
	return 0;
}

static int test_folded_deterministic_order(void)
{
	struct profile p = fixture();
	struct encoded_buf a = {0}, b = {0};
	struct profile_stack rev[N_STACKS];

	/* same stacks in reverse order: same bytes */
	for (size_t i = 0; i < N_STACKS; i++)
		rev[i] = g_stacks[N_STACKS - 1 - i];
	CHECK(folded__encode(&p, &a) == 0);
	p.stacks = rev;
	CHECK(folded__encode(&p, &b) == 0);
	CHECK_EQ_U64(a.len, b.len);
	CHECK(memcmp(a.data, b.data, a.len) == 0);
	free(a.data);
	free(b.data);
	return 0;
}

static int test_folded_many_merge(void)
{
	/* enough distinct and repeated lines to grow the hash table several times */
	enum { N = 5000, DISTINCT = 1237 };
	static char names[DISTINCT][24];
	static struct sym_frame frames[DISTINCT];
	static const struct sym_frame *ptrs[DISTINCT];
	static struct profile_stack stacks[N];
	struct profile p = {.period_ns = PERIOD_NS, .stacks = stacks, .n_stacks = N};
	struct encoded_buf out = {0};
	uint64_t total = 0;
	size_t lines = 0;

	for (size_t i = 0; i < DISTINCT; i++) {
		snprintf(names[i], sizeof(names[i]), "fn_%zu", i);
		frames[i] = (struct sym_frame){.module = &m_app, .function = names[i], .id = i + 1};
		ptrs[i] = &frames[i];
	}
	for (size_t i = 0; i < N; i++)
		stacks[i] = fixture_stack(1, 1, "p", "p", 0, 1, &ptrs[i % DISTINCT], i % 3 + 1);
	CHECK(folded__encode(&p, &out) == 0);
	for (size_t i = 0; i < N; i++)
		total += stacks[i].count;

	uint64_t sum = 0;
	const char *prev = NULL;
	size_t prev_len = 0;
	for (char *line = (char *)out.data; *line;) {
		char *nl = strchr(line, '\n');
		CHECK(nl != NULL);
		char *sp = memrchr(line, ' ', (size_t)(nl - line));
		CHECK(sp != NULL);
		sum += strtoull(sp + 1, NULL, 10);
		if (prev) {
			/* strictly increasing: sorted and merged */
			size_t m = prev_len < (size_t)(sp - line) ? prev_len : (size_t)(sp - line);
			int c = memcmp(prev, line, m);
			CHECK(c < 0 || (c == 0 && prev_len < (size_t)(sp - line)));
		}
		prev = line;
		prev_len = (size_t)(sp - line);
		lines++;
		line = nl + 1;
	}
	CHECK_EQ_U64(lines, DISTINCT);
	CHECK_EQ_U64(sum, total);
	free(out.data);
	return 0;
}

static int test_folded_empty_and_errors(void)
{
	struct profile p = {.period_ns = PERIOD_NS};
	struct encoded_buf out = {0};
	const struct sym_frame *bad_frames[] = {&f_main, NULL};
	struct profile_stack bad = fixture_stack(1, 1, "a", "a", 0, 2, bad_frames, 1);

	CHECK(folded__encode(&p, &out) == 0);
	CHECK(out.data != NULL);
	CHECK_EQ_U64(out.len, 0);
	free(out.data);

	p.stacks = &bad;
	p.n_stacks = 1;
	out = (struct encoded_buf){0};
	CHECK(folded__encode(&p, &out) == -EINVAL);
	CHECK(out.data == NULL);
	CHECK(folded__encode(NULL, &out) == -EINVAL);
	return 0;
}

/* ---- pprof ---- */

/* Gunzips in into a malloc'ed buffer. Returns 0 or -1. */
static int gunzip(const uint8_t *in, size_t len, uint8_t **out, size_t *out_len)
{
	z_stream zs;
	size_t cap = len * 4 + 1024;
	uint8_t *buf = malloc(cap);
	int rc;

	memset(&zs, 0, sizeof(zs));
	if (!buf || inflateInit2(&zs, 15 + 16) != Z_OK) {
		free(buf);
		return -1;
	}
	zs.next_in = (Bytef *)in;
	zs.avail_in = (uInt)len;
	do {
		if (zs.total_out == cap) {
			uint8_t *nb = realloc(buf, cap * 2);
			if (!nb)
				break;
			buf = nb;
			cap *= 2;
		}
		zs.next_out = buf + zs.total_out;
		zs.avail_out = (uInt)(cap - zs.total_out);
		rc = inflate(&zs, Z_NO_FLUSH);
	} while (rc == Z_OK);
	*out_len = zs.total_out;
	inflateEnd(&zs);
	if (rc != Z_STREAM_END) {
		free(buf);
		return -1;
	}
	*out = buf;
	return 0;
}

static Perftools__Profiles__Profile *pprof_roundtrip(const struct profile *p)
{
	struct encoded_buf enc = {0};
	uint8_t *raw = NULL;
	size_t raw_len = 0;
	Perftools__Profiles__Profile *prof = NULL;

	if (pprof__encode(p, &enc) != 0) {
		fprintf(stderr, "pprof__encode failed\n");
		return NULL;
	}
	if (enc.len < 2 || enc.data[0] != 0x1f || enc.data[1] != 0x8b) {
		fprintf(stderr, "not gzip\n");
	} else if (gunzip(enc.data, enc.len, &raw, &raw_len) == 0) {
		prof = perftools__profiles__profile__unpack(NULL, raw_len, raw);
	}
	free(raw);
	free(enc.data);
	return prof;
}

static const char *str_at(const Perftools__Profiles__Profile *prof, int64_t i)
{
	if (i < 0 || (size_t)i >= prof->n_string_table)
		return NULL;
	return prof->string_table[i];
}

static const Perftools__Profiles__Location *loc_by_id(const Perftools__Profiles__Profile *prof,
						      uint64_t id)
{
	for (size_t i = 0; i < prof->n_location; i++)
		if (prof->location[i]->id == id)
			return prof->location[i];
	return NULL;
}

static const Perftools__Profiles__Function *fn_by_id(const Perftools__Profiles__Profile *prof,
						     uint64_t id)
{
	for (size_t i = 0; i < prof->n_function; i++)
		if (prof->function[i]->id == id)
			return prof->function[i];
	return NULL;
}

static const Perftools__Profiles__Mapping *map_by_id(const Perftools__Profiles__Profile *prof,
						     uint64_t id)
{
	for (size_t i = 0; i < prof->n_mapping; i++)
		if (prof->mapping[i]->id == id)
			return prof->mapping[i];
	return NULL;
}

static const Perftools__Profiles__Mapping *map_by_file(const Perftools__Profiles__Profile *prof,
						       const char *file)
{
	for (size_t i = 0; i < prof->n_mapping; i++) {
		const char *f = str_at(prof, prof->mapping[i]->filename);
		if (f && strcmp(f, file) == 0)
			return prof->mapping[i];
	}
	return NULL;
}

/* Name of the function of a location's only line, or NULL. */
static const char *loc_fn_name(const Perftools__Profiles__Profile *prof,
			       const Perftools__Profiles__Location *loc)
{
	if (!loc || loc->n_line != 1)
		return NULL;
	const Perftools__Profiles__Function *fn = fn_by_id(prof, loc->line[0]->function_id);
	return fn ? str_at(prof, fn->name) : NULL;
}

static const Perftools__Profiles__Label *label(const Perftools__Profiles__Profile *prof,
					       const Perftools__Profiles__Sample *s,
					       const char *key)
{
	const Perftools__Profiles__Label *found = NULL;

	for (size_t i = 0; i < s->n_label; i++) {
		const char *k = str_at(prof, s->label[i]->key);
		if (k && strcmp(k, key) == 0) {
			if (found)
				return NULL; /* a key twice is a bug too */
			found = s->label[i];
		}
	}
	return found;
}

static int check_value_type(const Perftools__Profiles__Profile *prof,
			    const Perftools__Profiles__ValueType *vt, const char *type,
			    const char *unit)
{
	CHECK(vt != NULL);
	CHECK_STR(str_at(prof, vt->type), type);
	CHECK_STR(str_at(prof, vt->unit), unit);
	return 0;
}

/* The structural rules every pprof reader relies on. */
static int check_pprof_valid(const Perftools__Profiles__Profile *prof)
{
	CHECK(prof->n_string_table >= 1);
	CHECK_STR(prof->string_table[0], "");
	for (size_t i = 0; i < prof->n_string_table; i++)
		for (size_t j = i + 1; j < prof->n_string_table; j++)
			CHECK(strcmp(prof->string_table[i], prof->string_table[j]) != 0);

	for (size_t i = 0; i < prof->n_mapping; i++) {
		const Perftools__Profiles__Mapping *m = prof->mapping[i];
		CHECK(m->id != 0);
		CHECK(map_by_id(prof, m->id) == m);
		CHECK(str_at(prof, m->filename) != NULL);
		CHECK(str_at(prof, m->build_id) != NULL);
		CHECK(m->memory_limit > m->memory_start);
	}
	for (size_t i = 0; i < prof->n_function; i++) {
		const Perftools__Profiles__Function *f = prof->function[i];
		CHECK(f->id != 0);
		CHECK(fn_by_id(prof, f->id) == f);
		CHECK(str_at(prof, f->name) != NULL && str_at(prof, f->name)[0]);
		CHECK(str_at(prof, f->system_name) != NULL && str_at(prof, f->system_name)[0]);
		CHECK(str_at(prof, f->filename) != NULL);
	}
	for (size_t i = 0; i < prof->n_location; i++) {
		const Perftools__Profiles__Location *l = prof->location[i];
		CHECK(l->id != 0);
		CHECK(loc_by_id(prof, l->id) == l);
		CHECK(l->mapping_id == 0 || map_by_id(prof, l->mapping_id) != NULL);
		for (size_t k = 0; k < l->n_line; k++)
			CHECK(fn_by_id(prof, l->line[k]->function_id) != NULL);
	}
	for (size_t i = 0; i < prof->n_sample; i++) {
		const Perftools__Profiles__Sample *s = prof->sample[i];
		CHECK_EQ_U64(s->n_value, prof->n_sample_type);
		CHECK(s->n_location_id >= 1);
		for (size_t k = 0; k < s->n_location_id; k++)
			CHECK(loc_by_id(prof, s->location_id[k]) != NULL);
		for (size_t k = 0; k < s->n_label; k++) {
			CHECK(str_at(prof, s->label[k]->key) != NULL);
			CHECK(str_at(prof, s->label[k]->str) != NULL);
		}
	}
	return 0;
}

/* Finds the sample whose labels say tid and whose leaf location has addr. */
static const Perftools__Profiles__Sample *sample_for(const Perftools__Profiles__Profile *prof,
						     const struct profile_stack *st)
{
	for (size_t i = 0; i < prof->n_sample; i++) {
		const Perftools__Profiles__Sample *s = prof->sample[i];
		const Perftools__Profiles__Label *tid = label(prof, s, "tid");
		size_t n = (size_t)st->n_kernel + st->n_user;

		if (!tid || tid->num != st->tid || s->n_value != 2 ||
		    (uint64_t)s->value[0] != st->count)
			continue;
		if (n == 0 && s->n_location_id == 1)
			return s;
		if (n != s->n_location_id)
			continue;
		bool same = true;
		for (size_t k = 0; k < n && same; k++) {
			const Perftools__Profiles__Location *l = loc_by_id(prof, s->location_id[k]);
			same = l && l->address == st->frames[k]->address;
		}
		if (same)
			return s;
	}
	return NULL;
}

static int test_pprof_structure(void)
{
	struct profile p = fixture();
	Perftools__Profiles__Profile *prof = pprof_roundtrip(&p);

	CHECK(prof != NULL);
	CHECK(check_pprof_valid(prof) == 0);

	CHECK_EQ_U64(prof->n_sample_type, 2);
	CHECK(check_value_type(prof, prof->sample_type[0], "samples", "count") == 0);
	CHECK(check_value_type(prof, prof->sample_type[1], "cpu", "nanoseconds") == 0);
	CHECK(check_value_type(prof, prof->period_type, "cpu", "nanoseconds") == 0);
	CHECK_STR(str_at(prof, prof->default_sample_type), "cpu");
	CHECK_EQ_U64(prof->period, PERIOD_NS);
	CHECK_EQ_U64(prof->time_nanos, p.time_ns);
	CHECK_EQ_U64(prof->duration_nanos, p.duration_ns);

	/* one mapping per module, the first stack's root module first */
	CHECK_EQ_U64(prof->n_mapping, 4);
	CHECK_STR(str_at(prof, prof->mapping[0]->filename), "/usr/bin/app");
	/* 9 distinct frames + 1 synthetic location for the frameless stack */
	CHECK_EQ_U64(prof->n_location, 10);
	/* work and work2 share a function: main work odd do_syscall_64
	 * entry_SYSCALL_64 default_idle + "app" (synthetic) */
	CHECK_EQ_U64(prof->n_function, 7);
	CHECK_EQ_U64(prof->n_sample, N_STACKS);

	const Perftools__Profiles__Mapping *app = map_by_file(prof, "/usr/bin/app");
	const Perftools__Profiles__Mapping *libc =
		map_by_file(prof, "/usr/lib/x86_64-linux-gnu/libc.so.6");
	const Perftools__Profiles__Mapping *kern = map_by_file(prof, "[kernel.kallsyms]");
	const Perftools__Profiles__Mapping *unk = map_by_file(prof, "[unknown]");
	CHECK(app && libc && kern && unk);
	CHECK_STR(str_at(prof, app->build_id), "0a1b2c3d4e5f");
	CHECK_EQ_U64(libc->build_id, 0);
	CHECK_EQ_U64(app->file_offset, 0);
	CHECK_EQ_U64(app->memory_start, 0);
	CHECK(app->memory_limit >= 0xffffffffffff0000ULL);
	/* has_* say what the locations really carry */
	CHECK(app->has_functions && app->has_filenames && app->has_line_numbers);
	CHECK(kern->has_functions && !kern->has_filenames && !kern->has_line_numbers);
	CHECK(!libc->has_functions && !libc->has_filenames && !libc->has_line_numbers);
	CHECK(!unk->has_functions);

	/* every stack has its sample, leaf first, values and labels right */
	for (size_t i = 0; i < N_STACKS; i++) {
		const struct profile_stack *st = &g_stacks[i];
		const Perftools__Profiles__Sample *s = sample_for(prof, st);

		CHECK(s != NULL);
		CHECK_EQ_U64(s->value[0], st->count);
		CHECK_EQ_U64(s->value[1], st->count * PERIOD_NS);
		CHECK(label(prof, s, "pid") && label(prof, s, "pid")->num == st->tgid);
		CHECK(label(prof, s, "tid") && label(prof, s, "tid")->num == st->tid);
		CHECK(label(prof, s, "thread_name"));
		CHECK_STR(str_at(prof, label(prof, s, "thread_name")->str), st->comm);
		CHECK(label(prof, s, "process_name"));
		CHECK_STR(str_at(prof, label(prof, s, "process_name")->str), st->pcomm);
	}

	const Perftools__Profiles__Sample *s = sample_for(prof, &g_stacks[S_SYS]);
	CHECK_STR(loc_fn_name(prof, loc_by_id(prof, s->location_id[0])), "do_syscall_64");
	CHECK(loc_by_id(prof, s->location_id[0])->mapping_id == kern->id);
	CHECK_EQ_U64(loc_by_id(prof, s->location_id[2])->n_line, 0); /* unsymbolized libc */
	CHECK(loc_by_id(prof, s->location_id[2])->mapping_id == libc->id);
	CHECK_STR(loc_fn_name(prof, loc_by_id(prof, s->location_id[3])), "main");

	/* the line and file of a symbolized frame */
	s = sample_for(prof, &g_stacks[S_WORK]);
	const Perftools__Profiles__Location *l = loc_by_id(prof, s->location_id[0]);
	CHECK_EQ_U64(l->line[0]->line, 20);
	CHECK_STR(str_at(prof, fn_by_id(prof, l->line[0]->function_id)->filename), "app.c");
	CHECK(l->mapping_id == app->id);
	/* work and work2: two locations, one function */
	const Perftools__Profiles__Sample *s2 = sample_for(prof, &g_stacks[S_WORK2]);
	const Perftools__Profiles__Location *l2 = loc_by_id(prof, s2->location_id[0]);
	CHECK(l2->id != l->id);
	CHECK_EQ_U64(l2->line[0]->function_id, l->line[0]->function_id);
	CHECK_EQ_U64(s2->location_id[1], s->location_id[1]); /* main shared */

	/* the frameless stack: one synthetic location named after the process */
	s = sample_for(prof, &g_stacks[S_EMPTY]);
	CHECK_EQ_U64(s->n_location_id, 1);
	l = loc_by_id(prof, s->location_id[0]);
	CHECK_EQ_U64(l->mapping_id, 0);
	CHECK_STR(loc_fn_name(prof, l), "app");

	/* idle: kernel frame, pid 0 */
	s = sample_for(prof, &g_stacks[S_IDLE]);
	CHECK_STR(loc_fn_name(prof, loc_by_id(prof, s->location_id[0])), "default_idle");
	CHECK_STR(str_at(prof, label(prof, s, "process_name")->str), "[idle]");

	/* names are kept verbatim in pprof (no folded-format sanitizing) */
	s = sample_for(prof, &g_stacks[S_ODD]);
	CHECK_STR(loc_fn_name(prof, loc_by_id(prof, s->location_id[0])), "odd;name\n");

	/* drop counts and host travel as comments */
	bool drops = false, host = false;
	for (size_t i = 0; i < prof->n_comment; i++) {
		const char *c = str_at(prof, prof->comment[i]);
		CHECK(c != NULL);
		drops |= strstr(c, "kernel_ring_full=5") && strstr(c, "queue_full=6");
		host |= strstr(c, "host-a") != NULL;
	}
	CHECK(drops && host);

	perftools__profiles__profile__free_unpacked(prof, NULL);
	return 0;
}

static int test_pprof_empty(void)
{
	struct profile p = {.signal = "cpu", .period_ns = PERIOD_NS};
	Perftools__Profiles__Profile *prof = pprof_roundtrip(&p);

	CHECK(prof != NULL);
	CHECK(check_pprof_valid(prof) == 0);
	CHECK_EQ_U64(prof->n_sample, 0);
	CHECK_EQ_U64(prof->n_sample_type, 2);
	perftools__profiles__profile__free_unpacked(prof, NULL);
	return 0;
}

static int test_pprof_errors(void)
{
	const struct sym_frame *bad_frames[] = {&f_main, NULL};
	struct profile_stack bad = fixture_stack(1, 1, "a", "a", 0, 2, bad_frames, 1);
	struct profile_stack huge = fixture_stack(1, 1, "a", "a", 0, 1, st_unk, UINT64_MAX / 2);
	struct profile p = {.period_ns = PERIOD_NS, .stacks = &bad, .n_stacks = 1};
	struct encoded_buf out = {0};

	CHECK(pprof__encode(&p, &out) == -EINVAL);
	CHECK(out.data == NULL);
	p.stacks = &huge; /* count * period does not fit an int64 */
	CHECK(pprof__encode(&p, &out) == -EOVERFLOW);
	CHECK(out.data == NULL);
	CHECK(pprof__encode(NULL, &out) == -EINVAL);
	return 0;
}

static int test_pprof_many(void)
{
	/* grows every table and hash several times; ids must stay consistent */
	enum { N = 3000, DISTINCT = 2000, DEPTH = 6 };
	static char names[DISTINCT][24];
	static struct sym_module mods[7];
	static char mod_paths[7][24];
	static struct sym_frame frames[DISTINCT];
	static const struct sym_frame *ptrs[N][DEPTH];
	static struct profile_stack stacks[N];
	struct profile p = {.period_ns = PERIOD_NS, .stacks = stacks, .n_stacks = N};

	for (size_t i = 0; i < 7; i++) {
		snprintf(mod_paths[i], sizeof(mod_paths[i]), "/lib/m%zu.so", i);
		mods[i] = (struct sym_module){
			.path = mod_paths[i], .name = mod_paths[i] + 5, .build_id = ""};
	}
	for (size_t i = 0; i < DISTINCT; i++) {
		snprintf(names[i], sizeof(names[i]), "fn_%zu", i % 1500);
		frames[i] = (struct sym_frame){.module = &mods[i % 7],
					       .address = 0x1000 + i,
					       .function = i % 11 ? names[i] : NULL,
					       .id = i + 1};
	}
	for (size_t i = 0; i < N; i++) {
		for (size_t d = 0; d < DEPTH; d++)
			ptrs[i][d] = &frames[(i * 7 + d * 13) % DISTINCT];
		stacks[i] =
			fixture_stack((uint32_t)i, (uint32_t)i, "t", "p", 0, DEPTH, ptrs[i], i + 1);
	}

	Perftools__Profiles__Profile *prof = pprof_roundtrip(&p);
	CHECK(prof != NULL);
	CHECK_EQ_U64(prof->n_sample, N);
	CHECK_EQ_U64(prof->n_mapping, 7);
	CHECK_EQ_U64(prof->n_location, DISTINCT);
	for (size_t i = 0; i < N; i++) {
		const Perftools__Profiles__Sample *s = prof->sample[i];
		CHECK_EQ_U64(s->value[0], i + 1);
		for (size_t d = 0; d < DEPTH; d++) {
			const Perftools__Profiles__Location *l = loc_by_id(prof, s->location_id[d]);
			CHECK(l && l->address == ptrs[i][d]->address);
			if (ptrs[i][d]->function)
				CHECK_STR(loc_fn_name(prof, l), ptrs[i][d]->function);
			else
				CHECK_EQ_U64(l->n_line, 0);
		}
	}
	/* functions dedup by name: 1500 names among symbolized frames */
	CHECK(prof->n_function <= 1500);
	perftools__profiles__profile__free_unpacked(prof, NULL);
	return 0;
}

static const Perftools__Profiles__Location *loc_by_addr(const Perftools__Profiles__Profile *prof,
							uint64_t addr)
{
	for (size_t i = 0; i < prof->n_location; i++)
		if (prof->location[i]->address == addr)
			return prof->location[i];
	return NULL;
}

/* Line k of location l is function name (system name sys) of file at line. */
static int check_line(const Perftools__Profiles__Profile *prof,
		      const Perftools__Profiles__Location *l, size_t k, const char *name,
		      const char *sys, const char *file, int64_t line)
{
	CHECK(k < l->n_line);
	const Perftools__Profiles__Function *fn = fn_by_id(prof, l->line[k]->function_id);
	CHECK(fn != NULL);
	CHECK_STR(str_at(prof, fn->name), name);
	CHECK_STR(str_at(prof, fn->system_name), sys);
	CHECK_STR(str_at(prof, fn->filename), file);
	CHECK_EQ_U64(l->line[k]->line, line);
	return 0;
}

static int test_pprof_inlined(void)
{
	struct profile p = inline_profile();
	Perftools__Profiles__Profile *prof = pprof_roundtrip(&p);
	const Perftools__Profiles__Location *run, *run2, *plain, *lmain;

	CHECK(prof != NULL);
	CHECK(check_pprof_valid(prof) == 0);
	run = loc_by_addr(prof, inline_f_run.address);
	run2 = loc_by_addr(prof, inline_f_run2.address);
	plain = loc_by_addr(prof, inline_f_plain.address);
	lmain = loc_by_addr(prof, inline_f_main.address);
	CHECK(run && run2 && plain && lmain);

	/* one Location per frame, its Lines innermost first */
	CHECK_EQ_U64(run->n_line, 3);
	CHECK(check_line(prof, run, 0, "app::hash<int>(int)", "_ZN3app4hashIiEEiT_", "hash.h", 7) ==
	      0);
	CHECK(check_line(prof, run, 1, "app::Table::lookup(int) const", "_ZNK3app5Table6lookupEi",
			 "table.h", 15) == 0);
	CHECK(check_line(prof, run, 2, "app::Server::run()", "_ZN3app6Server3runEv", "server.cc",
			 42) == 0);
	CHECK_EQ_U64(run2->n_line, 2);
	CHECK(check_line(prof, run2, 0, "app::Table::lookup(int) const", "_ZNK3app5Table6lookupEi",
			 "table.h", 16) == 0);
	CHECK(check_line(prof, run2, 1, "app::Server::run()", "_ZN3app6Server3runEv", "server.cc",
			 44) == 0);
	/* not mangled: system_name is the name */
	CHECK_EQ_U64(plain->n_line, 1);
	CHECK(check_line(prof, plain, 0, "app::hash<int>(int)", "app::hash<int>(int)", "hash.h",
			 9) == 0);
	CHECK(check_line(prof, lmain, 0, "main", "main", "server.cc", 5) == 0);

	/* Functions deduplicated by (name, system_name, filename): lookup once
	 * for two locations, hash twice (mangled, plain); main, run, hash x2,
	 * lookup, ksys_read */
	CHECK_EQ_U64(run2->line[0]->function_id, run->line[1]->function_id);
	CHECK_EQ_U64(run2->line[1]->function_id, run->line[2]->function_id);
	CHECK(plain->line[0]->function_id != run->line[0]->function_id);
	CHECK_EQ_U64(prof->n_function, 6);

	/* the user mapping says inlined calls are expanded; the kernel's has none */
	const Perftools__Profiles__Mapping *m = map_by_id(prof, run->mapping_id);
	CHECK(m != NULL);
	CHECK(m->has_inline_frames && m->has_functions && m->has_filenames && m->has_line_numbers);
	const Perftools__Profiles__Location *kread = loc_by_addr(prof, inline_f_read.address);
	CHECK(kread != NULL && kread->n_line == 1);
	m = map_by_id(prof, kread->mapping_id);
	CHECK(m != NULL && !m->has_inline_frames);

	/* the samples point at those locations, leaf first */
	CHECK_EQ_U64(prof->n_sample, 2);
	for (size_t i = 0; i < 2; i++) {
		const Perftools__Profiles__Sample *s = sample_for(prof, &g_inline_stacks[i]);
		CHECK(s != NULL);
	}
	perftools__profiles__profile__free_unpacked(prof, NULL);
	return 0;
}

typedef int (*encode_fn)(const struct profile *p, struct encoded_buf *out);

/* Fails the 1st, 2nd, ... allocation of one encoding in turn: each run must
 * return -ENOMEM with no output, or absorb the failure (pprof's shrinking
 * realloc of the gzip buffer may fail harmlessly) and return good output;
 * either way nothing may stay allocated. Ends with a run that fails nothing. */
static int check_oom(encode_fn enc, struct profile (*make)(void))
{
	struct profile p = make();
	long n, enomem = 0;

	for (n = 0; n < 100000; n++) {
		struct encoded_buf out = {0};
		long live = g_live;

		g_injected = false;
		g_fail_after = n;
		int rc = enc(&p, &out);
		g_fail_after = -1;
		if (rc == 0) {
			CHECK(out.data != NULL && out.len > 0);
			free(out.data);
		} else {
			CHECK(rc == -ENOMEM ||
			      (fprintf(stderr, "allocation %ld: rc %d\n", n, rc), 0));
			CHECK(out.data == NULL);
			enomem++;
		}
		CHECK(g_live == live ||
		      (fprintf(stderr, "allocation %ld: %ld blocks leaked\n", n, g_live - live),
		       0));
		if (!g_injected)
			break;
	}
	CHECK(!g_injected);
	CHECK(enomem > 3 && enomem >= n - 1); /* at most one failure absorbed */
	return 0;
}

static int test_folded_oom(void)
{
	return check_oom(folded__encode, fixture) || check_oom(folded__encode, inline_profile);
}

static int test_pprof_oom(void)
{
	return check_oom(pprof__encode, fixture) || check_oom(pprof__encode, inline_profile);
}

static const struct test_case cases[] = {
	{"folded_exact", test_folded_exact},
	{"folded_inlined", test_folded_inlined},
	{"folded_deterministic_order", test_folded_deterministic_order},
	{"folded_many_merge", test_folded_many_merge},
	{"folded_empty_and_errors", test_folded_empty_and_errors},
	{"pprof_structure", test_pprof_structure},
	{"pprof_empty", test_pprof_empty},
	{"pprof_errors", test_pprof_errors},
	{"pprof_many", test_pprof_many},
	{"pprof_inlined", test_pprof_inlined},
	{"folded_oom", test_folded_oom},
	{"pprof_oom", test_pprof_oom},
};

TEST_MAIN(cases)
