/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * htlhash: the file identity OTLP Profiles puts on every mapping as
 * process.executable.build_id.htlhash ("head, tail, length" hash). It is the
 * lower-case hex of the first 16 bytes of
 *
 *   SHA-256(first 4096 bytes || last 4096 bytes || file size as big-endian u64)
 *
 * where a file shorter than a page contributes all its bytes twice: the two
 * pages may overlap and are never padded. It needs no parsing, so it exists
 * for files with no build id (stripped, not ELF at all), and reading two
 * pages is cheap enough to do for every module once, when it is loaded.
 *
 * SHA-256 is OpenSSL's (libcrypto). Pure functions: no shared state here.
 */
#include <errno.h>
#include <openssl/sha.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "symbolizer_internal.h"

#define HTLHASH_BYTES (SYM_HTLHASH_HEX / 2)

/* The hashed stream: head (n bytes), tail (n bytes), size (8 bytes). */
struct htl_buf {
	unsigned char b[2 * SYM_HTLHASH_PAGE + 8];
};

static size_t page_len(uint64_t size)
{
	return size < SYM_HTLHASH_PAGE ? (size_t)size : SYM_HTLHASH_PAGE;
}

/* Hashes buf, whose head and tail (n bytes each) are filled. */
static int htl_finish(struct htl_buf *buf, size_t n, uint64_t size, char *hex)
{
	static const char digits[] = "0123456789abcdef";
	unsigned char md[SHA256_DIGEST_LENGTH];

	for (int i = 0; i < 8; i++)
		buf->b[2 * n + i] = (unsigned char)(size >> (56 - 8 * i));
	if (!SHA256(buf->b, 2 * n + 8, md))
		return -EIO;
	for (int i = 0; i < HTLHASH_BYTES; i++) {
		hex[2 * i] = digits[md[i] >> 4];
		hex[2 * i + 1] = digits[md[i] & 0xf];
	}
	hex[SYM_HTLHASH_HEX] = '\0';
	return 0;
}

int sym_htlhash_mem(const void *head, const void *tail, uint64_t size, char *hex)
{
	struct htl_buf buf;
	size_t n = page_len(size);

	hex[0] = '\0';
	memcpy(buf.b, head, n);
	memcpy(buf.b + n, tail, n);
	return htl_finish(&buf, n, size, hex);
}

/* Reads exactly n bytes at off. Returns 0 or -errno (-EIO on a short file). */
static int read_at(int fd, void *buf, size_t n, off_t off)
{
	size_t done = 0;

	while (done < n) {
		ssize_t r = pread(fd, (char *)buf + done, n - done, off + (off_t)done);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			return -EIO; /* truncated since fstat */
		done += (size_t)r;
	}
	return 0;
}

int sym_htlhash_fd(int fd, char *hex)
{
	struct htl_buf buf;
	struct stat st;
	size_t n;
	int err;

	hex[0] = '\0';
	if (fstat(fd, &st))
		return -errno;
	if (!S_ISREG(st.st_mode))
		return -EINVAL;
	n = page_len((uint64_t)st.st_size);
	err = read_at(fd, buf.b, n, 0);
	if (!err)
		err = read_at(fd, buf.b + n, n, st.st_size - (off_t)n);
	if (err)
		return err;
	return htl_finish(&buf, n, (uint64_t)st.st_size, hex);
}
