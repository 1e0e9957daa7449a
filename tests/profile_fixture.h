/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Building blocks of the hand-made profiles that the encoder tests and sample
 * writers feed to the encoders (encoder_test.c, proto_compat_test.c,
 * pprof_sample_main.c, flamegraph_test.c, flamegraph_sample_main.c).
 * Header-only and stateless: initializer macros for modules and frames (so
 * they can stay static const), and helpers that return stacks and profiles by
 * value. The callers own every array the results point to.
 */
#ifndef PIPELINE_TESTS_PROFILE_FIXTURE_H
#define PIPELINE_TESTS_PROFILE_FIXTURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "profile.h"

/* The kernel image, named as the symbolizer names it. */
static const struct sym_module fixture_kernel = {.path = "[kernel.kallsyms]",
						 .name = "[kernel.kallsyms]",
						 .build_id = "",
						 .is_kernel = true};

/* A user frame at address addr of module *mod: function fn (NULL: no symbol)
 * at file:line (NULL, 0: unknown); id as the symbolizer would give it. */
#define FIXTURE_UFRAME(mod, addr, fn, file_, line_, id_)                                           \
	{                                                                                          \
		.module = (mod), .address = (addr), .function = (fn), .file = (file_),             \
		.line = (line_), .kind = SYM_FRAME_USER, .id = (id_)                               \
	}

/* A kernel frame: function fn at address addr of fixture_kernel. */
#define FIXTURE_KFRAME(addr, fn, id_)                                                              \
	{                                                                                          \
		.module = &fixture_kernel, .address = (addr), .function = (fn),                    \
		.kind = SYM_FRAME_KERNEL, .id = (id_)                                              \
	}

/*
 * A stack of count samples whose frames are leaf first: n_kernel kernel
 * frames, then n_user user frames. comm and pcomm are cut to fit; tgid 0 is
 * the idle task.
 */
static inline struct profile_stack
fixture_stack(uint32_t tgid, uint32_t tid, const char *comm, const char *pcomm, uint32_t n_kernel,
	      uint32_t n_user, const struct sym_frame *const *frames, uint64_t count)
{
	struct profile_stack s = {.tgid = tgid,
				  .tid = tid,
				  .n_kernel = n_kernel,
				  .n_user = n_user,
				  .frames = frames,
				  .count = count,
				  .idle = tgid == 0};

	snprintf(s.comm, sizeof(s.comm), "%s", comm);
	snprintf(s.pcomm, sizeof(s.pcomm), "%s", pcomm);
	return s;
}

/* A CPU profile of stacks[0..n) sampled at hz for 10 s from time_ns (ns since
 * the epoch), with total_samples summed and no drops. */
static inline struct profile fixture_profile(const char *hostname, uint64_t time_ns, uint32_t hz,
					     const struct profile_stack *stacks, size_t n)
{
	struct profile p = {.signal = "cpu",
			    .hostname = hostname,
			    .time_ns = time_ns,
			    .duration_ns = 10ull * 1000000000ull,
			    .frequency_hz = hz,
			    .period_ns = 1000000000ull / hz,
			    .stacks = stacks,
			    .n_stacks = n};

	for (size_t i = 0; i < n; i++)
		p.total_samples += stacks[i].count;
	return p;
}

#endif /* PIPELINE_TESTS_PROFILE_FIXTURE_H */
