/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Intrusive chained hash table used by every shared table of the symbolizer.
 *
 * Single-threaded: the embedding table's lock (symbolizer.lock) serializes
 * every call. Nodes are embedded in their owners (modules, images, frames,
 * processes), so the table allocates only its bucket array and insertion
 * cannot fail: when growing the array fails, the table keeps its size and
 * chains get longer.
 */
#include <errno.h>
#include <stdlib.h>

#include "symbolizer_internal.h"

int htab__init(struct htab *t, size_t hint)
{
	size_t n = 16;

	while (n < hint)
		n <<= 1;
	t->buckets = calloc(n, sizeof(*t->buckets));
	if (!t->buckets)
		return -ENOMEM;
	t->mask = n - 1;
	t->count = 0;
	return 0;
}

void htab__deinit(struct htab *t)
{
	free(t->buckets);
	t->buckets = NULL;
	t->mask = 0;
	t->count = 0;
}

static void htab_grow(struct htab *t)
{
	size_t n = (t->mask + 1) * 2;
	struct hnode **b = calloc(n, sizeof(*b));

	if (!b)
		return;
	for (size_t i = 0; i <= t->mask; i++) {
		struct hnode *e = t->buckets[i], *next;

		for (; e; e = next) {
			next = e->next;
			e->next = b[e->hash & (n - 1)];
			b[e->hash & (n - 1)] = e;
		}
	}
	free(t->buckets);
	t->buckets = b;
	t->mask = n - 1;
}

void htab__add(struct htab *t, struct hnode *n, uint64_t hash)
{
	struct hnode **head;

	if (t->count >= t->mask + 1)
		htab_grow(t);
	head = &t->buckets[hash & t->mask];
	n->hash = hash;
	n->next = *head;
	*head = n;
	t->count++;
}

void htab__del(struct htab *t, struct hnode *n)
{
	struct hnode **pp = &t->buckets[n->hash & t->mask];

	for (; *pp; pp = &(*pp)->next) {
		if (*pp == n) {
			*pp = n->next;
			t->count--;
			return;
		}
	}
}

void htab__filter(struct htab *t, bool (*fn)(struct hnode *n, void *arg), void *arg)
{
	if (!t->buckets)
		return;
	for (size_t i = 0; i <= t->mask; i++) {
		struct hnode **pp = &t->buckets[i];

		while (*pp) {
			struct hnode *n = *pp, *next = n->next;

			if (fn(n, arg)) {
				*pp = next;
				t->count--;
			} else {
				pp = &n->next;
			}
		}
	}
}

size_t htab__bytes(const struct htab *t)
{
	return t->buckets ? (t->mask + 1) * sizeof(*t->buckets) : 0;
}
