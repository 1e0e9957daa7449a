// SPDX-License-Identifier: BSD-2-Clause
/*
 * exporter/ tests: the pure parts (URL, HTTP request head and response
 * parser, Retry-After, backoff, gzip, partial_success) and the OTLP/HTTP
 * exporter end to end against tests/otlp_receiver.c on 127.0.0.1, which is
 * scripted per request (statuses, Retry-After, partial success, delays,
 * closed connections, refused connects, TLS with a certificate made here by
 * the openssl CLI); a backlog drained back to back once the collector is up
 * (only its head retried); the exporter's heap, counted through malloc
 * wrappers, within the queue bound while the collector never answers or
 * refuses connections; the profile file writes on the same loop (exact bytes,
 * atomic, last write wins, failures counted, never behind a stuck request,
 * the queue's bound). No privileges; every wait is bounded.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <malloc.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "exporter.h"
#include "exporter_internal.h"
#include "test_helpers.h"

#ifndef OTLP_RECEIVER_PATH
#define OTLP_RECEIVER_PATH "otlp_receiver"
#endif
#ifndef OPENSSL_CLI
#define OPENSSL_CLI "openssl"
#endif

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- heap accounting ------------------------------------------------------ */

/*
 * malloc, calloc, realloc and free of this test and of the static
 * pl_exporter are wrapped (-Wl,--wrap, tests/exporter.cmake) to count the
 * bytes they hold (usable sizes) and the high-water mark, whatever the
 * allocator (glibc, ASan, TSan): the memory-bound test measures the
 * exporter's heap exactly, without the noise of RSS. Allocations made inside
 * shared libraries (libc's strdup, OpenSSL, libdeflate, zlib) are not seen;
 * a strdup freed here is subtracted without having been added, so heap_live
 * may end a little below where it started, never above.
 */
void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);
void __real_free(void *p);

static int64_t heap_live, heap_peak; /* atomics, relaxed: counters only */

static void heap_add(int64_t d)
{
	int64_t now = __atomic_add_fetch(&heap_live, d, __ATOMIC_RELAXED);
	int64_t peak = __atomic_load_n(&heap_peak, __ATOMIC_RELAXED);
	while (now > peak && !__atomic_compare_exchange_n(&heap_peak, &peak, now, true,
							  __ATOMIC_RELAXED, __ATOMIC_RELAXED))
		;
}

void *__wrap_malloc(size_t n)
{
	void *p = __real_malloc(n);
	if (p)
		heap_add((int64_t)malloc_usable_size(p));
	return p;
}

void *__wrap_calloc(size_t n, size_t size)
{
	void *p = __real_calloc(n, size);
	if (p)
		heap_add((int64_t)malloc_usable_size(p));
	return p;
}

void *__wrap_realloc(void *p, size_t n)
{
	int64_t old = p ? (int64_t)malloc_usable_size(p) : 0;
	void *q = __real_realloc(p, n);
	if (q)
		heap_add((int64_t)malloc_usable_size(q) - old);
	else if (p && !n)
		heap_add(-old); /* realloc(p, 0) freed p */
	return q;
}

void __wrap_free(void *p)
{
	if (p)
		heap_add(-(int64_t)malloc_usable_size(p));
	__real_free(p);
}

/* Bytes held now; restarts the high-water mark from here. */
static int64_t heap_mark(void)
{
	int64_t now = __atomic_load_n(&heap_live, __ATOMIC_RELAXED);
	__atomic_store_n(&heap_peak, now, __ATOMIC_RELAXED);
	return now;
}

/* ---- URL ------------------------------------------------------------------ */

static int test_url_parse(void)
{
	struct otlp_url u;
	const char *why;

	CHECK(otlp_url__parse("http://127.0.0.1:4318/v1development/profiles", &u, &why) == 0);
	CHECK(!u.https && u.host_is_ip);
	CHECK_STR(u.host, "127.0.0.1");
	CHECK_STR(u.port, "4318");
	CHECK_STR(u.path, "/v1development/profiles");
	CHECK_STR(u.host_header, "127.0.0.1:4318");

	CHECK(otlp_url__parse("https://collector.internal", &u, &why) == 0);
	CHECK(u.https && !u.host_is_ip);
	CHECK_STR(u.port, "4318");
	CHECK_STR(u.path, OTLP_DEFAULT_PATH);
	CHECK_STR(u.host_header, "collector.internal:4318");

	CHECK(otlp_url__parse("http://h:80/", &u, &why) == 0);
	CHECK_STR(u.path, OTLP_DEFAULT_PATH);
	CHECK_STR(u.host_header, "h");
	CHECK(otlp_url__parse("https://h:443/p", &u, &why) == 0);
	CHECK_STR(u.host_header, "h");
	CHECK_STR(u.path, "/p");

	CHECK(otlp_url__parse("HTTP://[::1]:9000/custom/path?x=1#frag", &u, &why) == 0);
	CHECK_STR(u.host, "::1");
	CHECK_STR(u.port, "9000");
	CHECK_STR(u.path, "/custom/path?x=1");
	CHECK_STR(u.host_header, "[::1]:9000");
	CHECK(u.host_is_ip);
	CHECK(otlp_url__parse("http://h?q=1", &u, &why) == 0);
	CHECK_STR(u.path, "/?q=1");

	static const char *const bad[] = {
		"ftp://h",	  "http://",	    "http://:4318",	"http://user:pw@h/",
		"http://h:0",	  "http://h:65536", "http://h:abc",	"http://h:/x",
		"http://[::1",	  "http://h/a b",   "http://[zz]:1/",	"http://h h/",
		"https://[::1]x", "h:4318",	    "http://h:1234567",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		why = NULL;
		if (otlp_url__parse(bad[i], &u, &why) != -EINVAL || !why) {
			fprintf(stderr, "accepted bad URL %s\n", bad[i]);
			return 1;
		}
	}
	CHECK(otlp_url__parse(NULL, &u, &why) == -EINVAL);
	return 0;
}

/* ---- HTTP request ------------------------------------------------------------ */

static int test_request_head(void)
{
	struct otlp_url u;
	size_t len;
	const char *extra[] = {"Authorization: Bearer abc", "User-Agent: custom/2"};

	CHECK(otlp_url__parse("http://127.0.0.1:4318", &u, NULL) == 0);
	char *h = http_request__head(&u, "pipeline/9", extra, 2, true, 123, &len);
	CHECK(h && strlen(h) == len);
	CHECK(!strncmp(h, "POST /v1development/profiles HTTP/1.1\r\n", 39));
	CHECK(strstr(h, "\r\nHost: 127.0.0.1:4318\r\n"));
	CHECK(strstr(h, "\r\nContent-Type: application/x-protobuf\r\n"));
	CHECK(strstr(h, "\r\nContent-Encoding: gzip\r\n"));
	CHECK(strstr(h, "\r\nContent-Length: 123\r\n"));
	CHECK(strstr(h, "\r\nConnection: keep-alive\r\n"));
	CHECK(strstr(h, "\r\nAuthorization: Bearer abc\r\n"));
	CHECK(strstr(h, "\r\nUser-Agent: custom/2\r\n"));
	CHECK(!strstr(h, "pipeline/9")); /* the extra User-Agent replaces the default */
	CHECK(len > 4 && !strcmp(h + len - 4, "\r\n\r\n"));
	free(h);

	h = http_request__head(&u, "pipeline/9", NULL, 0, false, 0, &len);
	CHECK(h);
	CHECK(strstr(h, "\r\nUser-Agent: pipeline/9\r\n"));
	CHECK(!strstr(h, "Content-Encoding"));
	CHECK(strstr(h, "\r\nContent-Length: 0\r\n"));
	free(h);
	return 0;
}

static int test_header_check(void)
{
	const char *why;
	CHECK(http_header__check("X-A: b", &why) == 0);
	CHECK(http_header__check("authorization: Bearer x=y", &why) == 0);
	CHECK(http_header__check("X-Empty:", &why) == 0);
	static const char *const bad[] = {
		"NoColon",
		": v",
		"Bad Name: v",
		"X: a\r\nInjected: 1",
		"X: a\nb",
		"Content-Length: 5",
		"connection: close",
		"Transfer-Encoding: x",
		"content-encoding: br",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		why = NULL;
		if (http_header__check(bad[i], &why) != -EINVAL || !why) {
			fprintf(stderr, "accepted bad header %s\n", bad[i]);
			return 1;
		}
	}
	return 0;
}

/* ---- HTTP response ------------------------------------------------------------ */

/* Feeds s in pieces of `step` bytes (0: all at once). Returns the last feed
 * result; *used_total counts consumed bytes. */
static int feed_steps(struct http_resp *r, const char *s, size_t n, size_t step, size_t *used_total)
{
	size_t off = 0;
	int rc = 0;
	*used_total = 0;
	if (!step)
		step = n;
	while (off < n) {
		size_t take = n - off < step ? n - off : step, used = 0;
		rc = http_resp__feed(r, s + off, take, &used);
		*used_total += used;
		if (rc != 0)
			return rc;
		off += take;
	}
	return rc;
}

static const size_t steps[] = {0, 1, 2, 3, 7, 64};

static int test_resp_content_length(void)
{
	static const char s[] = "HTTP/1.1 200 OK\r\nContent-Type: application/x-protobuf\r\n"
				"Content-Length: 5\r\n\r\nhelloEXTRA";
	for (size_t k = 0; k < sizeof(steps) / sizeof(steps[0]); k++) {
		struct http_resp r;
		size_t used;
		http_resp__init(&r, 1024);
		CHECK(feed_steps(&r, s, sizeof(s) - 1, steps[k], &used) == 1);
		CHECK_EQ_U64(used, sizeof(s) - 1 - 5);
		CHECK(r.status == 200 && r.keep_alive && r.body_len == 5);
		CHECK(!memcmp(r.body, "hello", 5));
		/* reset and reuse for a second response on the same connection */
		http_resp__reset(&r);
		static const char s2[] =
			"HTTP/1.1 503 Busy\r\nRetry-After: 7\r\nContent-Length: 0\r\n"
			"Connection: close\r\n\r\n";
		CHECK(feed_steps(&r, s2, sizeof(s2) - 1, steps[k], &used) == 1);
		CHECK(r.status == 503 && !r.keep_alive && r.has_retry_after);
		CHECK_STR(r.retry_after, "7");
		CHECK(r.body_len == 0);
		http_resp__deinit(&r);
	}
	return 0;
}

static int test_resp_chunked(void)
{
	static const char s[] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
				"Content-Length: 3\r\n\r\n"
				"5;name=value\r\nhello\r\n6\r\n world\r\nA\r\n0123456789\r\n"
				"0\r\nX-Trailer: 1\r\n\r\n";
	for (size_t k = 0; k < sizeof(steps) / sizeof(steps[0]); k++) {
		struct http_resp r;
		size_t used;
		http_resp__init(&r, 1024);
		CHECK(feed_steps(&r, s, sizeof(s) - 1, steps[k], &used) == 1);
		CHECK_EQ_U64(used, sizeof(s) - 1);
		CHECK(r.chunked && r.keep_alive);
		CHECK_EQ_U64(r.body_len, 21);
		CHECK(!memcmp(r.body, "hello world0123456789", 21));
		http_resp__deinit(&r);
	}
	return 0;
}

static int test_resp_misc(void)
{
	struct http_resp r;
	size_t used;

	/* body delimited by the close */
	http_resp__init(&r, 1024);
	static const char a[] = "HTTP/1.0 200 OK\r\n\r\nabc";
	CHECK(http_resp__feed(&r, a, sizeof(a) - 1, &used) == 0);
	CHECK(http_resp__eof(&r) == 1);
	CHECK(r.body_len == 3 && !r.keep_alive);

	/* interim 100 Continue, then 204 without a body */
	http_resp__reset(&r);
	static const char b[] = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n";
	CHECK(http_resp__feed(&r, b, sizeof(b) - 1, &used) == 1);
	CHECK(r.status == 204 && used == sizeof(b) - 1 && r.keep_alive);

	/* HTTP/1.0 persistent only when asked */
	http_resp__reset(&r);
	static const char c[] =
		"HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 0\r\n\r\n";
	CHECK(http_resp__feed(&r, c, sizeof(c) - 1, &used) == 1);
	CHECK(r.keep_alive);
	http_resp__reset(&r);
	static const char c2[] = "HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n";
	CHECK(http_resp__feed(&r, c2, sizeof(c2) - 1, &used) == 1);
	CHECK(!r.keep_alive);
	http_resp__reset(&r);
	static const char c3[] = "HTTP/1.1 200 OK\r\nConnection: keep-alive, close\r\n"
				 "content-length: 0\r\n\r\n";
	CHECK(http_resp__feed(&r, c3, sizeof(c3) - 1, &used) == 1);
	CHECK(!r.keep_alive);

	/* bare LF line ends are tolerated */
	http_resp__reset(&r);
	static const char d[] = "HTTP/1.1 202 Accepted\nContent-Length: 2\n\nok";
	CHECK(http_resp__feed(&r, d, sizeof(d) - 1, &used) == 1);
	CHECK(r.status == 202 && r.body_len == 2);

	/* incomplete responses at EOF */
	http_resp__reset(&r);
	CHECK(http_resp__eof(&r) == -EPIPE);
	CHECK(!r.got_bytes);
	static const char e[] = "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc";
	CHECK(http_resp__feed(&r, e, sizeof(e) - 1, &used) == 0);
	CHECK(r.got_bytes);
	CHECK(http_resp__eof(&r) == -EPIPE);

	/* malformed */
	static const char *const bad[] = {
		"HTTP/2 200 OK\r\n\r\n",
		"HTTP/1.1 20 OK\r\n\r\n",
		"HTTP/1.1 600 Nope\r\n\r\n",
		"ICY 200 OK\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
		"HTTP/1.1 200 OK\r\nNo colon here\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabX\r\n",
		"HTTP/1.1 101 Switching Protocols\r\n\r\n",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		http_resp__reset(&r);
		int rc = http_resp__feed(&r, bad[i], strlen(bad[i]), &used);
		if (rc != -EPROTO) {
			fprintf(stderr, "malformed response %zu: got %d\n", i, rc);
			return 1;
		}
	}
	http_resp__deinit(&r);
	return 0;
}

static int test_resp_oversize(void)
{
	struct http_resp r;
	size_t used;
	http_resp__init(&r, 16);

	static const char a[] = "HTTP/1.1 200 OK\r\nContent-Length: 17\r\n\r\n";
	CHECK(http_resp__feed(&r, a, sizeof(a) - 1, &used) == -EMSGSIZE);
	http_resp__reset(&r);
	static const char b[] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
				"10\r\n0123456789abcdef\r\n1\r\n";
	CHECK(http_resp__feed(&r, b, sizeof(b) - 1, &used) == -EMSGSIZE);
	http_resp__reset(&r);
	static const char c[] = "HTTP/1.1 200 OK\r\n\r\n0123456789abcdefX";
	CHECK(http_resp__feed(&r, c, sizeof(c) - 1, &used) == -EMSGSIZE);
	http_resp__reset(&r);
	static const char d[] = "HTTP/1.1 200 OK\r\nContent-Length: 16\r\n\r\n0123456789abcdef";
	CHECK(http_resp__feed(&r, d, sizeof(d) - 1, &used) == 1); /* exactly the cap is fine */

	/* an endless header line, and too many header bytes */
	http_resp__reset(&r);
	char *big = malloc(HTTP_HEAD_MAX + 100);
	CHECK(big);
	strcpy(big, "HTTP/1.1 200 OK\r\nX: ");
	memset(big + strlen(big), 'a', HTTP_LINE_MAX + 10);
	int rc = http_resp__feed(&r, big, strlen(big), &used);
	http_resp__reset(&r);
	size_t o = (size_t)sprintf(big, "HTTP/1.1 200 OK\r\n");
	while (o + 20 < HTTP_HEAD_MAX + 50)
		o += (size_t)sprintf(big + o, "X-Pad: 0123456789\r\n");
	int rc2 = http_resp__feed(&r, big, o, &used);
	free(big);
	CHECK(rc == -EMSGSIZE);
	CHECK(rc2 == -EMSGSIZE);
	http_resp__deinit(&r);
	return 0;
}

static int test_resp_gzip(void)
{
	uint8_t *z;
	size_t zl;
	static const char text[] = "a gzip-encoded response body";
	CHECK(gzip__compress(text, sizeof(text) - 1, 6, &z, &zl) == 0);

	char head[128];
	int hl = snprintf(
		head, sizeof(head),
		"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %zu\r\n\r\n", zl);
	struct http_resp r;
	size_t used;
	http_resp__init(&r, 1024);
	CHECK(http_resp__feed(&r, head, (size_t)hl, &used) == 0);
	CHECK(http_resp__feed(&r, z, zl, &used) == 1);
	CHECK(r.body_len == sizeof(text) - 1 && !memcmp(r.body, text, r.body_len));
	http_resp__deinit(&r);

	free(z);

	/* small on the wire, over the cap once decoded (a gzip bomb, in small) */
	char *zeros = calloc(1, 100000);
	CHECK(zeros);
	CHECK(gzip__compress(zeros, 100000, 9, &z, &zl) == 0);
	free(zeros);
	CHECK(zl < 1000);
	hl = snprintf(head, sizeof(head),
		      "HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %zu\r\n\r\n",
		      zl);
	http_resp__init(&r, 1000);
	CHECK(http_resp__feed(&r, head, (size_t)hl, &used) == 0);
	CHECK(http_resp__feed(&r, z, zl, &used) == -EMSGSIZE);
	http_resp__deinit(&r);
	free(z);
	return 0;
}

static int test_retry_after(void)
{
	uint64_t ms;
	/* 1994-11-06 08:49:37 UTC */
	const time_t t = 784111777;

	CHECK(http_retry_after__parse("5", t, &ms) == 0 && ms == 5000);
	CHECK(http_retry_after__parse(" 120 ", t, &ms) == 0 && ms == 120000);
	CHECK(http_retry_after__parse("0", t, &ms) == 0 && ms == 0);
	CHECK(http_retry_after__parse("100000", t, &ms) == 0 && ms == RETRY_AFTER_CAP_MS);
	CHECK(http_retry_after__parse("99999999999999999999", t, &ms) == 0 &&
	      ms == RETRY_AFTER_CAP_MS);
	CHECK(http_retry_after__parse("Sun, 06 Nov 1994 08:49:37 GMT", t - 10, &ms) == 0 &&
	      ms == 10000);
	CHECK(http_retry_after__parse("Sunday, 06-Nov-94 08:49:37 GMT", t - 3, &ms) == 0 &&
	      ms == 3000);
	CHECK(http_retry_after__parse("Sun Nov  6 08:49:37 1994", t - 1, &ms) == 0 && ms == 1000);
	CHECK(http_retry_after__parse("Sun, 06 Nov 1994 08:49:37 GMT", t + 5, &ms) == 0 && ms == 0);
	CHECK(http_retry_after__parse("Sun, 06 Nov 1994 08:49:37 GMT", t - 3600, &ms) == 0 &&
	      ms == RETRY_AFTER_CAP_MS);
	CHECK(http_retry_after__parse("soon", t, &ms) == -EINVAL);
	CHECK(http_retry_after__parse("-1", t, &ms) == -EINVAL);
	CHECK(http_retry_after__parse("5s", t, &ms) == -EINVAL);
	CHECK(http_retry_after__parse("Sun, 06 Nov 1994 08:49:37 PST", t, &ms) == -EINVAL);
	CHECK(http_retry_after__parse("Sun, 06 Foo 1994 08:49:37 GMT", t, &ms) == -EINVAL);
	CHECK(http_retry_after__parse("Sun, 06 Nov 1994 25:49:37 GMT", t, &ms) == -EINVAL);

	CHECK(http_status__retryable(429) && http_status__retryable(502) &&
	      http_status__retryable(503) && http_status__retryable(504));
	CHECK(!http_status__retryable(400) && !http_status__retryable(413) &&
	      !http_status__retryable(500) && !http_status__retryable(501) &&
	      !http_status__retryable(200));
	return 0;
}

static int test_backoff(void)
{
	for (uint64_t seed = 1; seed < 200; seed++) {
		struct backoff b;
		backoff__init(&b, 100, 1000, seed);
		for (unsigned k = 0; k < 12; k++) {
			unsigned ceil = 100u << (k < 4 ? k : 4);
			if (ceil > 1000)
				ceil = 1000;
			unsigned d = backoff__next(&b);
			if (d < ceil - ceil / 2 || d > ceil) {
				fprintf(stderr, "seed %llu attempt %u: %u not in [%u, %u]\n",
					(unsigned long long)seed, k, d, ceil - ceil / 2, ceil);
				return 1;
			}
		}
		backoff__reset(&b);
		unsigned d = backoff__next(&b);
		CHECK(d >= 50 && d <= 100);
	}
	/* jitter: the first delays of different seeds are not all the same */
	unsigned first[16];
	bool differ = false;
	for (unsigned i = 0; i < 16; i++) {
		struct backoff b;
		backoff__init(&b, 1000, 30000, 1000 + i * 7919);
		first[i] = backoff__next(&b);
		differ |= first[i] != first[0];
	}
	CHECK(differ);
	/* degenerate settings */
	struct backoff b;
	backoff__init(&b, 0, 0, 0);
	CHECK(backoff__next(&b) <= 1);
	return 0;
}

/* ---- protobuf, gzip --------------------------------------------------------------- */

static int test_partial_success(void)
{
	int64_t rej;
	char msg[64];
	static const uint8_t full[] = {0x0a, 0x05, 0x08, 0x03, 0x12, 0x01, 'x'};
	CHECK(pb_partial_success__parse(full, sizeof(full), &rej, msg, sizeof(msg)) == 1);
	CHECK(rej == 3);
	CHECK_STR(msg, "x");
	CHECK(pb_partial_success__parse(NULL, 0, &rej, msg, sizeof(msg)) == 0);
	static const uint8_t empty_ps[] = {0x0a, 0x00};
	CHECK(pb_partial_success__parse(empty_ps, sizeof(empty_ps), &rej, msg, sizeof(msg)) == 0);
	static const uint8_t empty_msg[] = {0x0a, 0x02, 0x12, 0x00};
	CHECK(pb_partial_success__parse(empty_msg, sizeof(empty_msg), &rej, msg, sizeof(msg)) == 0);
	static const uint8_t warn[] = {0x0a, 0x03, 0x12, 0x01, 'w'};
	CHECK(pb_partial_success__parse(warn, sizeof(warn), &rej, msg, sizeof(msg)) == 1);
	CHECK(rej == 0);
	static const uint8_t unknown[] = {0x10, 0x01, 0x1d, 1, 2, 3, 4, 0x0a, 0x02, 0x08, 0x07};
	CHECK(pb_partial_success__parse(unknown, sizeof(unknown), &rej, msg, sizeof(msg)) == 1);
	CHECK(rej == 7);
	static const uint8_t trunc[] = {0x0a, 0x05, 0x08};
	CHECK(pb_partial_success__parse(trunc, sizeof(trunc), &rej, msg, sizeof(msg)) == -EPROTO);
	static const uint8_t badvar[] = {0x0a, 0x02, 0x08, 0x80};
	CHECK(pb_partial_success__parse(badvar, sizeof(badvar), &rej, msg, sizeof(msg)) == -EPROTO);

	char out[32];
	static const uint8_t status[] = {0x08, 0x03, 0x12, 0x04, 'b', 'a', 'd', '!'};
	pb_error_body__describe(status, sizeof(status), out, sizeof(out));
	CHECK_STR(out, "bad!");
	pb_error_body__describe((const uint8_t *)"plain text\n", 11, out, sizeof(out));
	CHECK_STR(out, "plain text.");
	char small[8];
	pb_error_body__describe((const uint8_t *)"a long text body", 16, small, sizeof(small));
	CHECK_STR(small, "a lo...");
	pb_error_body__describe(NULL, 0, out, sizeof(out));
	CHECK_STR(out, "");
	return 0;
}

static int test_gzip(void)
{
	size_t n = 200000;
	uint8_t *in = malloc(n), *z = NULL, *out = NULL;
	size_t zl, ol;
	CHECK(in);
	uint32_t x = 12345;
	for (size_t i = 0; i < n; i++) {
		x = x * 1103515245 + 12345;
		in[i] = (uint8_t)((x >> 16) % 7); /* compressible, not trivially */
	}
	CHECK(gzip__compress(in, n, 6, &z, &zl) == 0);
	CHECK(zl < n && z[0] == 0x1f && z[1] == 0x8b);
	CHECK(gzip__decompress(z, zl, n, &out, &ol) == 0);
	CHECK(ol == n && !memcmp(in, out, n));
	free(out);
	CHECK(gzip__decompress(z, zl, n - 1, &out, &ol) == -EMSGSIZE);
	CHECK(gzip__decompress(z, zl / 2, n, &out, &ol) == -EPROTO);
	z[zl / 2] ^= 0xff;
	z[zl / 2 + 1] ^= 0xff;
	int rc = gzip__decompress(z, zl, n, &out, &ol);
	/* corrupt: an error (bad data, or it inflates past the cap), never a crash */
	CHECK(rc == -EPROTO || rc == -EMSGSIZE || (rc == 0 && (free(out), 1)));
	free(z);
	CHECK(gzip__compress("", 0, 6, &z, &zl) == 0);
	CHECK(gzip__decompress(z, zl, 10, &out, &ol) == 0 && ol == 0);
	free(out);
	free(z);
	free(in);
	return 0;
}

/* ---- the receiver ------------------------------------------------------------------- */

struct rx {
	pid_t pid;
	int port;
	char dir[PATH_MAX];
};

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	return remove(path);
}

static void rm_rf(const char *dir)
{
	nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static const char *tmp_base(void)
{
	const char *t = getenv("TMPDIR");
	return t && *t ? t : "/tmp";
}

/* Starts the receiver (hang: it records requests and answers none). Returns
 * 0, or -1 (reported). */
static int rx_start_full(struct rx *rx, const char *script, double refuse, const char *cert,
			 const char *key, bool hang)
{
	const char *path = getenv("OTLP_RECEIVER") ? getenv("OTLP_RECEIVER") : OTLP_RECEIVER_PATH;
	char refuse_s[32];
	int p[2];

	memset(rx, 0, sizeof(*rx));
	snprintf(rx->dir, sizeof(rx->dir), "%s/otlp-rx-XXXXXX", tmp_base());
	if (!mkdtemp(rx->dir) || pipe2(p, O_CLOEXEC)) {
		perror("otlp receiver setup");
		return -1;
	}
	snprintf(refuse_s, sizeof(refuse_s), "%.3f", refuse);
	const char *argv[16];
	int a = 0;
	argv[a++] = path;
	argv[a++] = "--dir";
	argv[a++] = rx->dir;
	argv[a++] = "--exit-after";
	argv[a++] = "90";
	if (script) {
		argv[a++] = "--script";
		argv[a++] = script;
	}
	if (refuse > 0) {
		argv[a++] = "--refuse-until";
		argv[a++] = refuse_s;
	}
	if (cert) {
		argv[a++] = "--tls";
		argv[a++] = cert;
		argv[a++] = key;
	}
	if (hang)
		argv[a++] = "--hang";
	argv[a] = NULL;
	rx->pid = fork();
	if (rx->pid < 0) {
		perror("fork");
		return -1;
	}
	if (rx->pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		dup2(p[1], 1);
		execv(path, (char *const *)argv);
		fprintf(stderr, "cannot run %s: %s\n", path, strerror(errno));
		_exit(127);
	}
	close(p[1]);
	char line[64];
	size_t n = 0;
	uint64_t end = now_ms() + 5000;
	while (n < sizeof(line) - 1 && now_ms() < end) {
		struct pollfd pfd = {.fd = p[0], .events = POLLIN};
		if (poll(&pfd, 1, 100) <= 0)
			continue;
		ssize_t r = read(p[0], line + n, 1);
		if (r <= 0)
			break;
		if (line[n++] == '\n')
			break;
	}
	line[n] = '\0';
	close(p[0]);
	if (sscanf(line, "PORT %d", &rx->port) != 1) {
		fprintf(stderr, "otlp receiver did not start (got '%s')\n", line);
		return -1;
	}
	return 0;
}

static int rx_start_args(struct rx *rx, const char *script, double refuse, const char *cert,
			 const char *key)
{
	return rx_start_full(rx, script, refuse, cert, key, false);
}

static int rx_start(struct rx *rx, const char *script)
{
	return rx_start_args(rx, script, 0, NULL, NULL);
}

static void rx_stop(struct rx *rx)
{
	if (rx->pid > 0) {
		kill(rx->pid, SIGTERM);
		uint64_t end = now_ms() + 3000;
		while (waitpid(rx->pid, NULL, WNOHANG) == 0) {
			if (now_ms() > end) {
				kill(rx->pid, SIGKILL);
				waitpid(rx->pid, NULL, 0);
				break;
			}
			usleep(2000);
		}
		rx->pid = 0;
	}
	if (rx->dir[0])
		rm_rf(rx->dir);
	rx->dir[0] = '\0';
}

/* Requests the receiver has recorded. */
static unsigned rx_count(const struct rx *rx)
{
	unsigned n = 0;
	DIR *d = opendir(rx->dir);
	if (!d)
		return 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		size_t l = strlen(e->d_name);
		n += e->d_name[0] != '.' && l > 5 && !strcmp(e->d_name + l - 5, ".meta");
	}
	closedir(d);
	return n;
}

static uint8_t *read_all(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	size_t cap = 4096, n = 0;
	uint8_t *buf = malloc(cap);
	for (;;) {
		if (n == cap) {
			cap *= 2;
			buf = realloc(buf, cap);
		}
		size_t r = fread(buf + n, 1, cap - n, f);
		if (!r)
			break;
		n += r;
	}
	fclose(f);
	*len = n;
	return buf;
}

static uint8_t *rx_file(const struct rx *rx, unsigned idx, const char *ext, size_t *len)
{
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%.4000s/%04u.%s", rx->dir, idx, ext);
	return read_all(path, len);
}

/* Value of the meta line "key value" (key may be "header name:"). */
static bool rx_meta(const struct rx *rx, unsigned idx, const char *key, char *out, size_t cap)
{
	size_t len;
	char *m = (char *)rx_file(rx, idx, "meta", &len);
	bool found = false;
	if (!m)
		return false;
	m = realloc(m, len + 1);
	m[len] = '\0';
	size_t kl = strlen(key);
	for (char *l = m; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
		if (!strncmp(l, key, kl) && l[kl] == ' ') {
			char *v = l + kl + 1;
			size_t vl = strcspn(v, "\n");
			if (vl >= cap)
				vl = cap - 1;
			memcpy(out, v, vl);
			out[vl] = '\0';
			found = true;
			break;
		}
	}
	free(m);
	return found;
}

static uint64_t rx_time(const struct rx *rx, unsigned idx)
{
	char v[32];
	return rx_meta(rx, idx, "time_ms", v, sizeof(v)) ? strtoull(v, NULL, 10) : 0;
}

static bool rx_body_is(const struct rx *rx, unsigned idx, const uint8_t *want, size_t len)
{
	size_t got_len;
	uint8_t *got = rx_file(rx, idx, "body", &got_len);
	bool same = got && got_len == len && !memcmp(got, want, len);
	if (!same)
		fprintf(stderr, "request %u: body differs (%zu bytes, want %zu)\n", idx,
			got ? got_len : 0, len);
	free(got);
	return same;
}

/* ---- exporter helpers ------------------------------------------------------------------ */

static uint8_t *make_body(size_t len, unsigned seed)
{
	uint8_t *b = malloc(len ? len : 1);
	uint32_t x = seed * 2654435761u + 1;
	for (size_t i = 0; i < len; i++) {
		x = x * 1103515245 + 12345;
		b[i] = (uint8_t)(i % 3 ? (x >> 16) & 0x0f : 0x0a);
	}
	return b;
}

/* Submits a copy of body (the exporter takes ownership of what it gets). */
static int submit_copy(struct otlp_exporter *ex, const uint8_t *body, size_t len)
{
	uint8_t *c = malloc(len ? len : 1);
	memcpy(c, body, len);
	return otlp_exporter__submit(ex, c, len);
}

static char url_buf[128];

static const char *rx_url(const struct rx *rx, const char *scheme, const char *host)
{
	snprintf(url_buf, sizeof(url_buf), "%s://%s:%d/v1development/profiles", scheme, host,
		 rx->port);
	return url_buf;
}

static struct otlp_exporter_opts test_opts(const char *url)
{
	static const char *const headers[] = {"Authorization: Bearer test-token"};
	return (struct otlp_exporter_opts){
		.url = url,
		.headers = headers,
		.n_headers = 1,
		.gzip = true,
		.timeout_ms = 3000,
		.max_queue_bytes = 1 << 20,
		.user_agent = "pipeline-test/1.0",
		.backoff_initial_ms = 50,
		.backoff_max_ms = 200,
	};
}

/* Polls the exporter's counters until cond holds or ms pass. */
#define WAIT_FOR(ex, st, cond, ms)                                                                 \
	({                                                                                         \
		uint64_t _end = now_ms() + (ms);                                                   \
		bool _ok;                                                                          \
		for (;;) {                                                                         \
			otlp_exporter__stats((ex), &(st));                                         \
			if ((_ok = (cond)))                                                        \
				break;                                                             \
			if (now_ms() >= _end)                                                      \
				break;                                                             \
			usleep(5000);                                                              \
		}                                                                                  \
		_ok;                                                                               \
	})

static void dump_stats(const char *what, const struct otlp_exporter_stats *s)
{
	fprintf(stderr,
		"%s: queued %llu sent %llu retried %llu failed %llu dropped %llu partial %llu "
		"connects %llu connect_failures %llu timeouts %llu queue_bytes %llu/%llu files "
		"%llu/%llu\n",
		what, (unsigned long long)s->requests_queued, (unsigned long long)s->requests_sent,
		(unsigned long long)s->requests_retried, (unsigned long long)s->requests_failed,
		(unsigned long long)s->requests_dropped, (unsigned long long)s->partial_success,
		(unsigned long long)s->connects, (unsigned long long)s->connect_failures,
		(unsigned long long)s->timeouts, (unsigned long long)s->queue_bytes,
		(unsigned long long)s->queue_bytes_max, (unsigned long long)s->files_written,
		(unsigned long long)s->file_errors);
}

#define CHECK_STATS(st, cond)                                                                      \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			dump_stats(#cond, &(st));                                                  \
			CHECK(cond);                                                               \
		}                                                                                  \
	} while (0)

/* One request through a scripted receiver: submits, waits for cond, checks
 * the receiver saw `want_requests` requests, all with the submitted body. */
static int one_request(const char *script, const char *label, size_t body_len,
		       struct otlp_exporter_stats *out, unsigned want_requests)
{
	struct rx rx;
	struct otlp_exporter_stats st;
	if (rx_start(&rx, script))
		return 1;
	struct otlp_exporter_opts o = test_opts(rx_url(&rx, "http", "127.0.0.1"));
	struct otlp_exporter *ex = otlp_exporter__new(&o);
	CHECK(ex);
	uint8_t *body = make_body(body_len, 7);
	CHECK(submit_copy(ex, body, body_len) == 0);
	bool done = WAIT_FOR(ex, st, st.requests_sent + st.requests_failed == 1, 10000);
	if (!done)
		dump_stats(label, &st);
	CHECK(done);
	/* nothing more may arrive: give a wrong retry the time to show */
	usleep(300 * 1000);
	otlp_exporter__shutdown(ex, 1000);
	otlp_exporter__stats(ex, out);
	otlp_exporter__free(ex);
	unsigned n = rx_count(&rx);
	if (n != want_requests) {
		fprintf(stderr, "%s: receiver saw %u requests, want %u\n", label, n, want_requests);
		rx_stop(&rx);
		free(body);
		return 1;
	}
	for (unsigned i = 1; i <= n; i++) {
		if (!rx_body_is(&rx, i, body, body_len)) {
			rx_stop(&rx);
			free(body);
			return 1;
		}
	}
	rx_stop(&rx);
	free(body);
	return 0;
}

/* ---- end to end -------------------------------------------------------------------------- */

static int test_e2e_ok(void)
{
	struct rx rx;
	struct otlp_exporter_stats st;
	char v[256];

	CHECK(rx_start(&rx, "200") == 0);
	struct otlp_exporter_opts o = test_opts(rx_url(&rx, "http", "127.0.0.1"));
	struct otlp_exporter *ex = otlp_exporter__new(&o);
	CHECK(ex);
	size_t len = 50000;
	uint8_t *body = make_body(len, 1);
	CHECK(submit_copy(ex, body, len) == 0);
	CHECK(WAIT_FOR(ex, st, st.requests_sent == 1, 5000));
	CHECK_STATS(st, st.requests_retried == 0 && st.requests_failed == 0 &&
				st.requests_queued == 1 && st.connects == 1);
	CHECK_EQ_U64(st.bytes_raw, len);
	CHECK(st.bytes_sent > 0 && st.bytes_sent < len); /* gzip'ed */
	CHECK(st.queue_bytes == 0 && st.queue_bytes_max == len);
	otlp_exporter__shutdown(ex, 1000);
	otlp_exporter__free(ex);

	CHECK(rx_count(&rx) == 1);
	CHECK(rx_body_is(&rx, 1, body, len));
	CHECK(rx_meta(&rx, 1, "method", v, sizeof(v)) && !strcmp(v, "POST"));
	CHECK(rx_meta(&rx, 1, "path", v, sizeof(v)) && !strcmp(v, "/v1development/profiles"));
	CHECK(rx_meta(&rx, 1, "header content-type:", v, sizeof(v)) &&
	      !strcmp(v, "application/x-protobuf"));
	CHECK(rx_meta(&rx, 1, "header content-encoding:", v, sizeof(v)) && !strcmp(v, "gzip"));
	CHECK(rx_meta(&rx, 1, "header user-agent:", v, sizeof(v)) &&
	      !strcmp(v, "pipeline-test/1.0"));
	CHECK(rx_meta(&rx, 1, "header authorization:", v, sizeof(v)) &&
	      !strcmp(v, "Bearer test-token"));
	CHECK(rx_meta(&rx, 1, "header connection:", v, sizeof(v)) && !strcmp(v, "keep-alive"));
	snprintf(url_buf, sizeof(url_buf), "127.0.0.1:%d", rx.port);
	CHECK(rx_meta(&rx, 1, "header host:", v, sizeof(v)) && !strcmp(v, url_buf));
	/* the wire bytes are a gzip stream of the body */
	size_t wl;
	uint8_t *wire = rx_file(&rx, 1, "wire", &wl), *dec = NULL;
	size_t dl;
	CHECK(wire && wl == st.bytes_sent);
	CHECK(gzip__decompress(wire, wl, len, &dec, &dl) == 0 && dl == len &&
	      !memcmp(dec, body, len));
	free(dec);
	free(wire);
	free(body);
	rx_stop(&rx);
	return 0;
}

static int test_e2e_no_gzip_keepalive(void)
{
	struct rx rx;
	struct otlp_exporter_stats st;
	char v[64], c1[16], c3[16];

	CHECK(rx_start(&rx, NULL) == 0);
	struct otlp_exporter_opts o = test_opts(rx_url(&rx, "http", "127.0.0.1"));
	o.gzip = false;
	struct otlp_exporter *ex = otlp_exporter__new(&o);
	CHECK(ex);
	uint8_t *bodies[3];
	for (unsigned i = 0; i < 3; i++) {
		bodies[i] = make_body(1000 + i, 10 + i);
		CHECK(submit_copy(ex, bodies[i], 1000 + i) == 0);
		CHECK(WAIT_FOR(ex, st, st.requests_sent == i + 1, 5000));
	}
	/* an empty request goes too */
	CHECK(otlp_exporter__submit(ex, NULL, 0) == 0);
	CHECK(WAIT_FOR(ex, st, st.requests_sent == 4, 5000));
	CHECK_STATS(st, st.connects == 1 && st.requests_retried == 0);
	CHECK_EQ_U64(st.bytes_sent, st.bytes_raw);
	otlp_exporter__free(ex);

	CHECK(rx_count(&rx) == 4);
	for (unsigned i = 0; i < 3; i++) {
		CHECK(rx_body_is(&rx, i + 1, bodies[i], 1000 + i));
		free(bodies[i]);
	}
	CHECK(!rx_meta(&rx, 1, "header content-encoding:", v, sizeof(v)));
	CHECK(rx_meta(&rx, 1, "conn", c1, sizeof(c1)) && rx_meta(&rx, 3, "conn", c3, sizeof(c3)));
	CHECK_STR(c1, c3);
	CHECK(rx_meta(&rx, 4, "header content-length:", v, sizeof(v)) && !strcmp(v, "0"));
	rx_stop(&rx);
	return 0;
}

static int test_e2e_503_then_200(void)
{
	struct otlp_exporter_stats st;
	CHECK(one_request("503,200", "503,200", 4000, &st, 2) == 0);
	CHECK_STATS(st,
		    st.requests_sent == 1 && st.requests_retried == 1 && st.requests_failed == 0);
	CHECK(one_request("429,502,504,200", "429", 4000, &st, 4) == 0);
	CHECK_STATS(st,
		    st.requests_sent == 1 && st.requests_retried == 3 && st.requests_failed == 0);
	return 0;
}

static int test_e2e_retry_after(void)
{
	struct rx rx;
	struct otlp_exporter_stats st;

	/* delta-seconds, then an HTTP-date; backoff alone would wait 25-100 ms */
	CHECK(rx_start(&rx, "503+retry-after=1,429+retry-after-date=2,200") == 0);
	struct otlp_exporter_opts o = test_opts(rx_url(&rx, "http", "127.0.0.1"));
	struct otlp_exporter *ex = otlp_exporter__new(&o);
	CHECK(ex);
	uint8_t *body = make_body(3000, 3);
	CHECK(submit_copy(ex, body, 3000) == 0);
	CHECK(WAIT_FOR(ex, st, st.requests_sent == 1, 8000));
	CHECK_STATS(st, st.requests_retried == 2);
	otlp_exporter__free(ex);
	CHECK(rx_count(&rx) == 3);
	uint64_t t1 = rx_time(&rx, 1), t2 = rx_time(&rx, 2), t3 = rx_time(&rx, 3);
	fprintf(stderr, "retry-after gaps: %llu ms, %llu ms\n", (unsigned long long)(t2 - t1),
		(unsigned long long)(t3 - t2));
	CHECK(t2 - t1 >= 950);
	CHECK(t3 - t2 >= 900); /* an HTTP-date has whole seconds: 1-2 s */
	for (unsigned i = 1; i <= 3; i++)
		CHECK(rx_body_is(&rx, i, body, 3000));
	free(body);
	rx_stop(&rx);

	/* without Retry-After the backoff is short */
	CHECK(rx_start(&rx, "503,200") == 0);
	o = test_opts(rx_url(&rx, "http", "127.0.0.1"));
	ex = otlp_exporter__new(&o);
	CHECK(ex);
	CHECK(otlp_exporter__submit(ex, make_body(10, 1), 10) == 0);
	CHECK(WAIT_FOR(ex, st, st.requests_sent == 1, 5000));
	otlp_exporter__free(ex);
	CHECK(rx_count(&rx) == 2);
	CHECK(rx_time(&rx, 2) - rx_time(&rx, 1) < 800);
	rx_stop(&rx);
	return 0;
}

static int test_e2e_not_retried(void)
{
	struct rx rx;
	struct otlp_exporter_stats st;

	CHECK(rx_start(&rx, "400,413,500,early=413,200") == 0);
	struct otlp_exporter_opts o = test_opts(rx_url(&rx, "http", "127.0.0.1"));
	o.gzip = false;
	o.max_queue_bytes = 64u << 20;
	struct otlp_exporter *ex = otlp_exporter__new(&o);
	CHECK(ex);
	for (unsigned i = 0; i < 3; i++) {
		CHECK(otlp_exporter__submit(ex, make_body(100, i), 100) == 0);
		CHECK(WAIT_FOR(ex, st, st.requests_failed == i + 1, 5000));
	}
	usleep(300 * 1000);
	otlp_exporter__stats(ex, &st);
	CHECK_STATS(st,
		    st.requests_failed == 3 && st.requests_retried == 0 && st.requests_sent == 0);
	/* a 413 sent before the body was read, then a close: still not retried */
	size_t big = 16u << 20; /* more than the socket buffers take */
	CHECK(otlp_exporter__submit(ex, make_body(big, 5), big) == 0);
	CHECK(WAIT_FOR(ex, st, st.requests_failed == 4, 5000));
	usleep(300 * 1000);
	otlp_exporter__stats(ex, &st);
	CHECK_STATS(st, st.requests_retried == 0 && st.requests_sent == 0);
	/* the connection stays usable after error statuses */
	CHECK(otlp_exporter__submit(ex, make_body(100, 9), 100) == 0);
	CHECK(WAIT_FOR(ex, st, st.requests_sent == 1, 5000));
	CHECK_STATS(st, st.connects == 2); /* the early 413 closed the first one */
	otlp_exporter__free(ex);
	CHECK(rx_count(&rx) == 5);
	rx_stop(&rx);
	return 0;
}

static int test_e2e_partial_success(void)
{
	struct otlp_exporter_stats st;
	CHECK(one_request("partial", "partial", 500, &st, 1) == 0);
	CHECK_STATS(st, st.requests_sent == 1 && st.partial_success == 1 &&
				st.requests_retried == 0 && st.requests_failed == 0);
	CHECK(one_request("chunked-partial", "chunked-partial", 500, &st, 1) == 0);
	CHECK_STATS(st, st.requests_sent == 1 && st.partial_success == 1);
	CHECK(one_request("gzip-partial", "gzip-partial", 500, &st, 1) == 0);
	CHECK_STATS(st, st.requests_sent == 1 && st.partial_success == 1);
	/* an all-empty partial_success is a full success */
	CHECK(one_request("chunked", "chunked", 500, &st, 1) == 0);
	CHECK_STATS(st, st.requests_sent == 1 && st.partial_success == 0);
	return 0;
}

static int test_e2e_closed(void)
{
	struct otlp_exporter_stats st;
	CHECK(one_request("close-mid,200", "close-mid", 2000, &st, 2) == 0);
	CHECK_STATS(st, st.requests_sent == 1 && st.requests_retried == 1);
	CHECK(one_request("close,200", "close", 2000, &st, 2) == 0);
	CHECK_STATS(st, st.requests_sent == 1 && st.requests_retried == 1);
	/* a response over 4 MiB fails the request, not retried */
	CHECK(one_request("big,200", "big", 2000, &st, 1) == 0);
	CHECK_STATS(st,
		    st.requests_failed == 1 && st.requests_retried == 0 && st.requests_sent == 0);
	return 0;
}

static int test_e2e_connection_reuse(void)
{
	struct rx rx;
	struct otlp_exporter_stats st;

	/* "Connection: close" and a silent close of an idle keep-alive connection:
	 * both lead to a new connection, neither is a retry */
	CHECK(rx_start(&rx, "200+close,200+drop,200,200") == 0);
	struct otlp_exporter_opts o = test_opts(rx_url(&rx, "http", "127.0.0.1"));
	struct otlp_exporter *ex = otlp_exporter__new(&o);
	CHECK(ex);
	for (unsigned i = 0; i < 3; i++) {
		CHECK(otlp_exporter__submit(ex, make_body(100, i), 100) == 0);
		CHECK(WAIT_FOR(ex, st, st.requests_sent == i + 1, 5000));
		usleep(100 * 1000); /* let the server's close arrive */
	}
	CHECK_STATS(st, st.requests_retried == 0 && st.connects == 3);
	otlp_exporter__free(ex);
	CHECK(rx_count(&rx) == 3);
	rx_stop(&rx);
	return 0;
}

static int test_e2e_refused_then_up(void)
{
	struct rx rx;
	struct otlp_exporter_stats st;
	uint8_t *bodies[5];

	/* the collector is down for 3 s while intervals keep coming: once it is
	 * up, every one arrives exactly once, in order */
	CHECK(rx_start_args(&rx, NULL, 3.0, NULL, NULL) == 0);
	uint64_t t0 = now_ms();
	struct otlp_exporter_opts o = test_opts(rx_url(&rx, "http", "127.0.0.1"));
	o.backoff_max_ms = 400;
	struct otlp_exporter *ex = otlp_exporter__new(&o);
	CHECK(ex);
	for (unsigned i = 0; i < 5; i++) {
		bodies[i] = make_body(20000 + i, 50 + i);
		CHECK(submit_copy(ex, bodies[i], 20000 + i) == 0);
		usleep(400 * 1000);
	}
	CHECK(WAIT_FOR(ex, st, st.requests_sent == 5, 10000));
	uint64_t took = now_ms() - t0;
	CHECK_STATS(st, st.requests_retried >= 2 && st.connect_failures >= 2 &&
				st.connect_failures == st.requests_retried &&
				st.requests_failed == 0 && st.requests_dropped == 0);
	CHECK(took >= 2500 && took < 8000);
	usleep(200 * 1000);
	otlp_exporter__free(ex);
	CHECK(rx_count(&rx) == 5);
	for (unsigned i = 0; i < 5; i++) {
		CHECK(rx_body_is(&rx, i + 1, bodies[i], 20000 + i));
		free(bodies[i]);
	}
	rx_stop(&rx);
	return 0;
}

/* Request idx's connection number, as the receiver recorded it. */
static unsigned rx_conn(const struct rx *rx, unsigned idx)
{
	char v[32];
	return rx_meta(rx, idx, "conn", v, sizeof(v)) ? (unsigned)strtoul(v, NULL, 10) : 0;
}

static int test_e2e_backlog_drain(void)
{
	enum { N = 10, SLOW = 6, SLOW_MS = 300 };
	struct rx rx;
	struct otlp_exporter_stats st;
	uint8_t *bodies[N];
	size_t lens[N];

	/* The collector refuses connections for 2 s while N intervals pile up.
	 * Only the head request is retried (each retry waits 500-1000 ms here);
	 * once it is through, the others follow back to back on the same
	 * keep-alive connection, each as soon as the previous answer is in:
	 * no gap as long as the shortest backoff, nothing twice, in order. */
	CHECK(rx_start_args(&rx, NULL, 2.0, NULL, NULL) == 0);
	struct otlp_exporter_opts o = test_opts(rx_url(&rx, "http", "127.0.0.1"));
	o.backoff_initial_ms = 1000;
	o.backoff_max_ms = 1000;
	struct otlp_exporter *ex = otlp_exporter__new(&o);
	CHECK(ex);
	for (unsigned i = 0; i < N; i++) {
		lens[i] = 3000 + i;
		bodies[i] = make_body(lens[i], 80 + i);
		CHECK(submit_copy(ex, bodies[i], lens[i]) == 0);
		usleep(50 * 1000);
	}
	CHECK(WAIT_FOR(ex, st, st.requests_sent == N, 10000));
	CHECK_STATS(st, st.requests_retried >= 1 && st.requests_retried <= 5 &&
				st.requests_retried == st.connect_failures && st.connects == 1 &&
				st.requests_failed == 0 && st.requests_dropped == 0);
	usleep(200 * 1000); /* a request sent twice would show now */
	otlp_exporter__free(ex);
	CHECK_EQ_U64(rx_count(&rx), N);
	uint64_t first = rx_time(&rx, 1), prev = first;
	for (unsigned i = 0; i < N; i++) {
		CHECK(rx_body_is(&rx, i + 1, bodies[i], lens[i]));
		CHECK_EQ_U64(rx_conn(&rx, i + 1), 1);
		uint64_t t = rx_time(&rx, i + 1);
		if (t - prev >= 450) {
			fprintf(stderr, "request %u came %llu ms after the one before\n", i + 1,
				(unsigned long long)(t - prev));
			CHECK(t - prev < 450);
		}
		prev = t;
		free(bodies[i]);
	}
	fprintf(stderr, "backlog of %d drained in %llu ms after %llu retries of the head\n", N,
		(unsigned long long)(prev - first), (unsigned long long)st.requests_retried);
	rx_stop(&rx);

	/* A slow collector (every answer takes SLOW_MS): what waits goes one
	 * request at a time (no pipelined POSTs), each right after the answer
	 * to the one before, without any backoff. */
	char script[SLOW * 16] = "";
	for (unsigned i = 0; i < SLOW; i++)
		snprintf(script + strlen(script), sizeof(script) - strlen(script), "%sdelay=%d",
			 i ? "," : "", SLOW_MS);
	CHECK(rx_start(&rx, script) == 0);
	o = test_opts(rx_url(&rx, "http", "127.0.0.1"));
	ex = otlp_exporter__new(&o);
	CHECK(ex);
	uint8_t *body = make_body(5000, 3);
	for (unsigned i = 0; i < SLOW; i++)
		CHECK(submit_copy(ex, body, 5000) == 0);
	free(body);
	CHECK(WAIT_FOR(ex, st, st.requests_sent == SLOW, 10000));
	CHECK_STATS(st, st.requests_retried == 0 && st.connects == 1);
	otlp_exporter__free(ex);
	CHECK_EQ_U64(rx_count(&rx), SLOW);
	for (unsigned i = 2; i <= SLOW; i++) {
		uint64_t gap = rx_time(&rx, i) - rx_time(&rx, i - 1);
		CHECK_EQ_U64(rx_conn(&rx, i), 1);
		if (gap < SLOW_MS - 20 || gap > SLOW_MS + 700) {
			fprintf(stderr, "request %u came %llu ms after the one before\n", i,
				(unsigned long long)gap);
			CHECK(gap >= SLOW_MS - 20 && gap <= SLOW_MS + 700);
		}
	}
	rx_stop(&rx);
	return 0;
}

/*
 * The exporter's heap while the collector never answers (hang: it accepts
 * and reads, then stalls; else it refuses connections) and intervals keep
 * coming: NREQ requests of BODY bytes, 20 times the queue bound in all.
 * The heap held beyond what it held before may never exceed the queue bound
 * plus one request in flight (raw and gzip'ed), the one being submitted and
 * a little bookkeeping; every request is accounted for (dropped, or failed
 * at the shutdown deadline), and nothing is left once the exporter is freed.
 */
static int memory_case(bool hang)
{
	enum { QUEUE = 1 << 20, BODY = 128 << 10, NREQ = 160, SLACK = 256 << 10 };
	const char *label = hang ? "never answers" : "refuses connections";
	struct rx rx;
	struct otlp_exporter_stats st;

	CHECK(rx_start_full(&rx, NULL, hang ? 0 : 60, NULL, NULL, hang) == 0);
	struct otlp_exporter_opts o = test_opts(rx_url(&rx, "http", "127.0.0.1"));
	o.max_queue_bytes = QUEUE;
	o.timeout_ms = 700; /* hang: a few timeouts, reconnects and resends */
	uint8_t *body = make_body(BODY, 11);
	int64_t base = heap_mark();
	struct otlp_exporter *ex = otlp_exporter__new(&o);
	CHECK(ex);
	uint64_t end = now_ms() + 2500;
	for (unsigned i = 0; i < NREQ; i++) {
		CHECK(submit_copy(ex, body, BODY) == 0);
		otlp_exporter__stats(ex, &st);
		CHECK(st.queue_bytes <= QUEUE);
		usleep(10 * 1000);
	}
	while (now_ms() < end) /* let the timeouts and retries run on a full queue */
		usleep(50 * 1000);
	CHECK(WAIT_FOR(ex, st, hang ? st.timeouts >= 2 : st.connect_failures >= 2, 5000));
	int64_t peak = __atomic_load_n(&heap_peak, __ATOMIC_RELAXED) - base;
	otlp_exporter__shutdown(ex, 0);
	otlp_exporter__stats(ex, &st);
	otlp_exporter__free(ex);
	int64_t left = __atomic_load_n(&heap_live, __ATOMIC_RELAXED) - base;
	int64_t bound = QUEUE + 3 * BODY + SLACK;
	fprintf(stderr,
		"collector %s: %d x %d bytes submitted (%d in all), queue bound %d: heap peak "
		"%lld bytes over the start (bound %lld), %lld left after free; %llu dropped, %llu "
		"failed at shutdown, %llu retried\n",
		label, NREQ, BODY, NREQ * BODY, QUEUE, (long long)peak, (long long)bound,
		(long long)left, (unsigned long long)st.requests_dropped,
		(unsigned long long)st.requests_failed, (unsigned long long)st.requests_retried);
	CHECK(peak <= bound);
	CHECK(left <= 4096);
	CHECK_STATS(st, st.requests_queued == NREQ && st.requests_sent == 0 &&
				st.requests_dropped + st.requests_failed == NREQ &&
				st.requests_dropped >= NREQ - QUEUE / BODY - 1 &&
				st.queue_bytes_max <= QUEUE && st.queue_bytes == 0);
	if (hang)
		CHECK(rx_count(&rx) >= 2); /* the head request, sent again after a timeout */
	else
		CHECK_EQ_U64(rx_count(&rx), 0);
	free(body);
	rx_stop(&rx);
	return 0;
}

static int test_e2e_memory_bound(void)
{
	CHECK(memory_case(true) == 0);
	CHECK(memory_case(false) == 0);
	return 0;
}

static int test_e2e_timeout(void)
{
	struct rx rx;
	struct otlp_exporter_stats st;

	CHECK(rx_start(&rx, "delay=3000,200") == 0);
	struct otlp_exporter_opts o = test_opts(rx_url(&rx, "http", "127.0.0.1"));
	o.timeout_ms = 500;
	struct otlp_exporter *ex = otlp_exporter__new(&o);
	CHECK(ex);
	uint64_t t0 = now_ms();
	CHECK(otlp_exporter__submit(ex, make_body(100, 1), 100) == 0);
	CHECK(WAIT_FOR(ex, st, st.requests_sent == 1, 5000));
	uint64_t took = now_ms() - t0;
	CHECK_STATS(st, st.timeouts == 1 && st.requests_retried == 1 && st.connects == 2);
	CHECK(took >= 450 && took < 2800); /* not waiting for the delayed answer */
	otlp_exporter__free(ex);
	CHECK(rx_count(&rx) == 2);
	rx_stop(&rx);
	return 0;
}

static int test_e2e_queue_bound(void)
{
	struct rx rx;
	struct otlp_exporter_stats st;

	/* the collector is down for the whole test */
	CHECK(rx_start_args(&rx, NULL, 60, NULL, NULL) == 0);
	struct otlp_exporter_opts o = test_opts(rx_url(&rx, "http", "127.0.0.1"));
	o.max_queue_bytes = 10000;
	struct otlp_exporter *ex = otlp_exporter__new(&o);
	CHECK(ex);
	for (unsigned i = 0; i < 30; i++) {
		CHECK(otlp_exporter__submit(ex, make_body(1000, i), 1000) == 0);
		otlp_exporter__stats(ex, &st);
		CHECK(st.queue_bytes <= 10000);
	}
	CHECK(otlp_exporter__submit(ex, make_body(20000, 1), 20000) == -ENOSPC);
	otlp_exporter__stats(ex, &st);
	/* one request may be in flight, 10 wait, the rest are dropped */
	CHECK_STATS(st, st.requests_queued == 30 && st.queue_bytes <= 10000 &&
				st.queue_bytes_max <= 10000 && st.requests_dropped >= 20 &&
				st.requests_dropped <= 21);
	CHECK(WAIT_FOR(ex, st, st.connect_failures >= 2, 5000));
	otlp_exporter__shutdown(ex, 0);
	otlp_exporter__stats(ex, &st);
	CHECK_STATS(st, st.requests_sent == 0 && st.queue_bytes == 0 &&
				st.requests_failed + st.requests_dropped == 31);
	CHECK(otlp_exporter__submit(ex, make_body(10, 1), 10) == -ESHUTDOWN);
	otlp_exporter__free(ex);
	CHECK(rx_count(&rx) == 0);
	rx_stop(&rx);
	return 0;
}

static int test_e2e_shutdown(void)
{
	struct rx rx;
	struct otlp_exporter_stats st;

	/* a deadline while the collector refuses */
	CHECK(rx_start_args(&rx, NULL, 60, NULL, NULL) == 0);
	struct otlp_exporter_opts o = test_opts(rx_url(&rx, "http", "127.0.0.1"));
	struct otlp_exporter *ex = otlp_exporter__new(&o);
	CHECK(ex);
	for (unsigned i = 0; i < 3; i++)
		CHECK(otlp_exporter__submit(ex, make_body(100, i), 100) == 0);
	uint64_t t0 = now_ms();
	otlp_exporter__shutdown(ex, 1000);
	uint64_t took = now_ms() - t0;
	otlp_exporter__stats(ex, &st);
	CHECK_STATS(st,
		    st.requests_failed == 3 && st.requests_sent == 0 && st.requests_retried >= 2);
	fprintf(stderr, "shutdown(1000) took %llu ms\n", (unsigned long long)took);
	CHECK(took >= 900 && took <= 1600);
	otlp_exporter__shutdown(ex, 1000); /* idempotent */
	otlp_exporter__free(ex);
	rx_stop(&rx);

	/* a deadline while a response is awaited: the receive is cancelled */
	CHECK(rx_start(&rx, "delay=5000") == 0);
	o = test_opts(rx_url(&rx, "http", "127.0.0.1"));
	ex = otlp_exporter__new(&o);
	CHECK(ex);
	CHECK(otlp_exporter__submit(ex, make_body(100, 1), 100) == 0);
	CHECK(WAIT_FOR(ex, st, st.connects == 1, 3000));
	usleep(100 * 1000);
	t0 = now_ms();
	otlp_exporter__shutdown(ex, 300);
	took = now_ms() - t0;
	otlp_exporter__stats(ex, &st);
	CHECK_STATS(st, st.requests_failed == 1 && st.requests_sent == 0 && st.timeouts == 0);
	CHECK(took >= 250 && took <= 900);
	otlp_exporter__free(ex);
	CHECK(rx_count(&rx) == 1);
	rx_stop(&rx);

	/* a deadline long enough: everything queued is delivered */
	CHECK(rx_start(&rx, "delay=100,delay=100,503,200") == 0);
	o = test_opts(rx_url(&rx, "http", "127.0.0.1"));
	ex = otlp_exporter__new(&o);
	CHECK(ex);
	for (unsigned i = 0; i < 5; i++)
		CHECK(otlp_exporter__submit(ex, make_body(100, i), 100) == 0);
	otlp_exporter__shutdown(ex, 5000);
	otlp_exporter__stats(ex, &st);
	CHECK_STATS(st,
		    st.requests_sent == 5 && st.requests_failed == 0 && st.requests_retried == 1);
	otlp_exporter__free(ex);
	CHECK(rx_count(&rx) == 6);
	rx_stop(&rx);

	/* free() without shutdown: zero deadline */
	CHECK(rx_start_args(&rx, NULL, 60, NULL, NULL) == 0);
	o = test_opts(rx_url(&rx, "http", "127.0.0.1"));
	ex = otlp_exporter__new(&o);
	CHECK(ex);
	CHECK(otlp_exporter__submit(ex, make_body(100, 1), 100) == 0);
	t0 = now_ms();
	otlp_exporter__free(ex);
	CHECK(now_ms() - t0 < 1000);
	rx_stop(&rx);
	return 0;
}

static int test_e2e_files(void)
{
	struct rx rx;
	struct otlp_exporter_stats st;
	char fdir[PATH_MAX + 16], path[PATH_MAX + 64];
	uint8_t *bodies[3];
	size_t lens[3] = {3000, 0, 70000};

	CHECK(rx_start(&rx, NULL) == 0);
	snprintf(fdir, sizeof(fdir), "%s/files", rx.dir);
	/* network and files */
	struct otlp_exporter_opts o = test_opts(rx_url(&rx, "http", "127.0.0.1"));
	o.file_dir = fdir;
	struct otlp_exporter *ex = otlp_exporter__new(&o);
	CHECK(ex);
	for (unsigned i = 0; i < 3; i++) {
		bodies[i] = make_body(lens[i], i);
		CHECK(submit_copy(ex, bodies[i], lens[i]) == 0);
	}
	CHECK(WAIT_FOR(ex, st, st.requests_sent == 3, 5000));
	CHECK_STATS(st, st.files_written == 3 && st.file_errors == 0);
	otlp_exporter__free(ex);
	for (unsigned i = 0; i < 3; i++) {
		size_t len;
		snprintf(path, sizeof(path), "%s/%06u.binpb", fdir, i + 1);
		uint8_t *got = read_all(path, &len);
		CHECK(got && len == lens[i] && !memcmp(got, bodies[i], len));
		free(got);
		CHECK(rx_body_is(&rx, i + 1, bodies[i], lens[i]));
	}
	rx_stop(&rx);

	/* files only, no endpoint; numbering continues after existing files */
	char tdir[PATH_MAX];
	snprintf(tdir, sizeof(tdir), "%s/otlp-files-XXXXXX", tmp_base());
	CHECK(mkdtemp(tdir));
	snprintf(path, sizeof(path), "%s/000041.binpb", tdir);
	FILE *old = fopen(path, "w");
	CHECK(old);
	fclose(old);
	struct otlp_exporter_opts fo = {.file_dir = tdir};
	ex = otlp_exporter__new(&fo);
	CHECK(ex);
	for (unsigned i = 0; i < 3; i++)
		CHECK(submit_copy(ex, bodies[i], lens[i]) == 0);
	otlp_exporter__shutdown(ex, 3000);
	otlp_exporter__stats(ex, &st);
	CHECK_STATS(st, st.files_written == 3 && st.requests_sent == 0 && st.requests_failed == 0 &&
				st.queue_bytes == 0);
	otlp_exporter__free(ex);
	for (unsigned i = 0; i < 3; i++) {
		size_t len;
		snprintf(path, sizeof(path), "%s/%06u.binpb", tdir, i + 42);
		uint8_t *got = read_all(path, &len);
		CHECK(got && len == lens[i] && !memcmp(got, bodies[i], len));
		free(got);
		free(bodies[i]);
	}
	rm_rf(tdir);
	return 0;
}

static int test_new_rejects(void)
{
	struct otlp_exporter_opts o = test_opts("ftp://127.0.0.1/x");
	errno = 0;
	CHECK(!otlp_exporter__new(&o) && errno == EINVAL);
	static const char *const bad_header[] = {"X-Evil: a\r\nHost: b"};
	o = test_opts("http://127.0.0.1:1");
	o.headers = bad_header;
	CHECK(!otlp_exporter__new(&o) && errno == EINVAL);
	struct otlp_exporter_opts none = {0};
	CHECK(!otlp_exporter__new(&none) && errno == EINVAL);
	o = test_opts("https://127.0.0.1:1");
	o.ca_file = "/nonexistent/ca.pem";
	CHECK(!otlp_exporter__new(&o) && errno == EINVAL);
	o = test_opts("http://127.0.0.1:1");
	o.file_dir = "/proc/nonexistent/dir";
	CHECK(!otlp_exporter__new(&o));
	otlp_exporter__free(NULL);
	CHECK(otlp_exporter__submit(NULL, NULL, 0) == -EINVAL);
	return 0;
}

/* ---- profile files on the loop ------------------------------------------------------------ */

/* Queues a copy of b as dir/name (the loop takes ownership of what it gets). */
static int write_copy(struct otlp_exporter *ex, const char *dir, const char *name, const uint8_t *b,
		      size_t len)
{
	uint8_t *c = malloc(len ? len : 1);
	if (len)
		memcpy(c, b, len);
	return otlp_exporter__write_file(ex, dir, name, c, len);
}

/* Entries of dir whose name starts with '.', besides . and ..: tmp files left. */
static unsigned dot_files(const char *dir)
{
	unsigned n = 0;
	DIR *d = opendir(dir);
	struct dirent *e;
	if (!d)
		return 0;
	while ((e = readdir(d)))
		if (e->d_name[0] == '.' && strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			n++;
	closedir(d);
	return n;
}

static bool file_is(const char *dir, const char *name, const uint8_t *want, size_t len)
{
	char path[PATH_MAX + 64];
	size_t got_len = 0;
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	uint8_t *got = read_all(path, &got_len);
	bool same = got && got_len == len && (!len || !memcmp(got, want, len));
	if (!same)
		fprintf(stderr, "%s differs (%zu bytes, want %zu)\n", path, got ? got_len : 0, len);
	free(got);
	return same;
}

static int test_io_files(void)
{
	struct otlp_exporter_stats st;
	char dir[PATH_MAX], sub[PATH_MAX + 32], keep[PATH_MAX + 64];
	uint8_t *v[40];
	size_t vlen[40];

	snprintf(dir, sizeof(dir), "%s/io-files-XXXXXX", tmp_base());
	CHECK(mkdtemp(dir));
	/* files only: no endpoint, no --otlp-file */
	struct otlp_exporter_opts o = {.local_files = true};
	struct otlp_exporter *ex = otlp_exporter__new(&o);
	CHECK(ex);

	/* the exact bytes, whatever the size, and no tmp file left behind */
	size_t big = 3u << 20;
	uint8_t *a = make_body(big, 1), *b = make_body(1000, 2);
	CHECK(write_copy(ex, dir, "cpu.pb.gz", a, big) == 0);
	CHECK(write_copy(ex, dir, "cpu.folded", b, 1000) == 0);
	CHECK(otlp_exporter__write_file(ex, dir, "empty", NULL, 0) == 0);
	CHECK(WAIT_FOR(ex, st, st.profile_files_written == 3, 5000));
	CHECK(file_is(dir, "cpu.pb.gz", a, big));
	CHECK(file_is(dir, "cpu.folded", b, 1000));
	CHECK(file_is(dir, "empty", NULL, 0));
	CHECK(dot_files(dir) == 0);

	/* repeated writes of one name, each shorter than the one before: in
	 * order, and the last one wins (whole, truncated to its length) */
	for (unsigned i = 0; i < 40; i++) {
		vlen[i] = 8000 - 150 * i;
		v[i] = make_body(vlen[i], 100 + i);
		CHECK(write_copy(ex, dir, "cpu.svg", v[i], vlen[i]) == 0);
	}
	CHECK(WAIT_FOR(ex, st, st.profile_files_written + st.profile_files_superseded == 43, 5000));
	CHECK(file_is(dir, "cpu.svg", v[39], vlen[39]));
	CHECK_STATS(st, st.profile_file_errors == 0 && st.profile_files_queued == 43 &&
				st.profile_files_dropped == 0 && st.file_queue_bytes == 0 &&
				st.file_queue_bytes_max >= big && st.files_written == 0);
	CHECK(dot_files(dir) == 0);
	for (unsigned i = 0; i < 40; i++)
		free(v[i]);

	/* failures are counted (and logged), leave no tmp file, keep the previous
	 * version, and the loop goes on */
	uint64_t written = st.profile_files_written;
	snprintf(sub, sizeof(sub), "%s/missing/dir", dir);
	CHECK(write_copy(ex, sub, "x", b, 10) == 0); /* ENOENT */
	snprintf(sub, sizeof(sub), "%s/cpu.folded", dir);
	CHECK(write_copy(ex, sub, "x", b, 10) == 0); /* ENOTDIR */
	snprintf(sub, sizeof(sub), "%s/adir", dir);
	snprintf(keep, sizeof(keep), "%s/keep", sub);
	CHECK(mkdir(sub, 0755) == 0);
	FILE *kf = fopen(keep, "w");
	CHECK(kf);
	fclose(kf);
	CHECK(write_copy(ex, dir, "adir", b, 10) == 0); /* written, then the rename fails */
	CHECK(write_copy(ex, dir, "after", b, 1000) == 0);
	CHECK(WAIT_FOR(ex, st,
		       st.profile_file_errors == 3 && st.profile_files_written == written + 1,
		       5000));
	CHECK(file_is(dir, "after", b, 1000));
	CHECK(dot_files(dir) == 0);
	struct stat sb;
	CHECK(stat(keep, &sb) == 0);

	/* bad arguments; no requests on a loop for files only */
	CHECK(otlp_exporter__write_file(ex, dir, "a/b", make_body(1, 1), 1) == -EINVAL);
	CHECK(otlp_exporter__write_file(ex, dir, "", make_body(1, 1), 1) == -EINVAL);
	CHECK(otlp_exporter__write_file(NULL, dir, "x", make_body(1, 1), 1) == -EINVAL);
	CHECK(otlp_exporter__submit(ex, make_body(10, 1), 10) == -EINVAL);

	/* shutdown with a zero deadline still writes what is queued */
	CHECK(write_copy(ex, dir, "last", a, big) == 0);
	otlp_exporter__shutdown(ex, 0);
	CHECK(file_is(dir, "last", a, big));
	CHECK(write_copy(ex, dir, "late", b, 10) == -ESHUTDOWN);
	otlp_exporter__stats(ex, &st);
	CHECK_STATS(st, st.profile_file_errors == 3 && st.file_queue_bytes == 0 &&
				st.requests_queued == 0);
	CHECK(dot_files(dir) == 0);
	otlp_exporter__free(ex);
	free(a);
	free(b);
	rm_rf(dir);
	return 0;
}

/* File writes while the HTTP side is stuck: they must not wait for it. */
static int test_io_files_http_blocked(void)
{
	static const char *const names[] = {"cpu.pb.gz", "cpu.folded", "cpu.svg"};
	struct rx rx;
	struct otlp_exporter_stats st;
	char dir[PATH_MAX];
	uint8_t *b = make_body(20000, 5);
	size_t big = 2u << 20;
	uint8_t *a = make_body(big, 6);

	snprintf(dir, sizeof(dir), "%s/io-blocked-XXXXXX", tmp_base());
	CHECK(mkdtemp(dir));

	/* a request waiting for a response that takes 5 s */
	CHECK(rx_start(&rx, "delay=5000") == 0);
	struct otlp_exporter_opts o = test_opts(rx_url(&rx, "http", "127.0.0.1"));
	o.local_files = true;
	struct otlp_exporter *ex = otlp_exporter__new(&o);
	CHECK(ex);
	CHECK(otlp_exporter__submit(ex, make_body(1000, 1), 1000) == 0);
	CHECK(WAIT_FOR(ex, st, st.connects == 1, 3000));
	usleep(100 * 1000);
	uint64_t t0 = now_ms();
	for (unsigned i = 0; i < 3; i++)
		CHECK(write_copy(ex, dir, names[i], b, 20000) == 0);
	bool done = WAIT_FOR(ex, st, st.profile_files_written == 3, 1000);
	fprintf(stderr, "files behind a stuck request: %llu ms\n",
		(unsigned long long)(now_ms() - t0));
	CHECK(done);
	CHECK_STATS(st, st.requests_sent == 0 && st.requests_failed == 0);
	for (unsigned i = 0; i < 3; i++)
		CHECK(file_is(dir, names[i], b, 20000));
	/* shutdown with a zero deadline: the request is given up, the file
	 * queued just before is written */
	CHECK(write_copy(ex, dir, "final", a, big) == 0);
	t0 = now_ms();
	otlp_exporter__shutdown(ex, 0);
	uint64_t took = now_ms() - t0;
	otlp_exporter__stats(ex, &st);
	CHECK_STATS(st, st.profile_files_written == 4 && st.requests_failed == 1 &&
				st.requests_sent == 0);
	fprintf(stderr, "shutdown(0) with a stuck request and a file: %llu ms\n",
		(unsigned long long)took);
	CHECK(took < 2000);
	CHECK(file_is(dir, "final", a, big));
	otlp_exporter__free(ex);
	rx_stop(&rx);

	/* the collector refuses connections: requests wait in backoff */
	CHECK(rx_start_args(&rx, NULL, 60, NULL, NULL) == 0);
	o = test_opts(rx_url(&rx, "http", "127.0.0.1"));
	o.local_files = true;
	o.max_file_queue_bytes = 16u << 20; /* test_opts bounds requests at 1 MiB */
	o.backoff_initial_ms = 3000;
	o.backoff_max_ms = 3000;
	ex = otlp_exporter__new(&o);
	CHECK(ex);
	for (unsigned i = 0; i < 3; i++)
		CHECK(otlp_exporter__submit(ex, make_body(1000, i), 1000) == 0);
	CHECK(WAIT_FOR(ex, st, st.connect_failures == 1, 3000));
	t0 = now_ms();
	for (unsigned i = 0; i < 3; i++)
		CHECK(write_copy(ex, dir, names[i], a, big) == 0);
	done = WAIT_FOR(ex, st, st.profile_files_written == 3, 1000);
	fprintf(stderr, "files behind a request in backoff: %llu ms\n",
		(unsigned long long)(now_ms() - t0));
	CHECK(done);
	CHECK_STATS(st, st.requests_sent == 0 && st.connect_failures == 1);
	for (unsigned i = 0; i < 3; i++)
		CHECK(file_is(dir, names[i], a, big));
	CHECK(dot_files(dir) == 0);
	otlp_exporter__shutdown(ex, 0);
	otlp_exporter__free(ex);
	rx_stop(&rx);
	free(a);
	free(b);
	rm_rf(dir);
	return 0;
}

/* The file queue's bound, with a write stuck in its open (a FIFO without a
 * reader stands for a disk that hangs). */
static int test_io_files_bound(void)
{
	struct otlp_exporter_stats st;
	char dir[PATH_MAX], fifo[PATH_MAX + 32], slow[PATH_MAX + 32];
	uint8_t *b = make_body(5000, 8), *b2 = make_body(4000, 9), got[200];

	snprintf(dir, sizeof(dir), "%s/io-bound-XXXXXX", tmp_base());
	CHECK(mkdtemp(dir));
	snprintf(fifo, sizeof(fifo), "%s/.slow.tmp", dir);
	snprintf(slow, sizeof(slow), "%s/slow", dir);
	CHECK(mkfifo(fifo, 0600) == 0);
	struct otlp_exporter_opts o = {.local_files = true, .max_file_queue_bytes = 10000};
	struct otlp_exporter *ex = otlp_exporter__new(&o);
	CHECK(ex);

	CHECK(write_copy(ex, dir, "slow", b, 100) == 0);
	CHECK(write_copy(ex, dir, "a", b, 5000) == 0);	      /* 5100 bytes queued */
	CHECK(write_copy(ex, dir, "b", b, 5000) == -ENOBUFS); /* 10100 > 10000 */
	CHECK(write_copy(ex, dir, "a", b2, 4000) == 0);	      /* supersedes a: 4100 */
	CHECK(write_copy(ex, dir, "c", b, 5000) == 0);	      /* 9100 */
	usleep(200 * 1000);
	otlp_exporter__stats(ex, &st);
	CHECK_STATS(st, st.profile_files_written == 0 && st.profile_files_queued == 4 &&
				st.profile_files_dropped == 1 && st.profile_files_superseded == 1 &&
				st.file_queue_bytes == 9100 && st.file_queue_bytes_max == 9100);

	/* a reader comes: the stuck write completes, then the others, in order */
	int rfd = open(fifo, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	CHECK(rfd >= 0);
	CHECK(WAIT_FOR(ex, st, st.profile_files_written == 3, 5000));
	CHECK(read(rfd, got, sizeof(got)) == 100 && !memcmp(got, b, 100));
	close(rfd);
	struct stat sb;
	CHECK(stat(slow, &sb) == 0 && S_ISFIFO(sb.st_mode));
	CHECK(file_is(dir, "a", b2, 4000));
	CHECK(file_is(dir, "c", b, 5000));
	CHECK(access(fifo, F_OK) != 0);
	CHECK(dot_files(dir) == 0);
	otlp_exporter__shutdown(ex, 0);
	otlp_exporter__stats(ex, &st);
	CHECK_STATS(st, st.profile_file_errors == 0 && st.file_queue_bytes == 0);
	otlp_exporter__free(ex);
	free(b);
	free(b2);
	rm_rf(dir);
	return 0;
}

/* ---- TLS ------------------------------------------------------------------------------ */

static char cert_dir[PATH_MAX];
static int certs_state; /* 0 not tried, 1 ready, -1 unavailable */

static int make_certs(void)
{
	if (certs_state)
		return certs_state;
	certs_state = -1;
	snprintf(cert_dir, sizeof(cert_dir), "%s/otlp-certs-XXXXXX", tmp_base());
	if (!mkdtemp(cert_dir))
		return -1;
	static const struct {
		const char *name, *cn, *san;
	} certs[] = {
		{"good", "localhost", "DNS:localhost,IP:127.0.0.1"},
		{"other", "other.invalid", "DNS:other.invalid"},
	};
	for (size_t i = 0; i < 2; i++) {
		char cmd[PATH_MAX * 3];
		snprintf(cmd, sizeof(cmd),
			 "'%s' req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
			 "-keyout '%s/%s.key' -out '%s/%s.pem' -days 2 -subj /CN=%s "
			 "-addext subjectAltName=%s >/dev/null 2>&1",
			 OPENSSL_CLI, cert_dir, certs[i].name, cert_dir, certs[i].name, certs[i].cn,
			 certs[i].san);
		if (system(cmd) != 0) {
			fprintf(stderr, "cannot make a test certificate with %s\n", OPENSSL_CLI);
			return -1;
		}
	}
	certs_state = 1;
	return 1;
}

/* Missing openssl CLI: skip, except under CI where it must be there. */
static int tls_unavailable(void)
{
	const char *ci = getenv("CI");
	return ci && !strcmp(ci, "true") ? 1 : TEST_SKIP;
}

static void cert_path(char *buf, size_t cap, const char *name, const char *ext)
{
	snprintf(buf, cap, "%s/%s.%s", cert_dir, name, ext);
}

static int tls_case(const char *srv_cert, const char *host, const char *ca, bool insecure,
		    bool expect_ok)
{
	struct rx rx;
	struct otlp_exporter_stats st;
	char cert[PATH_MAX + 16], key[PATH_MAX + 16], ca_path[PATH_MAX + 16];

	cert_path(cert, sizeof(cert), srv_cert, "pem");
	cert_path(key, sizeof(key), srv_cert, "key");
	if (ca)
		cert_path(ca_path, sizeof(ca_path), ca, "pem");
	CHECK(rx_start_args(&rx, NULL, 0, cert, key) == 0);
	struct otlp_exporter_opts o = test_opts(rx_url(&rx, "https", host));
	o.ca_file = ca ? ca_path : NULL;
	o.insecure_skip_verify = insecure;
	struct otlp_exporter *ex = otlp_exporter__new(&o);
	CHECK(ex);
	/* big enough for many TLS records each way */
	size_t len = 300000;
	uint8_t *body = make_body(len, 77);
	CHECK(submit_copy(ex, body, len) == 0);
	if (expect_ok) {
		CHECK(WAIT_FOR(ex, st, st.requests_sent == 1, 5000));
		CHECK(otlp_exporter__submit(ex, make_body(10, 1), 10) == 0);
		CHECK(WAIT_FOR(ex, st, st.requests_sent == 2, 5000));
		CHECK_STATS(st, st.connects == 1 && st.requests_retried == 0);
	} else {
		CHECK(WAIT_FOR(ex, st, st.connect_failures >= 2, 5000));
		CHECK_STATS(st, st.requests_sent == 0 && st.requests_retried >= 2);
	}
	otlp_exporter__shutdown(ex, 0);
	otlp_exporter__stats(ex, &st);
	otlp_exporter__free(ex);
	if (expect_ok) {
		CHECK(rx_count(&rx) == 2);
		CHECK(rx_body_is(&rx, 1, body, len));
	} else {
		CHECK(rx_count(&rx) == 0);
		CHECK_STATS(st, st.requests_failed == 1);
	}
	free(body);
	rx_stop(&rx);
	return 0;
}

static int test_tls(void)
{
	if (make_certs() < 0)
		return tls_unavailable();
	fprintf(stderr, "-- https://127.0.0.1 with ca_file\n");
	CHECK(tls_case("good", "127.0.0.1", "good", false, true) == 0);
	fprintf(stderr, "-- https://localhost with ca_file (SNI, host name check)\n");
	CHECK(tls_case("good", "localhost", "good", false, true) == 0);
	fprintf(stderr, "-- self-signed, no ca_file: verification fails\n");
	CHECK(tls_case("good", "127.0.0.1", NULL, false, false) == 0);
	fprintf(stderr, "-- trusted certificate for another name: host check fails\n");
	CHECK(tls_case("other", "127.0.0.1", "other", false, false) == 0);
	fprintf(stderr, "-- insecure_skip_verify\n");
	CHECK(tls_case("good", "127.0.0.1", NULL, true, true) == 0);
	return 0;
}

static const struct test_case cases[] = {
	{"url_parse", test_url_parse},
	{"request_head", test_request_head},
	{"header_check", test_header_check},
	{"resp_content_length", test_resp_content_length},
	{"resp_chunked", test_resp_chunked},
	{"resp_misc", test_resp_misc},
	{"resp_oversize", test_resp_oversize},
	{"resp_gzip", test_resp_gzip},
	{"retry_after", test_retry_after},
	{"backoff", test_backoff},
	{"partial_success", test_partial_success},
	{"gzip", test_gzip},
	{"new_rejects", test_new_rejects},
	{"e2e_ok", test_e2e_ok},
	{"e2e_no_gzip_keepalive", test_e2e_no_gzip_keepalive},
	{"e2e_503_then_200", test_e2e_503_then_200},
	{"e2e_retry_after", test_e2e_retry_after},
	{"e2e_not_retried", test_e2e_not_retried},
	{"e2e_partial_success", test_e2e_partial_success},
	{"e2e_closed", test_e2e_closed},
	{"e2e_connection_reuse", test_e2e_connection_reuse},
	{"e2e_refused_then_up", test_e2e_refused_then_up},
	{"e2e_backlog_drain", test_e2e_backlog_drain},
	{"e2e_memory_bound", test_e2e_memory_bound},
	{"e2e_timeout", test_e2e_timeout},
	{"e2e_queue_bound", test_e2e_queue_bound},
	{"e2e_shutdown", test_e2e_shutdown},
	{"e2e_files", test_e2e_files},
	{"io_files", test_io_files},
	{"io_files_http_blocked", test_io_files_http_blocked},
	{"io_files_bound", test_io_files_bound},
	{"tls", test_tls},
};

int main(int argc, char **argv)
{
	int rc = test_run_all(cases, sizeof(cases) / sizeof(cases[0]), argc, argv);
	if (cert_dir[0] && certs_state)
		rm_rf(cert_dir);
	return rc;
}
