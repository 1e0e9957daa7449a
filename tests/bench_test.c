// SPDX-License-Identifier: BSD-2-Clause
/*
 * bench_test: the overhead suite's parts that can be checked without
 * privileges, on 127.0.0.1 only.
 *   histogram   the error bound against exact percentiles of random data;
 *               merge equals recording into one
 *   server      pipeline-bench-server answers HTTP/1.1 (keep-alive,
 *               pipelined, POST, HTTP/1.0 close) and its exit line parses
 *   loadgen     reaches a modest rate with no errors; latency runs from the
 *               due time (a server delay shows in p50; one slow connection
 *               shows the queueing, not the service time); auto_scale halves
 *               a rate the server cannot serve; closed loop keeps one request
 *               per connection in flight and times each from its send; a
 *               refused port is an error
 * Every check is on counts or on margins much wider than this machine's
 * noise; no check is on the machine's speed.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "test_helpers.h"
#include "histogram.h"
#include "loadgen.h"

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static uint64_t xorshift(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* ---- histogram ---- */

#define HIST_N 200000

/* n values spread log-uniformly over [lo, hi]. */
static void fill_log_uniform(uint64_t *v, size_t n, double lo, double hi, uint64_t seed)
{
	for (size_t i = 0; i < n; i++) {
		double u = (double)(xorshift(&seed) >> 11) / 9007199254740992.0;

		v[i] = (uint64_t)exp(log(lo) + u * (log(hi) - log(lo)));
	}
}

static int test_histogram_error_bound(void)
{
	static const double pcts[] = {0, 0.1, 1, 10, 25, 50, 75, 90, 99, 99.9, 99.99, 100};
	/* 1 us to 100 s in ns; then small values, where buckets are exact */
	static const double ranges[][2] = {{1e3, 1e11}, {1, 5000}, {9e5, 1.1e6}};
	uint64_t *v = malloc(HIST_N * sizeof(*v));
	struct histogram *h = histogram__new();
	double worst = 0;

	CHECK(v && h);
	for (size_t r = 0; r < sizeof(ranges) / sizeof(ranges[0]); r++) {
		histogram__reset(h);
		fill_log_uniform(v, HIST_N, ranges[r][0], ranges[r][1], 0x5eed + r);
		for (size_t i = 0; i < HIST_N; i++)
			histogram__record(h, v[i]);
		qsort(v, HIST_N, sizeof(*v), cmp_u64);
		CHECK_EQ_U64(histogram__count(h), HIST_N);
		CHECK_EQ_U64(histogram__min(h), v[0]);
		CHECK_EQ_U64(histogram__max(h), v[HIST_N - 1]);
		for (size_t i = 0; i < sizeof(pcts) / sizeof(pcts[0]); i++) {
			uint64_t rank = (uint64_t)ceil(pcts[i] / 100.0 * HIST_N);
			uint64_t exact = v[(rank < 1 ? 1 : rank) - 1];
			uint64_t got = histogram__percentile(h, pcts[i]);
			double err = fabs((double)got - (double)exact) / (double)exact;

			if (err > 0.01) {
				fprintf(stderr, "p%g of [%g, %g]: %llu, exact %llu (%.3f %%)\n",
					pcts[i], ranges[r][0], ranges[r][1],
					(unsigned long long)got, (unsigned long long)exact,
					100 * err);
				return 1;
			}
			if (err > worst)
				worst = err;
		}
	}
	printf("     worst percentile error %.3f %% (bound 1 %%)\n", 100 * worst);
	/* below 128 every value has its own bucket */
	histogram__reset(h);
	for (uint64_t i = 1; i <= 100; i++)
		histogram__record(h, i);
	CHECK_EQ_U64(histogram__percentile(h, 50), 50);
	CHECK_EQ_U64(histogram__percentile(h, 99), 99);
	CHECK(fabs(histogram__mean(h) - 50.5) < 1e-9);
	/* far above the top bucket: the exact maximum */
	histogram__record(h, 1ull << 50);
	CHECK_EQ_U64(histogram__percentile(h, 100), 1ull << 50);
	histogram__reset(h);
	CHECK_EQ_U64(histogram__count(h), 0);
	CHECK_EQ_U64(histogram__percentile(h, 50), 0);
	histogram__free(h);
	free(v);
	return 0;
}

static int test_histogram_merge(void)
{
	struct histogram *one = histogram__new(), *a = histogram__new(), *b = histogram__new();
	uint64_t seed = 42;

	CHECK(one && a && b);
	for (int i = 0; i < 50000; i++) {
		uint64_t v = 1000 + xorshift(&seed) % 50000000;

		histogram__record(one, v);
		histogram__record(i % 3 ? a : b, v);
	}
	histogram__record_n(one, 777, 5);
	histogram__record_n(b, 777, 5);
	histogram__merge(a, b);
	CHECK_EQ_U64(histogram__count(a), histogram__count(one));
	CHECK_EQ_U64(histogram__min(a), histogram__min(one));
	CHECK_EQ_U64(histogram__max(a), histogram__max(one));
	CHECK(fabs(histogram__mean(a) - histogram__mean(one)) < 1e-6 * histogram__mean(one));
	for (double p = 0; p <= 100; p += 0.5)
		CHECK_EQ_U64(histogram__percentile(a, p), histogram__percentile(one, p));
	histogram__free(one);
	histogram__free(a);
	histogram__free(b);
	return 0;
}

/* ---- the server, as a child process ---- */

struct srv {
	pid_t pid;
	int out; /* its stdout */
	unsigned port;
};

/* Reads one line from fd into buf within timeout_ms. Returns its length
 * (without the newline) or -1. */
static int read_line(int fd, char *buf, size_t cap, unsigned timeout_ms)
{
	uint64_t end = now_ms() + timeout_ms;
	size_t n = 0;

	while (n + 1 < cap && now_ms() < end) {
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		ssize_t r;

		if (poll(&pfd, 1, 50) <= 0)
			continue;
		r = read(fd, buf + n, 1);
		if (r <= 0)
			break;
		if (buf[n] == '\n') {
			buf[n] = '\0';
			return (int)n;
		}
		n++;
	}
	buf[n] = '\0';
	return -1;
}

/* Starts the server with extra arguments (NULL-terminated). Returns 0 or -1. */
static int srv_start(struct srv *s, const char *const *extra)
{
	const char *argv[16] = {BENCH_SERVER_BIN, "--port", "0"};
	char line[128];
	int p[2], a = 3;

	for (; extra && *extra && a < 15; extra++)
		argv[a++] = *extra;
	argv[a] = NULL;
	*s = (struct srv){.pid = -1, .out = -1};
	if (pipe2(p, O_CLOEXEC))
		return -1;
	s->pid = fork();
	if (s->pid < 0) {
		close(p[0]);
		close(p[1]);
		return -1;
	}
	if (s->pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		dup2(p[1], 1);
		execv(argv[0], (char *const *)argv);
		fprintf(stderr, "cannot run %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	close(p[1]);
	s->out = p[0];
	if (read_line(s->out, line, sizeof(line), 10000) < 0 ||
	    sscanf(line, "PORT %u", &s->port) != 1 || !s->port) {
		fprintf(stderr, "%s did not start (got '%s')\n", BENCH_SERVER_BIN, line);
		return -1;
	}
	return 0;
}

/* Stops the server with SIGTERM and reads its JSON line into line. Returns
 * its exit status, or -1. */
static int srv_stop(struct srv *s, char *line, size_t cap)
{
	int status = -1, rc = -1;
	uint64_t end;

	if (line)
		line[0] = '\0';
	if (s->pid <= 0)
		return -1;
	kill(s->pid, SIGTERM);
	if (line && read_line(s->out, line, cap, 10000) < 0)
		fprintf(stderr, "no line from the server at exit (got '%s')\n", line);
	end = now_ms() + 10000;
	while (waitpid(s->pid, &status, WNOHANG) == 0) {
		if (now_ms() > end) {
			kill(s->pid, SIGKILL);
			waitpid(s->pid, &status, 0);
			break;
		}
		usleep(2000);
	}
	if (WIFEXITED(status))
		rc = WEXITSTATUS(status);
	close(s->out);
	s->pid = -1;
	return rc;
}

/* Parses a flat JSON object of numbers; returns how many of keys it holds
 * (each found once), or -1 when it is not such an object. */
static int json_numbers(const char *s, const char *const *keys, double *vals, int n_keys)
{
	int found = 0;

	while (*s == ' ')
		s++;
	if (*s++ != '{')
		return -1;
	for (;;) {
		const char *k, *ke;
		char *e;
		double v;

		while (*s == ' ')
			s++;
		if (*s++ != '"')
			return -1;
		k = s;
		ke = strchr(s, '"');
		if (!ke)
			return -1;
		s = ke + 1;
		while (*s == ' ')
			s++;
		if (*s++ != ':')
			return -1;
		v = strtod(s, &e);
		if (e == s)
			return -1;
		s = e;
		for (int i = 0; i < n_keys; i++)
			if (strlen(keys[i]) == (size_t)(ke - k) && !strncmp(keys[i], k, ke - k)) {
				vals[i] = v;
				found++;
			}
		while (*s == ' ')
			s++;
		if (*s == '}')
			break;
		if (*s++ != ',')
			return -1;
	}
	return found;
}

static const char *const srv_keys[] = {"requests", "cpu_user_s", "cpu_sys_s", "wall_s"};

static int connect_to(unsigned port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET,
				 .sin_port = htons((uint16_t)port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	struct timeval tv = {.tv_sec = 5};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Reads n complete responses from fd into buf; returns the bytes read, or
 * -1. With n = 0, reads until the server closes. */
static int read_responses(int fd, char *buf, size_t cap, int n)
{
	size_t len = 0;
	int got = 0;

	for (int turn = 0; turn < 1000 && (n == 0 || got < n); turn++) {
		ssize_t r = recv(fd, buf + len, cap - 1 - len, 0);
		const char *p = buf;

		if (r <= 0)
			return n == 0 && r == 0 ? (int)len : -1;
		len += (size_t)r;
		buf[len] = '\0';
		got = 0;
		while ((p = strstr(p, "\r\n\r\n"))) { /* header ends; bodies are JSON */
			const char *cl = NULL;

			for (const char *q = p; q > buf; q--)
				if (!strncmp(q, "Content-Length: ", 16)) {
					cl = q;
					break;
				}
			p += 4;
			if (!cl || (size_t)(p - buf) + strtoul(cl + 16, NULL, 10) > len)
				break;
			p += strtoul(cl + 16, NULL, 10);
			got++;
		}
	}
	return (int)len;
}

static int count_str(const char *s, const char *sub)
{
	int n = 0;

	while ((s = strstr(s, sub))) {
		n++;
		s += strlen(sub);
	}
	return n;
}

static int test_server_answers(void)
{
	static const char get[] = "GET /api/items?id=17 HTTP/1.1\r\nHost: x\r\n\r\n";
	static const char post[] = "POST /api/items HTTP/1.1\r\nHost: x\r\n"
				   "content-length: 11\r\n\r\n{\"a\":12345}";
	static const char http10[] = "GET / HTTP/1.0\r\n\r\n";
	const char *args[] = {"--threads", "2", "--work-us", "20", NULL};
	char buf[8192], line[256];
	double vals[4] = {-1, -1, -1, -1};
	struct srv s;
	int fd, n;

	CHECK(srv_start(&s, args) == 0);
	fd = connect_to(s.port);
	CHECK(fd >= 0);
	/* keep-alive: two requests one after the other on one connection */
	for (int i = 0; i < 2; i++) {
		CHECK(send(fd, get, strlen(get), 0) == (ssize_t)strlen(get));
		n = read_responses(fd, buf, sizeof(buf), 1);
		CHECK(n > 0);
		CHECK(!strncmp(buf, "HTTP/1.1 200 OK\r\n", 17));
		CHECK(strstr(buf, "Content-Type: application/json\r\n"));
		CHECK(strstr(buf, "\r\n\r\n{\"id\":17,"));
		CHECK(buf[n - 1] == '}');
	}
	/* pipelined: a POST and a GET in one write, answered in order */
	snprintf(line, sizeof(line), "%s%s", post, get);
	CHECK(send(fd, line, strlen(line), 0) == (ssize_t)strlen(line));
	n = read_responses(fd, buf, sizeof(buf), 2);
	CHECK(n > 0);
	CHECK_EQ_U64(count_str(buf, "HTTP/1.1 200 OK"), 2);
	CHECK(strstr(buf, "{\"id\":17,"));
	close(fd);
	/* HTTP/1.0 without keep-alive: the server closes after the response */
	fd = connect_to(s.port);
	CHECK(fd >= 0);
	CHECK(send(fd, http10, strlen(http10), 0) == (ssize_t)strlen(http10));
	n = read_responses(fd, buf, sizeof(buf), 0);
	CHECK(n > 0);
	CHECK(strstr(buf, "Connection: close\r\n"));
	close(fd);
	/* a malformed request: 400 and close */
	fd = connect_to(s.port);
	CHECK(fd >= 0);
	CHECK(send(fd, "\r\n\r\n", 4, 0) == 4);
	n = read_responses(fd, buf, sizeof(buf), 0);
	CHECK(n > 0 && !strncmp(buf, "HTTP/1.1 400", 12));
	close(fd);

	CHECK(srv_stop(&s, line, sizeof(line)) == 0);
	printf("     server: %s\n", line);
	CHECK(json_numbers(line, srv_keys, vals, 4) == 4);
	CHECK(vals[0] == 5);
	CHECK(vals[1] >= 0 && vals[2] >= 0 && vals[3] > 0);
	CHECK(vals[1] + vals[2] < vals[3] * 2 + 0.1); /* at most 2 threads' worth */
	return 0;
}

static int test_server_usage(void)
{
	const char *args[] = {"--threads", "0", NULL};
	struct srv s;
	int status;

	CHECK(srv_start(&s, args) != 0); /* no PORT line */
	waitpid(s.pid, &status, 0);
	close(s.out);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 2);
	return 0;
}

/* ---- the load generator against the server ---- */

static void print_result(const char *what, const struct loadgen_result *r)
{
	printf("     %s: %.0f qps asked, %.0f run, %.1f achieved; %llu due, %llu sent, %llu done, "
	       "%llu errors, %llu unanswered, %llu late; p50 %.3f p90 %.3f p99 %.3f p99.9 %.3f "
	       "max %.3f ms\n",
	       what, r->qps_target, r->scaled_qps, r->qps_achieved,
	       (unsigned long long)r->scheduled, (unsigned long long)r->sent,
	       (unsigned long long)r->completed, (unsigned long long)r->errors,
	       (unsigned long long)r->timeouts, (unsigned long long)r->late, r->p50_ms, r->p90_ms,
	       r->p99_ms, r->p999_ms, r->max_ms);
}

static int test_loadgen_rate(void)
{
	struct histogram *h = histogram__new();
	struct loadgen_result r;
	double vals[4] = {0};
	char line[256];
	struct srv s;
	int rc;

	CHECK(h);
	CHECK(srv_start(&s, (const char *[]){"--threads", "2", NULL}) == 0);
	rc = loadgen__run(&(struct loadgen_opts){.port = s.port,
						 .qps = 2000,
						 .seconds = 2,
						 .connections = 16,
						 .latency_ns = h},
			  &r);
	CHECK(srv_stop(&s, line, sizeof(line)) == 0);
	CHECK(rc == 0);
	print_result("2000 qps", &r);
	printf("     server: %s\n", line);
	CHECK_EQ_U64(r.scheduled, 4000);
	CHECK_EQ_U64(r.sent, 4000);
	CHECK_EQ_U64(r.completed, 4000);
	CHECK_EQ_U64(r.errors, 0);
	CHECK_EQ_U64(r.timeouts, 0);
	CHECK(r.qps_achieved >= 0.95 * 2000);
	CHECK(!r.scaled_down && r.scaled_qps == 2000 && r.qps_target == 2000);
	CHECK(r.p50_ms > 0 && r.p50_ms <= r.p90_ms && r.p90_ms <= r.p99_ms &&
	      r.p99_ms <= r.p999_ms && r.p999_ms <= r.max_ms);
	CHECK_EQ_U64(histogram__count(h), 4000);
	CHECK(json_numbers(line, srv_keys, vals, 4) == 4);
	CHECK(vals[0] >= 4000);
	histogram__free(h);
	return 0;
}

/* A server delay of 5 ms shows in p50 (two sender threads, each with half
 * the connections and every other request). */
static int test_loadgen_delay(void)
{
	struct loadgen_result r;
	struct srv s;
	int rc;

	CHECK(srv_start(&s, (const char *[]){"--delay-us", "5000", "--work-us", "10", NULL}) == 0);
	rc = loadgen__run(
		&(struct loadgen_opts){
			.port = s.port, .qps = 200, .seconds = 1, .connections = 16, .threads = 2},
		&r);
	CHECK(srv_stop(&s, NULL, 0) == 0);
	CHECK(rc == 0);
	print_result("5 ms delay, 2 sender threads", &r);
	CHECK_EQ_U64(r.completed, 200);
	CHECK_EQ_U64(r.errors, 0);
	CHECK(r.p50_ms >= 5.0 * 0.99);
	CHECK(r.p50_ms < 5.0 + 20.0);
	return 0;
}

/* One connection, 200 requests a second, 10 ms each: the server answers 100
 * a second, so requests queue, and a request's latency is its wait plus its
 * service: about 5i + 10 ms for request i, p50 near 500 ms. A generator that
 * timed from the actual send would report about 10 ms. */
static int test_loadgen_no_coordinated_omission(void)
{
	struct loadgen_result r;
	struct srv s;
	int rc;

	CHECK(srv_start(&s, (const char *[]){"--delay-us", "10000", "--work-us", "10", "--threads",
					     "1", NULL}) == 0);
	rc = loadgen__run(
		&(struct loadgen_opts){.port = s.port, .qps = 200, .seconds = 1, .connections = 1},
		&r);
	CHECK(srv_stop(&s, NULL, 0) == 0);
	CHECK(rc == 0);
	print_result("1 connection, 10 ms each", &r);
	CHECK_EQ_U64(r.scheduled, 200);
	CHECK_EQ_U64(r.errors, 0);
	CHECK_EQ_U64(r.completed + r.timeouts, 200);
	CHECK(r.p50_ms > 100);
	CHECK(r.max_ms > 500);
	CHECK(r.late > 100);
	CHECK(r.qps_achieved < 120);
	return 0;
}

/* About 3 ms of work per request on one thread: some 300 requests a second.
 * Asked for 2000, auto_scale must come down to 250 (or 500 on a fast
 * machine) and say so. */
static int test_loadgen_auto_scale(void)
{
	struct loadgen_result r;
	struct srv s;
	int rc;

	CHECK(srv_start(&s, (const char *[]){"--threads", "1", "--work-us", "3000", NULL}) == 0);
	rc = loadgen__run(&(struct loadgen_opts){.port = s.port,
						 .qps = 2000,
						 .seconds = 0.5,
						 .connections = 8,
						 .auto_scale = true,
						 .probe_s = 0.3},
			  &r);
	CHECK(srv_stop(&s, NULL, 0) == 0);
	CHECK(rc == 0);
	print_result("auto scale", &r);
	CHECK(r.scaled_down);
	CHECK(r.qps_target == 2000);
	CHECK(r.scaled_qps <= 500 && r.scaled_qps >= 2000.0 / 32);
	CHECK(r.completed > 0);
	return 0;
}

/* Closed loop, 4 connections, each response held back 10 ms: each
 * connection completes one request per 10 ms or so, 400 a second at most,
 * and a request's latency is its own 10 ms (from its send), not a queue. */
static int test_loadgen_closed(void)
{
	struct loadgen_result r;
	struct srv s;
	int rc;

	CHECK(srv_start(&s, (const char *[]){"--delay-us", "10000", "--work-us", "10", NULL}) == 0);
	rc = loadgen__run(&(struct loadgen_opts){.port = s.port,
						 .seconds = 1,
						 .connections = 4,
						 .warmup_s = 0.2,
						 .closed = true},
			  &r);
	CHECK(srv_stop(&s, NULL, 0) == 0);
	CHECK(rc == 0);
	print_result("closed loop, 4 connections, 10 ms each", &r);
	CHECK_EQ_U64(r.errors, 0);
	CHECK_EQ_U64(r.scheduled, r.sent);
	CHECK(r.completed >= 100);
	CHECK(r.completed <= 4 * 100 + 4);
	CHECK(r.p50_ms >= 10.0 * 0.99);
	CHECK(r.p50_ms < 10.0 + 20.0);
	CHECK(r.max_ms < 200);
	return 0;
}

static int test_loadgen_refused(void)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(sa);
	struct loadgen_result r;
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	/* a port that was free a moment ago and has no listener */
	CHECK(fd >= 0);
	CHECK(!bind(fd, (struct sockaddr *)&sa, sizeof(sa)));
	CHECK(!getsockname(fd, (struct sockaddr *)&sa, &len));
	close(fd);
	CHECK(loadgen__run(&(struct loadgen_opts){.port = ntohs(sa.sin_port), .seconds = 1}, &r) ==
	      -ECONNREFUSED);
	CHECK(loadgen__run(&(struct loadgen_opts){.port = 1, .connections = 2, .threads = 3}, &r) ==
	      -EINVAL);
	CHECK(loadgen__run(&(struct loadgen_opts){.port = 0}, &r) == -EINVAL);
	return 0;
}

static const struct test_case cases[] = {
	{"histogram_error_bound", test_histogram_error_bound},
	{"histogram_merge", test_histogram_merge},
	{"server_answers", test_server_answers},
	{"server_usage", test_server_usage},
	{"loadgen_rate", test_loadgen_rate},
	{"loadgen_delay", test_loadgen_delay},
	{"loadgen_no_coordinated_omission", test_loadgen_no_coordinated_omission},
	{"loadgen_auto_scale", test_loadgen_auto_scale},
	{"loadgen_closed", test_loadgen_closed},
	{"loadgen_refused", test_loadgen_refused},
};

TEST_MAIN(cases)
