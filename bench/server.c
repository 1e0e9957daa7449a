// SPDX-License-Identifier: BSD-2-Clause
/*
 * pipeline-bench-server: the workload of `pipeline-bench overhead`, an
 * HTTP/1.1 server on 127.0.0.1 whose profile has a known answer.
 *
 * Work. Each request runs
 *   process_request   15 % of the work: parsing and response (self time)
 *     query_database  25 %
 *     serialize_json  60 %
 * The shares are iteration counts of one inlined xorshift loop (as in
 * tools/workload.c), so they hold whatever the machine's speed. At start the
 * loop is timed (the fastest of 20 runs of 2^18 iterations) to turn
 * --work-us into iterations; --iters skips that and fixes the count, for runs
 * that must do the same work on every start. No system call and no libc
 * call runs inside the three functions' loops, and the file is built by
 * clang with frame pointers in every function, leaves included (GCC 12 drops
 * them in leaves: ../shared/MEASURED.md), so a frame-pointer walk sees
 * process_request under every sample of the other two.
 *
 * Threads. --threads N workers (default: the online CPUs), each with its own
 * epoll set and its own connections. Worker 0 also owns the listening socket:
 * it accepts and deals connections out round robin, into each worker's inbox
 * (a list under the worker's mutex, and an eventfd to wake it); the worker
 * then adds them to its epoll set itself. Round robin keeps the workers even
 * with few connections, which SO_REUSEPORT's hash does not; accepts are rare
 * (keep-alive), so the extra wake-up costs nothing that shows. A connection
 * belongs to its worker from then on: only that worker reads, writes, polls
 * and frees it. The connection lists exist so that main can free what is
 * left at exit; the mutex is taken only on accept and close.
 *
 * Main blocks SIGTERM, SIGINT and SIGUSR1 in every thread and waits for them
 * with sigwait. SIGUSR1 prints the JSON line below without stopping;
 * SIGTERM and SIGINT wake the workers through an eventfd that is in every
 * epoll set, join them and print it once more:
 *   {"requests": N, "cpu_user_s": x, "cpu_sys_s": y, "wall_s": z}
 * counted from the moment `PORT <n>` was printed (calibration excluded);
 * CPU from getrusage(RUSAGE_SELF).
 *
 * HTTP. Keep-alive (HTTP/1.0 only with "Connection: keep-alive"), pipelined
 * requests answered in order, GET or any other method, a body of at most
 * 8 KiB with Content-Length (no chunked bodies: 411). --delay-us holds each
 * response back for that long without blocking the worker: the response
 * waits in the worker's FIFO (the delay is the same for all, so the FIFO is
 * in due order) and epoll_pwait2's timeout wakes the worker when it is due.
 */
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "help_wrap.h"

#define SRV_NAME	    "pipeline-bench-server"
#define SRV_MAX_THREADS	    64
#define SRV_MAX_ALLOCS	    64
#define SRV_IN_CAP	    16384 /* request buffer per connection */
#define SRV_MAX_BODY	    8192
#define SRV_OUT_CAP	    1024 /* response buffer per connection */
#define SRV_MAX_EVENTS	    64
#define SRV_MAX_ACCEPTS	    64 /* accepts per wake-up */
#define SRV_CALIB_ITERS	    (1u << 18)
#define SRV_CALIB_RUNS	    20
#define SRV_SHARE_SERIALIZE 60 /* percent of the work per request */
#define SRV_SHARE_QUERY	    25

/* ---- options: one table drives parsing, range checks and --help ---- */

enum srv_opt {
	SRV_OPT_PORT,
	SRV_OPT_THREADS,
	SRV_OPT_WORK_US,
	SRV_OPT_ITERS,
	SRV_OPT_DELAY_US,
	SRV_OPT_ALLOCS,
	SRV_OPT_HELP,
	SRV_N_OPTS,
};

struct srv_opt_desc {
	const char *name;
	const char *arg; /* NULL: a flag */
	unsigned long long min, max;
	const char *help;
};

static const struct srv_opt_desc srv_opts[SRV_N_OPTS] = {
	[SRV_OPT_PORT] = {"port", "N", 0, 65535,
			  "TCP port on 127.0.0.1; 0 (default) picks a free one. `PORT <n>` on "
			  "stdout says which, once the server listens"},
	[SRV_OPT_THREADS] = {"threads", "N", 1, SRV_MAX_THREADS,
			     "worker threads, each with its own epoll set (default: the "
			     "online CPUs)"},
	[SRV_OPT_WORK_US] = {"work-us", "N", 0, 1000000,
			     "CPU work per request in microseconds, split 60/25/15 % between "
			     "serialize_json, query_database and process_request itself; "
			     "calibrated at start (default 40: about 50 us of CPU per request "
			     "with the system calls)"},
	[SRV_OPT_ITERS] = {"iters", "N", 1, 1000000000000ull,
			   "work per request as loop iterations instead of --work-us (no "
			   "calibration: the same work on every start)"},
	[SRV_OPT_DELAY_US] = {"delay-us", "N", 0, 10000000,
			      "hold each response back this long, without blocking the worker "
			      "(for tests of latency measurement; default 0)"},
	[SRV_OPT_ALLOCS] = {"allocs", "N", 0, SRV_MAX_ALLOCS,
			    "request-scoped buffers each request mallocs (64 bytes to 2 KiB) "
			    "and frees before its response, in request_buffer (default 0: the "
			    "request path does not allocate; pipeline-bench alloc uses 8)"},
	[SRV_OPT_HELP] = {"help", NULL, 0, 0, "print this help and exit"},
};

struct srv_cfg {
	unsigned port;
	unsigned threads;
	unsigned work_us;
	uint64_t iters; /* 0: calibrate from work_us */
	uint64_t delay_ns;
	unsigned allocs;
};

/* Iterations of the work loop per request, per function. */
struct srv_work {
	uint64_t serialize_iters, query_iters, process_iters;
	unsigned allocs; /* request-scoped buffers per request */
};

struct srv_server;

struct srv_conn {
	int fd;
	bool delayed;		      /* its response waits in the worker's delay FIFO */
	bool dead;		      /* closed while delayed: freed when it leaves the FIFO */
	bool close_after;	      /* close once the response is out */
	struct srv_conn *prev, *next; /* worker's list, under worker->lock */
	struct srv_conn *inbox_next;  /* worker's inbox, under worker->lock */
	struct srv_conn *delay_next;  /* owner only */
	uint64_t due_ns;
	size_t in_len;
	size_t out_off, out_len;
	char in[SRV_IN_CAP];
	char out[SRV_OUT_CAP];
};

struct srv_worker {
	struct srv_server *srv;
	unsigned id;
	int epfd;
	bool started;
	pthread_t tid;
	pthread_mutex_t lock;	/* guards conns and inbox: worker 0 adds, the owner takes */
	struct srv_conn *conns; /* doubly linked, for the final cleanup */
	struct srv_conn *inbox; /* accepted, not yet in epfd */
	int inbox_fd;		/* eventfd: worker 0 rings it after adding to inbox */
	struct srv_conn *delay_head, *delay_tail; /* owner only, in due order */
	uint64_t requests; /* written by the owner, read by main: relaxed atomics */
	uint64_t seq;	   /* owner only */
	unsigned rr;	   /* worker 0 only: next worker to get a connection */
};

struct srv_server {
	struct srv_cfg cfg;
	struct srv_work work;
	int listen_fd, wake_fd;
	unsigned n_workers;
	struct srv_worker workers[SRV_MAX_THREADS];
};

/* epoll tags of the shared descriptors (a worker's inbox_fd is tagged with
 * &worker->inbox_fd); anything else is a connection */
static char srv_tag_listen, srv_tag_wake;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- the request handler: its profile is the known answer ---- */

static inline __attribute__((always_inline)) uint64_t burn(uint64_t iters, uint64_t x)
{
	for (uint64_t i = 0; i < iters; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		__asm__ volatile("" : "+r"(x));
	}
	return x;
}

static inline __attribute__((always_inline)) size_t put_str(char *p, size_t off, size_t cap,
							    const char *s)
{
	while (*s && off < cap)
		p[off++] = *s++;
	return off;
}

static inline __attribute__((always_inline)) size_t put_u64(char *p, size_t off, size_t cap,
							    uint64_t v, unsigned base)
{
	char tmp[24];
	int n = 0;

	do {
		tmp[n++] = "0123456789abcdef"[v % base];
		v /= base;
	} while (v && n < (int)sizeof(tmp));
	while (n > 0 && off < cap)
		p[off++] = tmp[--n];
	return off;
}

struct srv_row {
	uint64_t id, price_cents, stock, checksum;
};

/* The "database": 25 % of the work. Returns the row for id. */
__attribute__((noinline)) struct srv_row query_database(uint64_t iters, uint64_t id)
{
	uint64_t x = burn(iters, id * 0x9e3779b97f4a7c15ull + 1);

	return (struct srv_row){
		.id = id, .price_cents = x % 100000, .stock = (x >> 20) % 1000, .checksum = x};
}

/* The JSON encoder: 60 % of the work. Writes the body into out (at most
 * cap bytes); returns its length. */
__attribute__((noinline)) size_t serialize_json(uint64_t iters, const struct srv_row *row,
						char *out, size_t cap)
{
	uint64_t x = burn(iters, row->checksum | 1);
	size_t n = 0;

	n = put_str(out, n, cap, "{\"id\":");
	n = put_u64(out, n, cap, row->id, 10);
	n = put_str(out, n, cap, ",\"price_cents\":");
	n = put_u64(out, n, cap, row->price_cents, 10);
	n = put_str(out, n, cap, ",\"stock\":");
	n = put_u64(out, n, cap, row->stock, 10);
	n = put_str(out, n, cap, ",\"etag\":\"");
	n = put_u64(out, n, cap, x, 16);
	n = put_str(out, n, cap, "\"}");
	return n;
}

/* A request-scoped buffer, as a service allocates for parsing and
 * formatting: its own function, so an allocation profile names it. */
__attribute__((noinline)) void *request_buffer(unsigned i)
{
	char *p = malloc((size_t)64 << (i % 6));

	if (p)
		((volatile char *)p)[0] = (char)i;
	return p;
}

/* Parses the request line of req (its headers are complete), runs the work
 * and writes the whole response into out. Returns its length. */
__attribute__((noinline)) size_t process_request(const struct srv_work *work, const char *req,
						 size_t hdr_len, uint64_t seq, bool keep_alive,
						 char *out, size_t cap)
{
	char body[256];
	size_t body_len, n = 0;
	uint64_t id = seq, x;
	const char *q;
	void *bufs[SRV_MAX_ALLOCS];

	for (unsigned i = 0; i < work->allocs; i++)
		bufs[i] = request_buffer(i);
	/* the id comes from "?id=N" in the target when there is one */
	q = memchr(req, ' ', hdr_len);
	for (; q && q < req + hdr_len && *q != '\r' && *q != '\n'; q++) {
		if (q[0] == 'i' && q[1] == 'd' && q[2] == '=') {
			id = 0;
			for (q += 3; *q >= '0' && *q <= '9'; q++)
				id = id * 10 + (uint64_t)(*q - '0');
			break;
		}
	}
	x = burn(work->process_iters, id + 1);
	struct srv_row row = query_database(work->query_iters, id ^ (x & 0xff));
	row.id = id;
	body_len = serialize_json(work->serialize_iters, &row, body, sizeof(body));

	n = put_str(out, n, cap, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n");
	if (!keep_alive)
		n = put_str(out, n, cap, "Connection: close\r\n");
	n = put_str(out, n, cap, "Content-Length: ");
	n = put_u64(out, n, cap, body_len, 10);
	n = put_str(out, n, cap, "\r\n\r\n");
	if (n + body_len <= cap) {
		memcpy(out + n, body, body_len);
		n += body_len;
	}
	for (unsigned i = 0; i < work->allocs; i++)
		free(bufs[i]);
	return n;
}

/* Returns the loop's iterations per microsecond on this machine. */
static double srv_calibrate(void)
{
	uint64_t best = UINT64_MAX, x = 1;

	for (int i = 0; i < SRV_CALIB_RUNS; i++) {
		uint64_t t = now_ns();

		x = burn(SRV_CALIB_ITERS, x);
		t = now_ns() - t;
		if (t && t < best)
			best = t;
	}
	__asm__ volatile("" : : "r"(x));
	return (double)SRV_CALIB_ITERS * 1000.0 / (double)best;
}

/* ---- HTTP framing ---- */

/* Returns the value of header name in hdr (case-insensitive), its length in
 * *len, or NULL. */
static const char *hdr_find(const char *hdr, size_t hdr_len, const char *name, size_t *len)
{
	size_t nlen = strlen(name);
	const char *p = memchr(hdr, '\n', hdr_len), *end = hdr + hdr_len;

	while (p && ++p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));

		if (!eol)
			break;
		if ((size_t)(eol - p) > nlen && !strncasecmp(p, name, nlen) && p[nlen] == ':') {
			const char *v = p + nlen + 1;

			while (v < eol && (*v == ' ' || *v == '\t'))
				v++;
			*len = (size_t)(eol - v);
			while (*len && (v[*len - 1] == '\r' || v[*len - 1] == ' '))
				(*len)--;
			return v;
		}
		p = eol;
	}
	return NULL;
}

static bool hdr_has_token(const char *v, size_t len, const char *tok)
{
	size_t tlen = strlen(tok);

	for (size_t i = 0; i + tlen <= len; i++)
		if (!strncasecmp(v + i, tok, tlen))
			return true;
	return false;
}

/* ---- connections (owner worker only, except accept) ---- */

static void conn_set_events(struct srv_worker *w, struct srv_conn *c, uint32_t events)
{
	struct epoll_event ev = {.events = events, .data.ptr = c};

	epoll_ctl(w->epfd, EPOLL_CTL_MOD, c->fd, &ev);
}

static void conn_free(struct srv_worker *w, struct srv_conn *c)
{
	pthread_mutex_lock(&w->lock);
	if (c->prev)
		c->prev->next = c->next;
	else
		w->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	pthread_mutex_unlock(&w->lock);
	if (c->fd >= 0)
		close(c->fd);
	free(c);
}

/* Closes c; a delayed connection stays allocated until it leaves the FIFO. */
static void conn_close(struct srv_worker *w, struct srv_conn *c)
{
	if (c->delayed) {
		epoll_ctl(w->epfd, EPOLL_CTL_DEL, c->fd, NULL);
		c->dead = true;
		return;
	}
	conn_free(w, c);
}

/* Returns 0 when the response is out, 1 when part of it waits, -1 on error. */
static int conn_flush(struct srv_conn *c)
{
	while (c->out_off < c->out_len) {
		ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return errno == EAGAIN ? 1 : -1;
		}
		c->out_off += (size_t)n;
	}
	c->out_off = c->out_len = 0;
	return 0;
}

static void conn_error_reply(struct srv_conn *c, const char *status)
{
	c->out_len = (size_t)snprintf(
		c->out, sizeof(c->out),
		"HTTP/1.1 %s\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", status);
	c->out_off = 0;
	c->close_after = true;
	c->in_len = 0;
}

/* Sends what is in c->out; returns false when c was closed. */
static bool conn_send(struct srv_worker *w, struct srv_conn *c)
{
	int rc = conn_flush(c);

	if (rc < 0 || (rc == 0 && c->close_after)) {
		conn_close(w, c);
		return false;
	}
	if (rc > 0)
		conn_set_events(w, c, EPOLLOUT);
	return true;
}

/* Answers the complete requests in c->in, in order, until one must wait (a
 * delay, a full socket) or the input runs out. Each turn consumes at least 4
 * bytes of c->in or returns, so there are at most SRV_IN_CAP / 4 turns.
 * Returns false when c was closed. */
static bool conn_process(struct srv_worker *w, struct srv_conn *c)
{
	const struct srv_server *srv = w->srv;

	for (int i = 0; i <= SRV_IN_CAP / 4; i++) {
		const char *end, *eol, *v;
		size_t hdr_len, body_len = 0, vlen, used;
		bool keep_alive, http10;

		if (c->out_len || c->delayed || c->close_after)
			return true;
		end = c->in_len >= 4 ? memmem(c->in, c->in_len, "\r\n\r\n", 4) : NULL;
		if (!end) {
			if (c->in_len == SRV_IN_CAP) {
				conn_error_reply(c, "431 Request Header Fields Too Large");
				return conn_send(w, c);
			}
			return true;
		}
		hdr_len = (size_t)(end - c->in) + 4;
		eol = memchr(c->in, '\n', hdr_len); /* found: the headers end in \r\n\r\n */
		if (eol - c->in < 9) {
			conn_error_reply(c, "400 Bad Request");
			return conn_send(w, c);
		}
		v = hdr_find(c->in, hdr_len, "content-length", &vlen);
		if (v) {
			char *e;

			body_len = strtoul(v, &e, 10);
			if (e == v || body_len > SRV_MAX_BODY || hdr_len + body_len > SRV_IN_CAP) {
				conn_error_reply(c, "413 Content Too Large");
				return conn_send(w, c);
			}
		} else if (hdr_find(c->in, hdr_len, "transfer-encoding", &vlen)) {
			conn_error_reply(c, "411 Length Required");
			return conn_send(w, c);
		}
		if (c->in_len < hdr_len + body_len)
			return true;
		http10 = memmem(c->in, (size_t)(eol - c->in), "HTTP/1.0", 8) != NULL;
		v = hdr_find(c->in, hdr_len, "connection", &vlen);
		keep_alive = v ? !hdr_has_token(v, vlen, "close") &&
					     (!http10 || hdr_has_token(v, vlen, "keep-alive"))
			       : !http10;

		c->out_len = process_request(&srv->work, c->in, hdr_len, w->seq++, keep_alive,
					     c->out, sizeof(c->out));
		c->out_off = 0;
		c->close_after = !keep_alive;
		__atomic_store_n(&w->requests, w->requests + 1, __ATOMIC_RELAXED);
		used = hdr_len + body_len;
		memmove(c->in, c->in + used, c->in_len - used);
		c->in_len -= used;

		if (srv->cfg.delay_ns) {
			c->delayed = true;
			c->due_ns = now_ns() + srv->cfg.delay_ns;
			c->delay_next = NULL;
			if (w->delay_tail)
				w->delay_tail->delay_next = c;
			else
				w->delay_head = c;
			w->delay_tail = c;
			conn_set_events(w, c, 0);
			return true;
		}
		if (!conn_send(w, c))
			return false;
	}
	return true;
}

static void conn_on_event(struct srv_worker *w, struct srv_conn *c, uint32_t events)
{
	if (events & EPOLLERR) {
		conn_close(w, c);
		return;
	}
	if (c->delayed) { /* only EPOLLHUP comes while events are 0 */
		conn_close(w, c);
		return;
	}
	if (events & EPOLLOUT) {
		int rc = conn_flush(c);

		if (rc < 0 || (rc == 0 && c->close_after)) {
			conn_close(w, c);
			return;
		}
		if (rc > 0)
			return;
		conn_set_events(w, c, EPOLLIN);
		conn_process(w, c);
		return;
	}
	if (events & (EPOLLIN | EPOLLHUP)) {
		ssize_t n = recv(c->fd, c->in + c->in_len, SRV_IN_CAP - c->in_len, 0);

		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
			conn_close(w, c);
			return;
		}
		if (n > 0)
			c->in_len += (size_t)n;
		conn_process(w, c);
	}
}

/* Sends the responses that are due. */
static void worker_release_delayed(struct srv_worker *w)
{
	uint64_t now = now_ns();

	while (w->delay_head && w->delay_head->due_ns <= now) {
		struct srv_conn *c = w->delay_head;

		w->delay_head = c->delay_next;
		if (!w->delay_head)
			w->delay_tail = NULL;
		c->delayed = false;
		if (c->dead) {
			conn_free(w, c);
			continue;
		}
		if (!conn_send(w, c))
			continue;
		if (!c->out_len) {
			conn_set_events(w, c, EPOLLIN);
			conn_process(w, c);
		}
	}
}

/* Worker 0: accepts what is pending and deals the connections out, into
 * each worker's inbox. */
static void worker_accept(struct srv_worker *w0)
{
	struct srv_server *srv = w0->srv;

	for (int i = 0; i < SRV_MAX_ACCEPTS; i++) {
		int one = 1, fd = accept4(srv->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		uint64_t ring = 1;
		struct srv_worker *w;
		struct srv_conn *c;

		if (fd < 0)
			return; /* EAGAIN, or out of descriptors: try on the next wake-up */
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		c = calloc(1, sizeof(*c));
		if (!c) {
			close(fd);
			continue;
		}
		c->fd = fd;
		w = &srv->workers[w0->rr++ % srv->n_workers];
		pthread_mutex_lock(&w->lock);
		c->next = w->conns;
		if (w->conns)
			w->conns->prev = c;
		w->conns = c;
		c->inbox_next = w->inbox;
		w->inbox = c;
		pthread_mutex_unlock(&w->lock);
		if (write(w->inbox_fd, &ring, sizeof(ring)) < 0)
			perror(SRV_NAME
			       ": eventfd write"); /* cannot overflow: read on every wake */
	}
}

/* The owner: moves the connections of its inbox into its epoll set. Only
 * the owner touches its set, so a connection is never closed by one thread
 * while another adds it. */
static void worker_take_inbox(struct srv_worker *w)
{
	struct srv_conn *c;
	uint64_t n;

	if (read(w->inbox_fd, &n, sizeof(n)) < 0 && errno != EAGAIN)
		perror(SRV_NAME ": eventfd read");
	pthread_mutex_lock(&w->lock);
	c = w->inbox;
	w->inbox = NULL;
	pthread_mutex_unlock(&w->lock);
	while (c) {
		struct srv_conn *next = c->inbox_next;
		struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};

		if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, c->fd, &ev))
			conn_free(w, c);
		c = next;
	}
}

static void *worker_main(void *arg)
{
	struct srv_worker *w = arg;
	struct epoll_event evs[SRV_MAX_EVENTS];

	for (;;) {
		struct timespec ts, *tsp = NULL;
		int n;

		if (w->delay_head) {
			uint64_t now = now_ns(), due = w->delay_head->due_ns;
			uint64_t left = due > now ? due - now : 0;

			ts = (struct timespec){.tv_sec = (time_t)(left / 1000000000u),
					       .tv_nsec = (long)(left % 1000000000u)};
			tsp = &ts;
		}
		n = epoll_pwait2(w->epfd, evs, SRV_MAX_EVENTS, tsp, NULL);
		if (n < 0 && errno != EINTR) {
			perror(SRV_NAME ": epoll_pwait2");
			return NULL;
		}
		for (int i = 0; i < n; i++) {
			void *p = evs[i].data.ptr;

			if (p == &srv_tag_wake)
				return NULL;
			if (p == &srv_tag_listen)
				worker_accept(w);
			else if (p == &w->inbox_fd)
				worker_take_inbox(w);
			else
				conn_on_event(w, p, evs[i].events);
		}
		worker_release_delayed(w);
	}
}

/* ---- main ---- */

static void srv_usage(FILE *f)
{
	fprintf(f, "Usage: " SRV_NAME " [OPTION]...\n"
		   "HTTP/1.1 server on 127.0.0.1 with a known profile: process_request calls\n"
		   "serialize_json (60 %% of its work) and query_database (25 %%). Prints\n"
		   "`PORT <n>` once it listens; SIGUSR1 prints its counters as one JSON line,\n"
		   "SIGTERM or SIGINT prints them and exits 0:\n"
		   "  {\"requests\": N, \"cpu_user_s\": x, \"cpu_sys_s\": y, \"wall_s\": z}\n\n"
		   "Options:\n");
	for (size_t i = 0; i < SRV_N_OPTS; i++) {
		char lhs[40];

		snprintf(lhs, sizeof(lhs), "--%s%s%s", srv_opts[i].name, srv_opts[i].arg ? " " : "",
			 srv_opts[i].arg ? srv_opts[i].arg : "");
		fprintf(f, "  %-16s ", lhs);
		bench_help__print_wrapped(f, srv_opts[i].help, 19, 79);
	}
}

/* Returns 0, 1 for --help, or -EINVAL after printing why. */
static int srv_parse(int argc, char **argv, struct srv_cfg *cfg)
{
	struct option longopts[SRV_N_OPTS + 1];
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	int c;

	memset(longopts, 0, sizeof(longopts));
	for (int i = 0; i < SRV_N_OPTS; i++)
		longopts[i] =
			(struct option){srv_opts[i].name,
					srv_opts[i].arg ? required_argument : no_argument, NULL, i};
	*cfg = (struct srv_cfg){
		.threads = cpus < 1		    ? 1
			   : cpus > SRV_MAX_THREADS ? SRV_MAX_THREADS
						    : (unsigned)cpus,
		.work_us = 40,
	};
	opterr = 0;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		unsigned long long v = 0;
		char *end;

		if (c < 0 || c >= SRV_N_OPTS) {
			fprintf(stderr, SRV_NAME ": unknown option or missing argument: '%s'\n",
				argv[optind - 1]);
			return -EINVAL;
		}
		if (c == SRV_OPT_HELP)
			return 1;
		errno = 0;
		v = strtoull(optarg, &end, 10);
		if (errno || *end || !*optarg || optarg[0] == '-' || v < srv_opts[c].min ||
		    v > srv_opts[c].max) {
			fprintf(stderr, SRV_NAME ": --%s '%s': expected %llu-%llu\n",
				srv_opts[c].name, optarg, srv_opts[c].min, srv_opts[c].max);
			return -EINVAL;
		}
		switch (c) {
		case SRV_OPT_PORT:
			cfg->port = (unsigned)v;
			break;
		case SRV_OPT_THREADS:
			cfg->threads = (unsigned)v;
			break;
		case SRV_OPT_WORK_US:
			cfg->work_us = (unsigned)v;
			break;
		case SRV_OPT_ITERS:
			cfg->iters = v;
			break;
		case SRV_OPT_DELAY_US:
			cfg->delay_ns = v * 1000;
			break;
		case SRV_OPT_ALLOCS:
			cfg->allocs = (unsigned)v;
			break;
		}
	}
	if (optind < argc) {
		fprintf(stderr, SRV_NAME ": unexpected argument '%s'\n", argv[optind]);
		return -EINVAL;
	}
	return 0;
}

/* Returns a listening, non-blocking socket on 127.0.0.1:*port (updated when
 * 0), or -errno. */
static int srv_listen(unsigned *port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET,
				 .sin_port = htons((uint16_t)*port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(sa);
	int one = 1, err, fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) || listen(fd, 4096) ||
	    getsockname(fd, (struct sockaddr *)&sa, &len)) {
		err = -errno;
		close(fd);
		return err;
	}
	*port = ntohs(sa.sin_port);
	return fd;
}

struct srv_mark {
	uint64_t wall_ns;
	struct rusage ru;
};

static void srv_mark(struct srv_mark *m)
{
	m->wall_ns = now_ns();
	getrusage(RUSAGE_SELF, &m->ru);
}

static double tv_s(const struct timeval *a, const struct timeval *b)
{
	return (double)(b->tv_sec - a->tv_sec) + (double)(b->tv_usec - a->tv_usec) / 1e6;
}

/* Prints the counters since start as one JSON line on stdout. */
static void srv_print_stats(const struct srv_server *srv, const struct srv_mark *start)
{
	struct srv_mark now;
	uint64_t requests = 0;

	srv_mark(&now);
	for (unsigned i = 0; i < srv->n_workers; i++)
		requests += __atomic_load_n(&srv->workers[i].requests, __ATOMIC_RELAXED);
	printf("{\"requests\": %llu, \"cpu_user_s\": %.6f, \"cpu_sys_s\": %.6f, \"wall_s\": "
	       "%.6f}\n",
	       (unsigned long long)requests, tv_s(&start->ru.ru_utime, &now.ru.ru_utime),
	       tv_s(&start->ru.ru_stime, &now.ru.ru_stime),
	       (double)(now.wall_ns - start->wall_ns) / 1e9);
	fflush(stdout);
}

static int srv_add(int epfd, int fd, void *tag)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = tag};

	return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) ? -errno : 0;
}

int main(int argc, char **argv)
{
	struct srv_server *srv = calloc(1, sizeof(*srv));
	struct srv_mark start;
	sigset_t sigs;
	double per_us = 0;
	uint64_t iters;
	int rc, exit_code = 1, sig;

	if (!srv) {
		perror(SRV_NAME);
		return 1;
	}
	srv->listen_fd = srv->wake_fd = -1;
	for (unsigned i = 0; i < SRV_MAX_THREADS; i++)
		srv->workers[i].epfd = srv->workers[i].inbox_fd = -1;
	rc = srv_parse(argc, argv, &srv->cfg);
	if (rc) {
		if (rc > 0)
			srv_usage(stdout);
		else
			fprintf(stderr, "Try '" SRV_NAME " --help'.\n");
		free(srv);
		return rc > 0 ? 0 : 2;
	}
	if (srv->cfg.iters) {
		iters = srv->cfg.iters;
	} else {
		per_us = srv_calibrate();
		iters = (uint64_t)(per_us * srv->cfg.work_us + 0.5);
	}
	srv->work.serialize_iters = iters * SRV_SHARE_SERIALIZE / 100;
	srv->work.query_iters = iters * SRV_SHARE_QUERY / 100;
	srv->work.process_iters = iters - srv->work.serialize_iters - srv->work.query_iters;
	srv->work.allocs = srv->cfg.allocs;

	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL); /* every thread inherits it */

	rc = srv_listen(&srv->cfg.port);
	if (rc < 0) {
		fprintf(stderr, SRV_NAME ": cannot listen on 127.0.0.1:%u: %s\n", srv->cfg.port,
			strerror(-rc));
		goto cleanup;
	}
	srv->listen_fd = rc;
	srv->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (srv->wake_fd < 0) {
		perror(SRV_NAME ": eventfd");
		goto cleanup;
	}
	for (unsigned i = 0; i < srv->cfg.threads; i++) {
		struct srv_worker *w = &srv->workers[i];

		w->srv = srv;
		w->id = i;
		pthread_mutex_init(&w->lock, NULL);
		srv->n_workers = i + 1;
		w->epfd = epoll_create1(EPOLL_CLOEXEC);
		w->inbox_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		rc = w->epfd < 0 || w->inbox_fd < 0 ? -errno
						    : srv_add(w->epfd, srv->wake_fd, &srv_tag_wake);
		if (!rc)
			rc = srv_add(w->epfd, w->inbox_fd, &w->inbox_fd);
		if (!rc && i == 0)
			rc = srv_add(w->epfd, srv->listen_fd, &srv_tag_listen);
		if (rc) {
			fprintf(stderr, SRV_NAME ": epoll: %s\n", strerror(-rc));
			goto cleanup;
		}
	}
	for (unsigned i = 0; i < srv->n_workers; i++) {
		struct srv_worker *w = &srv->workers[i];

		rc = pthread_create(&w->tid, NULL, worker_main, w);
		if (rc) {
			fprintf(stderr, SRV_NAME ": pthread_create: %s\n", strerror(rc));
			goto cleanup;
		}
		w->started = true;
	}

	fprintf(stderr,
		SRV_NAME ": 127.0.0.1:%u, %u threads, %llu iterations per request "
			 "(serialize_json %llu, query_database %llu, process_request %llu)",
		srv->cfg.port, srv->n_workers, (unsigned long long)iters,
		(unsigned long long)srv->work.serialize_iters,
		(unsigned long long)srv->work.query_iters,
		(unsigned long long)srv->work.process_iters);
	if (per_us > 0)
		fprintf(stderr, " = %u us at %.0f iterations/us", srv->cfg.work_us, per_us);
	fprintf(stderr, ", delay %llu us\n", (unsigned long long)(srv->cfg.delay_ns / 1000));
	srv_mark(&start);
	printf("PORT %u\n", srv->cfg.port);
	fflush(stdout);

	for (;;) {
		if (sigwait(&sigs, &sig))
			break;
		if (sig != SIGUSR1)
			break;
		srv_print_stats(srv, &start);
	}
	exit_code = 0;

cleanup:
	if (srv->wake_fd >= 0) {
		uint64_t one = 1;

		if (write(srv->wake_fd, &one, sizeof(one)) < 0)
			perror(SRV_NAME ": eventfd write");
	}
	for (unsigned i = 0; i < srv->n_workers; i++)
		if (srv->workers[i].started)
			pthread_join(srv->workers[i].tid, NULL);
	if (!exit_code)
		srv_print_stats(srv, &start);
	for (unsigned i = 0; i < srv->n_workers; i++) {
		struct srv_worker *w = &srv->workers[i];

		while (w->conns) {
			struct srv_conn *c = w->conns;

			w->conns = c->next;
			close(c->fd);
			free(c);
		}
		if (w->epfd >= 0)
			close(w->epfd);
		if (w->inbox_fd >= 0)
			close(w->inbox_fd);
		pthread_mutex_destroy(&w->lock);
	}
	if (srv->listen_fd >= 0)
		close(srv->listen_fd);
	if (srv->wake_fd >= 0)
		close(srv->wake_fd);
	free(srv);
	return exit_code;
}
