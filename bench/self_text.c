// SPDX-License-Identifier: BSD-2-Clause
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "self_text.h"

/* Whether path names glibc's libc. */
static bool is_libc(const char *path)
{
	const char *base = strrchr(path, '/');

	base = base ? base + 1 : path;
	return !strncmp(base, "libc.so", 7) || !strncmp(base, "libc-", 5);
}

int bench_self_text__find(struct bench_text_range *exe, struct bench_text_range *libc)
{
	char self[PATH_MAX], line[PATH_MAX + 128];
	ssize_t len = readlink("/proc/self/exe", self, sizeof(self) - 1);
	FILE *f;

	if (len < 0)
		return -errno;
	self[len] = 0;
	f = fopen("/proc/self/maps", "re");
	if (!f)
		return -errno;
	*exe = *libc = (struct bench_text_range){0};
	while (fgets(line, sizeof(line), f)) {
		unsigned long lo, hi;
		char perms[8];
		int path_at = 0;
		char *path;

		if (sscanf(line, "%lx-%lx %7s %*s %*s %*s %n", &lo, &hi, perms, &path_at) < 3 ||
		    !path_at || perms[2] != 'x')
			continue;
		path = line + path_at;
		path[strcspn(path, "\n")] = 0;
		if (!exe->lo && !strcmp(path, self))
			*exe = (struct bench_text_range){lo, hi};
		else if (!libc->lo && is_libc(path))
			*libc = (struct bench_text_range){lo, hi};
	}
	fclose(f);
	return exe->lo ? 0 : -ENOENT;
}

void bench_self_text__spread(uint64_t *out, size_t n, const struct bench_text_range *r)
{
	for (size_t i = 0; i < n; i++)
		out[i] = r->lo + (r->hi - r->lo) * (2 * i + 1) / (2 * n);
}
