// SPDX-License-Identifier: BSD-2-Clause
/*
 * HTTP/1.1 for the OTLP client, as pure functions: the request head, an
 * incremental response parser (status line, headers, Content-Length,
 * chunked or read-until-close bodies, a gzip Content-Encoding, a cap on the
 * head and the body) and Retry-After. No I/O here: the event loop feeds
 * bytes in, whatever transport they came from.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "exporter_internal.h"

/* ---- request ------------------------------------------------------------ */

static bool tchar(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       strchr("!#$%&'*+-.^_`|~", c);
}

/* Header names the client sets itself and a user must not override: they
 * frame the message or the connection. */
static const char *const managed_headers[] = {
	"content-length", "transfer-encoding", "connection", "content-encoding", "te", "upgrade",
	"expect",	  "keep-alive",	       "trailer",    "proxy-connection",
};

static bool name_is(const char *line, size_t nlen, const char *name)
{
	return strlen(name) == nlen && !strncasecmp(line, name, nlen);
}

int http_header__check(const char *line, const char **why)
{
	const char *msg = NULL;
	size_t nlen = 0;

	while (line[nlen] && line[nlen] != ':') {
		if (!tchar((unsigned char)line[nlen])) {
			msg = "bad character in the header name";
			goto cleanup;
		}
		nlen++;
	}
	if (nlen == 0 || line[nlen] != ':') {
		msg = "a header must look like 'Name: value'";
		goto cleanup;
	}
	for (const char *p = line + nlen + 1; *p; p++) {
		unsigned char c = (unsigned char)*p;
		if ((c < ' ' && c != '\t') || c == 0x7f) {
			msg = "control characters (CR, LF) are not allowed in a header value";
			goto cleanup;
		}
	}
	for (size_t i = 0; i < sizeof(managed_headers) / sizeof(managed_headers[0]); i++) {
		if (name_is(line, nlen, managed_headers[i])) {
			msg = "this header is managed by the exporter and cannot be set";
			goto cleanup;
		}
	}
cleanup:
	if (msg && why)
		*why = msg;
	return msg ? -EINVAL : 0;
}

static bool extra_has(const char *const *headers, size_t n, const char *name)
{
	size_t len = strlen(name);
	for (size_t i = 0; i < n; i++) {
		if (!strncasecmp(headers[i], name, len) && headers[i][len] == ':')
			return true;
	}
	return false;
}

struct sbuf {
	char *p;
	size_t len, cap;
	bool oom;
};

static void sbuf_printf(struct sbuf *s, const char *fmt, ...)
{
	va_list ap;
	if (s->oom)
		return;
	for (;;) {
		va_start(ap, fmt);
		int n = vsnprintf(s->p + s->len, s->cap - s->len, fmt, ap);
		va_end(ap);
		if (n < 0) {
			s->oom = true;
			return;
		}
		if ((size_t)n < s->cap - s->len) {
			s->len += (size_t)n;
			return;
		}
		size_t cap = (s->cap + (size_t)n + 1) * 2;
		char *np = realloc(s->p, cap);
		if (!np) {
			s->oom = true;
			return;
		}
		s->p = np;
		s->cap = cap;
	}
}

char *http_request__head(const struct otlp_url *u, const char *user_agent,
			 const char *const *headers, size_t n_headers, bool gzip,
			 size_t content_length, size_t *len)
{
	struct sbuf s = {.cap = 512};
	s.p = malloc(s.cap);
	if (!s.p)
		return NULL;
	sbuf_printf(&s, "POST %s HTTP/1.1\r\n", u->path);
	if (!extra_has(headers, n_headers, "host"))
		sbuf_printf(&s, "Host: %s\r\n", u->host_header);
	if (!extra_has(headers, n_headers, "user-agent") && user_agent && *user_agent)
		sbuf_printf(&s, "User-Agent: %s\r\n", user_agent);
	if (!extra_has(headers, n_headers, "content-type"))
		sbuf_printf(&s, "Content-Type: application/x-protobuf\r\n");
	if (gzip)
		sbuf_printf(&s, "Content-Encoding: gzip\r\n");
	sbuf_printf(&s, "Content-Length: %zu\r\nConnection: keep-alive\r\n", content_length);
	for (size_t i = 0; i < n_headers; i++)
		sbuf_printf(&s, "%s\r\n", headers[i]);
	sbuf_printf(&s, "\r\n");
	if (s.oom) {
		free(s.p);
		errno = ENOMEM;
		return NULL;
	}
	*len = s.len;
	return s.p;
}

/* ---- response ----------------------------------------------------------- */

void http_resp__init(struct http_resp *r, size_t max_body)
{
	memset(r, 0, sizeof(*r));
	r->max_body = max_body;
	http_resp__reset(r);
}

void http_resp__reset(struct http_resp *r)
{
	uint8_t *body = r->body;
	size_t cap = r->body_cap, max = r->max_body;
	memset(r, 0, offsetof(struct http_resp, line));
	r->line_len = 0;
	r->body = body;
	r->body_cap = cap;
	r->body_len = 0;
	r->max_body = max;
	r->state = HTTP_R_STATUS;
	r->content_length = -1;
}

void http_resp__deinit(struct http_resp *r)
{
	if (!r)
		return;
	free(r->body);
	r->body = NULL;
	r->body_cap = r->body_len = 0;
}

static int body_append(struct http_resp *r, const uint8_t *p, size_t n)
{
	if (n > r->max_body - r->body_len)
		return -EMSGSIZE;
	if (r->body_len + n > r->body_cap) {
		size_t cap = r->body_cap ? r->body_cap : 4096;
		while (cap < r->body_len + n)
			cap *= 2;
		if (cap > r->max_body)
			cap = r->max_body;
		uint8_t *nb = realloc(r->body, cap);
		if (!nb)
			return -ENOMEM;
		r->body = nb;
		r->body_cap = cap;
	}
	memcpy(r->body + r->body_len, p, n);
	r->body_len += n;
	return 0;
}

static char *trim(char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	size_t n = strlen(s);
	while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
		s[--n] = '\0';
	return s;
}

/* Does the comma-separated list v contain token tok (case-insensitive)? */
static bool list_has(const char *v, const char *tok)
{
	size_t tl = strlen(tok);
	const char *p = v;
	while (*p) {
		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		size_t n = strcspn(p, ",");
		size_t m = n;
		while (m && (p[m - 1] == ' ' || p[m - 1] == '\t'))
			m--;
		if (m == tl && !strncasecmp(p, tok, tl))
			return true;
		p += n;
	}
	return false;
}

/* Is tok the last element of the list v? (Transfer-Encoding: chunked must
 * be the final coding.) */
static bool list_last_is(const char *v, const char *tok)
{
	const char *last = strrchr(v, ',');
	last = last ? last + 1 : v;
	while (*last == ' ' || *last == '\t')
		last++;
	size_t tl = strlen(tok);
	return !strncasecmp(last, tok, tl) && (last[tl] == '\0' || last[tl] == ' ');
}

static int parse_status_line(struct http_resp *r, const char *l)
{
	/* HTTP/1.x SSS[ reason] */
	if (strncmp(l, "HTTP/1.", 7) || l[7] < '0' || l[7] > '9' || l[8] != ' ')
		return -EPROTO;
	r->minor = l[7] - '0';
	const char *s = l + 9;
	if (s[0] < '1' || s[0] > '5' || s[1] < '0' || s[1] > '9' || s[2] < '0' || s[2] > '9' ||
	    (s[3] != ' ' && s[3] != '\0'))
		return -EPROTO;
	r->status = (s[0] - '0') * 100 + (s[1] - '0') * 10 + (s[2] - '0');
	return 0;
}

static int parse_header(struct http_resp *r, char *l)
{
	char *colon = strchr(l, ':');
	if (!colon || colon == l)
		return -EPROTO;
	*colon = '\0';
	for (char *p = l; *p; p++) {
		if (!tchar((unsigned char)*p))
			return -EPROTO;
	}
	char *v = trim(colon + 1);

	if (!strcasecmp(l, "content-length")) {
		if (!*v)
			return -EPROTO;
		uint64_t n = 0;
		for (char *p = v; *p; p++) {
			if (*p < '0' || *p > '9' || n > (UINT64_MAX - 9) / 10)
				return -EPROTO;
			n = n * 10 + (uint64_t)(*p - '0');
		}
		if (r->content_length >= 0 && (uint64_t)r->content_length != n)
			return -EPROTO;
		if (n > (uint64_t)INT64_MAX)
			return -EPROTO;
		r->content_length = (int64_t)n;
	} else if (!strcasecmp(l, "transfer-encoding")) {
		r->chunked = list_last_is(v, "chunked");
		r->te_other = !r->chunked;
	} else if (!strcasecmp(l, "connection")) {
		if (list_has(v, "close"))
			r->conn_close = true;
		if (list_has(v, "keep-alive"))
			r->keep_alive = true;
	} else if (!strcasecmp(l, "retry-after")) {
		snprintf(r->retry_after, sizeof(r->retry_after), "%s", v);
		r->has_retry_after = true;
	} else if (!strcasecmp(l, "content-encoding")) {
		r->gzip = list_has(v, "gzip") || list_has(v, "x-gzip");
	}
	return 0;
}

/* The blank line after the headers: decide how the body is delimited. */
static int end_of_head(struct http_resp *r)
{
	if (r->status < 200) {
		if (r->status == 101)
			return -EPROTO; /* we never ask to switch protocols */
		/* Interim response (100 Continue, 103 Early Hints): skip it. */
		size_t head = r->head_bytes;
		http_resp__reset(r);
		r->head_bytes = head;
		r->got_bytes = true;
		return 0;
	}
	/* HTTP/1.1 is persistent unless told otherwise; 1.0 only when asked. */
	r->keep_alive = !r->conn_close && (r->minor >= 1 || r->keep_alive);
	if (r->status == 204 || r->status == 304) {
		r->state = HTTP_R_DONE;
	} else if (r->chunked) {
		r->state = HTTP_R_CHUNK_SIZE;
	} else if (r->content_length >= 0 && !r->te_other) {
		if ((uint64_t)r->content_length > r->max_body)
			return -EMSGSIZE;
		if (r->content_length > 0 && r->body_cap < (size_t)r->content_length) {
			uint8_t *nb = realloc(r->body, (size_t)r->content_length);
			if (!nb)
				return -ENOMEM;
			r->body = nb;
			r->body_cap = (size_t)r->content_length;
		}
		r->state = r->content_length ? HTTP_R_BODY_LENGTH : HTTP_R_DONE;
	} else {
		r->state = HTTP_R_BODY_CLOSE;
		r->keep_alive = false;
	}
	return 0;
}

/* A gzip body is decoded once complete, under the same cap. */
static int finish(struct http_resp *r)
{
	r->state = HTTP_R_DONE;
	if (!r->gzip || r->body_len == 0)
		return 1;
	uint8_t *out;
	size_t out_len;
	int err = gzip__decompress(r->body, r->body_len, r->max_body, &out, &out_len);
	if (err)
		return err;
	free(r->body);
	r->body = out;
	r->body_len = out_len;
	r->body_cap = out_len;
	r->gzip = false;
	return 1;
}

static int parse_chunk_size(struct http_resp *r, const char *l)
{
	uint64_t n = 0;
	const char *p = l;
	if (!*p)
		return -EPROTO;
	for (; *p && *p != ';' && *p != ' ' && *p != '\t'; p++) {
		int d;
		if (*p >= '0' && *p <= '9')
			d = *p - '0';
		else if (*p >= 'a' && *p <= 'f')
			d = *p - 'a' + 10;
		else if (*p >= 'A' && *p <= 'F')
			d = *p - 'A' + 10;
		else
			return -EPROTO;
		if (n >> 60)
			return -EPROTO;
		n = n * 16 + (uint64_t)d;
	}
	if (p == l)
		return -EPROTO;
	if (n > r->max_body - r->body_len)
		return -EMSGSIZE;
	r->chunk_left = n;
	r->state = n ? HTTP_R_CHUNK_DATA : HTTP_R_TRAILERS;
	return 0;
}

/* One complete line of the head, the chunk framing or the trailers. */
static int on_line(struct http_resp *r, char *l)
{
	switch (r->state) {
	case HTTP_R_STATUS:
		if (!*l && r->status == 0)
			return 0; /* tolerate a stray CRLF before the status line */
		if (parse_status_line(r, l))
			return -EPROTO;
		r->state = HTTP_R_HEADERS;
		return 0;
	case HTTP_R_HEADERS:
		if (!*l)
			return end_of_head(r);
		if (*l == ' ' || *l == '\t')
			return -EPROTO; /* obsolete line folding */
		return parse_header(r, l);
	case HTTP_R_CHUNK_SIZE:
		return parse_chunk_size(r, l);
	case HTTP_R_CHUNK_CRLF:
		if (*l)
			return -EPROTO;
		r->state = HTTP_R_CHUNK_SIZE;
		return 0;
	case HTTP_R_TRAILERS:
		if (!*l)
			return finish(r);
		return 0;
	default:
		return -EPROTO;
	}
}

static bool line_state(enum http_resp_state s)
{
	return s == HTTP_R_STATUS || s == HTTP_R_HEADERS || s == HTTP_R_CHUNK_SIZE ||
	       s == HTTP_R_CHUNK_CRLF || s == HTTP_R_TRAILERS;
}

int http_resp__feed(struct http_resp *r, const void *data, size_t n, size_t *used)
{
	const uint8_t *p = data;
	size_t i = 0;
	int err = 0;

	if (n)
		r->got_bytes = true;
	while (i < n && r->state != HTTP_R_DONE) {
		if (line_state(r->state)) {
			const uint8_t *nl = memchr(p + i, '\n', n - i);
			size_t take = nl ? (size_t)(nl - (p + i)) : n - i;
			/* Trailers count against the head's cap: they are headers too. */
			bool head = r->state == HTTP_R_STATUS || r->state == HTTP_R_HEADERS ||
				    r->state == HTTP_R_TRAILERS;
			if (r->line_len + take >= sizeof(r->line)) {
				err = head ? -EMSGSIZE : -EPROTO;
				break;
			}
			if (head) {
				r->head_bytes += take + (nl ? 1 : 0);
				if (r->head_bytes > HTTP_HEAD_MAX) {
					err = -EMSGSIZE;
					break;
				}
			}
			memcpy(r->line + r->line_len, p + i, take);
			r->line_len += take;
			i += take;
			if (!nl)
				break;
			i++; /* the '\n' */
			if (r->line_len && r->line[r->line_len - 1] == '\r')
				r->line_len--;
			r->line[r->line_len] = '\0';
			if (memchr(r->line, '\0', r->line_len)) {
				err = -EPROTO;
				break;
			}
			r->line_len = 0;
			err = on_line(r, r->line);
			if (err < 0)
				break;
			if (err == 1) {
				err = 0;
				break; /* finished (trailers done) */
			}
			if (r->state == HTTP_R_DONE)
				break;
			continue;
		}
		size_t avail = n - i, take;
		switch (r->state) {
		case HTTP_R_BODY_LENGTH:
			take = (size_t)r->content_length - r->body_len;
			if (take > avail)
				take = avail;
			err = body_append(r, p + i, take);
			i += take;
			if (!err && r->body_len == (size_t)r->content_length) {
				err = finish(r);
				if (err == 1)
					err = 0;
			}
			break;
		case HTTP_R_BODY_CLOSE:
			err = body_append(r, p + i, avail);
			i += avail;
			break;
		case HTTP_R_CHUNK_DATA:
			take = r->chunk_left < avail ? (size_t)r->chunk_left : avail;
			err = body_append(r, p + i, take);
			i += take;
			r->chunk_left -= take;
			if (!r->chunk_left)
				r->state = HTTP_R_CHUNK_CRLF;
			break;
		default:
			err = -EPROTO;
			break;
		}
		if (err < 0)
			break;
	}
	if (used)
		*used = i;
	if (err < 0)
		return err;
	return r->state == HTTP_R_DONE;
}

int http_resp__eof(struct http_resp *r)
{
	if (r->state == HTTP_R_DONE)
		return 1;
	if (r->state != HTTP_R_BODY_CLOSE)
		return -EPIPE;
	r->keep_alive = false;
	return finish(r);
}

bool http_status__retryable(int status)
{
	return status == 429 || status == 502 || status == 503 || status == 504;
}

/* ---- Retry-After -------------------------------------------------------- */

static int month_index(const char *m)
{
	static const char names[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
	for (int i = 0; i < 12; i++) {
		if (!strncasecmp(m, names + 3 * i, 3) && strlen(m) == 3)
			return i;
	}
	return -1;
}

static int parse_http_date(const char *v, time_t *out)
{
	char wk[16], mon[8], tz[8];
	int d, y, hh, mm, ss, n = 0;
	struct tm tm = {0};

	/* IMF-fixdate: Sun, 06 Nov 1994 08:49:37 GMT */
	if (sscanf(v, "%15[A-Za-z], %d %7s %d %d:%d:%d %7s%n", wk, &d, mon, &y, &hh, &mm, &ss, tz,
		   &n) == 8 &&
	    !v[n]) {
		/* matched */
	} else if (sscanf(v, "%15[A-Za-z], %d-%3[A-Za-z]-%d %d:%d:%d %7s%n", wk, &d, mon, &y, &hh,
			  &mm, &ss, tz, &n) == 8 &&
		   !v[n]) {
		/* RFC 850: Sunday, 06-Nov-94 08:49:37 GMT; two-digit years per RFC 9110 are
		 * taken as the most recent past century that is not more than 50 years
		 * in the future: here simply 19xx for >= 70. */
		if (y < 100)
			y += y >= 70 ? 1900 : 2000;
	} else if (sscanf(v, "%15[A-Za-z] %7s %d %d:%d:%d %d%n", wk, mon, &d, &hh, &mm, &ss, &y,
			  &n) == 7 &&
		   !v[n]) {
		/* asctime: Sun Nov  6 08:49:37 1994 */
		strcpy(tz, "GMT");
	} else {
		return -EINVAL;
	}
	int m = month_index(mon);
	if (m < 0 || strcmp(tz, "GMT") || d < 1 || d > 31 || hh > 23 || mm > 59 || ss > 60 ||
	    y < 1970 || y > 9999 || hh < 0 || mm < 0 || ss < 0)
		return -EINVAL;
	tm.tm_year = y - 1900;
	tm.tm_mon = m;
	tm.tm_mday = d;
	tm.tm_hour = hh;
	tm.tm_min = mm;
	tm.tm_sec = ss;
	*out = timegm(&tm);
	return 0;
}

int http_retry_after__parse(const char *v, time_t now, uint64_t *ms)
{
	while (*v == ' ' || *v == '\t')
		v++;
	if (*v >= '0' && *v <= '9') {
		uint64_t s = 0;
		const char *p = v;
		for (; *p >= '0' && *p <= '9'; p++) {
			if (s < 1000000000ull)
				s = s * 10 + (uint64_t)(*p - '0');
		}
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p)
			return -EINVAL;
		*ms = s * 1000 > RETRY_AFTER_CAP_MS ? RETRY_AFTER_CAP_MS : s * 1000;
		return 0;
	}
	time_t when;
	if (parse_http_date(v, &when))
		return -EINVAL;
	if (when <= now) {
		*ms = 0;
		return 0;
	}
	uint64_t d = (uint64_t)(when - now) * 1000;
	*ms = d > RETRY_AFTER_CAP_MS ? RETRY_AFTER_CAP_MS : d;
	return 0;
}
