/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * sym_epoch: the reclamation domain of the symbolizer's lock-free indexes
 * (frame_table.c, process_table.c), built on ck_epoch.
 *
 * Readers (each sym_reader holds one ck_epoch record) look entries up
 * between sym_epoch__read_begin() and sym_epoch__read_end(), taking no lock.
 * The one writer at a time (whoever holds symbolizer.lock) never frees what
 * a reader may still see: it retires it (sym_epoch__retire), and
 * sym_epoch__reclaim(), called under the lock at sweep and flush time, frees
 * what no reader section can reach any more (ck_epoch_poll).
 *
 * ck_ht allocates through struct ck_malloc, whose callbacks carry no
 * context. Each block gets a small header naming its domain, stored at
 * allocation time from the thread-local "current writer" that
 * sym_epoch__write_begin() sets; a free that ck_ht marks deferred (the map
 * a table grew out of) is retired through that domain.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "symbolizer_internal.h"

/* Every block handed to ck_ht starts with this; 16-byte multiple, so the
 * block keeps malloc's alignment (ck_ht aligns its entries itself). */
struct ht_block {
	ck_epoch_entry_t retire;
	struct sym_epoch *owner;
	size_t size;
	uint64_t pad;
};

struct epoch_rec {
	ck_epoch_record_t rec; /* first: records come back as ck_epoch_record_t * */
	struct epoch_rec *next;
};

static _Thread_local struct sym_epoch *current_writer;

int sym_epoch__init(struct sym_epoch *e)
{
	memset(e, 0, sizeof(*e));
	ck_epoch_init(&e->ep);
	e->writer = sym_epoch__reader(e);
	return e->writer ? 0 : -ENOMEM;
}

void sym_epoch__deinit(struct sym_epoch *e)
{
	struct epoch_rec *r, *next;

	if (e->writer) {
		/* No reader is left: every retired object can go. */
		ck_epoch_barrier(e->writer);
	}
	for (r = e->recs; r; r = next) {
		next = r->next;
		free(r);
	}
	memset(e, 0, sizeof(*e));
}

ck_epoch_record_t *sym_epoch__reader(struct sym_epoch *e)
{
	ck_epoch_record_t *rec = ck_epoch_recycle(&e->ep, NULL);
	struct epoch_rec *r;

	if (rec)
		return rec;
	r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	ck_epoch_register(&e->ep, &r->rec, NULL);
	r->next = e->recs;
	e->recs = r;
	return &r->rec;
}

void sym_epoch__reader_put(ck_epoch_record_t *rec)
{
	if (rec)
		ck_epoch_unregister(rec);
}

void sym_epoch__retire(struct sym_epoch *e, ck_epoch_entry_t *entry, size_t bytes,
		       ck_epoch_cb_t *free_cb)
{
	e->pending_bytes += bytes;
	e->retired++;
	ck_epoch_call(e->writer, entry, free_cb);
}

void sym_epoch__freed(struct sym_epoch *e, size_t bytes)
{
	/* Pairs with sym_epoch__read_end(): what readers did before their
	 * section ended happens before this free. */
	sym_tsan_acquire(&e->tsan_sync);
	e->pending_bytes -= bytes;
	e->freed++;
}

void sym_epoch__reclaim(struct sym_epoch *e)
{
	ck_epoch_poll(e->writer);
}

/* ---- ck_ht's allocator ---- */

void sym_epoch__write_begin(struct sym_epoch *e)
{
	current_writer = e;
}

void sym_epoch__write_end(void)
{
	current_writer = NULL;
}

static void *ht_malloc(size_t size)
{
	struct ht_block *b = malloc(sizeof(*b) + size);

	if (!b)
		return NULL;
	b->owner = current_writer;
	b->size = size;
	if (b->owner)
		b->owner->ht_bytes += sizeof(*b) + size;
	return b + 1;
}

static void ht_block_free(ck_epoch_entry_t *entry)
{
	struct ht_block *b = (struct ht_block *)((char *)entry - offsetof(struct ht_block, retire));

	sym_epoch__freed(b->owner, sizeof(*b) + b->size);
	free(b);
}

static void ht_free(void *p, size_t size, bool defer)
{
	struct ht_block *b;

	(void)size;
	if (!p)
		return;
	b = (struct ht_block *)p - 1;
	if (b->owner)
		b->owner->ht_bytes -= sizeof(*b) + b->size;
	if (defer && b->owner) {
		/* A map readers may still be probing (the one a grow replaced). */
		sym_epoch__retire(b->owner, &b->retire, sizeof(*b) + b->size, ht_block_free);
		return;
	}
	free(b);
}

static void *ht_realloc(void *p, size_t old_size, size_t new_size, bool defer)
{
	void *q = ht_malloc(new_size);

	if (!q)
		return NULL;
	if (p) {
		memcpy(q, p, old_size < new_size ? old_size : new_size);
		ht_free(p, old_size, defer);
	}
	return q;
}

struct ck_malloc sym_epoch_ht_allocator = {
	.malloc = ht_malloc,
	.realloc = ht_realloc,
	.free = ht_free,
};
