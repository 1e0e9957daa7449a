// SPDX-License-Identifier: BSD-2-Clause
/*
 * Stage 3, the symbolizer (symbolizer/symbolizer.h), on this very process:
 * 256 addresses spread over the text of the pipeline-bench executable and
 * 256 over libc's, found in /proc/self/maps, arranged as 20-frame stacks
 * (leaf and two callers in libc, the rest in the executable), resolved by
 * one sym_reader as a shard worker does.
 *
 * Measurements (single thread; symbolizer__new/free stay outside the timer):
 *   - user, warm: every address already in the reader's private cache (the
 *     per-sample hot path, no lock); per address;
 *   - user, first sight: maps read and both ELF files loaded, each address
 *     new (the slow path under the shared lock: symbol search, interning);
 *     per address;
 *   - user, cold process: the first stack of a process a new symbolizer has
 *     never seen: /proc/self/maps read, executable and libc ELF symbol tables
 *     loaded (from the page cache: "cold" for the symbolizer, not the disk);
 *     per stack;
 *   - user, maps re-read: symbolizer__invalidate_process() (an exec), then a
 *     stack: the maps are read again, the ELF files stay loaded; per stack;
 *   - kernel, warm and cold (the first resolve loads /proc/kallsyms), from
 *     256 text symbols spread over /proc/kallsyms; skipped with a note when
 *     the file cannot be read or its addresses are hidden (kptr_restrict);
 *   - then memory per process sharing libc (throughput_sym_procs.c, with the
 *     first warm stack) and the cold loads of a large C++ binary and of libc
 *     (throughput_sym_large.c).
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "self_text.h"
#include "bench.h"
#include "symbolizer.h"
#include "synth.h"
#include "throughput.h"
#include "throughput_sym.h"

#define POOL_PER_FILE 256
#define N_STACKS      64
#define DEPTH	      20
#define LIBC_FRAMES   3 /* leaf and its two callers */
#define K_POOL	      256
#define K_DEPTH	      8
#define BASE_WARM     200000 /* stacks resolved per repetition, full run */
#define BASE_COLD     10     /* fresh symbolizers per repetition, full run */
#define BASE_REREAD   200
#define BASE_KCOLD    3

struct sym_bench {
	const struct tp_cfg *cfg;
	uint32_t tgid;
	uint64_t pool[2 * POOL_PER_FILE]; /* executable's, then libc's */
	size_t n_exe, n_pool;
	uint64_t primer[2];		  /* one address in each file, outside pool */
	uint64_t stacks[N_STACKS][DEPTH]; /* warm working set */
	uint64_t kpool[K_POOL];
	size_t n_kpool;
	uint64_t kstacks[N_STACKS][K_DEPTH];
};

static int setup_user(struct sym_bench *b)
{
	struct bench_text_range exe, libc;
	uint64_t rng = b->cfg->seed;
	size_t n_libc;
	int err = bench_self_text__find(&exe, &libc);

	if (err)
		return err;
	b->tgid = (uint32_t)getpid();
	bench_self_text__spread(b->pool, POOL_PER_FILE, &exe);
	b->n_exe = POOL_PER_FILE;
	n_libc = libc.lo ? POOL_PER_FILE : 0;
	bench_self_text__spread(b->pool + b->n_exe, n_libc, &libc);
	b->n_pool = b->n_exe + n_libc;
	b->primer[0] = exe.lo + 16;
	b->primer[1] = libc.lo ? libc.lo + 16 : exe.lo + 32;
	for (size_t s = 0; s < N_STACKS; s++)
		for (size_t d = 0; d < DEPTH; d++) {
			uint64_t r = synth_rand(&rng);

			b->stacks[s][d] = d < LIBC_FRAMES && n_libc ? b->pool[b->n_exe + r % n_libc]
								    : b->pool[r % b->n_exe];
		}
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

/* Reads kernel text addresses. Returns 0, or -errno with why set. */
static int setup_kernel(struct sym_bench *b, char *why, size_t why_size)
{
	FILE *f = fopen("/proc/kallsyms", "re");
	uint64_t *addrs = NULL, rng = b->cfg->seed;
	size_t n = 0, cap = 0;
	char line[512];
	int err = 0;

	if (!f) {
		err = -errno;
		snprintf(why, why_size, "cannot read /proc/kallsyms: %s", strerror(-err));
		return err;
	}
	while (fgets(line, sizeof(line), f)) {
		unsigned long long a;
		char type;

		if (sscanf(line, "%llx %c", &a, &type) != 2 || !a || (type != 't' && type != 'T'))
			continue;
		if (n == cap) {
			uint64_t *grown =
				realloc(addrs, (cap = cap ? 2 * cap : 4096) * sizeof(*addrs));

			if (!grown) {
				err = -ENOMEM;
				goto cleanup;
			}
			addrs = grown;
		}
		addrs[n++] = a;
	}
	if (n < 2 * K_POOL) {
		err = -EPERM;
		snprintf(why, why_size,
			 "kernel addresses hidden in /proc/kallsyms (kptr_restrict): run as root");
		goto cleanup;
	}
	qsort(addrs, n, sizeof(*addrs), cmp_u64);
	/* One symbol in each of K_POOL equal slices of the sorted table, 8 bytes
	 * in: the first one whose next symbol is further away than that. */
	for (size_t i = 0; i < K_POOL; i++)
		for (size_t j = i * (n / K_POOL); j < (i + 1) * (n / K_POOL) && j + 1 < n; j++)
			if (addrs[j + 1] - addrs[j] > 16) {
				b->kpool[b->n_kpool++] = addrs[j] + 8;
				break;
			}
	for (size_t s = 0; s < N_STACKS; s++)
		for (size_t d = 0; d < K_DEPTH; d++)
			b->kstacks[s][d] = b->kpool[synth_rand(&rng) % b->n_kpool];
cleanup:
	fclose(f);
	free(addrs);
	if (err == -ENOMEM)
		snprintf(why, why_size, "out of memory");
	return err;
}

static int resolve(struct sym_reader *rd, bool kernel, uint32_t tgid, const uint64_t *a, size_t n,
		   const struct sym_frame **out)
{
	return kernel ? sym_reader__resolve_kernel(rd, a, n, out)
		      : sym_reader__resolve_user(rd, tgid, a, n, out);
}

/* A symbolizer and its reader, both or neither. Returns 0 or -errno. */
static int sym_open(bool kernel, struct symbolizer **sym, struct sym_reader **rd)
{
	struct symbolizer_opts opts = {.kernel = kernel};

	*rd = NULL;
	*sym = symbolizer__new(&opts);
	if (!*sym)
		return -errno;
	*rd = symbolizer__reader_new(*sym);
	if (!*rd) {
		int err = -errno;

		symbolizer__free(*sym);
		*sym = NULL;
		return err;
	}
	return 0;
}

static void sym_close(struct symbolizer *sym, struct sym_reader *rd)
{
	sym_reader__free(rd);
	symbolizer__free(sym);
}

/* Warm lookups on a symbolizer that has seen every stack. */
static int bench_warm(struct sym_bench *b, bool kernel, struct bench_row *row)
{
	const uint64_t *stacks = kernel ? &b->kstacks[0][0] : &b->stacks[0][0];
	size_t depth = kernel ? K_DEPTH : DEPTH, named = 0;
	uint64_t n = tp_ops(b->cfg, BASE_WARM), deadline = bench_now_ns() + b->cfg->budget_ns;
	uint64_t t0, ns = 0, k = 0;
	const struct sym_frame *out[DEPTH];
	struct symbolizer *sym;
	struct sym_reader *rd;
	int err = sym_open(kernel, &sym, &rd);

	if (err)
		return err;
	for (size_t s = 0; s < N_STACKS && !err; s++) {
		err = resolve(rd, kernel, b->tgid, stacks + s * depth, depth, out);
		for (size_t d = 0; d < depth; d++)
			named += out[d]->function != NULL;
	}
	for (t0 = bench_now_ns(); !err && k < n; k++) {
		if (!(k & 255) && bench_now_ns() > deadline)
			break;
		err = resolve(rd, kernel, b->tgid, stacks + (k % N_STACKS) * depth, depth, out);
	}
	ns = bench_now_ns() - t0;
	bench_row__rep(row, k * depth, ns);
	bench_row__extra(row, "named_pct", 100.0 * (double)named / (double)(N_STACKS * depth));
	sym_close(sym, rd);
	return err;
}

/*
 * Lookups that miss a reader's own cache but that another reader resolved
 * before: served by the shared indexes without the lock (a worker's first
 * samples of a process its peers already profile, or right after its cache
 * was filled by other processes). A fresh reader per pass, the first
 * reader's frames in the shared tables.
 */
static int bench_shared(struct sym_bench *b, bool kernel, struct bench_row *row)
{
	const uint64_t *stacks = kernel ? &b->kstacks[0][0] : &b->stacks[0][0];
	size_t depth = kernel ? K_DEPTH : DEPTH;
	uint64_t n = tp_ops(b->cfg, BASE_COLD), deadline = bench_now_ns() + b->cfg->budget_ns;
	uint64_t ns = 0, k = 0, lookups0, lockfree0;
	const struct sym_frame *out[DEPTH];
	struct symbolizer_stats st;
	struct symbolizer *sym;
	struct sym_reader *rd;
	int err = sym_open(kernel, &sym, &rd);

	if (err)
		return err;
	for (size_t s = 0; s < N_STACKS && !err; s++)
		err = resolve(rd, kernel, b->tgid, stacks + s * depth, depth, out);
	symbolizer__stats(sym, &st);
	lookups0 = st.lookups;
	lockfree0 = st.lockfree_hits;
	for (; k < n && !err && bench_now_ns() < deadline; k++) {
		struct sym_reader *fresh = symbolizer__reader_new(sym);
		uint64_t t0;

		if (!fresh) {
			err = -errno;
			break;
		}
		t0 = bench_now_ns();
		for (size_t s = 0; s < N_STACKS && !err; s++)
			err = resolve(fresh, kernel, b->tgid, stacks + s * depth, depth, out);
		ns += bench_now_ns() - t0;
		sym_reader__free(fresh);
	}
	symbolizer__stats(sym, &st);
	bench_row__rep(row, k * N_STACKS * depth, ns);
	bench_row__extra(row, "lockfree_pct",
			 st.lookups > lookups0 ? 100.0 * (double)(st.lockfree_hits - lockfree0) /
							 (double)(st.lookups - lookups0)
					       : 0);
	sym_close(sym, rd);
	return err;
}

/* Each address new to a symbolizer that has read the maps and loaded both files. */
static int bench_first_sight(struct sym_bench *b, struct bench_row *row)
{
	uint64_t n = tp_ops(b->cfg, BASE_COLD), deadline = bench_now_ns() + b->cfg->budget_ns;
	uint64_t ns = 0, addrs = 0;
	const struct sym_frame *out[DEPTH];
	int err = 0;

	for (uint64_t k = 0; k < n && !err && bench_now_ns() < deadline; k++) {
		struct symbolizer *sym;
		struct sym_reader *rd;
		uint64_t t0;

		err = sym_open(false, &sym, &rd);
		if (err)
			break;
		err = sym_reader__resolve_user(rd, b->tgid, b->primer, 2, out);
		t0 = bench_now_ns();
		for (size_t i = 0; i < b->n_pool && !err; i += DEPTH) {
			size_t m = b->n_pool - i < DEPTH ? b->n_pool - i : DEPTH;

			err = sym_reader__resolve_user(rd, b->tgid, b->pool + i, m, out);
		}
		ns += bench_now_ns() - t0;
		addrs += b->n_pool;
		sym_close(sym, rd);
	}
	bench_row__rep(row, addrs, ns);
	return err;
}

/* The first stack of a new process: maps read and ELF loads (or kallsyms). */
static int bench_cold(struct sym_bench *b, bool kernel, struct bench_row *row)
{
	uint64_t n = tp_ops(b->cfg, kernel ? BASE_KCOLD : BASE_COLD);
	uint64_t deadline = bench_now_ns() + b->cfg->budget_ns, ns = 0, k;
	const struct sym_frame *out[DEPTH];
	struct symbolizer_stats st = {0};
	int err = 0;

	for (k = 0; k < n && !err && bench_now_ns() < deadline; k++) {
		struct symbolizer *sym;
		struct sym_reader *rd;
		uint64_t t0;

		err = sym_open(kernel, &sym, &rd);
		if (err)
			break;
		t0 = bench_now_ns();
		err = resolve(rd, kernel, b->tgid, kernel ? b->kstacks[0] : b->stacks[0],
			      kernel ? K_DEPTH : DEPTH, out);
		ns += bench_now_ns() - t0;
		symbolizer__stats(sym, &st);
		sym_close(sym, rd);
	}
	bench_row__rep(row, k, ns);
	if (!kernel)
		bench_row__extra(row, "modules", (double)st.modules);
	bench_row__extra(row, "cache_kib", (double)st.cache_bytes / 1024);
	return err;
}

/* A known process invalidated (exec): maps read again, files stay loaded. */
static int bench_reread(struct sym_bench *b, struct bench_row *row)
{
	uint64_t n = tp_ops(b->cfg, BASE_REREAD), deadline = bench_now_ns() + b->cfg->budget_ns;
	uint64_t ns = 0, k, before;
	const struct sym_frame *out[DEPTH];
	struct symbolizer_stats st;
	struct symbolizer *sym;
	struct sym_reader *rd;
	int err = sym_open(false, &sym, &rd);

	if (err)
		return err;
	for (size_t s = 0; s < N_STACKS && !err; s++)
		err = sym_reader__resolve_user(rd, b->tgid, b->stacks[s], DEPTH, out);
	symbolizer__stats(sym, &st);
	before = st.maps_refreshes;
	for (k = 0; k < n && !err && bench_now_ns() < deadline; k++) {
		uint64_t t0;

		symbolizer__invalidate_process(sym, b->tgid);
		t0 = bench_now_ns();
		err = sym_reader__resolve_user(rd, b->tgid, b->stacks[k % N_STACKS], DEPTH, out);
		ns += bench_now_ns() - t0;
	}
	symbolizer__stats(sym, &st);
	bench_row__rep(row, k, ns);
	bench_row__extra(row, "maps_reads_per_op",
			 k ? (double)(st.maps_refreshes - before) / (double)k : 0);
	sym_close(sym, rd);
	return err;
}

int tp_sym__run(const struct tp_cfg *cfg, struct bench_report *rep)
{
	struct sym_bench *b = calloc(1, sizeof(*b));
	struct bench_row *warm, *shared, *first, *cold, *reread;
	struct bench_row *kwarm = NULL, *kshared = NULL, *kcold = NULL;
	char why[128] = "";
	int err, kerr;

	if (!b)
		return -ENOMEM;
	b->cfg = cfg;
	err = setup_user(b);
	if (err)
		goto cleanup;
	warm = bench_report__row(rep, "symbolizer", "user, warm (reader cache hit)");
	shared =
		bench_report__row(rep, "symbolizer", "user, shared hit (lock-free, reader missed)");
	first = bench_report__row(rep, "symbolizer", "user, first sight of an address");
	cold = bench_report__row(rep, "symbolizer", "user, cold process (maps + ELF loads)");
	reread = bench_report__row(rep, "symbolizer", "user, maps re-read after invalidate");
	if (!warm || !shared || !first || !cold || !reread) {
		err = -errno;
		goto cleanup;
	}
	bench_row__note(warm, "per address, %zu distinct in %d-frame stacks", b->n_pool, DEPTH);
	bench_row__note(shared, "per address, a fresh reader over %d stacks", N_STACKS);
	bench_row__note(first, "per address, maps and ELF files loaded");
	bench_row__note(cold, "per first %d-frame stack", DEPTH);
	bench_row__note(reread, "per %d-frame stack", DEPTH);
	kerr = setup_kernel(b, why, sizeof(why));
	if (kerr) {
		err = bench_report__skip(rep, "symbolizer", "kernel, warm", why);
		err = err ? err : bench_report__skip(rep, "symbolizer", "kernel, shared hit", why);
		err = err ? err : bench_report__skip(rep, "symbolizer", "kernel, cold", why);
		if (err)
			goto cleanup;
	} else {
		kwarm = bench_report__row(rep, "symbolizer", "kernel, warm (reader cache hit)");
		kshared = bench_report__row(rep, "symbolizer",
					    "kernel, shared hit (lock-free, reader missed)");
		kcold = bench_report__row(rep, "symbolizer", "kernel, cold (kallsyms load)");
		if (!kwarm || !kshared || !kcold) {
			err = -errno;
			goto cleanup;
		}
		bench_row__note(kwarm, "per address, %zu distinct", b->n_kpool);
		bench_row__note(kshared, "per address, a fresh reader over %d stacks", N_STACKS);
		bench_row__note(kcold, "per first %d-frame stack", K_DEPTH);
	}
	for (unsigned k = 0; k < cfg->repeat && !err; k++) {
		err = bench_warm(b, false, warm);
		err = err ? err : bench_shared(b, false, shared);
		err = err ? err : bench_first_sight(b, first);
		err = err ? err : bench_cold(b, false, cold);
		err = err ? err : bench_reread(b, reread);
		if (kwarm) {
			err = err ? err : bench_warm(b, true, kwarm);
			err = err ? err : bench_shared(b, true, kshared);
			err = err ? err : bench_cold(b, true, kcold);
		}
	}
	err = err ? err : tp_sym_procs__run(cfg, rep, b->stacks[0], DEPTH);
	err = err ? err : tp_sym_large__run(cfg, rep, b->n_pool > b->n_exe ? b->pool[b->n_exe] : 0);
cleanup:
	free(b);
	return err;
}
