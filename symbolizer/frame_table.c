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
 * Threads: every function runs under symbolizer.lock. A frame is fully
 * written before the lock is released, so any thread that gets its pointer
 * (through the lock, or from a reader cache filled through the lock) sees it
 * complete.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "symbolizer_internal.h"

#define FRAME_CHUNK 1024

struct frame_node {
	struct sym_frame f;
	struct hnode node;
};

struct frame_chunk {
	struct frame_chunk *next;
	struct frame_node frames[FRAME_CHUNK];
};

struct inline_block {
	struct inline_block *next;
	struct sym_inline e[];
};

int frame_table__init(struct frame_table *ft)
{
	memset(ft, 0, sizeof(*ft));
	ft->next_id = 1;
	ft->chunk_used = FRAME_CHUNK;
	if (htab__init(&ft->ht, 4096))
		return -ENOMEM;
	ft->bytes = htab__bytes(&ft->ht);
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
	htab__deinit(&ft->ht);
	memset(ft, 0, sizeof(*ft));
}

static uint64_t frame_hash(const struct sym_module *module, uint64_t address)
{
	return sym_hash_u64(address ^ sym_hash_u64((uintptr_t)module));
}

const struct sym_frame *frame_table__find(const struct frame_table *ft,
					  const struct sym_module *module, uint64_t address)
{
	uint64_t h = frame_hash(module, address);
	struct hnode *n;

	for (n = htab__first(&ft->ht, h); n; n = htab__next(n, h)) {
		struct frame_node *fn = container_of(n, struct frame_node, node);

		if (fn->f.module == module && fn->f.address == address)
			return &fn->f;
	}
	return NULL;
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
	size_t before = htab__bytes(&ft->ht);
	struct frame_node *fn = frame_alloc(ft, module, address, function, kind);

	if (!fn)
		return NULL;
	htab__add(&ft->ht, &fn->node, frame_hash(module, address));
	ft->bytes += htab__bytes(&ft->ht) - before;
	return &fn->f;
}

const struct sym_frame *frame_table__add_src(struct frame_table *ft,
					     const struct sym_module *module, uint64_t address,
					     const struct sym_src *src, uint8_t kind)
{
	struct inline_block *ib = NULL;
	const struct sym_frame *f;
	struct frame_node *fn;
	size_t ib_bytes = 0;

	if (src->n_inlined) {
		ib_bytes = sizeof(*ib) + src->n_inlined * sizeof(ib->e[0]);
		ib = malloc(ib_bytes);
		if (!ib)
			return NULL;
		memcpy(ib->e, src->inlined, src->n_inlined * sizeof(ib->e[0]));
	}
	f = frame_table__add(ft, module, address, src->function, kind);
	if (!f) {
		free(ib);
		return NULL;
	}
	fn = container_of(f, struct frame_node, f);
	/* Still under the lock that publishes the frame: not yet visible. */
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
	return &fn->f;
}

const struct sym_frame *frame_table__new_unindexed(struct frame_table *ft,
						   const struct sym_module *module, uint8_t kind)
{
	struct frame_node *fn = frame_alloc(ft, module, 0, NULL, kind);

	return fn ? &fn->f : NULL;
}
