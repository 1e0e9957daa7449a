// SPDX-License-Identifier: BSD-2-Clause
/*
 * Synthetic inputs (see synth.h). Frames look like what the symbolizer hands
 * out today: a module, a file offset, a function name from the ELF symbol
 * table (about 3 % have none: module-level frames), no file or line.
 *
 * Stacks are paths in a call tree of branching factor 3: at distance d from
 * the root, stack i sits at node i * min(n, 3^d) / n, and the frame of a node
 * is a hash of (d, node) into the pool. So roots are shared, the tree fans
 * out over the first levels, and the deeper levels are distinct per stack,
 * as real profiles look to the aggregator and the flame graph.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "synth.h"

#define NAME_LEN	    48
#define KERNEL_FRAMES	    4 /* frames of a stack that enters the kernel */
#define PROCESSES	    8
#define THREADS_PER_PROCESS 4
#define RANK_STRIDE	    1000003u /* prime: i * stride mod n permutes 0..n-1 */

static const struct sym_module user_mods[] = {
	{.path = "/usr/bin/frontend", .name = "frontend", .build_id = "5f1c0de0a1b2c3d4e5f6"},
	{.path = "/usr/lib/x86_64-linux-gnu/libc.so.6", .name = "libc.so.6", .build_id = ""},
	{.path = "/usr/lib/x86_64-linux-gnu/libssl.so.3", .name = "libssl.so.3", .build_id = ""},
	{.path = "/usr/lib/x86_64-linux-gnu/libstdc++.so.6",
	 .name = "libstdc++.so.6",
	 .build_id = ""},
	{.path = "/usr/lib/x86_64-linux-gnu/libz.so.1", .name = "libz.so.1", .build_id = ""},
};
#define N_USER_MODS (sizeof(user_mods) / sizeof(user_mods[0]))

static const struct sym_module kernel_mod = {.path = "[kernel.kallsyms]",
					     .name = "[kernel.kallsyms]",
					     .build_id = "",
					     .is_kernel = true};

static const char *const nouns[] = {"http", "json", "db",    "cache", "rpc",
				    "auth", "log",  "sched", "tls",   "proto"};
static const char *const verbs[] = {"parse", "encode", "lookup", "insert", "dispatch",
				    "read",  "write",  "flush",	 "hash",   "compress"};

struct synth {
	struct sym_frame *frames; /* n_user user frames, then n_kernel kernel frames */
	size_t n_user, n_kernel;
	char *names; /* NAME_LEN bytes per frame */
};

static uint64_t mix(uint64_t a, uint64_t b)
{
	uint64_t s = a * 0x9e3779b97f4a7c15ull ^ b;

	return synth_rand(&s);
}

struct synth *synth__new(size_t n_user, size_t n_kernel, uint64_t seed)
{
	size_t n = n_user + n_kernel;
	struct synth *s;

	if (n_user < 2 || n_kernel < KERNEL_FRAMES) {
		errno = EINVAL;
		return NULL;
	}
	s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->frames = calloc(n, sizeof(*s->frames));
	s->names = malloc(n * NAME_LEN);
	if (!s->frames || !s->names) {
		synth__free(s);
		errno = ENOMEM;
		return NULL;
	}
	s->n_user = n_user;
	s->n_kernel = n_kernel;
	for (size_t i = 0; i < n; i++) {
		struct sym_frame *f = &s->frames[i];
		char *name = s->names + i * NAME_LEN;
		uint64_t h = mix(seed, i);
		bool kernel = i >= n_user;

		/* Most user frames are in the executable, then libc. */
		size_t m = h % 10 < 6 ? 0 : h % 10 < 8 ? 1 : 2 + h % (N_USER_MODS - 2);

		f->module = kernel ? &kernel_mod : &user_mods[m];
		f->kind = kernel ? SYM_FRAME_KERNEL : SYM_FRAME_USER;
		f->address = kernel ? 0xffffffff81000000ull + i * 0x80 : 0x1000 + i * 0x40;
		f->id = i + 1;
		if (kernel)
			snprintf(name, NAME_LEN, "__x64_sys_%s_%zu", verbs[h % 10], i - n_user);
		else
			snprintf(name, NAME_LEN, "%s_%s_%s_%zu", f->module->name, nouns[h % 10],
				 verbs[(h >> 8) % 10], i);
		f->function = !kernel && (h >> 16) % 100 < 3 ? NULL : name;
	}
	return s;
}

void synth__free(struct synth *s)
{
	if (!s)
		return;
	free(s->frames);
	free(s->names);
	free(s);
}

static void fill_stack(const struct synth *s, struct profile_stack *st, const struct sym_frame **fr,
		       size_t i, size_t n, unsigned depth, uint64_t seed)
{
	unsigned nk = i % 4 == 0 && depth > KERNEL_FRAMES ? KERNEL_FRAMES : 0;
	unsigned nu = depth - nk;
	size_t width = 1;
	unsigned p = (unsigned)(i * PROCESSES / n);

	/* Kernel part, leaf first: a leaf, a syscall, do_syscall_64, entry. */
	for (unsigned k = 0; k < nk; k++) {
		size_t idx = k == nk - 1   ? 0
			     : k == nk - 2 ? 1
					   : 2 + mix(seed, i >> (2 * k)) % (s->n_kernel - 2);

		fr[k] = &s->frames[s->n_user + idx];
	}
	/* User part: the root (distance 0) is the last frame. */
	for (unsigned d = 0; d < nu; d++) {
		size_t node = (size_t)((unsigned __int128)i * width / n);

		fr[nk + nu - 1 - d] = &s->frames[mix(seed ^ d, node) % s->n_user];
		if (width < n)
			width = width * 3 < n ? width * 3 : n;
	}
	st->tgid = 4000 + p * 100;
	st->tid = st->tgid + (unsigned)(i % THREADS_PER_PROCESS);
	snprintf(st->comm, sizeof(st->comm), "worker-%zu", i % THREADS_PER_PROCESS);
	snprintf(st->pcomm, sizeof(st->pcomm), "service-%u", p);
	st->n_kernel = nk;
	st->n_user = nu;
	st->frames = fr;
	st->count = 1 + 1000 / ((i * RANK_STRIDE) % n + 1);
	st->first_ns = 1700000000000000000ull;
	st->last_ns = st->first_ns + 10000000000ull;
}

struct synth_stacks *synth_stacks__new(const struct synth *s, size_t n, unsigned depth,
				       uint64_t seed)
{
	struct synth_stacks *st;

	if (!n || !depth) {
		errno = EINVAL;
		return NULL;
	}
	st = calloc(1, sizeof(*st));
	if (!st)
		return NULL;
	st->stacks = calloc(n, sizeof(*st->stacks));
	st->frames = calloc(n * depth, sizeof(*st->frames));
	if (!st->stacks || !st->frames) {
		synth_stacks__free(st);
		errno = ENOMEM;
		return NULL;
	}
	st->n = n;
	for (size_t i = 0; i < n; i++) {
		fill_stack(s, &st->stacks[i], st->frames + i * depth, i, n, depth, seed);
		st->total += st->stacks[i].count;
	}
	return st;
}

void synth_stacks__free(struct synth_stacks *st)
{
	if (!st)
		return;
	free(st->stacks);
	free(st->frames);
	free(st);
}

int synth_zipf__init(struct synth_zipf *z, size_t n)
{
	double sum = 0;

	z->n = 0;
	z->cdf = malloc((n ? n : 1) * sizeof(*z->cdf));
	if (!z->cdf)
		return -ENOMEM;
	for (size_t k = 0; k < n; k++)
		z->cdf[k] = (sum += 1.0 / (double)(k + 1));
	for (size_t k = 0; k < n; k++)
		z->cdf[k] /= sum;
	z->n = n;
	return 0;
}

void synth_zipf__deinit(struct synth_zipf *z)
{
	free(z->cdf);
	z->cdf = NULL;
	z->n = 0;
}

size_t synth_zipf__draw(const struct synth_zipf *z, uint64_t *rng)
{
	double u = (double)(synth_rand(rng) >> 11) * 0x1.0p-53;
	size_t lo = 0, hi = z->n - 1;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (z->cdf[mid] < u)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}
