// SPDX-License-Identifier: BSD-2-Clause
/*
 * otlp_receiver: a scriptable OTLP/HTTP receiver for the exporter tests.
 * Single-threaded, poll(2), non-blocking sockets, several connections,
 * keep-alive; plain HTTP or TLS (OpenSSL server, certificate and key given
 * on the command line). Listens on 127.0.0.1 only.
 *
 *   otlp_receiver --dir DIR [--port N] [--script LIST] [--refuse-until SEC]
 *                 [--hang] [--tls CERT KEY] [--exit-after SEC]
 *
 * Prints "PORT <n>" on stdout once the port is bound. With --refuse-until the
 * socket is bound but listen() is only called SEC seconds later, so connects
 * are refused until then. With --hang every request is recorded and never
 * answered (whatever the script says): the connection stays open until the
 * client gives up, as a collector that accepts and then stalls.
 *
 * Each request n (from 1, across connections) is recorded before it is
 * answered: DIR/NNNN.wire (body as received), DIR/NNNN.body (gzip decoded),
 * then DIR/NNNN.meta (renamed into place last), lines of:
 *   method M / path P / conn C / time_ms T (CLOCK_MONOTONIC) / action A /
 *   header name: value (names lowercased)
 *
 * The script answers request n with its n-th item (200 once it runs out).
 * Items are comma-separated, BASE[+MOD...]:
 *   NNN               that status; non-2xx carry a google.rpc.Status body
 *   partial           200 with partial_success {3, "3 profiles rejected ..."}
 *   chunked           200, chunked body holding an all-empty partial_success
 *   chunked-partial   200, partial_success body sent in 5-byte chunks
 *   gzip-partial      200, partial_success body with Content-Encoding: gzip
 *   big               200 with a 5 MiB body
 *   close-mid         a head promising 100 bytes, 7 of them, then close
 *   close             close without answering
 *   delay=MS          200 after MS milliseconds
 *   early=NNN         that status as soon as the head is in, without reading
 *                     the body, then close (as a server enforcing a body
 *                     limit does); the request is recorded with what arrived
 * MODs: retry-after=S, retry-after-date=S (an HTTP-date S seconds ahead),
 *   delay=MS, close (answer with Connection: close, then close),
 *   drop (answer, then close silently, as an idle timeout would).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <zlib.h>

#define MAX_CONNS   64
#define MAX_ACTIONS 256
#define MAX_REQUEST (80u << 20)

enum base {
	B_STATUS,
	B_PARTIAL,
	B_CHUNKED,
	B_CHUNKED_PARTIAL,
	B_GZIP_PARTIAL,
	B_BIG,
	B_CLOSE_MID,
	B_CLOSE,
	B_EARLY,
};

struct action {
	char text[64];
	enum base base;
	int status;
	int retry_after;      /* -1: none */
	int retry_after_date; /* -1: none */
	int delay_ms;
	bool close_after; /* Connection: close */
	bool drop_after;  /* silent close */
};

enum cstate { C_READ, C_DELAY, C_WRITE };

struct conn {
	int fd;
	SSL *ssl;
	unsigned id;
	enum cstate st;
	uint8_t *in;
	size_t in_len, in_cap;
	uint8_t *out;
	size_t out_len, out_off;
	uint64_t respond_at;
	struct action act;
	bool close_after;
	bool ssl_want_write;
	bool discard; /* answered early: drop whatever else arrives */
};

static struct action actions[MAX_ACTIONS];
static unsigned n_actions;
static const char *dir;
static bool hang; /* --hang: record requests, answer none */
static SSL_CTX *ssl_ctx;
static unsigned n_requests, n_conns_total;
static struct conn conns[MAX_CONNS];

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void die(const char *what)
{
	fprintf(stderr, "otlp_receiver: %s: %s\n", what, strerror(errno));
	exit(2);
}

static int parse_action(const char *item, struct action *a)
{
	char buf[64];
	memset(a, 0, sizeof(*a));
	a->retry_after = a->retry_after_date = -1;
	snprintf(a->text, sizeof(a->text), "%s", item);
	snprintf(buf, sizeof(buf), "%s", item);
	char *save = NULL;
	bool first = true;
	for (char *t = strtok_r(buf, "+", &save); t; t = strtok_r(NULL, "+", &save)) {
		if (first) {
			first = false;
			a->status = 200;
			if (t[0] >= '1' && t[0] <= '9') {
				a->base = B_STATUS;
				a->status = atoi(t);
			} else if (!strcmp(t, "partial")) {
				a->base = B_PARTIAL;
			} else if (!strcmp(t, "chunked")) {
				a->base = B_CHUNKED;
			} else if (!strcmp(t, "chunked-partial")) {
				a->base = B_CHUNKED_PARTIAL;
			} else if (!strcmp(t, "gzip-partial")) {
				a->base = B_GZIP_PARTIAL;
			} else if (!strcmp(t, "big")) {
				a->base = B_BIG;
			} else if (!strcmp(t, "close-mid")) {
				a->base = B_CLOSE_MID;
			} else if (!strcmp(t, "close")) {
				a->base = B_CLOSE;
			} else if (!strncmp(t, "delay=", 6)) {
				a->base = B_STATUS;
				a->delay_ms = atoi(t + 6);
			} else if (!strncmp(t, "early=", 6)) {
				a->base = B_EARLY;
				a->status = atoi(t + 6);
			} else {
				return -1;
			}
			continue;
		}
		if (!strncmp(t, "retry-after=", 12))
			a->retry_after = atoi(t + 12);
		else if (!strncmp(t, "retry-after-date=", 17))
			a->retry_after_date = atoi(t + 17);
		else if (!strncmp(t, "delay=", 6))
			a->delay_ms = atoi(t + 6);
		else if (!strcmp(t, "close"))
			a->close_after = true;
		else if (!strcmp(t, "drop"))
			a->drop_after = true;
		else
			return -1;
	}
	return first ? -1 : 0;
}

static void parse_script(const char *s)
{
	char *copy = strdup(s), *save = NULL;
	for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		if (n_actions == MAX_ACTIONS || parse_action(t, &actions[n_actions])) {
			fprintf(stderr, "otlp_receiver: bad script item '%s'\n", t);
			exit(2);
		}
		n_actions++;
	}
	free(copy);
}

/* ---- recording ---- */

static void write_file(const char *name, const void *data, size_t len)
{
	char path[PATH_MAX], tmp[PATH_MAX];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	snprintf(tmp, sizeof(tmp), "%s/.%s.tmp", dir, name);
	FILE *f = fopen(tmp, "wb");
	if (!f)
		die(tmp);
	if (len && fwrite(data, 1, len, f) != len)
		die(tmp);
	if (fclose(f))
		die(tmp);
	if (rename(tmp, path))
		die(path);
}

static int gunzip(const uint8_t *in, size_t n, uint8_t **out, size_t *out_len)
{
	z_stream zs = {0};
	size_t cap = n * 8 + 1024, len = 0;
	uint8_t *buf = malloc(cap);
	if (!buf || inflateInit2(&zs, 15 + 32) != Z_OK) {
		free(buf);
		return -1;
	}
	zs.next_in = (Bytef *)in;
	zs.avail_in = (uInt)n;
	int rc;
	do {
		if (len == cap) {
			cap *= 2;
			buf = realloc(buf, cap);
			if (!buf)
				die("realloc");
		}
		zs.next_out = buf + len;
		zs.avail_out = (uInt)(cap - len);
		rc = inflate(&zs, Z_NO_FLUSH);
		len = cap - zs.avail_out;
	} while (rc == Z_OK || (rc == Z_BUF_ERROR && len == cap));
	inflateEnd(&zs);
	if (rc != Z_STREAM_END) {
		free(buf);
		return -1;
	}
	*out = buf;
	*out_len = len;
	return 0;
}

/* ---- responses ---- */

static void out_append(struct conn *c, const void *p, size_t n)
{
	uint8_t *nb = realloc(c->out, c->out_len + n);
	if (!nb)
		die("realloc");
	c->out = nb;
	memcpy(c->out + c->out_len, p, n);
	c->out_len += n;
}

static void out_printf(struct conn *c, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	out_append(c, buf, (size_t)n);
}

/* ExportProfilesServiceResponse{partial_success{rejected, message}} */
static size_t partial_body(uint8_t *b, int rejected, const char *msg)
{
	size_t ml = strlen(msg), o = 0;
	b[o++] = 0x0a;
	b[o++] = (uint8_t)(2 + 2 + ml);
	b[o++] = 0x08;
	b[o++] = (uint8_t)rejected;
	b[o++] = 0x12;
	b[o++] = (uint8_t)ml;
	memcpy(b + o, msg, ml);
	return o + ml;
}

static void common_headers(struct conn *c, const struct action *a)
{
	if (a->retry_after >= 0)
		out_printf(c, "Retry-After: %d\r\n", a->retry_after);
	if (a->retry_after_date >= 0) {
		char date[64];
		time_t t = time(NULL) + a->retry_after_date;
		struct tm tm;
		gmtime_r(&t, &tm);
		strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
		out_printf(c, "Retry-After: %s\r\n", date);
	}
	if (a->close_after)
		out_printf(c, "Connection: close\r\n");
}

static void respond(struct conn *c, const struct action *a)
{
	uint8_t body[256];
	size_t bl;
	static const char *msg = "3 profiles rejected by the test receiver";

	c->out_len = c->out_off = 0;
	c->close_after = a->close_after || a->drop_after || c->close_after;
	switch (a->base) {
	case B_CLOSE:
		c->close_after = true;
		break;
	case B_CLOSE_MID:
		out_printf(c, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial");
		c->close_after = true;
		break;
	case B_EARLY:
		c->close_after = true;
		/* fall through */
	case B_STATUS:
		if (a->status >= 200 && a->status < 300) {
			out_printf(c, "HTTP/1.1 %d OK\r\nContent-Type: application/x-protobuf\r\n",
				   a->status);
			common_headers(c, a);
			out_printf(c, "Content-Length: 0\r\n\r\n");
		} else {
			/* google.rpc.Status{code: 14 UNAVAILABLE or 3, message} */
			char m[80];
			int ml = snprintf(m, sizeof(m), "test receiver says %d", a->status);
			bl = 0;
			body[bl++] = 0x08;
			body[bl++] = a->status == 503 ? 14 : 3;
			body[bl++] = 0x12;
			body[bl++] = (uint8_t)ml;
			memcpy(body + bl, m, (size_t)ml);
			bl += (size_t)ml;
			out_printf(c,
				   "HTTP/1.1 %d Test\r\nContent-Type: application/x-protobuf\r\n",
				   a->status);
			common_headers(c, a);
			out_printf(c, "Content-Length: %zu\r\n\r\n", bl);
			out_append(c, body, bl);
		}
		break;
	case B_PARTIAL:
		bl = partial_body(body, 3, msg);
		out_printf(c, "HTTP/1.1 200 OK\r\nContent-Type: application/x-protobuf\r\n");
		common_headers(c, a);
		out_printf(c, "Content-Length: %zu\r\n\r\n", bl);
		out_append(c, body, bl);
		break;
	case B_CHUNKED:
		out_printf(c, "HTTP/1.1 200 OK\r\nContent-Type: application/x-protobuf\r\n");
		common_headers(c, a);
		out_printf(c, "Transfer-Encoding: chunked\r\n\r\n");
		out_printf(c, "1;ext=1\r\n\x0a\r\n1\r\n");
		out_append(c, "\0", 1);
		out_printf(c, "\r\n0\r\nX-Trailer: yes\r\n\r\n");
		break;
	case B_CHUNKED_PARTIAL:
		bl = partial_body(body, 3, msg);
		out_printf(c, "HTTP/1.1 200 OK\r\nContent-Type: application/x-protobuf\r\n");
		common_headers(c, a);
		out_printf(c, "Transfer-Encoding: chunked\r\n\r\n");
		for (size_t o = 0; o < bl; o += 5) {
			size_t n = bl - o < 5 ? bl - o : 5;
			out_printf(c, "%zx\r\n", n);
			out_append(c, body + o, n);
			out_printf(c, "\r\n");
		}
		out_printf(c, "0\r\n\r\n");
		break;
	case B_GZIP_PARTIAL: {
		bl = partial_body(body, 3, msg);
		uint8_t z[512];
		z_stream zs = {0};
		deflateInit2(&zs, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
		zs.next_in = body;
		zs.avail_in = (uInt)bl;
		zs.next_out = z;
		zs.avail_out = sizeof(z);
		deflate(&zs, Z_FINISH);
		size_t zl = zs.total_out;
		deflateEnd(&zs);
		out_printf(c, "HTTP/1.1 200 OK\r\nContent-Type: application/x-protobuf\r\n");
		common_headers(c, a);
		out_printf(c, "Content-Encoding: gzip\r\nContent-Length: %zu\r\n\r\n", zl);
		out_append(c, z, zl);
		break;
	}
	case B_BIG: {
		size_t n = 5u << 20;
		out_printf(c, "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n", n);
		uint8_t *zero = calloc(1, n);
		out_append(c, zero, n);
		free(zero);
		break;
	}
	}
	c->st = C_WRITE;
}

/* ---- connections ---- */

static void conn_close(struct conn *c)
{
	if (c->ssl)
		SSL_free(c->ssl);
	close(c->fd);
	free(c->in);
	free(c->out);
	memset(c, 0, sizeof(*c));
	c->fd = -1;
}

/* Returns bytes read, 0 at EOF, -1 on error, -2 when it would block. */
static ssize_t conn_read(struct conn *c, void *buf, size_t n)
{
	if (!c->ssl) {
		ssize_t r = recv(c->fd, buf, n, 0);
		if (r < 0)
			return errno == EAGAIN || errno == EINTR ? -2 : -1;
		return r;
	}
	c->ssl_want_write = false;
	int r = SSL_read(c->ssl, buf, (int)n);
	if (r > 0)
		return r;
	switch (SSL_get_error(c->ssl, r)) {
	case SSL_ERROR_WANT_READ:
		return -2;
	case SSL_ERROR_WANT_WRITE:
		c->ssl_want_write = true;
		return -2;
	case SSL_ERROR_ZERO_RETURN:
		return 0;
	default: {
		/* A client closing without close_notify is routine; say anything else
		 * (a rejected certificate shows here). */
		unsigned long e = ERR_get_error();
		char es[256] = "";
		if (e && ERR_GET_REASON(e) != SSL_R_UNEXPECTED_EOF_WHILE_READING) {
			ERR_error_string_n(e, es, sizeof(es));
			fprintf(stderr, "otlp_receiver: TLS failed on connection %u: %s\n", c->id,
				es);
		}
		ERR_clear_error();
		return -1;
	}
	}
}

static ssize_t conn_write(struct conn *c, const void *buf, size_t n)
{
	if (!c->ssl) {
		ssize_t r = send(c->fd, buf, n, MSG_NOSIGNAL);
		if (r < 0)
			return errno == EAGAIN || errno == EINTR ? -2 : -1;
		return r;
	}
	c->ssl_want_write = false;
	int r = SSL_write(c->ssl, buf, (int)(n > INT_MAX ? INT_MAX : n));
	if (r > 0)
		return r;
	int e = SSL_get_error(c->ssl, r);
	if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ)
		return -2;
	ERR_clear_error();
	return -1;
}

static const char *find_header(const char *head, const char *name, char *val, size_t cap)
{
	size_t nl = strlen(name);
	for (const char *p = strstr(head, "\r\n"); p && p[2]; p = strstr(p + 2, "\r\n")) {
		const char *l = p + 2;
		if (!strncasecmp(l, name, nl) && l[nl] == ':') {
			const char *v = l + nl + 1;
			while (*v == ' ')
				v++;
			size_t vl = strcspn(v, "\r");
			if (vl >= cap)
				vl = cap - 1;
			memcpy(val, v, vl);
			val[vl] = '\0';
			return val;
		}
	}
	return NULL;
}

/* Handles one complete request at the start of c->in, if there is one.
 * Returns 1 when a request was taken, 0 when more bytes are needed, -1 on
 * a malformed request. */
static int take_request(struct conn *c)
{
	uint8_t *end = memmem(c->in, c->in_len, "\r\n\r\n", 4);
	if (!end)
		return c->in_len > 65536 ? -1 : 0;
	size_t head_len = (size_t)(end - c->in) + 4;
	char *head = malloc(head_len + 1);
	memcpy(head, c->in, head_len);
	head[head_len] = '\0';
	char val[256];
	size_t cl = 0;
	if (find_header(head, "content-length", val, sizeof(val)))
		cl = strtoull(val, NULL, 10);
	struct action a;
	if (n_requests < n_actions)
		a = actions[n_requests];
	else
		parse_action("200", &a);
	bool early = a.base == B_EARLY && c->in_len < head_len + cl;
	if (c->in_len < head_len + cl && !early) {
		free(head);
		return 0;
	}
	if (early) {
		cl = c->in_len - head_len; /* what arrived so far */
		c->discard = true;
	}
	char method[16] = "", path[1024] = "";
	sscanf(head, "%15s %1023s", method, path);
	unsigned idx = ++n_requests;
	const uint8_t *wire = c->in + head_len;
	char name[64];

	snprintf(name, sizeof(name), "%04u.wire", idx);
	write_file(name, wire, cl);
	uint8_t *body = NULL;
	size_t body_len = 0;
	if (find_header(head, "content-encoding", val, sizeof(val)) && !strcasecmp(val, "gzip")) {
		if (gunzip(wire, cl, &body, &body_len)) {
			body = (uint8_t *)strdup("<gunzip failed>");
			body_len = strlen((char *)body);
		}
	}
	snprintf(name, sizeof(name), "%04u.body", idx);
	write_file(name, body ? body : wire, body ? body_len : cl);
	free(body);

	char *meta = NULL;
	size_t meta_len = 0;
	FILE *m = open_memstream(&meta, &meta_len);
	fprintf(m, "method %s\npath %s\nconn %u\ntime_ms %llu\naction %s\n", method, path, c->id,
		(unsigned long long)now_ms(), a.text);
	for (const char *p = strstr(head, "\r\n"); p && p[2] && p[2] != '\r';
	     p = strstr(p + 2, "\r\n")) {
		const char *l = p + 2;
		size_t ll = strcspn(l, "\r");
		fprintf(m, "header ");
		for (size_t i = 0; i < ll; i++) {
			char ch = l[i];
			bool in_name = memchr(l, ':', i + 1) == NULL;
			fputc(in_name && ch >= 'A' && ch <= 'Z' ? ch + 32 : ch, m);
		}
		fputc('\n', m);
	}
	fclose(m);
	snprintf(name, sizeof(name), "%04u.meta", idx);
	write_file(name, meta, meta_len);
	free(meta);

	if (find_header(head, "connection", val, sizeof(val)) && !strcasecmp(val, "close"))
		c->close_after = true;
	free(head);
	memmove(c->in, c->in + head_len + cl, c->in_len - head_len - cl);
	c->in_len -= head_len + cl;

	if (hang) {
		/* Never answered: C_DELAY with no deadline, until the client
		 * closes the connection. */
		c->act = a;
		c->st = C_DELAY;
		c->respond_at = UINT64_MAX;
	} else if (a.delay_ms > 0) {
		c->act = a;
		c->st = C_DELAY;
		c->respond_at = now_ms() + (uint64_t)a.delay_ms;
	} else {
		respond(c, &a);
	}
	return 1;
}

static bool conn_on_readable(struct conn *c)
{
	for (;;) {
		if (c->in_len + 65536 > c->in_cap) {
			size_t cap = c->in_cap ? c->in_cap * 2 : 131072;
			if (cap > MAX_REQUEST)
				return false;
			c->in = realloc(c->in, cap);
			if (!c->in)
				die("realloc");
			c->in_cap = cap;
		}
		ssize_t r = conn_read(c, c->in + c->in_len, c->in_cap - c->in_len);
		if (r == -2)
			break;
		if (r <= 0)
			return false;
		if (!c->discard)
			c->in_len += (size_t)r;
	}
	if (c->st == C_READ) {
		int t = take_request(c);
		if (t < 0)
			return false;
	}
	return true;
}

static bool conn_on_writable(struct conn *c)
{
	while (c->out_off < c->out_len) {
		ssize_t w = conn_write(c, c->out + c->out_off, c->out_len - c->out_off);
		if (w == -2)
			return true;
		if (w < 0)
			return false;
		c->out_off += (size_t)w;
	}
	if (c->close_after)
		return false;
	c->st = C_READ;
	c->out_len = c->out_off = 0;
	/* A request that arrived meanwhile. */
	return take_request(c) >= 0;
}

int main(int argc, char **argv)
{
	int port = 0;
	double refuse_until = 0, exit_after = 120;
	const char *cert = NULL, *key = NULL;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--dir") && i + 1 < argc)
			dir = argv[++i];
		else if (!strcmp(argv[i], "--port") && i + 1 < argc)
			port = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--script") && i + 1 < argc)
			parse_script(argv[++i]);
		else if (!strcmp(argv[i], "--refuse-until") && i + 1 < argc)
			refuse_until = atof(argv[++i]);
		else if (!strcmp(argv[i], "--exit-after") && i + 1 < argc)
			exit_after = atof(argv[++i]);
		else if (!strcmp(argv[i], "--hang"))
			hang = true;
		else if (!strcmp(argv[i], "--tls") && i + 2 < argc) {
			cert = argv[++i];
			key = argv[++i];
		} else {
			fprintf(stderr, "usage: otlp_receiver --dir DIR [--port N] [--script LIST] "
					"[--refuse-until SEC] [--hang] [--tls CERT KEY] "
					"[--exit-after SEC]\n");
			return 2;
		}
	}
	if (!dir) {
		fprintf(stderr, "otlp_receiver: --dir is required\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	if (cert) {
		ssl_ctx = SSL_CTX_new(TLS_server_method());
		if (!ssl_ctx || SSL_CTX_use_certificate_chain_file(ssl_ctx, cert) != 1 ||
		    SSL_CTX_use_PrivateKey_file(ssl_ctx, key, SSL_FILETYPE_PEM) != 1) {
			ERR_print_errors_fp(stderr);
			return 2;
		}
		SSL_CTX_set_mode(ssl_ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
						  SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	}

	int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (lfd < 0)
		die("socket");
	int one = 1;
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(lfd, (struct sockaddr *)&sa, sizeof(sa)))
		die("bind");
	socklen_t sl = sizeof(sa);
	getsockname(lfd, (struct sockaddr *)&sa, &sl);
	uint64_t start = now_ms();
	uint64_t listen_at = start + (uint64_t)(refuse_until * 1000);
	uint64_t exit_at = start + (uint64_t)(exit_after * 1000);
	bool listening = false;
	/* Unless told to refuse, listen before telling the port. */
	if (refuse_until <= 0) {
		if (listen(lfd, 64))
			die("listen");
		listening = true;
	}
	printf("PORT %d\n", ntohs(sa.sin_port));
	fflush(stdout);
	for (int i = 0; i < MAX_CONNS; i++)
		conns[i].fd = -1;

	for (;;) {
		uint64_t now = now_ms();
		if (now >= exit_at)
			return 0;
		if (!listening && now >= listen_at) {
			if (listen(lfd, 64))
				die("listen");
			listening = true;
		}
		for (int i = 0; i < MAX_CONNS; i++) {
			struct conn *c = &conns[i];
			if (c->fd >= 0 && c->st == C_DELAY && now >= c->respond_at) {
				respond(c, &c->act);
				if (!conn_on_writable(c))
					conn_close(c);
			}
		}

		struct pollfd pfd[MAX_CONNS + 1];
		int idx[MAX_CONNS + 1], n = 0;
		uint64_t wake = exit_at;
		if (listening) {
			pfd[n] = (struct pollfd){.fd = lfd, .events = POLLIN};
			idx[n++] = -1;
		} else if (listen_at < wake) {
			wake = listen_at;
		}
		for (int i = 0; i < MAX_CONNS; i++) {
			struct conn *c = &conns[i];
			if (c->fd < 0)
				continue;
			short ev = 0;
			if (c->st == C_READ)
				ev = POLLIN | (c->ssl_want_write ? POLLOUT : 0);
			else if (c->st == C_WRITE)
				ev = POLLOUT | POLLIN;
			else if (hang)
				ev = POLLIN; /* only to see the client give up */
			else if (c->respond_at < wake)
				wake = c->respond_at;
			pfd[n] = (struct pollfd){.fd = c->fd, .events = ev};
			idx[n++] = i;
		}
		now = now_ms();
		int timeout = wake > now ? (int)(wake - now) : 0;
		if (poll(pfd, (nfds_t)n, timeout) < 0) {
			if (errno == EINTR)
				continue;
			die("poll");
		}
		for (int k = 0; k < n; k++) {
			if (!pfd[k].revents)
				continue;
			if (idx[k] < 0) {
				for (;;) {
					int fd = accept4(lfd, NULL, NULL,
							 SOCK_NONBLOCK | SOCK_CLOEXEC);
					if (fd < 0)
						break;
					int slot = -1;
					for (int i = 0; i < MAX_CONNS && slot < 0; i++)
						slot = conns[i].fd < 0 ? i : -1;
					if (slot < 0) {
						close(fd);
						continue;
					}
					struct conn *c = &conns[slot];
					memset(c, 0, sizeof(*c));
					c->fd = fd;
					c->id = ++n_conns_total;
					c->st = C_READ;
					if (ssl_ctx) {
						c->ssl = SSL_new(ssl_ctx);
						SSL_set_fd(c->ssl, fd);
						SSL_set_accept_state(c->ssl);
					}
				}
				continue;
			}
			struct conn *c = &conns[idx[k]];
			bool ok = true;
			if (c->st == C_DELAY && hang) {
				/* Whatever else comes is dropped; the client's close ends it. */
				uint8_t scratch[16384];
				ssize_t r = conn_read(c, scratch, sizeof(scratch));
				ok = r == -2 || r > 0;
			} else if (c->st == C_DELAY) {
				if (pfd[k].revents & (POLLHUP | POLLERR))
					ok = false;
			} else if (c->st == C_READ) {
				ok = conn_on_readable(c);
				if (ok && c->st == C_WRITE)
					ok = conn_on_writable(c);
			} else {
				if (pfd[k].revents & POLLIN) {
					/* Drain what the client sends meanwhile (TLS alerts). */
					ok = conn_on_readable(c);
				}
				if (ok)
					ok = conn_on_writable(c);
			}
			if (!ok)
				conn_close(c);
		}
	}
}
