// SPDX-License-Identifier: BSD-2-Clause
/*
 * Delivering one request, on the exporter thread: the connection state
 * machine (resolve, connect, TLS handshake through memory BIOs, send,
 * receive), one socket op in flight at a time, each with a linked timeout
 * for what is left of the attempt's timeout_ms; the response's verdict
 * (sent, partial success, retry with backoff or Retry-After, failed); and
 * the stale keep-alive rule (a connection the server closed while idle gets
 * one immediate, uncounted reconnect). See otlp_exporter.c for the loop.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "otlp_loop.h"

/* Commits a prepared socket op and links a timeout for what is left of the
 * attempt's deadline. */
static void sock_commit(struct loop *l, struct io_uring_sqe *sqe, enum ud_kind kind)
{
	uint64_t now = now_ns();
	uint64_t left = l->deadline_ns > now ? l->deadline_ns - now : 0;
	if (left < 1000)
		left = 1000;
	io_uring_sqe_set_data64(sqe, UD(kind, l->gen));
	sqe->flags |= IOSQE_IO_LINK;
	/* The kernel copies the timespec when the SQE is submitted. */
	l->op_ts.tv_sec = (long long)(left / NSEC_PER_SEC);
	l->op_ts.tv_nsec = (long long)(left % NSEC_PER_SEC);
	struct io_uring_sqe *t = io_uring_get_sqe(&l->ring);
	io_uring_prep_link_timeout(t, &l->op_ts, 0);
	io_uring_sqe_set_data64(t, UD(UD_LINK_TIMEOUT, l->gen));
	l->inflight += 2;
	l->op_pending = true;
}

static void sock_recv(struct loop *l)
{
	struct io_uring_sqe *sqe = otlp_sqe_get(l);
	io_uring_prep_recv(sqe, l->fd, l->ibuf, sizeof(l->ibuf), 0);
	sock_commit(l, sqe, UD_RECV);
}

static void sock_send(struct loop *l, const void *buf, size_t len)
{
	struct io_uring_sqe *sqe = otlp_sqe_get(l);
	io_uring_prep_send(sqe, l->fd, buf, len, MSG_NOSIGNAL);
	sock_commit(l, sqe, UD_SEND);
}

/* ---- connection ------------------------------------------------------------ */

/* Closes the connection. Only called with no socket op in flight (after its
 * completion), except at teardown, which cancels and drains first. */
void otlp_send__close(struct loop *l)
{
	if (l->fd < 0)
		return;
	if (l->tls_on)
		tls_conn__deinit(&l->tls);
	l->tls_on = false;
	close(l->fd);
	l->fd = -1;
	l->phase = P_NONE;
	l->gen++;
	l->obuf_len = l->obuf_off = 0;
}

void otlp_send__request_done(struct loop *l)
{
	free(l->wire);
	free(l->head);
	otlp_qreq_free(l->cur);
	l->wire = NULL;
	l->head = NULL;
	l->cur = NULL;
	l->waiting = false;
}

static void schedule_retry(struct otlp_exporter *ex, enum log_kind lk, long key, const char *what,
			   int64_t retry_after_ms)
{
	struct loop *l = &ex->l;
	unsigned delay = backoff__next(&l->backoff);
	if (retry_after_ms >= 0)
		delay = (unsigned)retry_after_ms;
	otlp_stat_inc(ex, &ex->st.requests_retried);
	l->failures++;
	l->waiting = true;
	l->next_attempt_ns = now_ns() + delay * NSEC_PER_MSEC;
	otlp_rlogk(l, lk, key, "%s; retrying in %u ms%s", what, delay,
		   retry_after_ms >= 0 ? " (Retry-After)" : "");
}

/* The attempt failed without a usable response. */
static void attempt_fail(struct otlp_exporter *ex, enum fail_kind k, const char *what)
{
	struct loop *l = &ex->l;
	bool stale = k == F_CLOSED && l->reused && !l->resp.got_bytes && !l->stale_retry_done;

	otlp_send__close(l);
	if (stale) {
		/* The server closed the idle keep-alive connection before it saw this
		 * request: reconnect at once, not a retry in the OTLP sense. */
		l->stale_retry_done = true;
		l->waiting = true;
		l->next_attempt_ns = 0;
		return;
	}
	switch (k) {
	case F_OVERSIZE:
		otlp_stat_inc(ex, &ex->st.requests_failed);
		otlp_rlog(l, LOG_OVERSIZE, "%s; request dropped (not retried)", what);
		otlp_send__request_done(l);
		return;
	case F_CONNECT:
		otlp_stat_inc(ex, &ex->st.connect_failures);
		schedule_retry(ex, LOG_CONNECT, 0, what, -1);
		return;
	case F_TLS:
		otlp_stat_inc(ex, &ex->st.connect_failures);
		schedule_retry(ex, LOG_TLS, 0, what, -1);
		return;
	case F_TIMEOUT:
		otlp_stat_inc(ex, &ex->st.timeouts);
		schedule_retry(ex, LOG_TIMEOUT, 0, what, -1);
		return;
	case F_CLOSED:
		schedule_retry(ex, LOG_CLOSED, 0, what, -1);
		return;
	case F_BAD_RESPONSE:
		schedule_retry(ex, LOG_BAD_RESPONSE, 0, what, -1);
		return;
	}
}

static void fail_errno(struct otlp_exporter *ex, enum fail_kind k, const char *op, int err)
{
	char what[WHAT_MAX];
	if (k == F_TIMEOUT)
		snprintf(what, sizeof(what), "no response from %s within %u ms", endpoint(ex),
			 ex->timeout_ms);
	else
		snprintf(what, sizeof(what), "%s %s: %s", op, endpoint(ex), strerror(-err));
	attempt_fail(ex, k, what);
}

static void fail_tls(struct otlp_exporter *ex, const char *when)
{
	char err[256], what[WHAT_MAX];
	tls_conn__error(&ex->l.tls, err, sizeof(err));
	snprintf(what, sizeof(what), "TLS %s with %s failed: %s", when, endpoint(ex), err);
	attempt_fail(ex, F_TLS, what);
}

static void conn_try_next(struct otlp_exporter *ex)
{
	struct loop *l = &ex->l;
	while (l->ai_next) {
		struct addrinfo *a = l->ai_next;
		l->ai_next = a->ai_next;
		/* A blocking socket: io_uring polls it anyway, and never hands back
		 * -EAGAIN for it, whatever the kernel's policy on O_NONBLOCK files. */
		int fd = socket(a->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0) {
			l->last_connect_err = -errno;
			continue;
		}
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		memcpy(&l->addr, a->ai_addr, a->ai_addrlen);
		l->addrlen = a->ai_addrlen;
		l->fd = fd;
		l->phase = P_CONNECT;
		struct io_uring_sqe *sqe = otlp_sqe_get(l);
		io_uring_prep_connect(sqe, fd, (struct sockaddr *)&l->addr, l->addrlen);
		sock_commit(l, sqe, UD_CONNECT);
		return;
	}
	fail_errno(ex, F_CONNECT, "cannot connect to", l->last_connect_err);
}

static void conn_open(struct otlp_exporter *ex)
{
	struct loop *l = &ex->l;
	struct addrinfo hints = {
		.ai_family = AF_UNSPEC,
		.ai_socktype = SOCK_STREAM,
		.ai_flags = AI_NUMERICSERV,
	};

	if (l->ai)
		freeaddrinfo(l->ai);
	l->ai = l->ai_next = NULL;
	/* Resolved again for every new connection, so a collector that moves is
	 * found. Blocking, but only this thread waits. */
	int rc = getaddrinfo(ex->url.host, ex->url.port, &hints, &l->ai);
	if (rc) {
		char what[WHAT_MAX];
		snprintf(what, sizeof(what), "cannot resolve %s: %s", ex->url.host,
			 rc == EAI_SYSTEM ? strerror(errno) : gai_strerror(rc));
		l->ai = NULL;
		attempt_fail(ex, F_CONNECT, what);
		return;
	}
	l->ai_next = l->ai;
	l->last_connect_err = -EHOSTUNREACH;
	conn_try_next(ex);
}

/* Where byte `off` of head + wire lives, and how many follow it there. */
static const uint8_t *plain_at(struct loop *l, size_t off, size_t *n)
{
	if (off < l->head_len) {
		*n = l->head_len - off;
		return (const uint8_t *)l->head + off;
	}
	*n = l->wire_len - (off - l->head_len);
	return l->wire + (off - l->head_len);
}

/* Issues the next socket op of the connection's state machine, or runs the
 * steps that need none (TLS work, phase changes). */
static void conn_advance(struct otlp_exporter *ex)
{
	struct loop *l = &ex->l;

	for (;;) {
		if (l->tls_on) {
			if (l->obuf_off < l->obuf_len) {
				sock_send(l, l->obuf + l->obuf_off, l->obuf_len - l->obuf_off);
				return;
			}
			size_t p = tls_conn__out_pending(&l->tls);
			if (p) {
				if (p > l->obuf_cap) {
					uint8_t *nb = realloc(l->obuf, p);
					if (!nb) {
						fail_errno(ex, F_CLOSED, "out of memory for",
							   -ENOMEM);
						return;
					}
					l->obuf = nb;
					l->obuf_cap = p;
				}
				l->obuf_len = tls_conn__out_read(&l->tls, l->obuf, p);
				l->obuf_off = 0;
				continue;
			}
		}
		switch (l->phase) {
		case P_HANDSHAKE: {
			int r = tls_conn__handshake(&l->tls);
			if (r < 0) {
				fail_tls(ex, "handshake");
				return;
			}
			if (tls_conn__out_pending(&l->tls))
				continue;
			if (r == 0) {
				sock_recv(l);
				return;
			}
			l->phase = P_SEND;
			continue;
		}
		case P_SEND: {
			size_t total = l->head_len + l->wire_len;
			if (l->sent >= total) {
				l->phase = P_RECV;
				continue;
			}
			size_t n;
			const uint8_t *p = plain_at(l, l->sent, &n);
			if (l->tls_on) {
				int w = tls_conn__write(&l->tls, p, n > TLS_CHUNK ? TLS_CHUNK : n);
				if (w <= 0) {
					fail_tls(ex, "write");
					return;
				}
				l->sent += (size_t)w;
				continue;
			}
			int k = 0;
			l->iov[k].iov_base = (void *)p;
			l->iov[k++].iov_len = n;
			if (l->sent < l->head_len && l->wire_len) {
				l->iov[k].iov_base = l->wire;
				l->iov[k++].iov_len = l->wire_len;
			}
			memset(&l->msg, 0, sizeof(l->msg));
			l->msg.msg_iov = l->iov;
			l->msg.msg_iovlen = (size_t)k;
			struct io_uring_sqe *sqe = otlp_sqe_get(l);
			io_uring_prep_sendmsg(sqe, l->fd, &l->msg, MSG_NOSIGNAL);
			sock_commit(l, sqe, UD_SEND);
			return;
		}
		case P_RECV:
			sock_recv(l);
			return;
		default:
			return;
		}
	}
}

static void attempt_start(struct otlp_exporter *ex)
{
	struct loop *l = &ex->l;

	l->waiting = false;
	l->deadline_ns = now_ns() + ex->timeout_ms * NSEC_PER_MSEC;
	if (l->resp.body_cap > 65536)
		http_resp__deinit(&l->resp); /* do not keep a big body's buffer around */
	http_resp__reset(&l->resp);
	l->sent = 0;
	l->send_err = 0;
	if (l->fd >= 0 && l->phase == P_IDLE) {
		l->reused = true;
		l->phase = P_SEND;
		conn_advance(ex);
		return;
	}
	l->reused = false;
	otlp_send__close(l);
	conn_open(ex);
}

/* ---- responses --------------------------------------------------------------- */

static void response_done(struct otlp_exporter *ex, bool trailing_garbage)
{
	struct loop *l = &ex->l;
	struct http_resp *r = &l->resp;
	int status = r->status;

	if (r->keep_alive && !trailing_garbage && !l->send_err)
		l->phase = P_IDLE;
	else
		otlp_send__close(l);

	if (status >= 200 && status < 300) {
		int64_t rejected = 0;
		char msg[256];
		int ps = pb_partial_success__parse(r->body, r->body_len, &rejected, msg,
						   sizeof(msg));
		pthread_mutex_lock(&ex->lock);
		ex->st.requests_sent++;
		ex->st.bytes_raw += l->raw_len;
		ex->st.bytes_sent += l->wire_len;
		if (ps == 1)
			ex->st.partial_success++;
		pthread_mutex_unlock(&ex->lock);
		if (ps == 1)
			otlp_rlog(
				l, LOG_PARTIAL,
				"%s accepted a request partially: %lld profiles rejected: %s (not "
				"retried)",
				endpoint(ex), (long long)rejected, msg[0] ? msg : "(no message)");
		if (l->failures)
			otlp_rlog(l, LOG_RECOVERED,
				  "export to %s recovered after %u failed attempts", endpoint(ex),
				  l->failures);
		l->failures = 0;
		backoff__reset(&l->backoff);
		otlp_send__request_done(l);
		return;
	}
	if (http_status__retryable(status)) {
		uint64_t ra = 0;
		int64_t retry_after = -1;
		if (r->has_retry_after &&
		    http_retry_after__parse(r->retry_after, time(NULL), &ra) == 0)
			retry_after = (int64_t)ra;
		char what[WHAT_MAX];
		snprintf(what, sizeof(what), "%s answered %d", endpoint(ex), status);
		schedule_retry(ex, LOG_RETRY_STATUS, status, what, retry_after);
		return;
	}
	char desc[200];
	pb_error_body__describe(r->body, r->body_len, desc, sizeof(desc));
	otlp_stat_inc(ex, &ex->st.requests_failed);
	otlp_rlogk(l, LOG_FAIL_STATUS, status, "%s answered %d, request dropped (not retried)%s%s",
		   endpoint(ex), status, desc[0] ? ": " : "", desc);
	/* The collector is up and talking: a new failure streak starts afresh. */
	l->failures = 0;
	backoff__reset(&l->backoff);
	otlp_send__request_done(l);
}

static void resp_error(struct otlp_exporter *ex, int err)
{
	char what[WHAT_MAX];
	if (err == -EMSGSIZE) {
		snprintf(what, sizeof(what),
			 "response from %s larger than %u bytes, connection closed", endpoint(ex),
			 RESP_MAX_BODY);
		attempt_fail(ex, F_OVERSIZE, what);
	} else if (err == -EPROTO) {
		snprintf(what, sizeof(what), "malformed HTTP response from %s, connection closed",
			 endpoint(ex));
		attempt_fail(ex, F_BAD_RESPONSE, what);
	} else {
		fail_errno(ex, F_CLOSED, "reading the response of", err);
	}
}

static void on_eof(struct otlp_exporter *ex)
{
	struct loop *l = &ex->l;
	if (l->phase == P_HANDSHAKE) {
		char what[WHAT_MAX];
		snprintf(what, sizeof(what), "TLS handshake with %s failed: connection closed",
			 endpoint(ex));
		attempt_fail(ex, F_TLS, what);
		return;
	}
	int r = http_resp__eof(&l->resp);
	if (r == 1) {
		response_done(ex, false);
		return;
	}
	if (r == -EPIPE) {
		char what[WHAT_MAX];
		if (l->send_err)
			snprintf(what, sizeof(what),
				 "%s closed the connection without a complete response (send: %s)",
				 endpoint(ex), strerror(-l->send_err));
		else
			snprintf(what, sizeof(what),
				 "%s closed the connection without a complete response",
				 endpoint(ex));
		attempt_fail(ex, F_CLOSED, what);
		return;
	}
	resp_error(ex, r);
}

static void on_data(struct otlp_exporter *ex, size_t n)
{
	struct loop *l = &ex->l;
	size_t used;

	if (!l->tls_on) {
		int r = http_resp__feed(&l->resp, l->ibuf, n, &used);
		if (r < 0)
			resp_error(ex, r);
		else if (r == 1)
			response_done(ex, used < n);
		else
			sock_recv(l);
		return;
	}
	if (tls_conn__in_write(&l->tls, l->ibuf, n)) {
		fail_errno(ex, F_CLOSED, "out of memory for", -ENOMEM);
		return;
	}
	if (l->phase == P_HANDSHAKE) {
		conn_advance(ex);
		return;
	}
	for (;;) {
		int got = tls_conn__read(&l->tls, l->pbuf, sizeof(l->pbuf));
		if (got == 0)
			break;
		if (got == -EPIPE) {
			on_eof(ex);
			return;
		}
		if (got < 0) {
			fail_tls(ex, "read");
			return;
		}
		int r = http_resp__feed(&l->resp, l->pbuf, (size_t)got, &used);
		if (r < 0) {
			resp_error(ex, r);
			return;
		}
		if (r == 1) {
			response_done(ex, used < (size_t)got);
			return;
		}
	}
	conn_advance(ex);
}

static bool is_timeout(struct loop *l, int res)
{
	return res == -ECANCELED || res == -ETIME || now_ns() + NSEC_PER_MSEC >= l->deadline_ns;
}

void otlp_send__on_cqe(struct otlp_exporter *ex, enum ud_kind kind, int res)
{
	struct loop *l = &ex->l;

	switch (kind) {
	case UD_CONNECT:
		if (res < 0) {
			close(l->fd);
			l->fd = -1;
			l->phase = P_NONE;
			l->gen++;
			if (is_timeout(l, res)) {
				fail_errno(ex, F_TIMEOUT, "", res);
				return;
			}
			l->last_connect_err = res;
			conn_try_next(ex);
			return;
		}
		otlp_stat_inc(ex, &ex->st.connects);
		if (ex->url.https) {
			if (tls_conn__init(&l->tls, ex->ssl_ctx, ex->url.host,
					   ex->url.host_is_ip)) {
				fail_errno(ex, F_TLS, "cannot set up TLS for", -ENOMEM);
				return;
			}
			l->tls_on = true;
			l->phase = P_HANDSHAKE;
		} else {
			l->phase = P_SEND;
		}
		conn_advance(ex);
		return;
	case UD_SEND:
		if (res < 0 && is_timeout(l, res)) {
			fail_errno(ex, F_TIMEOUT, "", res);
			return;
		}
		if (res < 0 && l->phase == P_SEND && !l->send_err) {
			/* The server may have answered early (a 413 before reading the
			 * whole body) and closed: read what it said. */
			l->send_err = res;
			l->phase = P_RECV;
			l->obuf_off = l->obuf_len;
			sock_recv(l);
			return;
		}
		if (res <= 0) {
			fail_errno(ex, F_CLOSED, "sending to", res ? res : -EPIPE);
			return;
		}
		if (l->tls_on)
			l->obuf_off += (size_t)res;
		else
			l->sent += (size_t)res;
		conn_advance(ex);
		return;
	case UD_RECV:
		if (res < 0) {
			if (is_timeout(l, res))
				fail_errno(ex, F_TIMEOUT, "", res);
			else if (l->phase == P_HANDSHAKE)
				fail_errno(ex, F_TLS, "TLS handshake failed, reading from", res);
			else
				fail_errno(ex, F_CLOSED, "reading the response of", res);
			return;
		}
		if (res == 0)
			on_eof(ex);
		else
			on_data(ex, (size_t)res);
		return;
	default:
		return;
	}
}

/* ---- sending ------------------------------------------------------------------ */

/* Takes the next request off the FIFO and makes its wire form. Returns false
 * when there is none ready. */
static bool request_take(struct otlp_exporter *ex)
{
	struct loop *l = &ex->l;

	pthread_mutex_lock(&ex->lock);
	struct qreq *q = ex->head;
	if (q && (!ex->file_dir || q->file_done)) {
		ex->head = q->next;
		if (!ex->head)
			ex->tail = NULL;
		ex->st.queue_bytes -= q->len;
	} else {
		q = NULL;
	}
	pthread_mutex_unlock(&ex->lock);
	if (!q)
		return false;

	l->cur = q;
	l->raw_len = q->len;
	l->wire_gzip = false;
	if (ex->gzip) {
		uint8_t *z;
		size_t zl;
		if (gzip__compress(q->body, q->len, OTLP_EXPORTER_GZIP_LEVEL, &z, &zl) == 0) {
			l->wire = z;
			l->wire_len = zl;
			l->wire_gzip = true;
			free(q->body);
		} else {
			otlp_rlog(l, LOG_INTERNAL, "gzip failed, sending uncompressed");
		}
	}
	if (!l->wire_gzip) {
		l->wire = q->body;
		l->wire_len = q->len;
	}
	q->body = NULL; /* now l->wire's */
	l->head = http_request__head(&ex->url, ex->user_agent, (const char *const *)ex->headers,
				     ex->n_headers, l->wire_gzip, l->wire_len, &l->head_len);
	if (!l->head) {
		otlp_stat_inc(ex, &ex->st.requests_failed);
		otlp_rlog(l, LOG_INTERNAL, "out of memory building a request, dropped");
		otlp_send__request_done(l);
		return true;
	}
	l->waiting = true;
	l->next_attempt_ns = 0;
	l->stale_retry_done = false;
	return true;
}

void otlp_send__progress(struct otlp_exporter *ex)
{
	struct loop *l = &ex->l;

	if (!ex->has_url) {
		/* Files only: a request is done once its file is. */
		for (;;) {
			pthread_mutex_lock(&ex->lock);
			struct qreq *q = ex->head;
			if (q && q->file_done) {
				ex->head = q->next;
				if (!ex->head)
					ex->tail = NULL;
				ex->st.queue_bytes -= q->len;
				ex->files_only_done++;
			} else {
				q = NULL;
			}
			pthread_mutex_unlock(&ex->lock);
			if (!q)
				return;
			otlp_qreq_free(q);
		}
	}
	while (!l->cur) {
		if (!request_take(ex))
			return;
	}
	if (l->waiting && now_ns() >= l->next_attempt_ns)
		attempt_start(ex);
}
