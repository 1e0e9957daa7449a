/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * /proc/PID/maps parser.
 *
 * Each line is "start-end perms offset major:minor inode [path]"; the path is
 * everything after the inode's trailing blanks, so it may contain spaces, and
 * a file unlinked while mapped ends in " (deleted)" (kept in the path, flagged
 * PROC_MAP_DELETED). Anonymous memory has an empty path; pseudo mappings
 * ([vdso], [vsyscall], [heap], [anon:name]) keep their bracketed names.
 *
 * Pure functions over caller-owned storage: no locks, no shared state. The
 * symbolizer calls proc_maps__read() unlocked and installs the result under
 * its lock.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysmacros.h>

#include "symbolizer_internal.h"

static bool parse_num(const char **pp, const char *end, unsigned base, uint64_t *out)
{
	const char *p = *pp;
	uint64_t v = 0;

	if (p >= end)
		return false;
	for (; p < end; p++) {
		unsigned d;

		if (*p >= '0' && *p <= '9')
			d = (unsigned)(*p - '0');
		else if (base == 16 && *p >= 'a' && *p <= 'f')
			d = (unsigned)(*p - 'a' + 10);
		else if (base == 16 && *p >= 'A' && *p <= 'F')
			d = (unsigned)(*p - 'A' + 10);
		else
			break;
		v = v * base + d;
	}
	if (p == *pp)
		return false;
	*pp = p;
	*out = v;
	return true;
}

static bool expect(const char **pp, const char *end, char c)
{
	if (*pp >= end || **pp != c)
		return false;
	(*pp)++;
	return true;
}

static void skip_blanks(const char **pp, const char *end)
{
	while (*pp < end && (**pp == ' ' || **pp == '\t'))
		(*pp)++;
}

static int pool_add(struct proc_maps *pm, const char *s, size_t n, uint32_t *off)
{
	if (pm->pool_len + n + 1 > pm->pool_cap) {
		size_t cap = pm->pool_cap ? pm->pool_cap * 2 : 4096;
		char *p;

		while (cap < pm->pool_len + n + 1)
			cap *= 2;
		if (cap > UINT32_MAX)
			return -ENOMEM;
		p = realloc(pm->pool, cap);
		if (!p)
			return -ENOMEM;
		pm->pool = p;
		pm->pool_cap = cap;
	}
	memcpy(pm->pool + pm->pool_len, s, n);
	pm->pool[pm->pool_len + n] = '\0';
	*off = (uint32_t)pm->pool_len;
	pm->pool_len += n + 1;
	return 0;
}

/* Parses one line [p, end). Returns 1 if *m was filled, 0 to skip it. */
static int parse_line(const char *p, const char *end, struct proc_map *m, const char **path,
		      size_t *path_len)
{
	uint64_t maj, min;
	const char *perms;

	if (!parse_num(&p, end, 16, &m->start) || !expect(&p, end, '-') ||
	    !parse_num(&p, end, 16, &m->end) || !expect(&p, end, ' '))
		return 0;
	if (end - p < 4)
		return 0;
	perms = p;
	p += 4;
	skip_blanks(&p, end);
	if (!parse_num(&p, end, 16, &m->pgoff))
		return 0;
	skip_blanks(&p, end);
	if (!parse_num(&p, end, 16, &maj) || !expect(&p, end, ':') || !parse_num(&p, end, 16, &min))
		return 0;
	skip_blanks(&p, end);
	if (!parse_num(&p, end, 10, &m->inode))
		return 0;
	if (p < end && *p != ' ' && *p != '\t')
		return 0;
	skip_blanks(&p, end);
	if (m->end <= m->start)
		return 0;
	m->dev = makedev((unsigned)maj, (unsigned)min);
	m->flags = perms[2] == 'x' ? PROC_MAP_EXEC : 0;
	*path = p;
	*path_len = (size_t)(end - p);
	if (*path_len > SYM_DELETED_SUFFIX_LEN &&
	    memcmp(end - SYM_DELETED_SUFFIX_LEN, SYM_DELETED_SUFFIX, SYM_DELETED_SUFFIX_LEN) == 0)
		m->flags |= PROC_MAP_DELETED;
	return 1;
}

int proc_maps__parse(struct proc_maps *pm, const char *text, size_t len, bool exec_only)
{
	const char *p = text, *end = text + len;

	while (p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p)), *path;
		struct proc_map m = {0};
		size_t path_len;

		if (!eol)
			eol = end;
		if (parse_line(p, eol, &m, &path, &path_len) &&
		    (!exec_only || (m.flags & PROC_MAP_EXEC))) {
			if (pm->n == pm->cap) {
				size_t cap = pm->cap ? pm->cap * 2 : 64;
				struct proc_map *nm = realloc(pm->maps, cap * sizeof(*nm));

				if (!nm)
					return -ENOMEM;
				pm->maps = nm;
				pm->cap = cap;
			}
			if (pool_add(pm, path, path_len, &m.path))
				return -ENOMEM;
			pm->maps[pm->n++] = m;
		}
		p = eol + 1;
	}
	return 0;
}

int proc_maps__read(struct proc_maps *pm, uint32_t tgid, bool exec_only)
{
	char path[64], *buf = NULL;
	size_t len;
	int err;

	snprintf(path, sizeof(path), "/proc/%u/maps", tgid);
	err = sym_read_file(path, &buf, &len);
	if (err)
		return err;
	err = proc_maps__parse(pm, buf, len, exec_only);
	free(buf);
	return err;
}

void proc_maps__deinit(struct proc_maps *pm)
{
	free(pm->maps);
	free(pm->pool);
	memset(pm, 0, sizeof(*pm));
}
