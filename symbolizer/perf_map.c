/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * JIT perf maps: /tmp/perf-PID.map, one "START SIZE name" line per compiled
 * function (START and SIZE in hex, with or without 0x; the name runs to the
 * end of the line and may hold spaces), appended to by the runtime (Node.js
 * --perf-basic-prof, JVM agents, LuaJIT, .NET) as it compiles code.
 *
 * The file is read from the process's own root, under the pid the process
 * has in its pid namespace (/proc/PID/root/tmp/perf-NSPID.map), resolved
 * within that root (proc_root.c), following no symlink, and only if the
 * process's user or root owns it, as perf requires. A runtime that moves code may write the
 * same address twice: the later line wins. At most SYM_PERF_MAP_MAX_BYTES of
 * a file are read, so a runaway map costs bounded memory; the rest is
 * ignored (perf_map.truncated).
 *
 * Immutable once built: the symbolizer swaps in a new one, under its lock,
 * when the file has grown (checked on a lookup miss, rate-limited).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "symbolizer_internal.h"

struct raw_sym {
	uint64_t start, end;
	uint32_t name_off, name_len; /* in the parsed text */
	uint32_t line;		     /* order in the file: the later line wins */
};

static bool parse_hex(const char **pp, const char *end, uint64_t *out)
{
	const char *p = *pp, *start;
	uint64_t v = 0;

	if (end - p >= 2 && p[0] == '0' && (p[1] == 'x' || p[1] == 'X'))
		p += 2;
	for (start = p; p < end; p++) {
		unsigned d;

		if (*p >= '0' && *p <= '9')
			d = (unsigned)(*p - '0');
		else if (*p >= 'a' && *p <= 'f')
			d = (unsigned)(*p - 'a' + 10);
		else if (*p >= 'A' && *p <= 'F')
			d = (unsigned)(*p - 'A' + 10);
		else
			break;
		if (p - start >= 16)
			return false;
		v = v << 4 | d;
	}
	if (p == start)
		return false;
	*pp = p;
	*out = v;
	return true;
}

/* Parses "START SIZE name" in [p, eol). Returns false for a malformed line,
 * an empty range or name, or a range that wraps. */
static bool parse_line(const char *p, const char *eol, uint64_t *start, uint64_t *size,
		       const char **name, size_t *name_len)
{
	if (!parse_hex(&p, eol, start) || p >= eol || *p++ != ' ' || !parse_hex(&p, eol, size) ||
	    p >= eol || *p++ != ' ' || !*size || *start + *size < *start)
		return false;
	if (eol > p && eol[-1] == '\r')
		eol--;
	*name = p;
	*name_len = (size_t)(eol - p);
	return *name_len > 0;
}

static int raw_cmp(const void *a, const void *b)
{
	const struct raw_sym *x = a, *y = b;

	if (x->start != y->start)
		return x->start < y->start ? -1 : 1;
	return x->line < y->line ? 1 : x->line > y->line ? -1 : 0; /* later first */
}

int perf_map__parse(const char *text, size_t len, struct perf_map **out)
{
	const char *p = text, *end = text + len;
	struct raw_sym *raw = NULL;
	size_t n = 0, cap = 0, names_len = 0, kept = 0;
	struct perf_map *pm = NULL;
	char *names = NULL;
	int err = -ENOMEM;

	if (len > UINT32_MAX)
		return -EFBIG;
	/* Pass 1: the lines, names left in place. */
	for (uint32_t line = 0; p < end; line++) {
		const char *eol = memchr(p, '\n', (size_t)(end - p)), *name;
		uint64_t start, size;
		size_t name_len;

		if (!eol)
			eol = end;
		if (parse_line(p, eol, &start, &size, &name, &name_len)) {
			if (n == cap) {
				size_t ncap = cap ? cap * 2 : 256;
				struct raw_sym *r = realloc(raw, ncap * sizeof(*r));

				if (!r)
					goto cleanup;
				raw = r;
				cap = ncap;
			}
			raw[n++] = (struct raw_sym){
				.start = start,
				.end = start + size,
				.name_off = (uint32_t)(name - text),
				.name_len = (uint32_t)name_len,
				.line = line,
			};
			names_len += name_len + 1;
		}
		p = eol + 1;
	}
	pm = calloc(1, sizeof(*pm));
	names = malloc(names_len ? names_len : 1);
	if (!pm || !names)
		goto cleanup;
	if (n) {
		qsort(raw, n, sizeof(*raw), raw_cmp);
		pm->syms = malloc(n * sizeof(*pm->syms));
		if (!pm->syms)
			goto cleanup;
	}
	/* Pass 2: one entry per start (the latest line), names copied out. */
	names_len = 0;
	for (size_t i = 0; i < n; i++) {
		if (kept && pm->syms[kept - 1].start == raw[i].start)
			continue;
		memcpy(names + names_len, text + raw[i].name_off, raw[i].name_len);
		names[names_len + raw[i].name_len] = '\0';
		pm->syms[kept++] = (struct perf_map_sym){
			.start = raw[i].start,
			.end = raw[i].end,
			.name = (uint32_t)names_len,
		};
		names_len += raw[i].name_len + 1;
	}
	pm->n_syms = kept;
	pm->names = names;
	names = NULL;
	pm->bytes = sizeof(*pm) + n * sizeof(*pm->syms) + (names_len ? names_len : 1);
	*out = pm;
	pm = NULL;
	err = 0;
cleanup:
	perf_map__free(pm);
	free(names);
	free(raw);
	return err;
}

void perf_map__free(struct perf_map *pm)
{
	if (!pm)
		return;
	free(pm->syms);
	free(pm->names);
	free(pm);
}

const struct perf_map_sym *perf_map__lookup(const struct perf_map *pm, uint64_t addr)
{
	size_t lo = 0, hi = pm->n_syms;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (pm->syms[mid].start <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (!lo || addr >= pm->syms[lo - 1].end)
		return NULL;
	return &pm->syms[lo - 1];
}

int perf_map__open(uint32_t tgid, char *path, size_t pathlen, uint64_t *size)
{
	char in_root[64];
	uint32_t nspid;
	struct stat st, owner;
	int fd, err;

	err = proc_root__nspid(tgid, &nspid);
	if (err)
		return err;
	snprintf(in_root, sizeof(in_root), "/tmp/perf-%u.map", nspid);
	/* The module name: the file as the host reaches it, unique per process. */
	if (nspid == tgid)
		snprintf(path, pathlen, "%s", in_root);
	else
		snprintf(path, pathlen, "/proc/%u/root%s", tgid, in_root);
	/* As perf does: no symlink (the runtime writes the file itself), and
	 * owned by the process's user or root, so another user cannot plant
	 * names, nor point the agent at a file it may read and they may not. */
	fd = proc_root__open(tgid, in_root, true);
	if (fd < 0)
		return fd;
	snprintf(in_root, sizeof(in_root), "/proc/%u", tgid);
	if (fstat(fd, &st) || !S_ISREG(st.st_mode) || stat(in_root, &owner) ||
	    (st.st_uid != 0 && st.st_uid != owner.st_uid)) {
		close(fd);
		return -EPERM;
	}
	*size = (uint64_t)st.st_size;
	return fd;
}

int perf_map__read_fd(int fd, uint64_t size, struct perf_map **out)
{
	size_t want = size < SYM_PERF_MAP_MAX_BYTES ? (size_t)size : SYM_PERF_MAP_MAX_BYTES;
	size_t got = 0;
	char *buf = malloc(want ? want : 1);
	int err;

	if (!buf)
		return -ENOMEM;
	while (got < want) {
		ssize_t r = pread(fd, buf + got, want - got, (off_t)got);

		if (r < 0) {
			err = -errno;
			free(buf);
			return err;
		}
		if (!r)
			break;
		got += (size_t)r;
	}
	/* A line still being written has no newline yet: leave it for the next read. */
	while (got && buf[got - 1] != '\n')
		got--;
	err = perf_map__parse(buf, got, out);
	if (!err)
		(*out)->truncated = size > SYM_PERF_MAP_MAX_BYTES;
	free(buf);
	return err;
}
