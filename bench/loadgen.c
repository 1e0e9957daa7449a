// SPDX-License-Identifier: BSD-2-Clause
/*
 * Open-loop load generator (see loadgen.h) and `pipeline-bench load`.
 *
 * One run: the caller's thread connects every connection (blocking, 1 s
 * timeout each), fixes t0 a millisecond ahead, starts the sender threads
 * and joins them. Sender k owns its connections, an epoll set over them, a
 * histogram, and requests k, k + T, k + 2T, ... of the schedule (T threads),
 * so senders share nothing while they run; main merges their figures after
 * the join.
 *
 * A sender's loop: send every due request while a connection is free (the
 * requests that are due but not sent are just the indices from next_j on:
 * no queue), then sleep in epoll_pwait2 until the next due time, or until a
 * response when every connection is busy (timer slack set to 1 us). Requests
 * [0, n_warm) are the warm-up and are not counted. The schedule ends at
 * window_end; the loop then only drains, up to the deadline. Each turn sends
 * at most one request per connection and handles at most LG_EVENTS events,
 * and the deadline bounds the turns; a connection that breaks is reopened
 * at most LG_RECONNECTS times.
 *
 * One request in flight per connection (no pipelining), so a response is
 * known to answer the connection's current request.
 *
 * Closed loop (opts.closed): no schedule. Every free connection sends its
 * next request at once, so each always has one in flight, and a request's
 * latency runs from its send; those sent in [window_start, window_end) are
 * measured. The achieved rate is then the most the server serves over that
 * many connections.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "histogram.h"
#include "loadgen.h"

#define LG_MAX_THREADS	   64
#define LG_MAX_CONNECTIONS 10000
#define LG_MAX_QPS	   10000000.0
#define LG_IN_CAP	   4096 /* response buffer per connection */
#define LG_EVENTS	   64
#define LG_RECONNECTS	   4 /* per connection and run */
#define LG_PROBE_S	   1.0
#define LG_MAX_HALVINGS	   5	/* auto_scale goes down to qps / 32 at most */
#define LG_PROBE_MIN_SHARE 0.9	/* a probe passes at 90 % of its rate... */
#define LG_PROBE_P99_RATIO 50.0 /* ...and a p99 under 50 x p50 */
#define LG_PROBE_P99_FLOOR 5.0	/* ms: below this no p99 counts as exploded... */
#define LG_PROBE_MAX_LATE  0.1	/* ...and at most 10 % of the sends > 1 ms late */

struct lg_plan {
	struct sockaddr_in addr;
	char host_hdr[64];
	double interval_ns; /* 1e9 / qps */
	unsigned threads;
	uint64_t t0;
	uint64_t n_warm, n_total; /* warm-up [0, n_warm), measured [n_warm, n_total) */
	uint64_t window_start, window_end, deadline; /* ns, CLOCK_MONOTONIC */
	bool closed;				     /* closed loop: no schedule */
};

struct lg_conn {
	int fd; /* -1: dead */
	bool busy;
	bool measured; /* the request in flight counts */
	unsigned reconnects;
	uint64_t idx, due_ns; /* the request in flight (closed loop: sent at due_ns) */
	size_t in_len;
	char in[LG_IN_CAP];
};

struct lg_sender {
	const struct lg_plan *plan;
	unsigned id;
	int epfd;
	bool started;
	pthread_t tid;
	unsigned n_conns, n_free, n_live;
	struct lg_conn *conns;
	unsigned *free_stack;
	struct histogram *hist;
	uint64_t scheduled, sent, completed, errors, late, timeouts;
	uint64_t last_done_ns;
	double cpu_s;
};

static uint64_t lg_due(const struct lg_plan *p, uint64_t idx)
{
	return p->t0 + (uint64_t)((double)idx * p->interval_ns);
}

/* Returns a connected, non-blocking socket, or -errno. */
static int lg_connect(const struct lg_plan *p)
{
	struct timeval tv = {.tv_sec = 1};
	int one = 1, err, fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)); /* bounds connect */
	if (connect(fd, (const struct sockaddr *)&p->addr, sizeof(p->addr))) {
		err = -errno;
		close(fd);
		return err == -EINPROGRESS ? -ETIMEDOUT : err;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	tv = (struct timeval){0};
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	return fd;
}

static bool lg_measured(const struct lg_plan *p, uint64_t idx)
{
	return idx >= p->n_warm;
}

static void lg_conn_free_push(struct lg_sender *s, struct lg_conn *c)
{
	c->busy = false;
	c->in_len = 0;
	s->free_stack[s->n_free++] = (unsigned)(c - s->conns);
}

/* Closes c and opens it again (within its budget). The request in flight,
 * if any, failed. */
static void lg_conn_reset(struct lg_sender *s, struct lg_conn *c)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)(c - s->conns)};
	int fd;

	if (c->busy && c->measured)
		s->errors++;
	close(c->fd);
	c->fd = -1;
	c->busy = false;
	fd = c->reconnects < LG_RECONNECTS ? lg_connect(s->plan) : -1;
	c->reconnects++;
	if (fd >= 0 && epoll_ctl(s->epfd, EPOLL_CTL_ADD, fd, &ev)) {
		close(fd);
		fd = -1;
	}
	if (fd < 0) {
		s->n_live--;
		return;
	}
	c->fd = fd;
	lg_conn_free_push(s, c);
}

/* Sends request idx on a free connection. */
static void lg_send(struct lg_sender *s, uint64_t idx, uint64_t now)
{
	const struct lg_plan *p = s->plan;
	struct lg_conn *c = &s->conns[s->free_stack[--s->n_free]];
	char req[160];
	int len = snprintf(req, sizeof(req), "GET /api/items?id=%llu HTTP/1.1\r\nHost: %s\r\n\r\n",
			   (unsigned long long)(idx % 1000000), p->host_hdr);
	ssize_t n;

	c->busy = true;
	c->idx = idx;
	c->due_ns = p->closed ? now : lg_due(p, idx);
	c->measured =
		p->closed ? now >= p->window_start && now < p->window_end : lg_measured(p, idx);
	c->in_len = 0;
	if (c->measured) {
		s->sent++;
		s->scheduled += p->closed;
		if (now - c->due_ns > LOADGEN_LATE_NS)
			s->late++;
	}
	/* the socket's buffer is empty (one request in flight): all or nothing */
	n = send(c->fd, req, (size_t)len, MSG_NOSIGNAL | MSG_DONTWAIT);
	if (n != len)
		lg_conn_reset(s, c);
}

/* Returns the response's length once c->in holds all of it (its status in
 * *status), 0 while more must come, -1 when it cannot be parsed. */
static long lg_parse(const struct lg_conn *c, unsigned *status, bool *close_after)
{
	const char *end = c->in_len >= 4 ? memmem(c->in, c->in_len, "\r\n\r\n", 4) : NULL;
	const char *line, *eol;
	size_t hdr_len, body_len = 0;

	if (!end)
		return c->in_len == LG_IN_CAP ? -1 : 0;
	hdr_len = (size_t)(end - c->in) + 4;
	if (hdr_len < 13 || strncmp(c->in, "HTTP/1.", 7) || c->in[8] != ' ')
		return -1;
	*status = (unsigned)atoi(c->in + 9);
	*close_after = false;
	/* header lines: each starts after a '\n' and ends at the next; the last
	 * one ends at end + 1 */
	for (line = (const char *)memchr(c->in, '\n', hdr_len) + 1; line < end + 2;
	     line = eol + 1) {
		eol = memchr(line, '\n', (size_t)(end + 2 - line));
		if (!eol)
			break;
		if (!strncasecmp(line, "content-length:", 15))
			body_len = strtoul(line + 15, NULL, 10);
		else if (!strncasecmp(line, "connection:", 11) &&
			 memmem(line, (size_t)(eol - line), "close", 5))
			*close_after = true;
	}
	if (hdr_len + body_len > LG_IN_CAP)
		return -1;
	return c->in_len >= hdr_len + body_len ? (long)(hdr_len + body_len) : 0;
}

static void lg_on_readable(struct lg_sender *s, struct lg_conn *c)
{
	ssize_t n = recv(c->fd, c->in + c->in_len, LG_IN_CAP - c->in_len, MSG_DONTWAIT);
	unsigned status = 0;
	bool close_after = false;
	long len;

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0 || !c->busy) { /* closed, failed, or talking out of turn */
		lg_conn_reset(s, c);
		return;
	}
	c->in_len += (size_t)n;
	len = lg_parse(c, &status, &close_after);
	if (len == 0)
		return;
	if (len < 0 || (size_t)len != c->in_len) { /* garbage, or more than one response */
		lg_conn_reset(s, c);
		return;
	}
	if (c->measured) {
		uint64_t now = bench_now_ns();

		if (status == 200) {
			s->completed++;
			histogram__record(s->hist, now - c->due_ns);
			s->last_done_ns = now;
		} else {
			s->errors++;
		}
	}
	if (close_after) {
		c->busy = false;
		lg_conn_reset(s, c);
		return;
	}
	lg_conn_free_push(s, c);
}

/* Sleeps until a response comes or wake_ns pass, and reads what came. */
static void lg_wait_responses(struct lg_sender *s, uint64_t wake_ns)
{
	struct epoll_event evs[LG_EVENTS];
	struct timespec ts = {.tv_sec = (time_t)(wake_ns / 1000000000u),
			      .tv_nsec = (long)(wake_ns % 1000000000u)};
	int n = epoll_pwait2(s->epfd, evs, LG_EVENTS, &ts, NULL);

	for (int i = 0; i < n; i++) {
		struct lg_conn *c = &s->conns[evs[i].data.u32];

		if (c->fd >= 0)
			lg_on_readable(s, c);
	}
}

/* Closed loop: keeps one request in flight on every connection until the
 * window ends, then drains until the deadline. */
static void lg_sender_closed(struct lg_sender *s)
{
	const struct lg_plan *p = s->plan;
	uint64_t idx = s->id;

	for (;;) {
		uint64_t now = bench_now_ns();

		while (now < p->window_end && s->n_free) {
			lg_send(s, idx, now);
			idx += p->threads;
		}
		if (now >= p->deadline || !s->n_live ||
		    (now >= p->window_end && s->n_free == s->n_live))
			break;
		lg_wait_responses(s, (now < p->window_end ? p->window_end : p->deadline) - now);
	}
}

static void *lg_sender_main(void *arg)
{
	struct lg_sender *s = arg;
	const struct lg_plan *p = s->plan;
	uint64_t n_mine = p->n_total > s->id ? (p->n_total - s->id - 1) / p->threads + 1 : 0;
	uint64_t next_j = 0, now;
	struct timespec cpu;

	prctl(PR_SET_TIMERSLACK, 1000UL, 0, 0, 0); /* wake within 1 us of a due time */
	if (p->closed) {
		lg_sender_closed(s);
		n_mine = 0; /* nothing left unsent */
	}
	for (uint64_t j = 0; j < n_mine; j++)
		s->scheduled += lg_measured(p, s->id + j * p->threads);
	while (!p->closed) {
		uint64_t wake = p->deadline;

		now = bench_now_ns();
		while (next_j < n_mine && s->n_free) {
			uint64_t idx = s->id + next_j * p->threads;

			if (lg_due(p, idx) > now)
				break;
			lg_send(s, idx, now);
			next_j++;
		}
		if ((next_j == n_mine && s->n_free == s->n_live) || !s->n_live ||
		    now >= p->deadline)
			break;
		if (next_j < n_mine && s->n_free) {
			uint64_t due = lg_due(p, s->id + next_j * p->threads);

			wake = due < wake ? due : wake;
		}
		lg_wait_responses(s, wake > now ? wake - now : 0);
	}
	/* what is left: in flight, or never sent (none once the window closed
	 * in time); both count, at the latency they have reached */
	now = bench_now_ns();
	for (unsigned i = 0; i < s->n_conns; i++) {
		struct lg_conn *c = &s->conns[i];

		if (c->fd >= 0 && c->busy && c->measured) {
			s->timeouts++;
			histogram__record(s->hist, now - c->due_ns);
		}
	}
	for (; next_j < n_mine; next_j++) {
		uint64_t idx = s->id + next_j * p->threads, due = lg_due(p, idx);

		if (!lg_measured(p, idx))
			continue;
		if (!s->n_live) { /* every connection broke: these could not be sent */
			s->errors++;
			continue;
		}
		s->timeouts++;
		histogram__record(s->hist, now > due ? now - due : 0);
	}
	if (!clock_gettime(CLOCK_THREAD_CPUTIME_ID, &cpu))
		s->cpu_s = (double)cpu.tv_sec + (double)cpu.tv_nsec / 1e9;
	return NULL;
}

/* Frees what lg_run_once set up; accepts partly built senders. */
static void lg_senders_free(struct lg_sender *senders, unsigned n)
{
	if (!senders)
		return;
	for (unsigned i = 0; i < n; i++) {
		struct lg_sender *s = &senders[i];

		for (unsigned j = 0; s->conns && j < s->n_conns; j++)
			if (s->conns[j].fd >= 0)
				close(s->conns[j].fd);
		if (s->epfd >= 0)
			close(s->epfd);
		free(s->conns);
		free(s->free_stack);
		histogram__free(s->hist);
	}
	free(senders);
}

struct lg_run {
	const struct loadgen_opts *o; /* host, port, connections, threads, closed */
	double qps, warmup_s, seconds, drain_s;
};

/* One run at one rate. Fills r's counts, rates and percentiles (not the
 * scale fields) and adds the latencies to hist_out when not NULL. Returns 0
 * or -errno. */
static int lg_run_once(const struct lg_run *run, struct loadgen_result *r,
		       struct histogram *hist_out)
{
	const struct loadgen_opts *o = run->o;
	struct lg_plan plan = {
		.threads = o->threads, .interval_ns = 1e9 / run->qps, .closed = o->closed};
	struct lg_sender *senders = calloc(o->threads, sizeof(*senders));
	struct histogram *all = histogram__new();
	uint64_t last_done = 0, end;
	int rc = 0;

	if (!senders || !all) {
		rc = -ENOMEM;
		goto cleanup;
	}
	plan.addr = (struct sockaddr_in){.sin_family = AF_INET, .sin_port = htons(o->port)};
	if (inet_pton(AF_INET, o->host, &plan.addr.sin_addr) != 1) {
		rc = -EINVAL;
		goto cleanup;
	}
	snprintf(plan.host_hdr, sizeof(plan.host_hdr), "%s:%u", o->host, o->port);
	plan.n_warm = (uint64_t)llround(run->warmup_s * run->qps);
	plan.n_total = plan.n_warm + (uint64_t)llround(run->seconds * run->qps);
	for (unsigned i = 0; i < o->threads; i++)
		senders[i].epfd = -1;
	for (unsigned i = 0; i < o->threads; i++) {
		struct lg_sender *s = &senders[i];

		s->plan = &plan;
		s->id = i;
		s->n_conns = o->connections / o->threads + (i < o->connections % o->threads);
		s->conns = calloc(s->n_conns, sizeof(*s->conns));
		s->free_stack = calloc(s->n_conns, sizeof(*s->free_stack));
		s->hist = histogram__new();
		s->epfd = epoll_create1(EPOLL_CLOEXEC);
		if (!s->conns || !s->free_stack || !s->hist || s->epfd < 0) {
			rc = s->epfd < 0 ? -errno : -ENOMEM;
			goto cleanup;
		}
		for (unsigned j = 0; j < s->n_conns; j++)
			s->conns[j].fd = -1;
		for (unsigned j = 0; j < s->n_conns; j++) {
			struct lg_conn *c = &s->conns[j];
			struct epoll_event ev = {.events = EPOLLIN, .data.u32 = j};

			rc = lg_connect(&plan);
			if (rc < 0)
				goto cleanup;
			c->fd = rc;
			rc = 0;
			if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, c->fd, &ev)) {
				rc = -errno;
				goto cleanup;
			}
			s->n_live++;
			lg_conn_free_push(s, c);
		}
	}
	plan.t0 = bench_now_ns() + 1000000;
	plan.window_start = lg_due(&plan, plan.n_warm);
	plan.window_end = lg_due(&plan, plan.n_total);
	if (plan.closed) {
		plan.window_start = plan.t0 + (uint64_t)(run->warmup_s * 1e9);
		plan.window_end = plan.window_start + (uint64_t)(run->seconds * 1e9);
	}
	plan.deadline = plan.window_end + (uint64_t)(run->drain_s * 1e9);
	for (unsigned i = 0; i < o->threads; i++) {
		rc = -pthread_create(&senders[i].tid, NULL, lg_sender_main, &senders[i]);
		if (rc)
			break; /* the started ones stop at the deadline */
		senders[i].started = true;
	}
	*r = (struct loadgen_result){0};
	for (unsigned i = 0; i < o->threads; i++) {
		struct lg_sender *s = &senders[i];

		if (!s->started)
			continue;
		pthread_join(s->tid, NULL);
		histogram__merge(all, s->hist);
		r->scheduled += s->scheduled;
		r->sent += s->sent;
		r->completed += s->completed;
		r->errors += s->errors;
		r->late += s->late;
		r->timeouts += s->timeouts;
		r->client_cpu_s += s->cpu_s;
		if (s->last_done_ns > last_done)
			last_done = s->last_done_ns;
	}
	if (rc)
		goto cleanup;
	end = last_done > plan.window_end ? last_done : plan.window_end;
	r->qps_target = run->qps;
	r->seconds = (double)(plan.window_end - plan.window_start) / 1e9;
	r->qps_achieved = (double)r->completed / ((double)(end - plan.window_start) / 1e9);
	r->p50_ms = (double)histogram__percentile(all, 50) / 1e6;
	r->p90_ms = (double)histogram__percentile(all, 90) / 1e6;
	r->p99_ms = (double)histogram__percentile(all, 99) / 1e6;
	r->p999_ms = (double)histogram__percentile(all, 99.9) / 1e6;
	r->max_ms = (double)histogram__max(all) / 1e6;
	r->mean_ms = histogram__mean(all) / 1e6;
	if (hist_out)
		histogram__merge(hist_out, all);

cleanup:
	lg_senders_free(senders, o->threads);
	histogram__free(all);
	return rc;
}

/* Returns true when the probe says the server kept up with its rate. Late
 * sends catch the rate just above what the machine serves: a queue that
 * grows slowly keeps the achieved rate near the target and p99 near 2 x p50
 * within a probe, but holds every connection busy, so sends slip. */
static bool lg_probe_ok(const struct loadgen_result *p, double qps)
{
	if (p->qps_achieved < LG_PROBE_MIN_SHARE * qps)
		return false;
	if ((double)p->late > LG_PROBE_MAX_LATE * (double)p->scheduled)
		return false;
	return !(p->p99_ms > LG_PROBE_P99_FLOOR && p->p99_ms > LG_PROBE_P99_RATIO * p->p50_ms);
}

int loadgen__run(const struct loadgen_opts *o, struct loadgen_result *r)
{
	struct loadgen_opts d = *o;
	struct loadgen_result probe = {0}, first = {0};
	struct lg_run run;
	int rc;

	*r = (struct loadgen_result){0};
	d.host = d.host ? d.host : "127.0.0.1";
	d.qps = d.qps > 0 ? d.qps : LOADGEN_DEFAULT_QPS;
	d.seconds = d.seconds > 0 ? d.seconds : LOADGEN_DEFAULT_SECONDS;
	d.connections = d.connections ? d.connections : LOADGEN_DEFAULT_CONNECTIONS;
	d.threads = d.threads ? d.threads : 1;
	d.probe_s = d.probe_s > 0 ? d.probe_s : LG_PROBE_S;
	if (!d.port || d.port > 65535 || d.qps > LG_MAX_QPS || d.seconds > 86400 ||
	    d.warmup_s < 0 || d.warmup_s > 3600 || d.probe_s > 60 ||
	    d.connections > LG_MAX_CONNECTIONS || d.threads > LG_MAX_THREADS ||
	    d.threads > d.connections || !isfinite(d.qps) || !isfinite(d.seconds))
		return -EINVAL;

	run = (struct lg_run){
		.o = &d, .qps = d.qps, .seconds = d.probe_s, .drain_s = d.probe_s / 2};
	for (int i = 0; d.auto_scale && !d.closed && i <= LG_MAX_HALVINGS; i++) {
		rc = lg_run_once(&run, &probe, NULL);
		if (rc)
			return rc;
		if (i == 0)
			first = probe;
		if (lg_probe_ok(&probe, run.qps) || i == LG_MAX_HALVINGS)
			break;
		run.qps /= 2;
	}
	if (run.qps < d.qps)
		fprintf(stderr,
			"loadgen: %.0f qps is more than this machine serves (a %.1f s probe "
			"achieved %.0f/s, p50 %.2f ms, p99 %.2f ms): scaled down to %.0f qps\n",
			d.qps, d.probe_s, first.qps_achieved, first.p50_ms, first.p99_ms, run.qps);

	run.warmup_s = d.warmup_s;
	run.seconds = d.seconds;
	run.drain_s = fmin(fmax(d.seconds / 4, 1.0), 5.0);
	rc = lg_run_once(&run, r, d.latency_ns);
	if (rc)
		return rc;
	r->qps_target = d.qps;
	r->scaled_qps = run.qps;
	r->scaled_down = run.qps < d.qps;
	return 0;
}

int loadgen_result__write_json(const struct loadgen_result *r, const char *path)
{
	char tmp[4096];
	FILE *f;
	int err = 0;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	f = fopen(tmp, "we");
	if (!f)
		return -errno;
	fprintf(f,
		"{\"qps_target\": %.3f, \"qps_achieved\": %.3f, \"seconds\": %.3f, "
		"\"scheduled\": %llu, \"sent\": %llu, \"completed\": %llu, \"errors\": %llu, "
		"\"timeouts\": %llu, \"late\": %llu, \"p50_ms\": %.4f, \"p90_ms\": %.4f, "
		"\"p99_ms\": %.4f, \"p999_ms\": %.4f, \"max_ms\": %.4f, \"mean_ms\": %.4f, "
		"\"scaled_down\": %s, \"scaled_qps\": %.3f, \"client_cpu_s\": %.4f}\n",
		r->qps_target, r->qps_achieved, r->seconds, (unsigned long long)r->scheduled,
		(unsigned long long)r->sent, (unsigned long long)r->completed,
		(unsigned long long)r->errors, (unsigned long long)r->timeouts,
		(unsigned long long)r->late, r->p50_ms, r->p90_ms, r->p99_ms, r->p999_ms, r->max_ms,
		r->mean_ms, r->scaled_down ? "true" : "false", r->scaled_qps, r->client_cpu_s);
	if (ferror(f))
		err = -EIO;
	if (fclose(f) && !err)
		err = -errno;
	if (!err && rename(tmp, path))
		err = -errno;
	if (err)
		unlink(tmp);
	return err;
}

/* ---- `pipeline-bench load` ---- */

enum ld_opt {
	LD_OPT_HOST,
	LD_OPT_PORT,
	LD_OPT_QPS,
	LD_OPT_SECONDS,
	LD_OPT_CONNECTIONS,
	LD_OPT_THREADS,
	LD_OPT_WARMUP,
	LD_OPT_NO_SCALE,
	LD_OPT_CLOSED,
	LD_OPT_JSON,
	LD_OPT_HELP,
	LD_N_OPTS,
};

struct ld_opt_desc {
	const char *name;
	const char *arg; /* NULL: a flag; else a number in [min, max], except host and json */
	double min, max;
	const char *help;
};

static const struct ld_opt_desc ld_opts[LD_N_OPTS] = {
	[LD_OPT_HOST] = {"host", "ADDR", 0, 0, "server IPv4 address (default 127.0.0.1)"},
	[LD_OPT_PORT] = {"port", "N", 1, 65535, "server port (required)"},
	[LD_OPT_QPS] = {"qps", "Q", 1, LG_MAX_QPS,
			"requests per second, at a constant arrival rate (default 10000)"},
	[LD_OPT_SECONDS] = {"seconds", "S", 0.1, 86400, "measured window (default 10)"},
	[LD_OPT_CONNECTIONS] = {"connections", "C", 1, LG_MAX_CONNECTIONS,
				"keep-alive connections (default 64)"},
	[LD_OPT_THREADS] = {"threads", "T", 1, LG_MAX_THREADS,
			    "sender threads, at most C (default 1)"},
	[LD_OPT_WARMUP] = {"warmup", "S", 0, 3600,
			   "run the schedule this long first, unrecorded (default 1)"},
	[LD_OPT_NO_SCALE] = {"no-scale", NULL, 0, 0,
			     "keep --qps even when a 1 s probe shows the server cannot serve it "
			     "(by default the rate is halved, at most 5 times, and a line says "
			     "so)"},
	[LD_OPT_CLOSED] = {"closed", NULL, 0, 0,
			   "closed loop instead: no rate, every connection sends its next "
			   "request as soon as its response is in; the achieved rate is the "
			   "server's most over C connections, latency runs from each send"},
	[LD_OPT_JSON] = {"json", "FILE", 0, 0, "also write the figures as JSON to FILE"},
	[LD_OPT_HELP] = {"help", NULL, 0, 0, "print this help and exit"},
};

static void ld_usage(FILE *f)
{
	fprintf(f, "Usage: pipeline-bench load --port N [OPTION]...\n"
		   "Open-loop HTTP load on a server (such as pipeline-bench-server): requests\n"
		   "due at a constant rate, latency from each request's due time, so a stalled\n"
		   "server is charged for every request that waited (no coordinated omission).\n"
		   "With --closed, closed-loop load instead: the most the server serves.\n\n"
		   "Options:\n");
	for (size_t i = 0; i < LD_N_OPTS; i++) {
		char lhs[40];

		snprintf(lhs, sizeof(lhs), "--%s%s%s", ld_opts[i].name, ld_opts[i].arg ? " " : "",
			 ld_opts[i].arg ? ld_opts[i].arg : "");
		fprintf(f, "  %-18s %s\n", lhs, ld_opts[i].help);
	}
	fprintf(f, "\nExit status: 0 when the run completed requests, 1 when it could not run or\n"
		   "none completed, 2 on a usage error.\n");
}

struct ld_args {
	struct loadgen_opts o;
	const char *json;
};

/* Returns 0, 1 for --help, or -EINVAL after printing why. */
static int ld_parse(int argc, char **argv, struct ld_args *a)
{
	struct option longopts[LD_N_OPTS + 1];
	int c;

	memset(longopts, 0, sizeof(longopts));
	for (int i = 0; i < LD_N_OPTS; i++)
		longopts[i] = (struct option){
			ld_opts[i].name, ld_opts[i].arg ? required_argument : no_argument, NULL, i};
	*a = (struct ld_args){.o = {.auto_scale = true, .warmup_s = 1}};
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		double v = 0;
		char *end;

		if (c < 0 || c >= LD_N_OPTS) {
			fprintf(stderr,
				"pipeline-bench load: unknown option or missing argument: '%s'\n",
				argv[optind - 1]);
			return -EINVAL;
		}
		if (ld_opts[c].arg && ld_opts[c].max > 0) {
			errno = 0;
			v = strtod(optarg, &end);
			if (errno || *end || !*optarg || !(v >= ld_opts[c].min) ||
			    !(v <= ld_opts[c].max)) {
				fprintf(stderr, "pipeline-bench load: --%s '%s': expected %g-%g\n",
					ld_opts[c].name, optarg, ld_opts[c].min, ld_opts[c].max);
				return -EINVAL;
			}
		}
		switch (c) {
		case LD_OPT_HOST:
			a->o.host = optarg;
			break;
		case LD_OPT_PORT:
			a->o.port = (unsigned)v;
			break;
		case LD_OPT_QPS:
			a->o.qps = v;
			break;
		case LD_OPT_SECONDS:
			a->o.seconds = v;
			break;
		case LD_OPT_CONNECTIONS:
			a->o.connections = (unsigned)v;
			break;
		case LD_OPT_THREADS:
			a->o.threads = (unsigned)v;
			break;
		case LD_OPT_WARMUP:
			a->o.warmup_s = v;
			break;
		case LD_OPT_NO_SCALE:
			a->o.auto_scale = false;
			break;
		case LD_OPT_CLOSED:
			a->o.closed = true;
			break;
		case LD_OPT_JSON:
			a->json = optarg;
			break;
		case LD_OPT_HELP:
			return 1;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "pipeline-bench load: unexpected argument '%s'\n", argv[optind]);
		return -EINVAL;
	}
	if (!a->o.port) {
		fprintf(stderr, "pipeline-bench load: --port is required\n");
		return -EINVAL;
	}
	if (a->o.threads > (a->o.connections ? a->o.connections : LOADGEN_DEFAULT_CONNECTIONS)) {
		fprintf(stderr, "pipeline-bench load: --threads must not exceed --connections\n");
		return -EINVAL;
	}
	return 0;
}

int bench_load__main(int argc, char **argv)
{
	struct ld_args a;
	struct loadgen_result r;
	int rc = ld_parse(argc, argv, &a);

	if (rc > 0) {
		ld_usage(stdout);
		return BENCH_EXIT_OK;
	}
	if (rc) {
		fprintf(stderr, "Try 'pipeline-bench load --help'.\n");
		return BENCH_EXIT_USAGE;
	}
	rc = loadgen__run(&a.o, &r);
	if (rc) {
		fprintf(stderr, "pipeline-bench load: %s:%u: %s\n",
			a.o.host ? a.o.host : "127.0.0.1", a.o.port, strerror(-rc));
		return BENCH_EXIT_ERROR;
	}
	if (a.o.closed)
		printf("load        closed loop, %.1f s, %u connections, %u thread(s)\n", r.seconds,
		       a.o.connections ? a.o.connections : LOADGEN_DEFAULT_CONNECTIONS,
		       a.o.threads ? a.o.threads : 1);
	else
		printf("load        %.0f qps asked, %.0f qps run%s, %.1f s, %u connections, %u "
		       "thread(s)\n",
		       r.qps_target, r.scaled_qps, r.scaled_down ? " (scaled down)" : "", r.seconds,
		       a.o.connections ? a.o.connections : LOADGEN_DEFAULT_CONNECTIONS,
		       a.o.threads ? a.o.threads : 1);
	printf("achieved    %.1f qps\n", r.qps_achieved);
	printf("requests    %llu due, %llu sent, %llu completed, %llu errors, %llu unanswered, "
	       "%llu sent >1 ms late\n",
	       (unsigned long long)r.scheduled, (unsigned long long)r.sent,
	       (unsigned long long)r.completed, (unsigned long long)r.errors,
	       (unsigned long long)r.timeouts, (unsigned long long)r.late);
	printf("latency ms  p50 %.3f  p90 %.3f  p99 %.3f  p99.9 %.3f  max %.3f  mean %.3f "
	       "(from each request's %s)\n",
	       r.p50_ms, r.p90_ms, r.p99_ms, r.p999_ms, r.max_ms, r.mean_ms,
	       a.o.closed ? "send" : "due time");
	printf("client CPU  %.2f s over warm-up, window and drain (about %.1f %% of one CPU)\n",
	       r.client_cpu_s, 100.0 * r.client_cpu_s / (r.seconds + a.o.warmup_s));
	if (a.json) {
		rc = loadgen_result__write_json(&r, a.json);
		if (rc) {
			fprintf(stderr, "pipeline-bench load: cannot write %s: %s\n", a.json,
				strerror(-rc));
			return BENCH_EXIT_ERROR;
		}
	}
	return r.completed ? BENCH_EXIT_OK : BENCH_EXIT_ERROR;
}
