// SPDX-License-Identifier: BSD-2-Clause
/*
 * Stage 6, the exporter: OTLP/HTTP requests per second through the agent's
 * own I/O loop (exporter/exporter.h: otlp_exporter__new, __submit, __stats)
 * to a receiver on 127.0.0.1 in this process, with Content-Encoding gzip
 * and without, for two request sizes: the 1k-stack interval of the encoder
 * stage (1000 stacks over 20 processes, 99 Hz x 8 CPUs x 10 s, timestamps)
 * and a small one (20 stacks, 2 processes, 99 Hz x 2 CPUs x 10 s). The
 * bodies are encoded once with otlp__encode, outside the timer.
 *
 * The receiver is one thread, poll(2) over non-blocking sockets: it reads
 * each request head, skips Content-Length body bytes without looking at
 * them (no gunzip, no protobuf parse: a collector would do both) and
 * answers 200 with an empty body. So the figure is the exporter's side:
 * queueing, compression on the pl-io thread, HTTP framing and io_uring
 * socket I/O over one keep-alive connection, plus the loopback's cost; on
 * a machine with few CPUs the receiver and the submitting thread share them.
 *
 * The submitting (main) thread keeps up to INFLIGHT requests queued, each a
 * malloc'ed copy of the body (the exporter takes ownership of what it is
 * given), and checks the counters every 200 us. A repetition submits until
 * its count or an eighth of the time budget is spent, then waits for every
 * request to be answered; the figure is requests answered 2xx per second of
 * wall time, with raw (protobuf) and wire (body as sent) bytes per second.
 * Failed, dropped and retried requests are counted in `errors` (and must
 * stay 0 against this receiver).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bench.h"
#include "encoder.h"
#include "exporter.h"
#include "synth.h"
#include "throughput.h"

#define STAGE	      "exporter"
#define MAX_CONNS     8
#define HEAD_MAX      16384
#define INFLIGHT      16
#define BASE_REQUESTS 100000	     /* per repetition, full run: the time budget ends it first */
#define POLL_NS	      200000	     /* submitting thread's counter check */
#define DRAIN_MAX_NS  15000000000ull /* after the last submit: > the request timeout */
#define TIMEOUT_MS    10000

static const char response[] = "HTTP/1.1 200 OK\r\n"
			       "Content-Type: application/x-protobuf\r\n"
			       "Content-Length: 0\r\n"
			       "\r\n";

struct rx_conn {
	int fd; /* -1: free */
	char head[HEAD_MAX];
	size_t head_len;
	uint64_t body_left; /* > 0: skipping a body */
	bool in_body;
};

/* The loopback receiver. The thread owns the sockets; counters are read by
 * the main thread after join, or relaxed while running. */
struct rx {
	int lfd;
	uint16_t port;
	pthread_t th;
	bool started;
	atomic_bool stop;
	atomic_uint_fast64_t requests, bytes, bad;
	struct rx_conn conns[MAX_CONNS];
	char scratch[1 << 16]; /* body bytes are read into it and forgotten */
};

/* Returns the Content-Length of a complete head (ended by CRLF CRLF), or -1. */
static long long head_content_length(const char *head, size_t len)
{
	const char *p = head, *end = head + len;

	while (p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		size_t n = eol ? (size_t)(eol - p) : (size_t)(end - p);

		if (n > 15 && !strncasecmp(p, "content-length:", 15)) {
			char num[24];
			size_t k = n - 15 < sizeof(num) - 1 ? n - 15 : sizeof(num) - 1;

			memcpy(num, p + 15, k);
			num[k] = 0;
			return strtoll(num, NULL, 10);
		}
		if (!eol)
			break;
		p = eol + 1;
	}
	return -1;
}

static void rx_close(struct rx_conn *c)
{
	close(c->fd);
	c->fd = -1;
}

/* Consumes what c->head holds: heads, then their bodies. Returns false if
 * the connection must be closed. */
static bool rx_parse(struct rx *rx, struct rx_conn *c)
{
	for (;;) {
		char *end;
		size_t used;
		long long cl;

		if (c->in_body) {
			size_t n = c->head_len < c->body_left ? c->head_len : (size_t)c->body_left;

			memmove(c->head, c->head + n, c->head_len - n);
			c->head_len -= n;
			c->body_left -= n;
			atomic_fetch_add_explicit(&rx->bytes, n, memory_order_relaxed);
			if (c->body_left)
				return true;
			c->in_body = false;
			atomic_fetch_add_explicit(&rx->requests, 1, memory_order_relaxed);
			if (send(c->fd, response, sizeof(response) - 1, MSG_NOSIGNAL) !=
			    (ssize_t)sizeof(response) - 1)
				return false;
			continue;
		}
		end = memmem(c->head, c->head_len, "\r\n\r\n", 4);
		if (!end)
			return c->head_len < HEAD_MAX; /* a head larger than that: close */
		used = (size_t)(end - c->head) + 4;
		cl = head_content_length(c->head, used);
		if (cl < 0) {
			atomic_fetch_add_explicit(&rx->bad, 1, memory_order_relaxed);
			return false;
		}
		memmove(c->head, c->head + used, c->head_len - used);
		c->head_len -= used;
		c->body_left = (uint64_t)cl;
		c->in_body = true;
	}
}

static void *rx_main(void *arg)
{
	struct rx *rx = arg;

	while (!atomic_load_explicit(&rx->stop, memory_order_acquire)) {
		struct pollfd pfd[MAX_CONNS + 1];
		int idx[MAX_CONNS + 1], n = 0;

		pfd[n] = (struct pollfd){.fd = rx->lfd, .events = POLLIN};
		idx[n++] = -1;
		for (int i = 0; i < MAX_CONNS; i++)
			if (rx->conns[i].fd >= 0) {
				pfd[n] = (struct pollfd){.fd = rx->conns[i].fd, .events = POLLIN};
				idx[n++] = i;
			}
		if (poll(pfd, (nfds_t)n, 50) <= 0)
			continue;
		for (int k = 0; k < n; k++) {
			struct rx_conn *c;
			ssize_t got;

			if (!pfd[k].revents)
				continue;
			if (idx[k] < 0) {
				int fd = accept4(rx->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
				int i;

				for (i = 0; fd >= 0 && i < MAX_CONNS && rx->conns[i].fd >= 0; i++)
					;
				if (fd >= 0 && i == MAX_CONNS)
					close(fd);
				else if (fd >= 0)
					rx->conns[i] = (struct rx_conn){.fd = fd};
				continue;
			}
			c = &rx->conns[idx[k]];
			if (c->in_body && !c->head_len) {
				size_t want = c->body_left < sizeof(rx->scratch)
						      ? (size_t)c->body_left
						      : sizeof(rx->scratch);

				got = recv(c->fd, rx->scratch, want, 0);
				if (got > 0) {
					c->body_left -= (uint64_t)got;
					atomic_fetch_add_explicit(&rx->bytes, (uint64_t)got,
								  memory_order_relaxed);
					if (!c->body_left && !rx_parse(rx, c))
						rx_close(c);
					continue;
				}
			} else {
				got = recv(c->fd, c->head + c->head_len, HEAD_MAX - c->head_len, 0);
				if (got > 0) {
					c->head_len += (size_t)got;
					if (!rx_parse(rx, c))
						rx_close(c);
					continue;
				}
			}
			if (got == 0 || (errno != EAGAIN && errno != EINTR))
				rx_close(c);
		}
	}
	return NULL;
}

/* Listens on 127.0.0.1 (a free port) and starts the thread. Returns 0 or -errno. */
static int rx_start(struct rx *rx)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(sa);
	int err;

	rx->lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (rx->lfd < 0)
		return -errno;
	if (bind(rx->lfd, (struct sockaddr *)&sa, sizeof(sa)) || listen(rx->lfd, 16) ||
	    getsockname(rx->lfd, (struct sockaddr *)&sa, &len))
		return -errno;
	rx->port = ntohs(sa.sin_port);
	err = -pthread_create(&rx->th, NULL, rx_main, rx);
	rx->started = !err;
	return err;
}

/* Stops the thread and closes every socket. Accepts a partly started rx. */
static void rx_stop(struct rx *rx)
{
	atomic_store_explicit(&rx->stop, true, memory_order_release);
	if (rx->started)
		pthread_join(rx->th, NULL);
	rx->started = false;
	for (int i = 0; i < MAX_CONNS; i++)
		if (rx->conns[i].fd >= 0)
			rx_close(&rx->conns[i]);
	if (rx->lfd >= 0)
		close(rx->lfd);
	rx->lfd = -1;
}

struct body {
	const char *label;
	struct synth_interval_cfg icfg;
	size_t pool_user, pool_kernel;
	struct encoded_buf buf; /* owned */
};

static const struct otlp_attr agent_attrs[] = {
	{"service.name", "pipeline"},
};

/* Encodes one interval into one OTLP request. Returns 0 or -errno. */
static int body_encode(struct body *bd, uint64_t seed)
{
	struct synth *s = synth__new(bd->pool_user, bd->pool_kernel, seed);
	struct synth_interval *si = NULL;
	struct otlp_encode_opts eo = {
		.agent_name = "pipeline",
		.agent_version = PIPELINE_VERSION,
		.resource_attrs = agent_attrs,
		.n_resource_attrs = sizeof(agent_attrs) / sizeof(agent_attrs[0]),
		.timestamps = true,
	};
	struct encoded_buf *out = NULL;
	size_t n_out = 0;
	int err = 0;

	if (!s)
		return -errno;
	bd->icfg.seed = seed;
	si = synth_interval__new(s, &bd->icfg);
	if (!si) {
		err = -errno;
		goto cleanup;
	}
	const struct profile *p = &si->profile;
	err = otlp__encode(&p, 1, &eo, &out, &n_out);
	if (err)
		goto cleanup;
	if (n_out == 1) {
		bd->buf = out[0];
		out[0].data = NULL;
	} else {
		err = -EINVAL; /* max_request_bytes 0: always one request */
	}
	for (size_t i = 0; i < n_out; i++)
		free(out[i].data);
	free(out);
cleanup:
	synth_interval__free(si);
	synth__free(s);
	return err;
}

static uint64_t settled(const struct otlp_exporter_stats *st)
{
	return st->requests_sent + st->requests_failed + st->requests_dropped;
}

/* One repetition: returns 0 or -errno. */
static int export_rep(const struct tp_cfg *cfg, struct otlp_exporter *ex, const struct body *bd,
		      struct bench_row *row)
{
	struct otlp_exporter_stats s0, s1;
	uint64_t n = tp_ops(cfg, BASE_REQUESTS), submitted = 0, t0, deadline, hard, ns;
	uint64_t errors;
	double secs;

	otlp_exporter__stats(ex, &s0);
	t0 = bench_now_ns();
	deadline = t0 + cfg->budget_ns / 8;
	hard = deadline + DRAIN_MAX_NS;
	for (;;) {
		struct timespec nap = {.tv_nsec = POLL_NS};
		uint64_t now = bench_now_ns(), done;

		otlp_exporter__stats(ex, &s1);
		done = settled(&s1) - settled(&s0);
		if (done >= submitted && (submitted >= n || now > deadline))
			break;
		if (now > hard) {
			fprintf(stderr,
				"pipeline-bench: " STAGE
				": %llu requests unanswered after %llu s\n",
				(unsigned long long)(submitted - done),
				(unsigned long long)(DRAIN_MAX_NS / 1000000000ull));
			break;
		}
		while (submitted - done < INFLIGHT && submitted < n && now <= deadline) {
			void *copy = malloc(bd->buf.len);
			int err;

			if (!copy)
				return -ENOMEM;
			memcpy(copy, bd->buf.data, bd->buf.len);
			err = otlp_exporter__submit(ex, copy, bd->buf.len); /* takes copy */
			if (err) {
				fprintf(stderr, "pipeline-bench: " STAGE ": submit: %s\n",
					strerror(-err));
				return err;
			}
			submitted++;
		}
		nanosleep(&nap, NULL);
	}
	ns = bench_now_ns() - t0;
	secs = (double)ns / 1e9;
	errors = (s1.requests_failed - s0.requests_failed) +
		 (s1.requests_dropped - s0.requests_dropped) +
		 (s1.requests_retried - s0.requests_retried) +
		 (submitted - (settled(&s1) - settled(&s0)));
	bench_row__rep(row, s1.requests_sent - s0.requests_sent, ns);
	bench_row__extra(row, "raw_mib_s", (double)(s1.bytes_raw - s0.bytes_raw) / secs / 1048576);
	bench_row__extra(row, "wire_mib_s",
			 (double)(s1.bytes_sent - s0.bytes_sent) / secs / 1048576);
	bench_row__extra(row, "wire_kib_per_req",
			 s1.requests_sent > s0.requests_sent
				 ? (double)(s1.bytes_sent - s0.bytes_sent) / 1024 /
					   (double)(s1.requests_sent - s0.requests_sent)
				 : 0);
	bench_row__extra(row, "errors", (double)errors);
	return 0;
}

/* All repetitions of one row on a fresh exporter: one request first, untimed,
 * to connect. Returns 0 or -errno. */
static int export_row(const struct tp_cfg *cfg, const struct rx *rx, const struct body *bd,
		      bool gzip, struct bench_row *row)
{
	char url[64];
	struct otlp_exporter_opts xo = {
		.url = url,
		.gzip = gzip,
		.timeout_ms = TIMEOUT_MS,
		.max_queue_bytes = 64u << 20,
		.user_agent = "pipeline-bench/" PIPELINE_VERSION,
	};
	struct otlp_exporter_stats st;
	struct otlp_exporter *ex;
	uint64_t until;
	void *copy;
	int err = 0;

	snprintf(url, sizeof(url), "http://127.0.0.1:%u/v1development/profiles", rx->port);
	ex = otlp_exporter__new(&xo);
	if (!ex)
		return -errno; /* otlp_exporter__new said why */
	copy = malloc(bd->buf.len);
	if (!copy) {
		err = -ENOMEM;
		goto cleanup;
	}
	memcpy(copy, bd->buf.data, bd->buf.len);
	err = otlp_exporter__submit(ex, copy, bd->buf.len);
	until = bench_now_ns() + DRAIN_MAX_NS;
	do {
		struct timespec nap = {.tv_nsec = POLL_NS};

		nanosleep(&nap, NULL);
		otlp_exporter__stats(ex, &st);
	} while (!err && !settled(&st) && bench_now_ns() < until);
	if (!err && st.requests_sent != 1) {
		err = -EIO;
		fprintf(stderr, "pipeline-bench: " STAGE ": the first request to %s failed\n", url);
	}
	for (unsigned k = 0; k < cfg->repeat && !err; k++)
		err = export_rep(cfg, ex, bd, row);
cleanup:
	otlp_exporter__shutdown(ex, 1000);
	otlp_exporter__free(ex);
	return err;
}

int tp_export__run(const struct tp_cfg *cfg, struct bench_report *rep)
{
	struct body bodies[] = {
		{"1k-stack",
		 {.n_stacks = 1000,
		  .min_depth = 20,
		  .max_depth = 30,
		  .n_processes = 20,
		  .n_cpus = 8,
		  .hz = 99,
		  .seconds = 10},
		 4096,
		 512,
		 {0}},
		{"20-stack",
		 {.n_stacks = 20,
		  .min_depth = 20,
		  .max_depth = 30,
		  .n_processes = 2,
		  .n_cpus = 2,
		  .hz = 99,
		  .seconds = 10},
		 256,
		 64,
		 {0}},
	};
	const size_t n_bodies = sizeof(bodies) / sizeof(bodies[0]);
	struct bench_row *rows[2][2];
	struct rx *rx = calloc(1, sizeof(*rx));
	int err = 0;

	if (!rx)
		return -ENOMEM;
	rx->lfd = -1;
	for (int i = 0; i < MAX_CONNS; i++)
		rx->conns[i].fd = -1;
	for (size_t i = 0; i < n_bodies && !err; i++)
		err = body_encode(&bodies[i], cfg->seed + i);
	if (err) {
		fprintf(stderr, "pipeline-bench: " STAGE ": cannot encode the requests: %s\n",
			strerror(-err));
		goto cleanup;
	}
	for (size_t i = 0; i < n_bodies && !err; i++)
		for (int gz = 1; gz >= 0 && !err; gz--) {
			char name[64];
			struct bench_row *row;

			snprintf(name, sizeof(name), "OTLP/HTTP %s, %s request",
				 gz ? "gzip" : "none", bodies[i].label);
			row = bench_report__row(rep, STAGE, name);
			if (!row) {
				err = -errno;
				break;
			}
			bench_row__note(row, "per request to 127.0.0.1, %zu KiB raw, 1 connection",
					bodies[i].buf.len >> 10);
			rows[i][gz] = row;
		}
	if (err)
		goto cleanup;
	err = rx_start(rx);
	if (err) {
		fprintf(stderr, "pipeline-bench: " STAGE ": cannot listen on 127.0.0.1: %s\n",
			strerror(-err));
		goto cleanup;
	}
	for (size_t i = 0; i < n_bodies && !err; i++)
		for (int gz = 1; gz >= 0 && !err; gz--)
			err = export_row(cfg, rx, &bodies[i], gz, rows[i][gz]);
	if (atomic_load(&rx->bad))
		fprintf(stderr, "pipeline-bench: " STAGE ": %llu requests without Content-Length\n",
			(unsigned long long)atomic_load(&rx->bad));
cleanup:
	rx_stop(rx);
	free(rx);
	for (size_t i = 0; i < n_bodies; i++)
		free(bodies[i].buf.data);
	return err;
}
