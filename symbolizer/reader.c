/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * sym_reader: one worker thread's private cache in front of the shared
 * tables. This is the per-sample hot path and it takes no lock.
 *
 * The cache maps (tgid, adjusted address) to the interned frame. It is
 * 4-way set associative with a fixed size (RCACHE_SETS x RCACHE_WAYS), so it
 * is bounded by construction and never needs a clear: a new entry takes an
 * empty way or replaces one in round robin.
 *
 * Invalidation without locks: each entry records the generation of its
 * tgid's slot in sym->proc_gen when it was filled. symbolizer__invalidate_
 * process() marks the process stale under the lock, then bumps that slot
 * (release); a resolve call loads the slot once (acquire) and treats entries
 * of older generations as misses. Two tgids sharing a slot only cost a few
 * extra misses. Frames of [unknown] are not cached, so an address in memory
 * mapped after the maps were read is found again on the slow path (which
 * re-reads the maps, rate-limited).
 *
 * Misses are collected per call (up to MISS_BATCH at a time, on the stack)
 * and looked up first in the shared indexes without a lock (inside one
 * ck_epoch read section per batch: the process's published mappings, then
 * the frame of (module, file offset), or the kernel frame of the address);
 * what those do not hold yet (a new process or frame, a stale process, JIT
 * code named by a perf map) goes to symbolizer__resolve_slow(), one lock
 * acquisition per batch.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "symbolizer_internal.h"

#define MISS_BATCH 64

struct sym_reader *symbolizer__reader_new(struct symbolizer *sym)
{
	struct sym_reader *rd;

	if (!sym) {
		errno = EINVAL;
		return NULL;
	}
	rd = calloc(1, sizeof(*rd));
	if (!rd)
		return NULL;
	rd->sets = aligned_alloc(64, RCACHE_SETS * sizeof(*rd->sets));
	if (!rd->sets) {
		free(rd);
		errno = ENOMEM;
		return NULL;
	}
	memset(rd->sets, 0, RCACHE_SETS * sizeof(*rd->sets));
	rd->sym = sym;
	rd->unknown = &sym->unknown_mod->pub;
	pthread_mutex_lock(&sym->lock);
	rd->epoch_rec = sym_epoch__reader(&sym->epoch);
	if (rd->epoch_rec) {
		rd->next = sym->readers;
		sym->readers = rd;
	}
	pthread_mutex_unlock(&sym->lock);
	if (!rd->epoch_rec) {
		free(rd->sets);
		free(rd);
		errno = ENOMEM;
		return NULL;
	}
	return rd;
}

void sym_reader__free(struct sym_reader *rd)
{
	struct symbolizer *sym;
	struct sym_reader **pp;

	if (!rd)
		return;
	sym = rd->sym;
	pthread_mutex_lock(&sym->lock);
	for (pp = &sym->readers; *pp; pp = &(*pp)->next) {
		if (*pp == rd) {
			*pp = rd->next;
			break;
		}
	}
	sym->retired.lookups += atomic_load_explicit(&rd->cnt.lookups, memory_order_relaxed);
	sym->retired.hits += atomic_load_explicit(&rd->cnt.hits, memory_order_relaxed);
	sym->retired.unknown += atomic_load_explicit(&rd->cnt.unknown, memory_order_relaxed);
	sym->retired.lockfree += atomic_load_explicit(&rd->cnt.lockfree, memory_order_relaxed);
	sym_epoch__reader_put(rd->epoch_rec);
	pthread_mutex_unlock(&sym->lock);
	free(rd->sets);
	free(rd);
}

/* Single writer: a relaxed load and store, no read-modify-write. */
static inline void counter_add(_Atomic uint64_t *c, uint64_t v)
{
	if (v)
		atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + v,
				      memory_order_relaxed);
}

static inline struct rcache_set *cache_set(struct sym_reader *rd, uint32_t tgid, uint64_t addr)
{
	uint64_t h = sym_hash_u64(addr ^ ((uint64_t)tgid * 0x9e3779b97f4a7c15ull));

	return &rd->sets[h & (RCACHE_SETS - 1)];
}

static inline const struct sym_frame *cache_get(struct sym_reader *rd, uint32_t tgid, uint32_t gen,
						uint64_t addr)
{
	struct rcache_set *s = cache_set(rd, tgid, addr);

	for (int w = 0; w < RCACHE_WAYS; w++) {
		const struct rcache_entry *e = &s->e[w];

		if (e->frame && e->addr == addr && e->tgid == tgid && e->gen == gen)
			return e->frame;
	}
	return NULL;
}

static void cache_put(struct sym_reader *rd, uint32_t tgid, uint32_t gen, uint64_t addr,
		      const struct sym_frame *f)
{
	struct rcache_set *s = cache_set(rd, tgid, addr);
	struct rcache_entry *victim = NULL;

	for (int w = 0; w < RCACHE_WAYS; w++) {
		struct rcache_entry *e = &s->e[w];

		/* Reuse the way of the same key (an older generation) or an empty one. */
		if (!e->frame || (e->addr == addr && e->tgid == tgid)) {
			victim = e;
			break;
		}
	}
	if (!victim)
		victim = &s->e[rd->victim++ % RCACHE_WAYS];
	*victim = (struct rcache_entry){.addr = addr, .tgid = tgid, .gen = gen, .frame = f};
}

/* The frame of a user address from the process's published mappings, or
 * NULL. Lock-free: inside a read section. Anonymous memory (JIT code named
 * by a perf map) is left to the slow path. */
static const struct sym_frame *lookup_user(struct symbolizer *sym, const struct sym_maps_snap *snap,
					   uint64_t addr)
{
	const struct sym_mapping *m = sym_maps_snap__find(snap, addr);
	const struct module *mod;
	uint64_t off;

	if (!m || m->mod == sym->anon_mod)
		return NULL;
	mod = m->mod;
	/* As the slow path keys frames: files and the vdso by file offset,
	 * other pseudo memory by virtual address. */
	off = mod->kind == MOD_PSEUDO ? addr : addr - m->start + m->pgoff;
	return frame_table__find(&sym->frames, &mod->pub, off);
}

/* Fills out[i] from the shared indexes where they hold addrs[i] (NULL
 * elsewhere) without taking the lock. Returns how many were found. */
static size_t lookup_lockfree(struct sym_reader *rd, bool kernel, uint32_t tgid,
			      const uint64_t *addrs, size_t n, const struct sym_frame **out)
{
	struct symbolizer *sym = rd->sym;
	const struct sym_maps_snap *snap = NULL;
	size_t found = 0;

	sym_epoch__read_begin(rd->epoch_rec);
	if (!kernel)
		snap = process_table__lookup(&sym->procs, tgid);
	for (size_t i = 0; i < n; i++) {
		if (kernel)
			out[i] = frame_table__find_kernel(&sym->frames, addrs[i]);
		else
			out[i] = snap ? lookup_user(sym, snap, addrs[i]) : NULL;
		found += out[i] != NULL;
	}
	sym_epoch__read_end(&sym->epoch, rd->epoch_rec);
	return found;
}

/* Resolves one batch of misses (lock-free where it can, the rest on the
 * slow path) and fills the cache. Returns 0 or -errno. */
static int flush_misses(struct sym_reader *rd, bool kernel, uint32_t tgid, uint32_t key,
			uint32_t gen, const uint64_t *maddr, const size_t *midx, size_t nmiss,
			const struct sym_frame **out)
{
	const struct sym_frame *mout[MISS_BATCH];
	uint64_t saddr[MISS_BATCH];
	size_t sidx[MISS_BATCH], nslow = 0, found;
	int err = 0;

	found = lookup_lockfree(rd, kernel, tgid, maddr, nmiss, mout);
	for (size_t j = 0; j < nmiss; j++) {
		if (mout[j]) {
			out[midx[j]] = mout[j];
			cache_put(rd, key, gen, maddr[j], mout[j]);
		} else {
			saddr[nslow] = maddr[j];
			sidx[nslow++] = midx[j];
		}
	}
	counter_add(&rd->cnt.lockfree, found);
	if (!nslow)
		return 0;
	err = symbolizer__resolve_slow(rd->sym, kernel, tgid, saddr, nslow, mout);
	for (size_t j = 0; j < nslow; j++) {
		out[sidx[j]] = mout[j];
		if (mout[j]->module != rd->unknown)
			cache_put(rd, key, gen, saddr[j], mout[j]);
	}
	return err;
}

static int resolve(struct sym_reader *rd, bool kernel, uint32_t tgid, const uint64_t *addrs,
		   size_t n, const struct sym_frame **out)
{
	uint32_t key = kernel ? SYM_KERNEL_TGID : tgid, gen = 0;
	uint64_t maddr[MISS_BATCH];
	size_t midx[MISS_BATCH], nmiss = 0, hits = 0, unknown = 0;
	int err = 0, e;

	if (!kernel)
		gen = atomic_load_explicit(&rd->sym->proc_gen[sym_gen_slot(tgid)],
					   memory_order_acquire);
	for (size_t i = 0; i < n; i++) {
		uint64_t a = i ? addrs[i] - 1 : addrs[i];
		const struct sym_frame *f = cache_get(rd, key, gen, a);

		if (f) {
			out[i] = f;
			hits++;
			continue;
		}
		maddr[nmiss] = a;
		midx[nmiss++] = i;
		if (nmiss == MISS_BATCH) {
			e = flush_misses(rd, kernel, tgid, key, gen, maddr, midx, nmiss, out);
			err = err ? err : e;
			nmiss = 0;
		}
	}
	if (nmiss) {
		e = flush_misses(rd, kernel, tgid, key, gen, maddr, midx, nmiss, out);
		err = err ? err : e;
	}
	for (size_t i = 0; i < n; i++)
		unknown += !out[i]->function;
	counter_add(&rd->cnt.lookups, n);
	counter_add(&rd->cnt.hits, hits);
	counter_add(&rd->cnt.unknown, unknown);
	return err;
}

int sym_reader__resolve_user(struct sym_reader *rd, uint32_t tgid, const uint64_t *addrs, size_t n,
			     const struct sym_frame **out)
{
	return resolve(rd, false, tgid, addrs, n, out);
}

int sym_reader__resolve_kernel(struct sym_reader *rd, const uint64_t *addrs, size_t n,
			       const struct sym_frame **out)
{
	return resolve(rd, true, 0, addrs, n, out);
}
