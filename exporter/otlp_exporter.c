// SPDX-License-Identifier: BSD-2-Clause
/*
 * The agent's I/O loop: one thread, one io_uring, owning every socket and
 * file write of the agent (OTLP/HTTP requests, their --otlp-file copies, the
 * local profile files). This file: the API, the request queue, the event
 * loop and shutdown; otlp_send.c delivers the request in flight;
 * loop_files.c does the file writes and the profile file queue; otlp_loop.h
 * holds the state they share.
 *
 * Threads. Callers (the pipeline's flush) only queue: otlp_exporter__submit()
 * and otlp_exporter__write_file() append to a FIFO under ex->lock and poke an
 * eventfd. The exporter thread ("pl-io") owns everything else: the ring, the
 * socket, OpenSSL, the file writes, the request in flight. Its ring always
 * has a read of the eventfd armed, so a submit wakes it; timers (backoff,
 * the shutdown deadlines) are the timeout of its wait for completions.
 *
 * Two independent streams. Requests (HTTP, and --otlp-file copies, which go
 * before their request) and profile files (loop_files.c) have their own
 * FIFOs, bounds and ops in flight: a request stuck on a slow collector or
 * waiting in backoff never delays a profile file, and a slow disk never
 * delays a request (unless --otlp-file puts that disk in its path).
 *
 * Shutdown. shutdown(timeout_ms) stops both queues from taking more. Then
 * requests get timeout_ms (past it the socket op in flight is cancelled and
 * what is left counts as failed), and profile files get written whatever
 * timeout_ms says, bounded by FILE_DRAIN_NS (30 s) for a disk that hangs; the
 * thread ends when both are over.
 *
 * Queue. Many producers, one consumer, a mutex (this is once per interval,
 * not per sample). queue_bytes counts the requests waiting in the FIFO; the
 * request being delivered has left it. When a new request would push
 * queue_bytes over max_queue_bytes, the oldest waiting requests are dropped
 * (and counted): never the one in flight, and a request whose file write is
 * in flight is detached and freed by the loop when the write completes.
 * Memory is bounded by max_queue_bytes + the request in flight (raw and
 * compressed) + one response (4 MiB).
 *
 * Order. With --otlp-file, the loop writes each queued request to
 * file_dir/NNNNNN.binpb (tmp + rename) in queue order, and a request goes to
 * the network only once its file is written, so the files are exactly what
 * was handed to the HTTP client. Requests are sent one at a time, in order,
 * on one keep-alive connection (HTTP/1.1, no pipelining: POST is not
 * idempotent); while the head request waits for a retry, later ones wait
 * behind it.
 *
 * Backlog. Requests that pile up while the collector is down or slow go out
 * as one burst, not merged into bigger requests: only the head request is
 * attempted and retried (the ones behind it cost no attempt and no
 * backoff of their own); once it is through (2xx, or a final failure) the
 * backoff is reset and every waiting request follows back to back on the
 * keep-alive connection, each the moment the previous answer is in. Queued
 * requests are not merged here: each carries its own dictionary, and every
 * index in it is relative to that dictionary
 * (../shared/reference/otlp-profiles.md, section 2), so a merge would redo
 * the encoder's work on this thread, make a non-retryable answer (400, 413)
 * lose every interval merged, and make --otlp-file copies differ from what
 * was sent. Batching is the flusher's (pipeline/flush.c): while
 * requests_pending is not zero it holds new intervals and encodes them
 * together, one request with one dictionary.
 *
 * Each attempt (otlp_send.c): resolve (getaddrinfo, blocking, on this thread), connect
 * through the ring, TLS handshake through memory BIOs when https, send
 * (head + body with one sendmsg, or TLS records), receive and parse. Every
 * socket op carries a linked timeout set to what is left of the attempt's
 * timeout_ms. Retried with backoff: 429/502/503/504 (Retry-After honoured),
 * a connection closed or reset before a complete response, a malformed
 * response, a failed resolve or connect, a failed TLS handshake (a collector
 * may be mid certificate rotation; logged as such), a timeout. A keep-alive
 * connection the server closed while idle is retried once at once, without
 * counting. Everything else (other 4xx/5xx, a response over 4 MiB) fails the
 * request; a 2xx is sent, its partial_success logged and never retried.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <liburing.h>
#include <netdb.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "otlp_loop.h"

void otlp_qreq_free(struct qreq *q)
{
	if (!q)
		return;
	free(q->body);
	free(q);
}

__attribute__((format(printf, 4, 0))) static void vrlog(struct loop *l, enum log_kind k, long key,
							const char *fmt, va_list ap)
{
	struct ratelog *r = &l->logs[k];
	uint64_t now = now_ns();
	char msg[1024];

	if (r->last_ns && now - r->last_ns < LOG_INTERVAL_NS && key == r->last_key) {
		r->suppressed++;
		return;
	}
	/* Profile files are the agent's output, not OTLP's. */
	const char *prefix = k == LOG_PROFILE_FILE ? "pipeline" : "pipeline: otlp";
	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (r->suppressed)
		fprintf(stderr, "%s: %s (%llu more like it in the last %llu s)\n", prefix, msg,
			(unsigned long long)r->suppressed,
			(unsigned long long)((now - r->last_ns) / NSEC_PER_SEC));
	else
		fprintf(stderr, "%s: %s\n", prefix, msg);
	r->last_ns = now;
	r->suppressed = 0;
	r->last_key = key;
}

void otlp_rlog(struct loop *l, enum log_kind k, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vrlog(l, k, 0, fmt, ap);
	va_end(ap);
}

void otlp_rlogk(struct loop *l, enum log_kind k, long key, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vrlog(l, k, key, fmt, ap);
	va_end(ap);
}

/* ---- ring helpers --------------------------------------------------------- */

struct io_uring_sqe *otlp_sqe_get(struct loop *l)
{
	if (io_uring_sq_space_left(&l->ring) < 2)
		io_uring_submit(&l->ring);
	struct io_uring_sqe *sqe = io_uring_get_sqe(&l->ring);
	if (!sqe) { /* cannot happen after a submit without SQPOLL */
		fprintf(stderr, "pipeline: otlp: io_uring submission queue full\n");
		abort();
	}
	return sqe;
}

static void efd_arm(struct otlp_exporter *ex)
{
	struct loop *l = &ex->l;
	struct io_uring_sqe *sqe = otlp_sqe_get(l);
	io_uring_prep_read(sqe, ex->efd, &l->efd_val, sizeof(l->efd_val), 0);
	io_uring_sqe_set_data64(sqe, UD(UD_EVENTFD, 0));
	l->inflight++;
}

void otlp_wake(struct otlp_exporter *ex)
{
	uint64_t one = 1;
	/* Non-blocking; the counter cannot realistically saturate. */
	if (write(ex->efd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		fprintf(stderr, "pipeline: otlp: eventfd write: %s\n", strerror(errno));
}

void otlp_stat_inc(struct otlp_exporter *ex, uint64_t *field)
{
	pthread_mutex_lock(&ex->lock);
	(*field)++;
	pthread_mutex_unlock(&ex->lock);
}

/* ---- the loop ------------------------------------------------------------------ */

static void dispatch(struct otlp_exporter *ex, uint64_t ud, int res)
{
	struct loop *l = &ex->l;
	enum ud_kind kind = (enum ud_kind)(ud & 0xff);
	uint32_t gen = (uint32_t)(ud >> 8);

	switch (kind) {
	case UD_EVENTFD:
		if (!l->exiting)
			efd_arm(ex);
		return;
	case UD_FILE:
		otlp_file__on_cqe(ex, res);
		return;
	case UD_PFILE:
		pfile__on_cqe(ex, res);
		return;
	case UD_CONNECT:
	case UD_SEND:
	case UD_RECV:
		l->op_pending = false;
		if (l->exiting || l->http_stopped || gen != l->gen)
			return;
		otlp_send__on_cqe(ex, kind, res);
		return;
	default:
		return; /* linked timeouts and cancels: their op reports the outcome */
	}
}

static void reap(struct otlp_exporter *ex)
{
	struct loop *l = &ex->l;
	struct io_uring_cqe *cqe;

	while (io_uring_peek_cqe(&l->ring, &cqe) == 0) {
		uint64_t ud = io_uring_cqe_get_data64(cqe);
		int res = cqe->res;
		io_uring_cqe_seen(&l->ring, cqe);
		l->inflight--;
		dispatch(ex, ud, res);
	}
}

/* Submits what is prepared and waits for a completion until `until`
 * (UINT64_MAX: no timer). */
static void wait_events(struct otlp_exporter *ex, uint64_t until)
{
	struct loop *l = &ex->l;
	struct io_uring_cqe *cqe;
	int rc;

	if (until == UINT64_MAX) {
		rc = io_uring_submit_and_wait(&l->ring, 1);
	} else {
		uint64_t now = now_ns(), d = until > now ? until - now : 0;
		struct __kernel_timespec ts = {
			.tv_sec = (long long)(d / NSEC_PER_SEC),
			.tv_nsec = (long long)(d % NSEC_PER_SEC),
		};
		rc = io_uring_submit_and_wait_timeout(&l->ring, &cqe, 1, &ts, NULL);
	}
	if (rc < 0 && rc != -ETIME && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY)
		otlp_rlog(l, LOG_INTERNAL, "io_uring wait: %s", strerror(-rc));
	reap(ex);
}

/* Cancels everything in flight and waits (bounded) for the completions, so no
 * buffer is freed while the kernel may still use it. Returns false if some
 * never completed. */
static bool drain_ring(struct otlp_exporter *ex)
{
	struct loop *l = &ex->l;
	uint64_t end = now_ns() + TEARDOWN_WAIT_NS;

	l->exiting = true;
	if (!l->inflight)
		return true;
	struct io_uring_sqe *sqe = otlp_sqe_get(l);
	io_uring_prep_cancel64(sqe, 0, IORING_ASYNC_CANCEL_ANY);
	io_uring_sqe_set_data64(sqe, UD(UD_CANCEL, 0));
	l->inflight++;
	while (l->inflight && now_ns() < end)
		wait_events(ex, now_ns() + 100 * NSEC_PER_MSEC);
	return l->inflight == 0;
}

static void teardown(struct otlp_exporter *ex)
{
	struct loop *l = &ex->l;
	uint64_t left = 0;

	bool drained = drain_ring(ex);
	if (!drained)
		fprintf(stderr, "pipeline: %u I/O operations did not finish at exit\n",
			l->inflight);
	pfile__teardown(ex);
	if (drained || !l->op_pending)
		otlp_send__close(l);
	if (l->ai)
		freeaddrinfo(l->ai);
	l->ai = l->ai_next = NULL;
	if (l->cur) {
		left++;
		if (drained || !l->op_pending)
			otlp_send__request_done(l);
		else
			l->cur = NULL; /* leaked on purpose: the kernel may still read it */
	}
	pthread_mutex_lock(&ex->lock);
	struct qreq *q = ex->head;
	ex->head = ex->tail = ex->file_cursor = NULL;
	for (struct qreq *p = q; p; p = p->next)
		left++;
	ex->st.requests_failed += left;
	ex->st.queue_bytes = 0;
	pthread_mutex_unlock(&ex->lock);
	while (q) {
		struct qreq *next = q->next;
		if (!q->writing) /* a write still in flight keeps its buffer (leaked) */
			otlp_qreq_free(q);
		q = next;
	}
	if (left)
		fprintf(stderr,
			"pipeline: otlp: shutdown deadline reached: %llu request(s) not "
			"delivered\n",
			(unsigned long long)left);
}

/* The HTTP deadline passed while profile files are still being written: the
 * socket op in flight is cancelled and no new one starts. The request in
 * flight and those queued are counted as failed at teardown. */
static void http_stop(struct otlp_exporter *ex)
{
	struct loop *l = &ex->l;

	l->http_stopped = true;
	if (l->op_pending && l->fd >= 0) {
		struct io_uring_sqe *sqe = otlp_sqe_get(l);
		io_uring_prep_cancel_fd(sqe, l->fd, IORING_ASYNC_CANCEL_ALL);
		io_uring_sqe_set_data64(sqe, UD(UD_CANCEL, 0));
		l->inflight++;
	}
}

static void log_drops(struct otlp_exporter *ex, uint64_t dropped)
{
	struct loop *l = &ex->l;
	if (dropped == l->dropped_logged)
		return;
	l->dropped_logged = dropped;
	otlp_rlog(l, LOG_DROPPED,
		  "export queue full (%zu bytes): %llu request(s) dropped so far, oldest first",
		  ex->max_queue_bytes, (unsigned long long)dropped);
}

static void *exporter_main(void *arg)
{
	struct otlp_exporter *ex = arg;
	struct loop *l = &ex->l;

	efd_arm(ex);
	for (;;) {
		pthread_mutex_lock(&ex->lock);
		bool stopping = ex->stopping;
		uint64_t deadline = ex->stop_deadline_ns;
		uint64_t files_deadline = ex->files_deadline_ns;
		uint64_t dropped = ex->st.requests_dropped;
		pthread_mutex_unlock(&ex->lock);

		/* After shutdown(), HTTP (and --otlp-file copies) run until their
		 * deadline; profile files until they are all written, or until
		 * FILE_DRAIN_NS for a disk that hangs. */
		uint64_t now = now_ns();
		bool http_open = !stopping || now < deadline;
		if (!http_open && !l->http_stopped)
			http_stop(ex);
		pfile__progress(ex);
		if (http_open) {
			log_drops(ex, dropped);
			otlp_file__progress(ex);
			otlp_send__progress(ex);
		}

		if (stopping) {
			pthread_mutex_lock(&ex->lock);
			bool http_idle = !ex->head && !l->cur && !l->fw;
			pthread_mutex_unlock(&ex->lock);
			bool files_over = pfile__idle(ex) || now >= files_deadline;
			if ((http_idle || !http_open) && files_over)
				break;
		}

		uint64_t until = UINT64_MAX;
		if (http_open && l->cur && l->waiting)
			until = l->next_attempt_ns;
		if (stopping && http_open && deadline < until)
			until = deadline;
		if (stopping && files_deadline < until)
			until = files_deadline;
		wait_events(ex, until);
	}
	teardown(ex);
	return NULL;
}

/* Highest NNNNNN of the NNNNNN.binpb files already in dir, so a restarted
 * agent continues the sequence instead of overwriting an earlier run. */
static uint64_t file_seq_start(const char *dir)
{
	uint64_t max = 0;
	DIR *d = opendir(dir);
	struct dirent *e;

	if (!d)
		return 0;
	while ((e = readdir(d))) {
		const char *n = e->d_name;
		size_t digits = strspn(n, "0123456789");
		if (digits == 0 || digits > 18 || strcmp(n + digits, ".binpb"))
			continue;
		uint64_t v = strtoull(n, NULL, 10);
		if (v > max)
			max = v;
	}
	closedir(d);
	return max;
}

/* ---- API -------------------------------------------------------------------------- */

struct otlp_exporter *otlp_exporter__new(const struct otlp_exporter_opts *o)
{
	struct otlp_exporter *ex = NULL;
	const char *why = NULL;
	int err = EINVAL;

	if (!o || (!o->url && !o->file_dir && !o->local_files)) {
		fprintf(stderr,
			"pipeline: otlp: no endpoint URL, no file directory, no local files\n");
		goto fail;
	}
	ex = calloc(1, sizeof(*ex));
	if (!ex) {
		err = ENOMEM;
		goto fail;
	}
	ex->efd = -1;
	ex->l.fd = -1;
	pthread_mutex_init(&ex->lock, NULL);
	http_resp__init(&ex->l.resp, RESP_MAX_BODY);

	if (o->url) {
		if (otlp_url__parse(o->url, &ex->url, &why)) {
			fprintf(stderr, "pipeline: otlp: bad endpoint URL '%s': %s\n", o->url, why);
			goto fail;
		}
		ex->has_url = true;
	}
	if (o->n_headers) {
		ex->headers = calloc(o->n_headers, sizeof(*ex->headers));
		if (!ex->headers) {
			err = ENOMEM;
			goto fail;
		}
	}
	for (size_t i = 0; i < o->n_headers; i++) {
		if (!o->headers[i] || http_header__check(o->headers[i], &why)) {
			fprintf(stderr, "pipeline: otlp: bad header '%s': %s\n",
				o->headers[i] ? o->headers[i] : "(null)",
				o->headers[i] ? why : "missing");
			goto fail;
		}
		ex->headers[i] = strdup(o->headers[i]);
		if (!ex->headers[i]) {
			err = ENOMEM;
			goto fail;
		}
		ex->n_headers++;
	}
	ex->gzip = o->gzip;
	ex->timeout_ms = o->timeout_ms ? o->timeout_ms : DEFAULT_TIMEOUT_MS;
	ex->max_queue_bytes = o->max_queue_bytes ? o->max_queue_bytes : DEFAULT_QUEUE_BYTES;
	ex->max_file_bytes =
		o->max_file_queue_bytes ? o->max_file_queue_bytes : ex->max_queue_bytes;
	ex->backoff_initial_ms = o->backoff_initial_ms ? o->backoff_initial_ms : DEFAULT_BACKOFF_MS;
	ex->backoff_max_ms = o->backoff_max_ms ? o->backoff_max_ms : DEFAULT_BACKOFF_MAX;
	if (ex->backoff_max_ms < ex->backoff_initial_ms)
		ex->backoff_max_ms = ex->backoff_initial_ms;
	ex->user_agent = strdup(o->user_agent ? o->user_agent : "pipeline/" PIPELINE_VERSION);
	if (!ex->user_agent) {
		err = ENOMEM;
		goto fail;
	}
	if (o->file_dir) {
		int e = file_sink__check_dir(o->file_dir);
		if (e) {
			fprintf(stderr, "pipeline: otlp: cannot write request files to %s: %s\n",
				o->file_dir, strerror(-e));
			err = -e;
			goto fail;
		}
		ex->file_dir = strdup(o->file_dir);
		if (!ex->file_dir) {
			err = ENOMEM;
			goto fail;
		}
		ex->l.file_seq = file_seq_start(ex->file_dir);
	}
	if (ex->has_url && ex->url.https) {
		char tls_err[512];
		ex->ssl_ctx =
			tls_ctx__new(o->ca_file, o->insecure_skip_verify, tls_err, sizeof(tls_err));
		if (!ex->ssl_ctx) {
			fprintf(stderr, "pipeline: otlp: %s\n", tls_err);
			goto fail;
		}
		if (o->insecure_skip_verify)
			fprintf(stderr,
				"pipeline: otlp: warning: the certificate of %s is NOT "
				"verified (insecure skip verify)\n",
				ex->url.host_header);
	}

	ex->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (ex->efd < 0) {
		err = errno;
		fprintf(stderr, "pipeline: I/O loop: eventfd: %s\n", strerror(err));
		goto fail;
	}
	int rc = io_uring_queue_init(RING_ENTRIES, &ex->l.ring, 0);
	if (rc) {
		err = -rc;
		fprintf(stderr, "pipeline: io_uring unavailable (the I/O loop needs it): %s\n",
			strerror(err));
		goto fail;
	}
	ex->l.ring_ok = true;
	ex->l.obuf_cap = 2 * TLS_CHUNK;
	ex->l.obuf = malloc(ex->l.obuf_cap);
	if (!ex->l.obuf) {
		err = ENOMEM;
		goto fail;
	}
	uint64_t seed;
	if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) != sizeof(seed))
		seed = now_ns() ^ ((uint64_t)getpid() << 32) ^ (uint64_t)(uintptr_t)ex;
	backoff__init(&ex->l.backoff, ex->backoff_initial_ms, ex->backoff_max_ms, seed);

	rc = pthread_create(&ex->thread, NULL, exporter_main, ex);
	if (rc) {
		err = rc;
		fprintf(stderr, "pipeline: cannot start the I/O thread: %s\n", strerror(rc));
		goto fail;
	}
	pthread_setname_np(ex->thread, "pl-io");
	ex->started = true;
	return ex;
fail:
	otlp_exporter__free(ex);
	errno = err;
	return NULL;
}

int otlp_exporter__submit(struct otlp_exporter *ex, void *body, size_t len)
{
	struct qreq *q = NULL, *victims = NULL;
	int err = 0;

	if (!ex) {
		free(body);
		return -EINVAL;
	}
	q = calloc(1, sizeof(*q));
	pthread_mutex_lock(&ex->lock);
	if (ex->stopping) {
		err = -ESHUTDOWN;
		goto unlock;
	}
	if (!ex->has_url && !ex->file_dir) {
		err = -EINVAL; /* a loop for local files only */
		goto unlock;
	}
	if (!q || len > ex->max_queue_bytes) {
		ex->st.requests_dropped++;
		ex->rejected++;
		err = q ? -ENOSPC : -ENOMEM;
		goto unlock;
	}
	while (ex->st.queue_bytes + len > ex->max_queue_bytes) {
		/* Drop the oldest request that no write is using; one being written
		 * to its file is detached and freed by the loop afterwards. */
		struct qreq *prev = NULL, *v = ex->head;
		while (v && v->writing) {
			prev = v;
			v = v->next;
		}
		if (!v) {
			prev = NULL;
			v = ex->head;
		}
		if (prev)
			prev->next = v->next;
		else
			ex->head = v->next;
		if (ex->tail == v)
			ex->tail = prev;
		if (ex->file_cursor == v)
			ex->file_cursor = v->next;
		ex->st.queue_bytes -= v->len;
		ex->st.requests_dropped++;
		if (v->writing) {
			v->dropped = true;
		} else {
			v->next = victims;
			victims = v;
		}
	}
	q->body = body;
	q->len = len;
	if (ex->tail)
		ex->tail->next = q;
	else
		ex->head = q;
	ex->tail = q;
	if (ex->file_dir && !ex->file_cursor)
		ex->file_cursor = q;
	ex->st.queue_bytes += len;
	if (ex->st.queue_bytes > ex->st.queue_bytes_max)
		ex->st.queue_bytes_max = ex->st.queue_bytes;
	ex->st.requests_queued++;
unlock:
	pthread_mutex_unlock(&ex->lock);
	while (victims) {
		struct qreq *next = victims->next;
		otlp_qreq_free(victims);
		victims = next;
	}
	if (err) {
		free(body);
		free(q);
		return err;
	}
	otlp_wake(ex);
	return 0;
}

void otlp_exporter__shutdown(struct otlp_exporter *ex, unsigned timeout_ms)
{
	if (!ex || !ex->started || ex->joined)
		return;
	pthread_mutex_lock(&ex->lock);
	if (!ex->stopping) {
		uint64_t now = now_ns();
		ex->stopping = true;
		ex->stop_deadline_ns = now + (uint64_t)timeout_ms * NSEC_PER_MSEC;
		ex->files_deadline_ns = now + FILE_DRAIN_NS;
	}
	pthread_mutex_unlock(&ex->lock);
	otlp_wake(ex);
	pthread_join(ex->thread, NULL);
	ex->joined = true;
}

void otlp_exporter__free(struct otlp_exporter *ex)
{
	if (!ex)
		return;
	otlp_exporter__shutdown(ex, 0);
	/* The thread is gone (or never ran): its state is ours now. */
	if (ex->l.ring_ok)
		io_uring_queue_exit(&ex->l.ring);
	if (ex->efd >= 0)
		close(ex->efd);
	while (ex->head) {
		struct qreq *next = ex->head->next;
		otlp_qreq_free(ex->head);
		ex->head = next;
	}
	pfile__free_queue(ex);
	tls_ctx__free(ex->ssl_ctx);
	http_resp__deinit(&ex->l.resp);
	free(ex->l.obuf);
	for (size_t i = 0; i < ex->n_headers; i++)
		free(ex->headers[i]);
	free(ex->headers);
	free(ex->user_agent);
	free(ex->file_dir);
	pthread_mutex_destroy(&ex->lock);
	free(ex);
}

void otlp_exporter__stats(const struct otlp_exporter *ex, struct otlp_exporter_stats *st)
{
	struct otlp_exporter *mex = (struct otlp_exporter *)ex; /* the lock is not content */
	pthread_mutex_lock(&mex->lock);
	*st = ex->st;
	/* Every accepted request ends sent, failed, dropped from the queue, or
	 * (no URL) done with its file. */
	st->requests_pending = st->requests_queued - st->requests_sent - st->requests_failed -
			       (st->requests_dropped - ex->rejected) - ex->files_only_done;
	pthread_mutex_unlock(&mex->lock);
}
