/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Small helpers for the symbolizer: whole-file reads (for /proc files, whose
 * size stat() reports as 0), the monotonic clock, hashes, rate-limited
 * warnings. Stateless except sym_warn(), which counts in the symbolizer under
 * its lock.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "symbolizer_internal.h"

int sym_read_file(const char *path, char **buf, size_t *len)
{
	size_t cap = 64 * 1024, n = 0;
	char *b = NULL;
	int fd, err = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	b = malloc(cap);
	if (!b) {
		err = -ENOMEM;
		goto cleanup;
	}
	for (;;) {
		ssize_t r;

		if (cap - n < 4096) {
			char *nb = realloc(b, cap * 2);
			if (!nb) {
				err = -ENOMEM;
				goto cleanup;
			}
			b = nb;
			cap *= 2;
		}
		r = read(fd, b + n, cap - n - 1);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			err = -errno;
			goto cleanup;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	b[n] = '\0';
	*buf = b;
	*len = n;
	b = NULL;
cleanup:
	free(b);
	close(fd);
	return err;
}

uint64_t sym_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* splitmix64 finalizer: cheap and good enough for table indexes. */
uint64_t sym_hash_u64(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebull;
	x ^= x >> 31;
	return x;
}

/* FNV-1a, finalized. Keys hashed with it are short (paths, build ids). */
uint64_t sym_hash_mem(const void *p, size_t n)
{
	const unsigned char *s = p;
	uint64_t h = 0xcbf29ce484222325ull;

	for (size_t i = 0; i < n; i++) {
		h ^= s[i];
		h *= 0x100000001b3ull;
	}
	return sym_hash_u64(h);
}

const char *sym_basename(const char *path)
{
	const char *slash = strrchr(path, '/');

	return slash ? slash + 1 : path;
}

void sym_warn(struct symbolizer *sym, const char *fmt, ...)
{
	va_list ap;

	if (sym->warnings >= SYM_MAX_WARNINGS)
		return;
	fputs("symbolizer: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	if (++sym->warnings == SYM_MAX_WARNINGS)
		fputs("symbolizer: further load warnings suppressed\n", stderr);
}
