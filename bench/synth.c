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

/* Made-up htlhashes: the symbolizer gives one for every file it can read,
 * and the OTLP encoder turns it into a Mapping attribute (the other encoders
 * ignore it). */
static const struct sym_module user_mods[] = {
	{.path = "/usr/bin/frontend",
	 .name = "frontend",
	 .build_id = "5f1c0de0a1b2c3d4e5f6",
	 .htlhash = "9a0c4e1f7b2d6a8e3c5f0b1d2e4a6c8f"},
	{.path = "/usr/lib/x86_64-linux-gnu/libc.so.6",
	 .name = "libc.so.6",
	 .build_id = "",
	 .htlhash = "1e7d3c5b9a0f2e4d6c8b0a1f3e5d7c9b"},
	{.path = "/usr/lib/x86_64-linux-gnu/libssl.so.3",
	 .name = "libssl.so.3",
	 .build_id = "",
	 .htlhash = "4b6d8f0a2c4e6a8c0e2b4d6f8a0c2e4b"},
	{.path = "/usr/lib/x86_64-linux-gnu/libstdc++.so.6",
	 .name = "libstdc++.so.6",
	 .build_id = "",
	 .htlhash = "7c9e1a3b5d7f9b1d3f5a7c9e1b3d5f7a"},
	{.path = "/usr/lib/x86_64-linux-gnu/libz.so.1",
	 .name = "libz.so.1",
	 .build_id = "",
	 .htlhash = "2f4a6c8e0b2d4f6a8c0e2a4c6e8b0d2f"},
};
#define N_USER_MODS (sizeof(user_mods) / sizeof(user_mods[0]))

static const struct sym_module kernel_mod = {.path = "[kernel.kallsyms]",
					     .name = "[kernel.kallsyms]",
					     .build_id = "",
					     .htlhash = "",
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

/* Frames of stack i of n in the call tree, leaf first: nk kernel frames (0
 * or KERNEL_FRAMES), then nu user frames. Returns nk. */
static unsigned tree_frames(const struct synth *s, const struct sym_frame **fr, size_t i, size_t n,
			    unsigned depth, uint64_t seed)
{
	unsigned nk = i % 4 == 0 && depth > KERNEL_FRAMES ? KERNEL_FRAMES : 0;
	unsigned nu = depth - nk;
	size_t width = 1;

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
	return nk;
}

static void fill_stack(const struct synth *s, struct profile_stack *st, const struct sym_frame **fr,
		       size_t i, size_t n, unsigned depth, uint64_t seed)
{
	unsigned nk = tree_frames(s, fr, i, n, depth, seed);
	unsigned nu = depth - nk;
	unsigned p = (unsigned)(i * PROCESSES / n);

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

/* ---- a whole interval (synth_interval__new) ---- */

#define PROC_STR_LEN	  128 /* per process: its executable path when not shared */
#define CONTAINER_ID_LEN  64
#define TGID_BASE	  1000
#define TGID_STRIDE	  211 /* > max threads + jitter: tids never collide with pids */
#define MAX_BIG_THREADS	  64
#define MAX_SMALL_THREADS 8
#define TICK_JITTER_NS	  20000 /* timer interrupts are not exactly periodic */

/* Executables shared by several processes (workers of one service). */
static const char *const shared_exes[] = {
	"/usr/bin/python3.11",
	"/usr/sbin/nginx",
	"/usr/lib/jvm/java-17-openjdk-amd64/bin/java",
	"/usr/bin/node",
	"/usr/local/bin/frontend",
	"/usr/bin/containerd-shim-runc-v2",
	"/usr/lib/postgresql/15/bin/postgres",
	"/usr/sbin/php-fpm8.2",
	"/usr/local/bin/envoy",
	"/usr/bin/redis-server",
	"/usr/bin/ruby3.1",
	"/usr/sbin/haproxy",
	"/usr/bin/memcached",
	"/usr/bin/kubelet",
	"/usr/lib/systemd/systemd-journald",
	"/usr/sbin/sshd",
};
#define N_SHARED_EXES (sizeof(shared_exes) / sizeof(shared_exes[0]))

static const char *const thread_names[] = {"worker", "io", "gc", "http", "grpc-exec", "tokio-rt"};
#define N_THREAD_NAMES (sizeof(thread_names) / sizeof(thread_names[0]))

struct synth_proc {
	uint32_t tgid;
	unsigned n_threads;
	char pcomm[PROFILE_COMM_LEN];
};

void synth_interval__free(struct synth_interval *si)
{
	if (!si)
		return;
	free(si->stacks);
	free(si->frames);
	free(si->times);
	free(si->processes);
	free(si->container_ids);
	free(si->paths);
	free(si);
}

/* Processes: tgids ascending, executable paths (one in three its own, the
 * rest shared), two in three in a container (shared by pairs), and more
 * threads in the first (biggest) ones. */
static void build_processes(struct synth_interval *si, struct synth_proc *procs, unsigned n,
			    uint64_t seed)
{
	for (unsigned k = 0; k < n; k++) {
		struct profile_process *pp = &si->processes[k];
		uint64_t h = mix(seed ^ 0x70726f63ull, k);
		char *path = si->paths + (size_t)k * PROC_STR_LEN;
		char *cid = si->container_ids + (size_t)k * (CONTAINER_ID_LEN + 1);
		const char *slash;

		procs[k].tgid = TGID_BASE + k * TGID_STRIDE + (uint32_t)(h % 64);
		procs[k].n_threads = k < n / 16 + 1 ? 8 + (unsigned)(h >> 8) % (MAX_BIG_THREADS - 7)
						    : 1 + (unsigned)(h >> 8) % MAX_SMALL_THREADS;
		if (k % 3 == 0)
			snprintf(path, PROC_STR_LEN, "/opt/svc-%03u/bin/svc-%03u-server", k, k);
		else
			snprintf(path, PROC_STR_LEN, "%s", shared_exes[(h >> 16) % N_SHARED_EXES]);
		pp->tgid = procs[k].tgid;
		pp->exe_path = path;
		slash = strrchr(path, '/');
		pp->exe_name = slash ? slash + 1 : path;
		snprintf(procs[k].pcomm, sizeof(procs[k].pcomm), "%s", pp->exe_name);
		if (k % 3 != 2) {
			uint64_t state = mix(seed ^ 0x636f6e74ull, k / 2), c = 0;

			for (int j = 0; j < CONTAINER_ID_LEN; j++) {
				if (j % 16 == 0)
					c = synth_rand(&state);
				cid[j] = "0123456789abcdef"[(c >> (4 * (j % 16))) & 15];
			}
			cid[CONTAINER_ID_LEN] = 0;
			pp->container_id = cid;
		}
	}
}

/* Stack i: its frames, process and thread; count and times come later. */
static void interval_stack(const struct synth *s, const struct synth_interval_cfg *cfg,
			   const struct synth_proc *pr, struct profile_stack *st,
			   const struct sym_frame **fr, size_t i)
{
	unsigned span = cfg->max_depth - cfg->min_depth + 1;
	unsigned depth = cfg->min_depth + (unsigned)(mix(cfg->seed ^ 0xde, i) % span);
	unsigned nk = tree_frames(s, fr, i, cfg->n_stacks, depth, cfg->seed);
	unsigned t = (unsigned)(mix(cfg->seed ^ 0x7e, i) % pr->n_threads);

	st->tgid = pr->tgid;
	st->tid = pr->tgid + t;
	snprintf(st->pcomm, sizeof(st->pcomm), "%s", pr->pcomm);
	if (t == 0)
		snprintf(st->comm, sizeof(st->comm), "%s", pr->pcomm);
	else
		snprintf(st->comm, sizeof(st->comm), "%s-%u", thread_names[t % N_THREAD_NAMES], t);
	st->n_kernel = nk;
	st->n_user = depth - nk;
	st->frames = fr;
}

/* Which stack takes each (cpu, tick) slot: every stack one shuffled slot, the
 * other slots a Zipf draw over popularity ranks. Returns 0 or -errno. */
static int assign_slots(uint32_t *owner, size_t slots, size_t n, uint64_t seed)
{
	uint32_t *perm = malloc(slots * sizeof(*perm));
	uint32_t *ranked = malloc(n * sizeof(*ranked));
	struct synth_zipf z = {0};
	uint64_t rng = seed ^ 0x736c6f74ull;
	int err = -ENOMEM;

	if (!perm || !ranked || synth_zipf__init(&z, n))
		goto out;
	for (size_t i = 0; i < n; i++)
		ranked[(i * RANK_STRIDE) % n] = (uint32_t)i;
	for (size_t j = 0; j < slots; j++)
		perm[j] = (uint32_t)j;
	for (size_t j = slots - 1; j > 0; j--) {
		size_t r = synth_rand(&rng) % (j + 1);
		uint32_t x = perm[j];

		perm[j] = perm[r];
		perm[r] = x;
	}
	for (size_t j = 0; j < slots; j++)
		owner[perm[j]] = j < n ? (uint32_t)j : ranked[synth_zipf__draw(&z, &rng)];
	err = 0;
out:
	synth_zipf__deinit(&z);
	free(perm);
	free(ranked);
	return err;
}

/* Counts and times of every stack, times in tick order (as they arrive). */
static int fill_times(struct synth_interval *si, const struct synth_interval_cfg *cfg,
		      uint64_t start_ns, uint64_t period_ns)
{
	size_t n = cfg->n_stacks, ticks = (size_t)cfg->hz * cfg->seconds;
	size_t slots = ticks * cfg->n_cpus;
	uint32_t *owner = malloc(slots * sizeof(*owner));
	size_t *at = calloc(n + 1, sizeof(*at));
	uint64_t *phase = malloc(cfg->n_cpus * sizeof(*phase));
	int err = -ENOMEM;

	if (!owner || !at || !phase)
		goto out;
	err = assign_slots(owner, slots, n, cfg->seed);
	if (err)
		goto out;
	for (size_t j = 0; j < slots; j++)
		si->stacks[owner[j]].count++;
	for (size_t i = 0; i < n; i++) {
		si->stacks[i].times = si->times + at[i];
		si->stacks[i].n_times = (uint32_t)si->stacks[i].count;
		at[i + 1] = at[i] + si->stacks[i].count;
	}
	for (unsigned c = 0; c < cfg->n_cpus; c++)
		phase[c] = mix(cfg->seed ^ 0xc9, c) % period_ns;
	for (size_t t = 0; t < ticks; t++) {
		for (unsigned c = 0; c < cfg->n_cpus; c++) {
			uint32_t i = owner[(size_t)c * ticks + t];
			uint64_t off = (phase[c] + mix(t, c) % TICK_JITTER_NS) % period_ns;

			si->times[at[i]++] = (struct profile_sample_time){
				.ns = start_ns + t * period_ns + off, .cpu = c};
		}
	}
	for (size_t i = 0; i < n; i++) {
		struct profile_stack *st = &si->stacks[i];

		st->first_ns = UINT64_MAX;
		for (uint32_t k = 0; k < st->n_times; k++) {
			if (st->times[k].ns < st->first_ns)
				st->first_ns = st->times[k].ns;
			if (st->times[k].ns > st->last_ns)
				st->last_ns = st->times[k].ns;
		}
	}
	si->profile.total_samples = slots;
	err = 0;
out:
	free(owner);
	free(at);
	free(phase);
	return err;
}

struct synth_interval *synth_interval__new(const struct synth *s,
					   const struct synth_interval_cfg *cfg)
{
	size_t n = cfg->n_stacks, slots = (size_t)cfg->hz * cfg->seconds * cfg->n_cpus;
	const uint64_t start_ns = 1700000000000000000ull;
	struct synth_interval *si;
	struct synth_proc *procs;
	unsigned np = cfg->n_processes;
	uint64_t rng = cfg->seed ^ 0x6f726465ull;
	double wsum = 0, w = 0;
	size_t first = 0, next;
	int err;

	if (!n || n > UINT32_MAX || !np || np > n || !cfg->min_depth ||
	    cfg->max_depth < cfg->min_depth || !cfg->hz || slots < n || slots > UINT32_MAX) {
		errno = EINVAL;
		return NULL;
	}
	si = calloc(1, sizeof(*si));
	procs = calloc(np, sizeof(*procs));
	if (!si || !procs)
		goto nomem;
	si->stacks = calloc(n, sizeof(*si->stacks));
	si->frames = calloc(n * cfg->max_depth, sizeof(*si->frames));
	si->times = calloc(slots, sizeof(*si->times));
	si->processes = calloc(np, sizeof(*si->processes));
	si->container_ids = calloc(np, CONTAINER_ID_LEN + 1);
	si->paths = calloc(np, PROC_STR_LEN);
	if (!si->stacks || !si->frames || !si->times || !si->processes || !si->container_ids ||
	    !si->paths)
		goto nomem;
	build_processes(si, procs, np, cfg->seed);

	/* Process k holds a block of stacks of size 1 + a share ~ 1 / (k + 1) of
	 * the rest, so a process's stacks are a subtree of the call tree. */
	for (unsigned k = 0; k < np; k++)
		wsum += 1.0 / (k + 1);
	for (unsigned k = 0; k < np; k++, first = next) {
		w += 1.0 / (k + 1);
		next = k + 1 == np ? n : k + 1 + (size_t)((double)(n - np) * (w / wsum));
		for (size_t i = first; i < next; i++)
			interval_stack(s, cfg, &procs[k], &si->stacks[i],
				       si->frames + i * cfg->max_depth, i);
	}
	err = fill_times(si, cfg, start_ns, 1000000000ull / cfg->hz);
	if (err) {
		free(procs);
		synth_interval__free(si);
		errno = -err;
		return NULL;
	}
	/* The aggregator hands its stacks over in hash order, not by process. */
	for (size_t i = n - 1; i > 0; i--) {
		size_t r = synth_rand(&rng) % (i + 1);
		struct profile_stack x = si->stacks[i];

		si->stacks[i] = si->stacks[r];
		si->stacks[r] = x;
	}
	si->profile = (struct profile){
		.signal = "cpu",
		.hostname = "bench-node-17.prod.example.internal",
		.time_ns = start_ns,
		.duration_ns = (uint64_t)cfg->seconds * 1000000000ull,
		.frequency_hz = cfg->hz,
		.period_ns = 1000000000ull / cfg->hz,
		.stacks = si->stacks,
		.n_stacks = n,
		.total_samples = si->profile.total_samples,
		.processes = si->processes,
		.n_processes = np,
		.times_complete = true,
	};
	free(procs);
	return si;
nomem:
	free(procs);
	synth_interval__free(si);
	errno = ENOMEM;
	return NULL;
}
