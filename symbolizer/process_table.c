/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Process table: tgid -> the executable mappings last read from
 * /proc/PID/maps, each pointing to its module.
 *
 * Life of an entry (the policy lives in symbolizer.c, the bookkeeping here):
 * created on the first sample of a tgid and read at once; re-read when an
 * address misses every mapping (at most every SYM_MAPS_REFRESH_MIN_NS) or
 * after symbolizer__invalidate_process() (exit or exec). A process that has
 * exited cannot be re-read and keeps the mappings it had, so samples still in
 * flight resolve. Entries are dropped SYM_PROCESS_GRACE_NS after an
 * invalidation that no successful re-read followed, or after
 * SYM_PROCESS_IDLE_NS without a slow-path lookup (a live process is simply
 * re-read when it shows up again): the table stays bounded without relying on
 * exit events. With exit events (symbolizer__process_exit()) the rule for an
 * exited process is "exited and flushed": it stays until two interval
 * flushes have passed since its exit, whatever the grace and idle times.
 * An entry may also hold the process's JIT perf map (perf_map.c).
 *
 * An entry also carries the process's executable path and container id
 * (strings interned in the symbolizer's pool, not owned here), read with the
 * maps, or alone by symbolizer__process_info() for a tgid not in the table
 * (then the entry has no maps until a sample needs them). That call counts
 * as a use, like a slow-path lookup.
 *
 * Threads: every function runs under symbolizer.lock. A mapping array is
 * replaced whole and freed at once; nothing outside the lock keeps a pointer
 * into it. An entry that a thread is reading (loading set) is never dropped.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "symbolizer_internal.h"

int process_table__init(struct process_table *pt)
{
	memset(pt, 0, sizeof(*pt));
	if (htab__init(&pt->ht, 256))
		return -ENOMEM;
	pt->bytes = htab__bytes(&pt->ht);
	return 0;
}

static size_t process_bytes(const struct process *p)
{
	return sizeof(*p) + p->n_maps * sizeof(*p->maps) + (p->perf_map ? p->perf_map->bytes : 0);
}

static void process_free(struct process *p)
{
	perf_map__free(p->perf_map);
	free(p->maps);
	free(p);
}

static bool drop_all(struct hnode *n, void *arg)
{
	process_free(container_of(n, struct process, node));
	return true;
}

void process_table__deinit(struct process_table *pt)
{
	htab__filter(&pt->ht, drop_all, NULL);
	htab__deinit(&pt->ht);
	memset(pt, 0, sizeof(*pt));
}

struct process *process_table__find(const struct process_table *pt, uint32_t tgid)
{
	uint64_t h = sym_hash_u64(tgid);
	struct hnode *n;

	for (n = htab__first(&pt->ht, h); n; n = htab__next(n, h)) {
		struct process *p = container_of(n, struct process, node);

		if (p->tgid == tgid)
			return p;
	}
	return NULL;
}

struct process *process_table__add(struct process_table *pt, uint32_t tgid, uint64_t now)
{
	struct process *p = calloc(1, sizeof(*p));
	size_t before = htab__bytes(&pt->ht);

	if (!p)
		return NULL;
	p->tgid = tgid;
	p->used_ns = now;
	htab__add(&pt->ht, &p->node, sym_hash_u64(tgid));
	pt->bytes += process_bytes(p) + htab__bytes(&pt->ht) - before;
	return p;
}

void process_table__set_maps(struct process_table *pt, struct process *p, struct sym_mapping *maps,
			     size_t n)
{
	pt->bytes -= process_bytes(p);
	free(p->maps);
	p->maps = maps;
	p->n_maps = n;
	pt->bytes += process_bytes(p);
}

void process_table__set_perf_map(struct process_table *pt, struct process *p, struct perf_map *pm)
{
	pt->bytes -= process_bytes(p);
	perf_map__free(p->perf_map);
	p->perf_map = pm;
	pt->bytes += process_bytes(p);
}

struct sweep_arg {
	struct process_table *pt;
	uint64_t now, flushes;
	size_t dropped;
};

static bool sweep_one(struct hnode *n, void *arg)
{
	struct sweep_arg *a = arg;
	struct process *p = container_of(n, struct process, node);

	if (p->loading)
		return false;
	if (p->exited) {
		/* Its samples may wait in queues and aggregators until the
		 * interval holding them is flushed, however long that is. */
		if (a->flushes - p->exit_flush < 2)
			return false;
	} else if (!(p->stale && a->now - p->stale_ns >= SYM_PROCESS_GRACE_NS) &&
		   a->now - p->used_ns < SYM_PROCESS_IDLE_NS) {
		return false;
	}
	a->pt->bytes -= process_bytes(p);
	process_free(p);
	a->dropped++;
	return true;
}

size_t process_table__sweep(struct process_table *pt, uint64_t now, uint64_t flushes)
{
	struct sweep_arg a = {.pt = pt, .now = now, .flushes = flushes};

	htab__filter(&pt->ht, sweep_one, &a);
	return a.dropped;
}

const struct sym_mapping *process__find_map(const struct process *p, uint64_t addr)
{
	size_t lo = 0, hi = p->n_maps;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (p->maps[mid].start <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (!lo || addr >= p->maps[lo - 1].end)
		return NULL;
	return &p->maps[lo - 1];
}
