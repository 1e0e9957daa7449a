/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * String pool: interned, immutable strings that live until the symbolizer is
 * freed (processes' executable paths and container ids, which callers keep
 * past the life of the process entry that named them; frames' demangled and
 * mangled names and source files from DWARF, which live as long as frames).
 *
 * Each distinct string is stored once, so the pool grows with the number of
 * distinct strings seen (executables, containers, functions, source files),
 * not with processes or frames. Its
 * bytes count in the symbolizer's cache_bytes.
 *
 * Threads: every function runs under the lock of the pool's owner
 * (symbolizer.lock for the symbolizer's pool, an image's name_lock for its
 * names). A string is written once, before its pointer is published under
 * symbolizer.lock (in a frame), and never changed.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "symbolizer_internal.h"

struct str_node {
	struct hnode node;
	size_t len;
	char s[]; /* len bytes and a NUL */
};

int str_pool__init(struct str_pool *sp)
{
	memset(sp, 0, sizeof(*sp));
	if (htab__init(&sp->ht, 64))
		return -ENOMEM;
	sp->bytes = htab__bytes(&sp->ht);
	return 0;
}

static bool drop_all(struct hnode *n, void *arg)
{
	free(container_of(n, struct str_node, node));
	return true;
}

void str_pool__deinit(struct str_pool *sp)
{
	htab__filter(&sp->ht, drop_all, NULL);
	htab__deinit(&sp->ht);
	memset(sp, 0, sizeof(*sp));
}

const char *str_pool__intern(struct str_pool *sp, const char *s, size_t len)
{
	uint64_t h = sym_hash_mem(s, len);
	size_t before = htab__bytes(&sp->ht);
	struct str_node *sn;
	struct hnode *n;

	for (n = htab__first(&sp->ht, h); n; n = htab__next(n, h)) {
		sn = container_of(n, struct str_node, node);
		if (sn->len == len && memcmp(sn->s, s, len) == 0)
			return sn->s;
	}
	sn = malloc(sizeof(*sn) + len + 1);
	if (!sn)
		return NULL;
	sn->len = len;
	memcpy(sn->s, s, len);
	sn->s[len] = '\0';
	htab__add(&sp->ht, &sn->node, h);
	sp->bytes += sizeof(*sn) + len + 1 + htab__bytes(&sp->ht) - before;
	return sn->s;
}
