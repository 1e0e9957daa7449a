/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Concurrency validator for the symbolizer (label concurrency; run it under
 * ThreadSanitizer too: -DPIPELINE_TSAN=ON).
 *
 * Usage: symbolizer_concurrency_test [threads [iterations [evict]]]
 *
 * T threads, each with its own sym_reader, start together on a cold
 * symbolizer (so they race on the first maps read, ELF loads, kallsyms load
 * and interning) and resolve the same user and kernel addresses I times,
 * while the main thread keeps invalidating this process, reading stats and
 * asking for this process's info (racing the first maps read, which reads it
 * too, and the re-reads after each invalidation); workers ask for it too.
 * Invariants: every thread gets the same frame pointer for the same input on
 * every iteration (interning is stable across invalidations, since the
 * re-read maps name the same modules), names are right, the process info
 * is this executable and one interned string throughout, every module has a
 * non-NULL htlhash, and the counters add up.
 *
 * With "evict", the symbolizer's bound is set just above what the fixed
 * addresses need, and each thread also resolves a libc address never seen
 * before on every iteration: new frames fill the bound, so libc's and this
 * executable's symbols are evicted and loaded again while other threads
 * name frames with them (pinned, unlocked). Frames handed out must stay the
 * same pointers and readable; new frames are named or module-level, never
 * wrong; names are checked only if the first pass got them.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "symbolizer.h"
#include "test_helpers.h"

#define N_USER	    12
#define N_KERNEL    8
#define MAX_THREADS 64

#define TEST_FN(name, k)                                                                           \
	__attribute__((noinline, used)) static int name(int x)                                     \
	{                                                                                          \
		volatile int v = x * (k);                                                          \
		return v + (k);                                                                    \
	}

TEST_FN(conc_fn_one, 3)
TEST_FN(conc_fn_two, 5)
TEST_FN(conc_fn_three, 7)
TEST_FN(conc_fn_four, 11)

struct shared {
	struct symbolizer *sym;
	pthread_barrier_t start;
	uint64_t user[N_USER];
	uint64_t kernel[N_KERNEL];
	size_t n_kernel;
	unsigned iterations;
	atomic_int running;
	char exe[4096];	       /* /proc/self/exe */
	bool evict;	       /* fresh libc and ld.so addresses, a tight bound */
	uint64_t lo[2], hi[2]; /* libc's and ld.so's text, for fresh addresses */
	unsigned threads;
	_Atomic(const char *) exe_path; /* the first interned exe path seen */
};

struct worker {
	pthread_t thread;
	struct shared *sh;
	unsigned id;
	const struct sym_frame *user[N_USER];
	const struct sym_frame *kernel[N_KERNEL];
	int failed; /* line of the first failed check, 0 if none */
};

#define WCHECK(w, cond)                                                                            \
	do {                                                                                       \
		if (!(cond) && !(w)->failed)                                                       \
			(w)->failed = __LINE__;                                                    \
	} while (0)

/* Returns true if this process's info is right and its exe path is the same
 * interned string every time. */
static bool info_ok(struct shared *sh)
{
	struct sym_process_info pi;
	const char *expected = NULL;

	if (symbolizer__process_info(sh->sym, (uint32_t)getpid(), &pi) != 0)
		return false;
	if (pi.tgid != (uint32_t)getpid() || !pi.exe_path || strcmp(pi.exe_path, sh->exe) != 0)
		return false;
	if (!atomic_compare_exchange_strong(&sh->exe_path, &expected, pi.exe_path))
		return expected == pi.exe_path;
	return true;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct shared *sh = w->sh;
	struct sym_reader *rd = symbolizer__reader_new(sh->sym);
	const struct sym_frame *u[N_USER], *k[N_KERNEL];

	WCHECK(w, rd);
	pthread_barrier_wait(&sh->start);
	for (unsigned it = 0; rd && it < sh->iterations; it++) {
		WCHECK(w,
		       sym_reader__resolve_user(rd, (uint32_t)getpid(), sh->user, N_USER, u) == 0);
		WCHECK(w, sym_reader__resolve_kernel(rd, sh->kernel, sh->n_kernel, k) == 0);
		for (size_t i = 0; i < N_USER; i++) {
			if (it == 0)
				w->user[i] = u[i];
			/* Under the bound a frame may be module-level at first
			 * and named later; once named it never changes. */
			if (sh->evict && u[i] && u[i] != w->user[i] && !w->user[i]->function)
				w->user[i] = u[i];
			WCHECK(w, u[i] && u[i] == w->user[i]);
			WCHECK(w, u[i]->module->htlhash && u[i]->module->build_id);
		}
		if (it % 256 == 0)
			WCHECK(w, info_ok(sh));
		if (sh->evict && it % 4 == 0) {
			/* Alternating files, so each reload evicts the other. */
			unsigned file = (it / 4 + w->id) % 2;
			uint64_t span = (sh->hi[file] - sh->lo[file]) / 16;
			uint64_t a =
				sh->lo[file] + ((uint64_t)it / 8 * sh->threads + w->id) % span * 16;
			const struct sym_frame *f = NULL;

			WCHECK(w, sym_reader__resolve_user(rd, (uint32_t)getpid(), &a, 1, &f) == 0);
			WCHECK(w, f && strstr(f->module->name, file ? "ld-linux" : "libc"));
			WCHECK(w, !f->function || f->function[0]);
		}
		for (size_t i = 0; i < sh->n_kernel; i++) {
			if (it == 0)
				w->kernel[i] = k[i];
			WCHECK(w, k[i] && k[i] == w->kernel[i]);
		}
	}
	sym_reader__free(rd);
	atomic_fetch_sub(&sh->running, 1);
	return NULL;
}

/* Finds the executable mapping of a file whose path contains name in
 * /proc/self/maps. */
static bool text_of(const char *name, uint64_t *lo, uint64_t *hi)
{
	FILE *f = fopen("/proc/self/maps", "r");
	unsigned long long a, b;
	char line[512], perms[8];
	bool found = false;

	while (f && !found && fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%llx-%llx %7s", &a, &b, perms) == 3 && perms[2] == 'x' &&
		    strstr(line, name)) {
			*lo = a;
			*hi = b;
			found = true;
		}
	}
	if (f)
		fclose(f);
	return found;
}

/* A few kernel text addresses, if kallsyms shows them; else made-up ones. */
static size_t kernel_addrs(uint64_t *out, size_t max)
{
	FILE *f = fopen("/proc/kallsyms", "r");
	unsigned long long addr;
	char line[512], type;
	size_t n = 0;

	while (f && n < max && fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%llx %c", &addr, &type) == 2 && addr && (type == 'T'))
			out[n++] = addr + 1;
	}
	if (f)
		fclose(f);
	for (; n < max; n++)
		out[n] = 0xffffffff81000000ull + n * 64;
	return n;
}

int main(int argc, char **argv)
{
	unsigned threads = argc > 1 ? (unsigned)atoi(argv[1]) : 4;
	struct symbolizer_opts opts = {.kernel = true};
	static struct worker w[MAX_THREADS];
	struct symbolizer_stats st;
	struct shared sh = {0};
	unsigned invalidations = 0;
	int failed = 0;

	sh.iterations = argc > 2 ? (unsigned)atoi(argv[2]) : 2000;
	sh.evict = argc > 3 && strcmp(argv[3], "evict") == 0;
	sh.threads = threads;
	if (threads < 1 || threads > MAX_THREADS || !sh.iterations) {
		fprintf(stderr, "usage: %s [threads 1..%d [iterations]]\n", argv[0], MAX_THREADS);
		return 2;
	}
	sh.sym = symbolizer__new(&opts);
	CHECK(sh.sym);
	{
		ssize_t n = readlink("/proc/self/exe", sh.exe, sizeof(sh.exe) - 1);

		CHECK(n > 0);
		sh.exe[n] = '\0';
	}
	sh.user[0] = (uint64_t)(uintptr_t)conc_fn_one;
	sh.user[1] = (uint64_t)(uintptr_t)conc_fn_two + 1;
	sh.user[2] = (uint64_t)(uintptr_t)conc_fn_three + 1;
	sh.user[3] = (uint64_t)(uintptr_t)conc_fn_four + 1;
	sh.user[4] = (uint64_t)(uintptr_t)&worker_main + 1;
	sh.user[5] = (uint64_t)(uintptr_t)&main + 1;
	sh.user[6] = (uint64_t)(uintptr_t)&qsort + 1;
	sh.user[7] = (uint64_t)(uintptr_t)&fopen + 1;
	sh.user[8] = (uint64_t)(uintptr_t)&pthread_create + 1;
	sh.user[9] = 0x1001;				    /* unknown: looked up at 0x1000 */
	sh.user[10] = 0x1001;				    /* the same again */
	sh.user[11] = (uint64_t)(uintptr_t)conc_fn_one + 1; /* leaf user[0] again */
	sh.n_kernel = kernel_addrs(sh.kernel, N_KERNEL);
	if (sh.evict) {
		/* What the fixed addresses take (this executable's and libc's
		 * symbols, kallsyms), plus 64 KiB: the new frames to come
		 * (about 2,000, some 300 KiB) soon fill it, and from then on
		 * libc and ld.so evict each other. */
		struct sym_reader *rd = symbolizer__reader_new(sh.sym);
		const struct sym_frame *u[N_USER];

		CHECK(text_of("/libc.so", &sh.lo[0], &sh.hi[0]));
		CHECK(text_of("/ld-linux", &sh.lo[1], &sh.hi[1]));
		const struct sym_frame *k[N_KERNEL];

		CHECK(rd &&
		      sym_reader__resolve_user(rd, (uint32_t)getpid(), sh.user, N_USER, u) == 0);
		CHECK(sym_reader__resolve_kernel(rd, sh.kernel, sh.n_kernel, k) == 0);
		sym_reader__free(rd);
		symbolizer__stats(sh.sym, &st);
		symbolizer__free(sh.sym);
		opts.max_cache_bytes = st.cache_bytes + (64u << 10);
		sh.sym = symbolizer__new(&opts);
		CHECK(sh.sym);
	}
	atomic_store(&sh.running, (int)threads);
	CHECK(pthread_barrier_init(&sh.start, NULL, threads + 1) == 0);
	for (unsigned i = 0; i < threads; i++) {
		w[i].sh = &sh;
		w[i].id = i;
		CHECK(pthread_create(&w[i].thread, NULL, worker_main, &w[i]) == 0);
	}
	pthread_barrier_wait(&sh.start);
	CHECK(info_ok(&sh)); /* races the workers' first maps read */
	while (atomic_load(&sh.running) > 0) {
		symbolizer__invalidate_process(sh.sym, (uint32_t)getpid());
		symbolizer__stats(sh.sym, &st);
		failed |= !info_ok(&sh);
		invalidations++;
		usleep(500);
	}
	for (unsigned i = 0; i < threads; i++)
		pthread_join(w[i].thread, NULL);
	pthread_barrier_destroy(&sh.start);

	for (unsigned i = 0; i < threads; i++) {
		if (w[i].failed) {
			fprintf(stderr, "thread %u: check failed at line %d\n", i, w[i].failed);
			failed = 1;
		}
		for (size_t j = 0; j < N_USER; j++)
			failed |= w[i].user[j] != w[0].user[j] &&
				  (!sh.evict || (w[i].user[j]->function && w[0].user[j]->function));
		for (size_t j = 0; j < sh.n_kernel; j++)
			failed |= w[i].kernel[j] != w[0].kernel[j];
	}
	CHECK(!failed);
	symbolizer__stats(sh.sym, &st);
	if (!sh.evict || w[0].user[0]->function) {
		CHECK_STR(w[0].user[0]->function, "conc_fn_one");
		CHECK_STR(w[0].user[1]->function, "conc_fn_two");
		CHECK_STR(w[0].user[4]->function, "worker_main");
		CHECK_STR(w[0].user[5]->function, "main");
	}
	if (sh.evict)
		CHECK(st.images_evicted > 0);
	CHECK_STR(w[0].user[9]->module->name, "[unknown]");
	CHECK_STR(w[0].user[9]->module->htlhash, "");
	CHECK_EQ_U64(strlen(w[0].user[0]->module->htlhash), 32); /* this executable */
	CHECK(w[0].user[9] == w[0].user[10]);
	CHECK(w[0].user[11] == w[0].user[0]);
	CHECK_EQ_U64(st.lookups,
		     (uint64_t)threads * sh.iterations * (N_USER + sh.n_kernel) +
			     (sh.evict ? (uint64_t)threads * ((sh.iterations + 3) / 4) : 0));
	CHECK_EQ_U64(st.lookups, st.reader_hits + st.shared_hits + st.misses);
	CHECK(st.reader_hits > 0);
	/* Invalidations empty the readers' caches of this process: once its
	 * maps are re-read, the shared indexes serve them without the lock. */
	CHECK(st.lockfree_hits > 0);
	CHECK(st.lockfree_hits <= st.shared_hits);
	CHECK_EQ_U64(st.processes, 1);
	printf("ok   %u threads x %u iterations, %u invalidations: lookups %llu, reader hits "
	       "%llu, shared hits %llu (lock-free %llu), misses %llu, maps refreshes %llu, "
	       "images evicted %llu, coarse %llu\n",
	       threads, sh.iterations, invalidations, (unsigned long long)st.lookups,
	       (unsigned long long)st.reader_hits, (unsigned long long)st.shared_hits,
	       (unsigned long long)st.lockfree_hits, (unsigned long long)st.misses,
	       (unsigned long long)st.maps_refreshes, (unsigned long long)st.images_evicted,
	       (unsigned long long)st.cache_full);
	symbolizer__free(sh.sym);
	return 0;
}
