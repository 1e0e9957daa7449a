/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * exporter/ private interfaces: the pieces of the OTLP/HTTP client that are
 * pure functions (URL parsing, HTTP request head and response parser,
 * Retry-After, backoff, gzip, the few protobuf fields of a response) and the
 * OpenSSL memory-BIO wrapper. Only the exporter/ sources and tests/exporter_test.c
 * include this header; the rest of the agent uses exporter.h.
 */
#ifndef PIPELINE_EXPORTER_INTERNAL_H
#define PIPELINE_EXPORTER_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* ---- url.c ------------------------------------------------------------ */

#define OTLP_DEFAULT_PORT 4318
#define OTLP_DEFAULT_PATH "/v1development/profiles"
#define OTLP_URL_HOST_MAX 256
#define OTLP_URL_PATH_MAX 2048

struct otlp_url {
	bool https;
	bool host_is_ip;			  /* IPv4 or IPv6 literal: no SNI, IP check */
	char host[OTLP_URL_HOST_MAX];		  /* without the brackets of an IPv6 literal */
	char port[8];				  /* decimal, for getaddrinfo */
	char host_header[OTLP_URL_HOST_MAX + 16]; /* Host: value, [v6]:port when needed */
	char path[OTLP_URL_PATH_MAX];		  /* origin-form request target, starts with '/' */
};

/*
 * Parses "http[s]://host[:port][/path][?query]". The port defaults to 4318,
 * the path to /v1development/profiles when absent or "/". User info, empty
 * hosts, bad ports and unencoded spaces or control characters are refused.
 * Returns 0, or -EINVAL with *why (if not NULL) naming the problem.
 */
int otlp_url__parse(const char *s, struct otlp_url *u, const char **why);

/* ---- http.c ----------------------------------------------------------- */

/* Checks one extra header line "Name: value": a token name, no CR, LF or
 * NUL, and not a header the client manages itself (Content-Length,
 * Transfer-Encoding, Connection, Content-Encoding, ...). Returns 0 or
 * -EINVAL with *why set. */
int http_header__check(const char *line, const char **why);

/*
 * Builds the head of a POST of content_length body bytes: request line,
 * Host, User-Agent, Content-Type: application/x-protobuf, Content-Encoding
 * (gzip only), Content-Length, Connection: keep-alive, then the extra
 * headers (an extra Host, User-Agent or Content-Type replaces the default).
 * Returns a malloc'ed string (length in *len), or NULL with errno set.
 */
char *http_request__head(const struct otlp_url *u, const char *user_agent,
			 const char *const *headers, size_t n_headers, bool gzip,
			 size_t content_length, size_t *len);

enum http_resp_state {
	HTTP_R_STATUS,
	HTTP_R_HEADERS,
	HTTP_R_BODY_LENGTH, /* Content-Length */
	HTTP_R_BODY_CLOSE,  /* no length: the body ends when the server closes */
	HTTP_R_CHUNK_SIZE,
	HTTP_R_CHUNK_DATA,
	HTTP_R_CHUNK_CRLF,
	HTTP_R_TRAILERS,
	HTTP_R_DONE,
};

#define HTTP_LINE_MAX	     8192
#define HTTP_HEAD_MAX	     (64 * 1024)
#define HTTP_RETRY_AFTER_MAX 64

/*
 * Incremental HTTP/1.x response parser: bytes in, one response out. Interim
 * 1xx responses are skipped. The body is kept in memory up to max_body
 * bytes (after gzip decoding too); a gzip Content-Encoding is decoded when
 * the response completes. Owns body; deinit frees it.
 */
struct http_resp {
	enum http_resp_state state;
	size_t max_body;
	int status;	 /* 100..599 once the status line is in */
	int minor;	 /* HTTP/1.minor */
	bool keep_alive; /* the connection may carry another request */
	bool chunked;
	bool te_other;	 /* a Transfer-Encoding without chunked: read until close */
	bool gzip;	 /* Content-Encoding: gzip (decoded into body at the end) */
	bool conn_close; /* Connection: close */
	bool got_bytes;	 /* any byte of a response was received */
	bool has_retry_after;
	char retry_after[HTTP_RETRY_AFTER_MAX];
	int64_t content_length; /* -1: none */
	uint64_t chunk_left;
	size_t head_bytes;
	char line[HTTP_LINE_MAX];
	size_t line_len;
	uint8_t *body;
	size_t body_len, body_cap;
};

void http_resp__init(struct http_resp *r, size_t max_body);
/* Forgets the previous response (keeps the body buffer for reuse). */
void http_resp__reset(struct http_resp *r);
void http_resp__deinit(struct http_resp *r);

/*
 * Feeds n bytes; *used tells how many were consumed (the rest belongs to
 * whatever follows the response). Returns 1 when the response is complete,
 * 0 when more bytes are needed, -EMSGSIZE when the head or the body exceeds
 * its cap, -EPROTO when the response is malformed.
 */
int http_resp__feed(struct http_resp *r, const void *data, size_t n, size_t *used);

/* The server closed the connection. Returns 1 when that completes the
 * response (a body delimited by the close), -EPIPE when the response is
 * incomplete (or never started), or the error of decoding the body. */
int http_resp__eof(struct http_resp *r);

/*
 * Parses a Retry-After value: delta-seconds or an HTTP-date (IMF-fixdate,
 * RFC 850 or asctime form), relative to now (seconds since the epoch). A
 * date in the past gives 0. Returns 0 with the delay in *ms, capped at
 * RETRY_AFTER_CAP_MS, or -EINVAL.
 */
#define RETRY_AFTER_CAP_MS (5 * 60 * 1000u)
int http_retry_after__parse(const char *v, time_t now, uint64_t *ms);

/* True for the statuses OTLP says to retry: 429, 502, 503, 504. */
bool http_status__retryable(int status);

/* ---- pb.c --------------------------------------------------------------- */

/*
 * Reads ExportProfilesServiceResponse.partial_success {1 rejected_profiles,
 * 2 error_message}. Returns 1 when it is populated (rejected_profiles != 0
 * or a non-empty message), 0 when absent or all empty, -EPROTO when the
 * bytes are not a valid message. msg gets the (truncated, printable) text.
 */
int pb_partial_success__parse(const uint8_t *b, size_t n, int64_t *rejected, char *msg,
			      size_t msg_cap);

/* Describes an error body for a log line: google.rpc.Status.message when the
 * body is one, else a printable excerpt of at most cap - 1 bytes. */
void pb_error_body__describe(const uint8_t *b, size_t n, char *out, size_t cap);

/* ---- gzip.c ------------------------------------------------------------- */

/* gzip__compress() is public: exporter.h. */

/* Decompresses a gzip (or zlib) stream into a malloc'ed buffer of at most max
 * bytes. Returns 0, -EMSGSIZE past max, -EPROTO on corrupt data, -ENOMEM. */
int gzip__decompress(const void *in, size_t n, size_t max, uint8_t **out, size_t *out_len);

/* ---- backoff.c ---------------------------------------------------------- */

/* Exponential backoff with "equal jitter": attempt k waits a uniformly
 * random time in [c/2, c] with c = min(max, initial * 2^k). Caller-owned. */
struct backoff {
	unsigned initial_ms, max_ms;
	unsigned attempt;
	uint64_t rng;
};

void backoff__init(struct backoff *b, unsigned initial_ms, unsigned max_ms, uint64_t seed);
void backoff__reset(struct backoff *b);
/* Returns the next delay in milliseconds and advances the attempt count. */
unsigned backoff__next(struct backoff *b);

/* ---- tls.c -------------------------------------------------------------- */

typedef struct ssl_ctx_st SSL_CTX;
typedef struct ssl_st SSL;
typedef struct bio_st BIO;

/* Client context: TLS >= 1.2, system trust store plus ca_file, verification
 * unless insecure. Returns NULL with a message in err on failure. */
SSL_CTX *tls_ctx__new(const char *ca_file, bool insecure, char *err, size_t err_cap);
void tls_ctx__free(SSL_CTX *ctx);

/*
 * One TLS client session over two memory BIOs: the event loop moves
 * ciphertext between the socket and the BIOs (in__write, out__read) and
 * OpenSSL only transforms bytes; it never touches the socket.
 */
struct tls_conn {
	SSL *ssl;
	BIO *rbio; /* ciphertext from the server, owned by ssl */
	BIO *wbio; /* ciphertext to the server, owned by ssl */
};

/* Sets up SNI (host names only) and the host name or IP check. Returns 0 or
 * -ENOMEM. */
int tls_conn__init(struct tls_conn *t, SSL_CTX *ctx, const char *host, bool host_is_ip);
void tls_conn__deinit(struct tls_conn *t);
/* Returns 1 when the handshake is complete, 0 when it needs server bytes,
 * -EPROTO on failure (tls_conn__error says why). */
int tls_conn__handshake(struct tls_conn *t);
/* Ciphertext waiting to go to the server. */
size_t tls_conn__out_pending(struct tls_conn *t);
/* Moves up to cap bytes of that ciphertext into buf; returns the count. */
size_t tls_conn__out_read(struct tls_conn *t, void *buf, size_t cap);
/* Hands ciphertext received from the server to OpenSSL. Returns 0 or -ENOMEM. */
int tls_conn__in_write(struct tls_conn *t, const void *buf, size_t n);
/* Encrypts n plaintext bytes (n > 0). Returns n or -EPROTO. */
int tls_conn__write(struct tls_conn *t, const void *buf, size_t n);
/* Decrypts into buf. Returns the byte count, 0 when more ciphertext is
 * needed, -EPIPE on the server's close_notify, -EPROTO on failure. */
int tls_conn__read(struct tls_conn *t, void *buf, size_t cap);
/* Describes the last failure (certificate verification or OpenSSL error). */
void tls_conn__error(struct tls_conn *t, char *buf, size_t cap);

#endif /* PIPELINE_EXPORTER_INTERNAL_H */
