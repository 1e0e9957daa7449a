/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Frames with inlined calls and mangled names, as the DWARF symbolizer gives
 * them for optimized C++ (struct sym_frame's inlined[] and system_name), for
 * the encoder tests and sample writers (encoder_test.c, otlp_encoder_test.c,
 * flamegraph_test.c, pprof_sample_main.c). Header-only; every object is used
 * by inline_fixture_stacks(), so an includer that calls it uses them all.
 *
 *	stack (leaf first)                       samples
 *	run [lookup, hash inlined], main          INLINE_FIXTURE_RUN (6)
 *	ksys_read, run2 [lookup inlined], plain hash, main
 *	                                          INLINE_FIXTURE_RUN2 (2)
 *
 * run2 is another address of run's function with one inlined call, of the
 * same function as run's outer inlined call (they must share a Function);
 * plain is a function of the same name and file as run's inner inlined call
 * but not mangled (another Function: the system names differ).
 */
#ifndef PIPELINE_TESTS_INLINE_FIXTURE_H
#define PIPELINE_TESTS_INLINE_FIXTURE_H

#include "profile_fixture.h"

#define INLINE_FIXTURE_TGID 300
#define INLINE_FIXTURE_RUN  6
#define INLINE_FIXTURE_RUN2 2

static const struct sym_module inline_mod = {.path = "/usr/bin/server",
					     .name = "server",
					     .build_id = "feedface01234567",
					     .htlhash = "0123456789abcdef0123456789abcdef"};

/* innermost first */
static const struct sym_inline inline_run_calls[] = {
	{.function = "app::hash<int>(int)",
	 .system_name = "_ZN3app4hashIiEEiT_",
	 .file = "hash.h",
	 .line = 7},
	{.function = "app::Table::lookup(int) const",
	 .system_name = "_ZNK3app5Table6lookupEi",
	 .file = "table.h",
	 .line = 15},
};
static const struct sym_inline inline_run2_calls[] = {
	{.function = "app::Table::lookup(int) const",
	 .system_name = "_ZNK3app5Table6lookupEi",
	 .file = "table.h",
	 .line = 16},
};

static const struct sym_frame inline_f_run = {.module = &inline_mod,
					      .address = 0x2400,
					      .function = "app::Server::run()",
					      .system_name = "_ZN3app6Server3runEv",
					      .file = "server.cc",
					      .line = 42,
					      .kind = SYM_FRAME_USER,
					      .n_inlined = 2,
					      .inlined = inline_run_calls,
					      .id = 101};
static const struct sym_frame inline_f_run2 = {.module = &inline_mod,
					       .address = 0x2410,
					       .function = "app::Server::run()",
					       .system_name = "_ZN3app6Server3runEv",
					       .file = "server.cc",
					       .line = 44,
					       .kind = SYM_FRAME_USER,
					       .n_inlined = 1,
					       .inlined = inline_run2_calls,
					       .id = 102};
static const struct sym_frame inline_f_plain =
	FIXTURE_UFRAME(&inline_mod, 0x2500, "app::hash<int>(int)", "hash.h", 9, 103);
static const struct sym_frame inline_f_main =
	FIXTURE_UFRAME(&inline_mod, 0x2100, "main", "server.cc", 5, 104);
static const struct sym_frame inline_f_read =
	FIXTURE_KFRAME(0xffffffff81000400ULL, "ksys_read", 105);

static const struct sym_frame *const inline_st_run[] = {&inline_f_run, &inline_f_main};
static const struct sym_frame *const inline_st_run2[] = {&inline_f_read, &inline_f_run2,
							 &inline_f_plain, &inline_f_main};

/* Fills out[0..2) with the two stacks of the table above (process "server"). */
static inline void inline_fixture_stacks(struct profile_stack out[2])
{
	out[0] = fixture_stack(INLINE_FIXTURE_TGID, INLINE_FIXTURE_TGID, "server", "server", 0, 2,
			       inline_st_run, INLINE_FIXTURE_RUN);
	out[1] = fixture_stack(INLINE_FIXTURE_TGID, INLINE_FIXTURE_TGID + 1, "io", "server", 1, 3,
			       inline_st_run2, INLINE_FIXTURE_RUN2);
}

#endif /* PIPELINE_TESTS_INLINE_FIXTURE_H */
