/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Frame interning: (module, address) -> one immutable struct sym_frame with a
 * dense, nonzero id, so callers compare and hash frames by pointer or id.
 *
 * Frames are carved from FRAME_CHUNK-sized arrays (one allocation per
 * FRAME_CHUNK frames, one owner: the table); a frame's inlined[] array (DWARF
 * inlined calls) is one more allocation, linked in ft->inlines. Both are
 * never freed before
 * frame_table__deinit(): the public contract keeps every frame valid until
 * symbolizer__free(). Growth is bounded by the caller (symbolizer.c checks the
 * cache bound before adding); this version does not evict.
 *
 * Threads: writers (every function that adds) run under symbolizer.lock.
 * The index is a ck_ht (single writer, many readers), so frame_table__find()
 * and frame_table__find_kernel() also run without the lock, inside a
 * sym_epoch read section: a frame is fully written before it is put in the
 * index, and frames are never freed, so only the index's own maps (those a
 * grow replaced) wait for readers through the epoch.
 *
 * The kernel index maps a kernel address to its named frame, so readers
 * find kernel frames without the lock too (the frame's module, a kernel
 * module or the kernel, is only known through kallsyms, under the lock).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "symbolizer_internal.h"

#define FRAME_CHUNK 1024

/* The index key: a frame's first two fields, in the same layout. */
struct frame_key {
	const struct sym_module *module;
	uint64_t address;
};
_Static_assert(offsetof(struct sym_frame, module) == 0 && offsetof(struct sym_frame, address) == 8,
	       "struct sym_frame starts with its key");

struct frame_node {
	struct sym_frame f;
};

struct frame_chunk {
	struct frame_chunk *next;
	struct frame_node frames[FRAME_CHUNK];
};

struct inline_block {
	struct inline_block *next;
	struct sym_inline e[];
};

static void key_hash(ck_ht_hash_t *h, const void *key, size_t len, uint64_t seed)
{
	uint64_t w[2] = {0, 0};

	memcpy(w, key, len < sizeof(w) ? len : sizeof(w));
	h->value = sym_hash_u64(w[1] ^ sym_hash_u64(w[0] ^ seed));
}

int frame_table__init(struct frame_table *ft, struct sym_epoch *epoch)
{
	bool ok;

	memset(ft, 0, sizeof(*ft));
	ft->epoch = epoch;
	ft->next_id = 1;
	ft->chunk_used = FRAME_CHUNK;
	sym_epoch__write_begin(epoch);
	ok = ck_ht_init(&ft->index, CK_HT_MODE_BYTESTRING, key_hash, &sym_epoch_ht_allocator, 4096,
			0x5eed);
	if (ok) {
		ok = ck_ht_init(&ft->kernel_index, CK_HT_MODE_DIRECT, key_hash,
				&sym_epoch_ht_allocator, 1024, 0x5eed);
		if (!ok)
			ck_ht_destroy(&ft->index);
	}
	sym_epoch__write_end();
	if (!ok) {
		memset(ft, 0, sizeof(*ft));
		return -ENOMEM;
	}
	ft->indexed = true;
	return 0;
}

void frame_table__deinit(struct frame_table *ft)
{
	struct frame_chunk *c, *next;
	struct inline_block *ib, *ib_next;

	for (c = ft->chunks; c; c = next) {
		next = c->next;
		free(c);
	}
	for (ib = ft->inlines; ib; ib = ib_next) {
		ib_next = ib->next;
		free(ib);
	}
	if (ft->indexed) {
		sym_epoch__write_begin(ft->epoch);
		ck_ht_destroy(&ft->index);
		ck_ht_destroy(&ft->kernel_index);
		sym_epoch__write_end();
	}
	memset(ft, 0, sizeof(*ft));
}

const struct sym_frame *frame_table__find(struct frame_table *ft, const struct sym_module *module,
					  uint64_t address)
{
	struct frame_key key = {module, address};
	const struct sym_frame *f;
	ck_ht_entry_t e;
	ck_ht_hash_t h;

	ck_ht_hash(&h, &ft->index, &key, sizeof(key));
	ck_ht_entry_key_set(&e, &key, sizeof(key));
	if (!ck_ht_get_spmc(&ft->index, h, &e))
		return NULL;
	f = ck_ht_entry_value(&e);
	sym_tsan_acquire(f); /* pairs with the release in publish() */
	return f;
}

const struct sym_frame *frame_table__find_kernel(struct frame_table *ft, uint64_t address)
{
	const struct sym_frame *f;
	ck_ht_entry_t e;
	ck_ht_hash_t h;

	if (address == CK_HT_KEY_EMPTY || address == CK_HT_KEY_TOMBSTONE)
		return NULL;
	ck_ht_hash_direct(&h, &ft->kernel_index, address);
	ck_ht_entry_key_set_direct(&e, address);
	if (!ck_ht_get_spmc(&ft->kernel_index, h, &e))
		return NULL;
	f = (const struct sym_frame *)ck_ht_entry_value_direct(&e);
	sym_tsan_acquire(f);
	return f;
}

void frame_table__alias_kernel(struct frame_table *ft, uint64_t address, const struct sym_frame *f)
{
	ck_ht_entry_t e;
	ck_ht_hash_t h;

	if (address == CK_HT_KEY_EMPTY || address == CK_HT_KEY_TOMBSTONE)
		return;
	ck_ht_hash_direct(&h, &ft->kernel_index, address);
	ck_ht_entry_set_direct(&e, h, address, (uintptr_t)f);
	sym_tsan_release(f);
	sym_epoch__write_begin(ft->epoch);
	/* A failed put (no memory to grow, or already there) only costs the
	 * lock-free path: the address is resolved under the lock instead. */
	(void)ck_ht_put_spmc(&ft->kernel_index, h, &e);
	sym_epoch__write_end();
}

/* Makes a fully written frame visible to lock-free readers. Returns false
 * on ENOMEM (the frame stays unindexed, unused). */
static bool publish(struct frame_table *ft, struct frame_node *fn)
{
	ck_ht_entry_t e;
	ck_ht_hash_t h;
	bool ok;

	ck_ht_hash(&h, &ft->index, &fn->f, sizeof(struct frame_key));
	ck_ht_entry_set(&e, h, &fn->f, sizeof(struct frame_key), &fn->f);
	sym_tsan_release(&fn->f); /* pairs with the acquire in frame_table__find() */
	sym_epoch__write_begin(ft->epoch);
	ok = ck_ht_put_spmc(&ft->index, h, &e);
	sym_epoch__write_end();
	return ok;
}

static struct frame_node *frame_alloc(struct frame_table *ft, const struct sym_module *module,
				      uint64_t address, const char *function, uint8_t kind)
{
	struct frame_node *fn;

	if (ft->chunk_used == FRAME_CHUNK) {
		struct frame_chunk *c = malloc(sizeof(*c));

		if (!c)
			return NULL;
		c->next = ft->chunks;
		ft->chunks = c;
		ft->chunk_used = 0;
		ft->bytes += sizeof(*c);
	}
	fn = &ft->chunks->frames[ft->chunk_used++];
	memset(fn, 0, sizeof(*fn));
	fn->f.module = module;
	fn->f.address = address;
	fn->f.function = function;
	fn->f.kind = kind;
	fn->f.id = ft->next_id++;
	return fn;
}

const struct sym_frame *frame_table__add(struct frame_table *ft, const struct sym_module *module,
					 uint64_t address, const char *function, uint8_t kind)
{
	struct frame_node *fn = frame_alloc(ft, module, address, function, kind);

	return fn && publish(ft, fn) ? &fn->f : NULL;
}

const struct sym_frame *frame_table__add_src(struct frame_table *ft,
					     const struct sym_module *module, uint64_t address,
					     const struct sym_src *src, uint8_t kind)
{
	struct inline_block *ib = NULL;
	struct frame_node *fn;
	size_t ib_bytes = 0;

	if (src->n_inlined) {
		ib_bytes = sizeof(*ib) + src->n_inlined * sizeof(ib->e[0]);
		ib = malloc(ib_bytes);
		if (!ib)
			return NULL;
		memcpy(ib->e, src->inlined, src->n_inlined * sizeof(ib->e[0]));
	}
	fn = frame_alloc(ft, module, address, src->function, kind);
	if (!fn) {
		free(ib);
		return NULL;
	}
	/* Complete before publish(): readers may find it at once. */
	fn->f.system_name = src->system_name;
	fn->f.file = src->file;
	fn->f.line = src->line;
	if (ib) {
		ib->next = ft->inlines;
		ft->inlines = ib;
		ft->bytes += ib_bytes;
		fn->f.inlined = ib->e;
		fn->f.n_inlined = src->n_inlined;
	}
	return publish(ft, fn) ? &fn->f : NULL;
}

const struct sym_frame *frame_table__new_unindexed(struct frame_table *ft,
						   const struct sym_module *module, uint8_t kind)
{
	struct frame_node *fn = frame_alloc(ft, module, 0, NULL, kind);

	return fn ? &fn->f : NULL;
}
