/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Splitting one encoding into several requests by resource, each within a
 * byte limit and each with a dictionary of only what it references (see
 * otlp_internal.h).
 *
 * - Sizes. Every dictionary entry and every ResourceProfiles is sized once
 *   as serialized with the global indices. In a request, entries are
 *   renumbered by rank in global order among the entries it references, so a
 *   local index never exceeds the global one; varints only shrink, so these
 *   sizes are upper bounds and a request estimated within the limit is
 *   within it.
 *
 * - Grouping. Resources are taken in order and added greedily to the current
 *   request; a resource costs its own message plus the dictionary entries it
 *   references that the request does not hold yet (found by walking its
 *   references with per-table generation marks, so nothing is counted twice
 *   and nothing is cleared between requests). When it does not fit, a new
 *   request starts. A resource that alone exceeds the limit goes alone in
 *   its request: splitting a process's profile further would break the
 *   resource grouping, so the exporter (and the receiver's limit) decides.
 *
 * - Building. The same walk collects each request's entries (a resource
 *   that does not fit has its new marks rolled back); they are sorted and
 *   renumbered. Nothing is copied: the writer takes each table's list of
 *   entries and maps every index through the renumbering (struct otlp_view).
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "otlp_internal.h"

/* Per-table bookkeeping, indexed by global index. */
struct marks {
	size_t n;	/* entries in the global table */
	uint32_t *gen;	/* generation of the walk that last marked the entry */
	int32_t *local; /* index in the request being built */
	size_t *size;	/* packed bytes as a repeated field element */
	int32_t *list;	/* entries marked by the current walk, in marking order */
	size_t n_list, cap_list;
};

struct split {
	struct otlp_enc *e;
	struct marks t[T__COUNT];
	size_t *res_size; /* per resource: packed bytes as a repeated field element */
	uint32_t gen;
	size_t bytes; /* sizes of the entries newly marked by the current walk */
	int err;      /* first error of the walk */
};

static void split_deinit(struct split *s)
{
	for (int i = 0; i < T__COUNT; i++) {
		free(s->t[i].gen);
		free(s->t[i].local);
		free(s->t[i].size);
		free(s->t[i].list);
	}
	free(s->res_size);
}

static int marks_init(struct marks *m, size_t n)
{
	m->n = n;
	m->gen = calloc(n, sizeof(*m->gen));
	m->local = calloc(n, sizeof(*m->local));
	m->size = calloc(n, sizeof(*m->size));
	return m->gen && m->local && m->size ? 0 : -ENOMEM;
}

/* Marks entry g of table t for the current walk; true if it was not yet. */
static bool mark(struct split *s, int t, int32_t g)
{
	struct marks *m = &s->t[t];

	if (g < 0 || (size_t)g >= m->n || m->gen[g] == s->gen)
		return false;
	m->gen[g] = s->gen;
	s->bytes += m->size[g];
	if (m->n_list == m->cap_list) {
		int32_t *l = array__grow(m->list, &m->cap_list, m->n_list + 1, sizeof(*l));

		if (!l) {
			s->err = -ENOMEM;
			return false;
		}
		m->list = l;
	}
	m->list[m->n_list++] = g;
	return true;
}

static void mark_attrs(struct split *s, const int32_t *a, size_t n)
{
	const struct otlp_dict *d = &s->e->dict;

	for (size_t i = 0; i < n; i++) {
		if (mark(s, T_ATTR, a[i]))
			mark(s, T_STR, d->attrs[a[i]].key);
	}
}

static void mark_location(struct split *s, int32_t g)
{
	const struct otlp_dict *d = &s->e->dict;

	if (!mark(s, T_LOC, g))
		return;
	const struct otlp_dloc *l = &d->locs[g];
	if (mark(s, T_MAP, l->map)) {
		const struct otlp_dmap *m = &d->maps[l->map];

		mark(s, T_STR, m->file);
		mark_attrs(s, m->attrs, m->n_attrs);
	}
	for (uint32_t i = 0; i <= l->n_inl; i++) {
		/* the inlined calls' functions, then the location's own */
		int32_t fn = i < l->n_inl ? d->lines[l->inl + i].fn : l->fn;

		if (mark(s, T_FN, fn)) {
			const struct otlp_dfn *f = &d->fns[fn];

			mark(s, T_STR, f->name);
			mark(s, T_STR, f->sys);
			mark(s, T_STR, f->file);
		}
	}
	mark_attrs(s, &l->attr, 1);
}

static void mark_resource(struct split *s, const struct otlp_res *r)
{
	const struct otlp_enc *e = s->e;
	const struct otlp_dict *d = &e->dict;

	for (size_t p = 0; p < r->n_profs; p++) {
		const struct otlp_prof *pr = &e->profs[e->prof_order[r->first_prof + p]];

		mark(s, T_STR, pr->sample_type);
		mark(s, T_STR, pr->sample_unit);
		mark(s, T_STR, pr->period_type);
		mark(s, T_STR, pr->period_unit);
		for (size_t i = 0; i < pr->n_smps; i++) {
			const struct otlp_smp *sm = &e->smps[pr->first_smp + i];

			if (mark(s, T_STACK, sm->key.stack)) {
				const struct otlp_dstack *st = &d->stacks[sm->key.stack];

				for (size_t k = 0; k < st->n; k++)
					mark_location(s, d->stack_locs[st->off + k]);
			}
			mark_attrs(s, sm->key.attrs, 3); /* 0 (none) is always held */
		}
	}
}

/* Starts a walk: a new generation, with every zero entry already held (a
 * request has them all). Returns the bytes the zero entries and the
 * dictionary's own field take. */
static size_t walk_start(struct split *s)
{
	s->gen++;
	s->bytes = 0;
	for (int t = 0; t < T__COUNT; t++) {
		s->t[t].n_list = 0;
		mark(s, t, 0);
	}
	/* link_table[0], and the dictionary's tag and length (at most 5 bytes) */
	return s->bytes + otlp_wire_link_size() + 1 + 5;
}

static int sizes_init(struct split *s)
{
	const struct otlp_dict *d = &s->e->dict;
	size_t n[T__COUNT] = {[T_STR] = d->n_strs, [T_MAP] = d->n_maps,	  [T_LOC] = d->n_locs,
			      [T_FN] = d->n_fns,   [T_ATTR] = d->n_attrs, [T_STACK] = d->n_stacks};
	int err = 0;

	for (int t = 0; t < T__COUNT && !err; t++)
		err = marks_init(&s->t[t], n[t]);
	s->res_size = calloc(s->e->n_res, sizeof(*s->res_size));
	if (err || !s->res_size)
		return -ENOMEM;
	for (int t = 0; t < T__COUNT; t++) {
		for (size_t i = 0; i < n[t]; i++)
			s->t[t].size[i] = otlp_wire_entry_size(d, t, i);
	}
	for (size_t i = 0; i < s->e->n_res; i++) {
		struct otlp_view v = {.e = s->e, .first_res = i, .last_res = i + 1};

		err = otlp_wire_measure(&s->e->wire, &v,
					&s->res_size[i]); /* with its field's tag */
		if (err)
			return err;
	}
	return 0;
}

static int i32_cmp(const void *pa, const void *pb)
{
	int32_t a = *(const int32_t *)pa, b = *(const int32_t *)pb;

	return (a > b) - (a < b);
}

/* ---- one request ---- */

/* Emits the request of resources [first, last), whose entries the current
 * walk has collected. */
static int request_emit(struct split *s, size_t first, size_t last)
{
	struct otlp_enc *e = s->e;
	struct otlp_view v = {.e = e, .first_res = first, .last_res = last, .dict = true};
	size_t len;
	int err;

	for (int t = 0; t < T__COUNT; t++) {
		struct marks *m = &s->t[t];

		qsort(m->list, m->n_list, sizeof(*m->list), i32_cmp); /* 0 stays first */
		for (size_t k = 0; k < m->n_list; k++)
			m->local[m->list[k]] = (int32_t)k;
		v.list[t] = m->list;
		v.n_list[t] = m->n_list;
		v.map[t] = m->local;
	}
	err = otlp_wire_measure(&e->wire, &v, &len);
	if (!err)
		err = otlp_enc_emit(e, &v, len);
	return err;
}

/* Marks resource r into the current request; returns what it adds (its
 * message and the entries the request lacked), or SIZE_MAX on error. */
static size_t resource_add(struct split *s, size_t r)
{
	s->bytes = 0;
	mark_resource(s, s->e->res[r]);
	return s->err ? SIZE_MAX : s->bytes + s->res_size[r];
}

/* Forgets what the current walk collected past mark_n[]: entries marked for
 * a resource that then did not fit. */
static void rollback(struct split *s, const size_t mark_n[T__COUNT])
{
	for (int t = 0; t < T__COUNT; t++) {
		struct marks *m = &s->t[t];

		for (size_t k = mark_n[t]; k < m->n_list; k++)
			m->gen[m->list[k]] = 0; /* no walk has generation 0 */
		m->n_list = mark_n[t];
	}
}

int otlp_split_emit(struct otlp_enc *e, size_t max_bytes)
{
	struct split s = {.e = e};
	size_t first = 0, cur = 0, mark_n[T__COUNT];
	int err;

	err = sizes_init(&s);
	if (err)
		goto cleanup;
	cur = walk_start(&s);
	for (size_t r = 0; r < e->n_res; r++) {
		for (int t = 0; t < T__COUNT; t++)
			mark_n[t] = s.t[t].n_list;
		size_t cost = resource_add(&s, r);

		if (cost != SIZE_MAX && r > first && cur + cost > max_bytes) {
			/* r does not fit: emit [first, r) and start over with r */
			rollback(&s, mark_n);
			err = request_emit(&s, first, r);
			if (err)
				goto cleanup;
			first = r;
			cur = walk_start(&s);
			cost = resource_add(&s, r);
		}
		if (cost == SIZE_MAX) {
			err = s.err;
			goto cleanup;
		}
		cur += cost;
	}
	err = request_emit(&s, first, e->n_res);

cleanup:
	split_deinit(&s);
	return err;
}
