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
 * Threads: every function but process_table__lookup() runs under
 * symbolizer.lock. A process's mappings are one immutable snapshot, replaced
 * whole. While the process is not stale its snapshot is also published in a
 * ck_ht (tgid -> snapshot) that readers search without the lock, inside a
 * sym_epoch read section; so a replaced or dropped snapshot is retired
 * through the epoch, never freed at once. A stale process (exec or exit
 * invalidated it) is withdrawn from the index, so lock-free readers send its
 * addresses to the slow path, which re-reads the maps. An entry that a
 * thread is reading (loading set) is never dropped.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "symbolizer_internal.h"

static void tgid_hash(ck_ht_hash_t *h, const void *key, size_t len, uint64_t seed)
{
	uint64_t k = 0;

	memcpy(&k, key, len < sizeof(k) ? len : sizeof(k));
	h->value = sym_hash_u64(k ^ seed);
}

int process_table__init(struct process_table *pt, struct sym_epoch *epoch)
{
	bool ok;

	memset(pt, 0, sizeof(*pt));
	pt->epoch = epoch;
	if (htab__init(&pt->ht, 256))
		return -ENOMEM;
	sym_epoch__write_begin(epoch);
	ok = ck_ht_init(&pt->index, CK_HT_MODE_DIRECT | CK_HT_WORKLOAD_DELETE, tgid_hash,
			&sym_epoch_ht_allocator, 256, 0x7a61);
	sym_epoch__write_end();
	if (!ok) {
		htab__deinit(&pt->ht);
		return -ENOMEM;
	}
	pt->indexed = true;
	pt->bytes = htab__bytes(&pt->ht);
	return 0;
}

static size_t snap_bytes(const struct sym_maps_snap *snap)
{
	return snap ? sizeof(*snap) + snap->n * sizeof(snap->maps[0]) : 0;
}

static size_t process_bytes(const struct process *p)
{
	return sizeof(*p) + snap_bytes(p->snap) + (p->perf_map ? p->perf_map->bytes : 0);
}

static void snap_free(ck_epoch_entry_t *entry)
{
	struct sym_maps_snap *snap =
		(struct sym_maps_snap *)((char *)entry - offsetof(struct sym_maps_snap, retire));

	sym_epoch__freed(snap->epoch, snap_bytes(snap));
	free(snap);
}

static void snap_retire(struct process_table *pt, struct sym_maps_snap *snap)
{
	if (snap)
		sym_epoch__retire(pt->epoch, &snap->retire, snap_bytes(snap), snap_free);
}

static uintptr_t index_key(uint32_t tgid)
{
	return (uintptr_t)tgid + 1; /* 0 is ck_ht's empty key */
}

static void withdraw(struct process_table *pt, struct process *p)
{
	ck_ht_entry_t e;
	ck_ht_hash_t h;

	if (!p->published)
		return;
	ck_ht_hash_direct(&h, &pt->index, index_key(p->tgid));
	ck_ht_entry_key_set_direct(&e, index_key(p->tgid));
	sym_epoch__write_begin(pt->epoch);
	(void)ck_ht_remove_spmc(&pt->index, h, &e);
	sym_epoch__write_end();
	p->published = NULL;
}

void process_table__publish(struct process_table *pt, struct process *p)
{
	ck_ht_entry_t e;
	ck_ht_hash_t h;
	bool ok;

	if (p->stale || !p->snap) {
		withdraw(pt, p);
		return;
	}
	if (p->published == p->snap)
		return;
	ck_ht_hash_direct(&h, &pt->index, index_key(p->tgid));
	ck_ht_entry_set_direct(&e, h, index_key(p->tgid), (uintptr_t)p->snap);
	sym_tsan_release(p->snap); /* pairs with the acquire in process_table__lookup() */
	sym_epoch__write_begin(pt->epoch);
	ok = ck_ht_set_spmc(&pt->index, h, &e);
	sym_epoch__write_end();
	if (ok) {
		p->published = p->snap;
	} else {
		/* No memory to grow the index: readers take the slow path. */
		withdraw(pt, p);
	}
}

const struct sym_maps_snap *process_table__lookup(struct process_table *pt, uint32_t tgid)
{
	const struct sym_maps_snap *snap;
	ck_ht_entry_t e;
	ck_ht_hash_t h;

	ck_ht_hash_direct(&h, &pt->index, index_key(tgid));
	ck_ht_entry_key_set_direct(&e, index_key(tgid));
	if (!ck_ht_get_spmc(&pt->index, h, &e))
		return NULL;
	snap = (const struct sym_maps_snap *)ck_ht_entry_value_direct(&e);
	sym_tsan_acquire(snap);
	return snap;
}

static void process_free(struct process *p)
{
	perf_map__free(p->perf_map);
	free(p->snap);
	free(p);
}

static bool drop_all(struct hnode *n, void *arg)
{
	process_free(container_of(n, struct process, node));
	return true;
}

void process_table__deinit(struct process_table *pt)
{
	/* No reader is left: snapshots are freed at once. */
	htab__filter(&pt->ht, drop_all, NULL);
	htab__deinit(&pt->ht);
	if (pt->indexed) {
		sym_epoch__write_begin(pt->epoch);
		ck_ht_destroy(&pt->index);
		sym_epoch__write_end();
	}
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

struct sym_maps_snap *process_table__new_snap(struct process_table *pt, size_t n)
{
	struct sym_maps_snap *snap = malloc(sizeof(*snap) + n * sizeof(snap->maps[0]));

	if (!snap)
		return NULL;
	memset(&snap->retire, 0, sizeof(snap->retire));
	snap->epoch = pt->epoch;
	snap->n = n;
	return snap;
}

void process_table__set_maps(struct process_table *pt, struct process *p,
			     struct sym_maps_snap *snap)
{
	struct sym_maps_snap *old = p->snap;

	pt->bytes -= process_bytes(p);
	p->snap = snap;
	pt->bytes += process_bytes(p);
	/* Publish the new one (or withdraw) before the old one is retired. */
	process_table__publish(pt, p);
	snap_retire(pt, old);
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
	withdraw(a->pt, p);
	snap_retire(a->pt, p->snap);
	p->snap = NULL;
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

const struct sym_mapping *sym_maps_snap__find(const struct sym_maps_snap *snap, uint64_t addr)
{
	size_t lo = 0, hi = snap ? snap->n : 0;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (snap->maps[mid].start <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (!lo || addr >= snap->maps[lo - 1].end)
		return NULL;
	return &snap->maps[lo - 1];
}
