/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Kernel text symbols from /proc/kallsyms ("addr type name [module]").
 *
 * Keeps t/T/w/W symbols, sorted by address, one per address (global before
 * local before weak); each extends to the next symbol, capped at
 * KSYM_MAX_LEN so an address in a gap (between the core kernel and the
 * modules, say) is not pinned on a far symbol. Module names are kept as
 * "[name]", the way the frames show them.
 *
 * When kptr_restrict hides addresses every address reads as 0: the table is
 * then flagged restricted and holds no symbols; callers give kernel frames
 * module-level names.
 *
 * Built unlocked by the thread that loads it; immutable afterwards. Kernel
 * modules loaded later come with a new table: the symbolizer reloads it when
 * an address no symbol covers meets a changed /proc/modules, and keeps the
 * old one (its frames point to its names).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "symbolizer_internal.h"

#define KSYM_MAX_LEN (1u << 20)

struct raw_ksym {
	uint64_t addr;
	uint32_t name, mod;
	uint8_t rank;
};

struct kbuild {
	struct raw_ksym *syms;
	size_t n, cap;
	char *names;
	size_t names_len, names_cap;
	uint32_t *mods;
	size_t n_mods, mods_cap;
};

static int names_add(struct kbuild *b, const char *s, size_t n, uint32_t *off)
{
	if (b->names_len + n + 1 > b->names_cap) {
		size_t cap = b->names_cap ? b->names_cap * 2 : 1 << 20;
		char *p;

		while (cap < b->names_len + n + 1)
			cap *= 2;
		if (cap > UINT32_MAX)
			return -ENOMEM;
		p = realloc(b->names, cap);
		if (!p)
			return -ENOMEM;
		b->names = p;
		b->names_cap = cap;
	}
	memcpy(b->names + b->names_len, s, n);
	b->names[b->names_len + n] = '\0';
	*off = (uint32_t)b->names_len;
	b->names_len += n + 1;
	return 0;
}

/* Returns the 1-based index of module "[name]", adding it. A module's symbols
 * come in one run in kallsyms, so looking at the last few stays linear; a
 * repeat further back only costs a duplicate name (modules are deduplicated
 * by name when installed). */
static int mod_index(struct kbuild *b, const char *s, size_t n, uint32_t *idx)
{
	char name[128];
	uint32_t off;

	if (n > sizeof(name) - 3)
		n = sizeof(name) - 3;
	name[0] = '[';
	memcpy(name + 1, s, n);
	name[n + 1] = ']';
	name[n + 2] = '\0';
	for (size_t i = b->n_mods; i-- > 0 && b->n_mods - i <= 4;) {
		if (strcmp(b->names + b->mods[i], name) == 0) {
			*idx = (uint32_t)i + 1;
			return 0;
		}
	}
	if (b->n_mods == b->mods_cap) {
		size_t cap = b->mods_cap ? b->mods_cap * 2 : 64;
		uint32_t *p = realloc(b->mods, cap * sizeof(*p));

		if (!p)
			return -ENOMEM;
		b->mods = p;
		b->mods_cap = cap;
	}
	if (names_add(b, name, n + 2, &off))
		return -ENOMEM;
	b->mods[b->n_mods++] = off;
	*idx = (uint32_t)b->n_mods;
	return 0;
}

static uint8_t type_rank(char t)
{
	switch (t) {
	case 'T':
		return 3;
	case 't':
		return 2;
	case 'W':
		return 1;
	default:
		return 0;
	}
}

static int ksym_cmp(const void *a, const void *b)
{
	const struct raw_ksym *x = a, *y = b;

	if (x->addr != y->addr)
		return x->addr < y->addr ? -1 : 1;
	if (x->rank != y->rank)
		return x->rank > y->rank ? -1 : 1;
	return x->name < y->name ? -1 : x->name > y->name;
}

/* Parses one line; returns 0 (also for skipped lines) or -ENOMEM. */
static int parse_line(struct kbuild *b, const char *p, const char *end, bool *nonzero)
{
	uint64_t addr = 0;
	const char *name, *mod = NULL;
	size_t name_len, mod_len = 0;
	struct raw_ksym k = {0};
	char type;

	for (; p < end && *p != ' '; p++) {
		char c = *p;

		if (c >= '0' && c <= '9')
			addr = addr << 4 | (uint64_t)(c - '0');
		else if (c >= 'a' && c <= 'f')
			addr = addr << 4 | (uint64_t)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			addr = addr << 4 | (uint64_t)(c - 'A' + 10);
		else
			return 0;
	}
	if (end - p < 4 || p[2] != ' ')
		return 0;
	type = p[1];
	if (type != 't' && type != 'T' && type != 'w' && type != 'W')
		return 0;
	if (addr)
		*nonzero = true;
	name = p + 3;
	for (p = name; p < end && *p != ' ' && *p != '\t'; p++)
		;
	name_len = (size_t)(p - name);
	if (!name_len)
		return 0;
	while (p < end && (*p == ' ' || *p == '\t'))
		p++;
	if (p < end && *p == '[') {
		mod = ++p;
		while (p < end && *p != ']')
			p++;
		mod_len = (size_t)(p - mod);
	}
	if (b->n == b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 1 << 16;
		struct raw_ksym *s = realloc(b->syms, cap * sizeof(*s));

		if (!s)
			return -ENOMEM;
		b->syms = s;
		b->cap = cap;
	}
	k.addr = addr;
	k.rank = type_rank(type);
	if (names_add(b, name, name_len, &k.name))
		return -ENOMEM;
	if (mod_len && mod_index(b, mod, mod_len, &k.mod))
		return -ENOMEM;
	b->syms[b->n++] = k;
	return 0;
}

int kallsyms__parse(const char *text, size_t len, struct kallsyms **out)
{
	struct kbuild b = {0};
	struct kallsyms *ks = NULL;
	const char *p = text, *end = text + len;
	bool nonzero = false;
	size_t kept = 0;
	int err = 0;

	while (p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));

		if (!eol)
			eol = end;
		err = parse_line(&b, p, eol, &nonzero);
		if (err)
			goto cleanup;
		p = eol + 1;
	}
	ks = calloc(1, sizeof(*ks));
	if (!ks) {
		err = -ENOMEM;
		goto cleanup;
	}
	ks->restricted = !nonzero;
	if (ks->restricted)
		b.n = 0;
	if (b.n) {
		qsort(b.syms, b.n, sizeof(*b.syms), ksym_cmp);
		ks->syms = malloc(b.n * sizeof(*ks->syms));
		if (!ks->syms) {
			err = -ENOMEM;
			goto cleanup;
		}
	}
	for (size_t i = 0; i < b.n; i++) {
		if (kept && ks->syms[kept - 1].addr == b.syms[i].addr)
			continue;
		ks->syms[kept++] = (struct ksym){
			.addr = b.syms[i].addr,
			.len = KSYM_MAX_LEN,
			.name = b.syms[i].name,
			.mod = b.syms[i].mod,
		};
	}
	for (size_t i = 0; i + 1 < kept; i++) {
		uint64_t gap = ks->syms[i + 1].addr - ks->syms[i].addr;

		if (gap < KSYM_MAX_LEN)
			ks->syms[i].len = (uint32_t)gap;
	}
	ks->n_syms = kept;
	if (b.names_len) { /* give back the doubling slack */
		char *shrunk = realloc(b.names, b.names_len);

		if (shrunk) {
			b.names = shrunk;
			b.names_cap = b.names_len;
		}
	}
	ks->names = b.names;
	ks->mod_names = b.mods;
	ks->n_mods = b.n_mods;
	ks->bytes =
		sizeof(*ks) + kept * sizeof(*ks->syms) + b.names_cap + b.mods_cap * sizeof(*b.mods);
	b.names = NULL;
	b.mods = NULL;
	*out = ks;
	ks = NULL;
cleanup:
	kallsyms__free(ks);
	free(b.syms);
	free(b.names);
	free(b.mods);
	return err;
}

int kallsyms__load(const char *path, struct kallsyms **out)
{
	char *buf = NULL;
	size_t len;
	int err;

	err = sym_read_file(path, &buf, &len);
	if (err)
		return err;
	err = kallsyms__parse(buf, len, out);
	free(buf);
	return err;
}

void kallsyms__free(struct kallsyms *ks)
{
	if (!ks)
		return;
	free(ks->syms);
	free(ks->names);
	free(ks->mod_names);
	free(ks);
}

const struct ksym *kallsyms__lookup(const struct kallsyms *ks, uint64_t addr)
{
	size_t lo = 0, hi = ks->n_syms;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (ks->syms[mid].addr <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (!lo || addr - ks->syms[lo - 1].addr >= ks->syms[lo - 1].len)
		return NULL;
	return &ks->syms[lo - 1];
}
