// SPDX-License-Identifier: BSD-2-Clause
/*
 * Gap detector (see gap.h). One spinning thread per detector, pinned with
 * sched_setaffinity. The caller and the thread share two words:
 *
 *   cmd  written by the caller (release), read by the thread every
 *        GAP_POLL_LOOPS iterations (acquire): seq << 2 | op
 *   ack  written by the thread (release) once it has carried out command
 *        seq, read by the caller (acquire); the figures of an END command
 *        are in g->res before ack is released
 *
 * so g->res needs no lock. The loop is bounded by GAP_MAX_LIFETIME_S even
 * if the caller never says EXIT.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#if defined(__x86_64__) || defined(__i386__)
#include <x86intrin.h>
#endif

#include "bench.h"
#include "gap.h"

#define GAP_POLL_LOOPS	   256 /* iterations between looks at the command word */
#define GAP_MAX_LIFETIME_S (4 * 3600)
#define GAP_ANSWER_MS	   2000 /* how long the caller waits for the thread */

enum gap_op {
	GAP_OP_BEGIN = 1,
	GAP_OP_END = 2,
	GAP_OP_EXIT = 3,
};

struct gap_detector {
	int cpu;
	double threshold_us;
	double ticks_per_us;
	uint64_t threshold_ticks;
	pthread_t thread;
	bool joined;
	bool window_open;
	uint32_t seq;	       /* caller only */
	_Atomic uint32_t cmd;  /* caller -> thread */
	_Atomic uint32_t ack;  /* thread -> caller */
	_Atomic int ready;     /* thread -> caller at start: 1 running, -errno failed */
	struct gap_result res; /* written by the thread before ack (END) */
	/* The window's gaps with their times, and its ends on both clocks:
	 * written by the thread between BEGIN and END, read by the caller
	 * after END's ack. */
	struct gap_event *ev; /* GAP_MAX_EVENTS */
	uint32_t n_ev;
	uint64_t ev_lost;
	uint64_t t0, t1;   /* ticks at the window's start and end */
	uint64_t ns0, ns1; /* CLOCK_MONOTONIC at the same moments */
	bool have_window;
};

/* One gap: where it started (the last read before it) and how long. */
struct gap_event {
	uint64_t start;
	uint32_t len;	   /* ticks, saturated */
	uint32_t switched; /* the thread was switched out */
};

/* The time-stamp counter, or CLOCK_MONOTONIC in ns where there is none. */
static inline uint64_t gap_ticks(void)
{
#if defined(__x86_64__) || defined(__i386__)
	return __rdtsc();
#elif defined(__aarch64__)
	uint64_t v;

	__asm__ volatile("mrs %0, cntvct_el0" : "=r"(v));
	return v;
#else
	return bench_now_ns();
#endif
}

/* Voluntary plus involuntary context switches of the calling thread. */
static long gap_ctx_switches(void)
{
	struct rusage ru;

	if (getrusage(RUSAGE_THREAD, &ru))
		return 0;
	return ru.ru_nvcsw + ru.ru_nivcsw;
}

static unsigned gap_bucket(double us)
{
	unsigned i = 0;
	uint64_t v = (uint64_t)us;

	while (v > 1 && i < GAP_BUCKETS - 1) {
		v >>= 1;
		i++;
	}
	return i;
}

double gap_bucket__lo_us(unsigned i)
{
	return i ? (double)(1ull << i) : 0.0;
}

/* Ticks per µs: the counter against CLOCK_MONOTONIC over about 0.2 s, the
 * median of three rounds. */
static double gap_calibrate(void)
{
	double r[3];

	for (int k = 0; k < 3; k++) {
		uint64_t t0 = bench_now_ns(), c0 = gap_ticks();
		struct timespec ts = {0, 70 * 1000 * 1000};

		nanosleep(&ts, NULL);
		uint64_t t1 = bench_now_ns(), c1 = gap_ticks();
		r[k] = (double)(c1 - c0) / ((double)(t1 - t0) / 1e3);
	}
	double lo = r[0] < r[1] ? r[0] : r[1], hi = r[0] < r[1] ? r[1] : r[0];

	return r[2] < lo ? lo : r[2] > hi ? hi : r[2];
}

static void gap_record(struct gap_detector *g, struct gap_result *r, uint64_t start, uint64_t d,
		       bool switched)
{
	double us = (double)d / g->ticks_per_us;

	if (g->n_ev < GAP_MAX_EVENTS)
		g->ev[g->n_ev++] = (struct gap_event){
			.start = start,
			.len = d > UINT32_MAX ? UINT32_MAX : (uint32_t)d,
			.switched = switched,
		};
	else
		g->ev_lost++;
	unsigned b = gap_bucket(us);
	struct gap_class *c = switched ? &r->sched : us >= GAP_LONG_US ? &r->lng : &r->irq;

	c->n++;
	c->us += us;
	r->bucket_n[b]++;
	r->bucket_us[b] += us;
	if (us > r->max_us)
		r->max_us = us;
}

static void *gap_thread(void *arg)
{
	struct gap_detector *g = arg;
	struct gap_result r;
	cpu_set_t set;
	uint32_t seen = 0;
	bool recording = false;
	uint64_t win_start = 0, dead = 0, loops = 0;

	CPU_ZERO(&set);
	CPU_SET(g->cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set)) {
		atomic_store_explicit(&g->ready, -errno, memory_order_release);
		return NULL;
	}
	prctl(PR_SET_NAME, "pl-gap", 0, 0, 0);
	memset(&r, 0, sizeof(r));
	atomic_store_explicit(&g->ready, 1, memory_order_release);

	const uint64_t thr = g->threshold_ticks;
	long csw = gap_ctx_switches();
	uint64_t prev = gap_ticks();
	const uint64_t end = prev + (uint64_t)(g->ticks_per_us * 1e6 * GAP_MAX_LIFETIME_S);

	for (uint64_t i = 1;; i++) {
		uint64_t now = gap_ticks();

		if (__builtin_expect(now - prev >= thr, 0)) {
			long c = gap_ctx_switches();

			if (recording)
				gap_record(g, &r, prev, now - prev, c != csw);
			csw = c;
			prev = gap_ticks();
			dead += prev - now;
			continue;
		}
		prev = now;
		loops++;
		if (i % GAP_POLL_LOOPS)
			continue;
		uint32_t cmd = atomic_load_explicit(&g->cmd, memory_order_acquire);
		if (cmd == seen) {
			if (now > end)
				break;
			continue;
		}
		seen = cmd;
		switch (cmd & 3) {
		case GAP_OP_BEGIN:
			memset(&r, 0, sizeof(r));
			recording = true;
			dead = 0;
			loops = 0;
			g->n_ev = 0;
			g->ev_lost = 0;
			g->have_window = false;
			csw = gap_ctx_switches();
			g->ns0 = bench_now_ns();
			g->t0 = win_start = gap_ticks();
			break;
		case GAP_OP_END:
			if (recording) {
				g->t1 = gap_ticks();
				g->ns1 = bench_now_ns();
				g->have_window = true;
				r.window_s = (double)(now - win_start) / g->ticks_per_us / 1e6;
				r.dead_s = (double)dead / g->ticks_per_us / 1e6;
				r.loops = loops;
			}
			recording = false;
			g->res = r;
			break;
		default:
			atomic_store_explicit(&g->ack, cmd >> 2, memory_order_release);
			return NULL;
		}
		/* Pairs with the acquire in gap_command(): g->res is visible. */
		atomic_store_explicit(&g->ack, cmd >> 2, memory_order_release);
		prev = gap_ticks();
	}
	return NULL;
}

/* Sends op and waits for the thread to carry it out. Returns 0 or -ETIMEDOUT. */
static int gap_command(struct gap_detector *g, enum gap_op op)
{
	uint32_t seq = ++g->seq & 0x3fffffff;

	atomic_store_explicit(&g->cmd, seq << 2 | op, memory_order_release);
	for (int ms = 0; ms < GAP_ANSWER_MS; ms++) {
		if (atomic_load_explicit(&g->ack, memory_order_acquire) == seq)
			return 0;
		struct timespec ts = {0, 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	return -ETIMEDOUT;
}

struct gap_detector *gap_detector__start(int cpu, double threshold_us)
{
	struct gap_detector *g;
	cpu_set_t online;
	int err;

	if (sched_getaffinity(0, sizeof(online), &online) || cpu < 0 || cpu >= CPU_SETSIZE ||
	    !CPU_ISSET(cpu, &online) || !(threshold_us > 0)) {
		errno = EINVAL;
		return NULL;
	}
	g = calloc(1, sizeof(*g));
	if (!g)
		return NULL;
	g->ev = malloc(GAP_MAX_EVENTS * sizeof(*g->ev));
	if (!g->ev) {
		free(g);
		return NULL;
	}
	g->cpu = cpu;
	g->threshold_us = threshold_us;
	g->ticks_per_us = gap_calibrate();
	g->threshold_ticks = (uint64_t)(threshold_us * g->ticks_per_us);
	g->joined = true;
	err = pthread_create(&g->thread, NULL, gap_thread, g);
	if (err) {
		free(g->ev);
		free(g);
		errno = err;
		return NULL;
	}
	g->joined = false;
	for (int ms = 0; ms < GAP_ANSWER_MS; ms++) {
		int st = atomic_load_explicit(&g->ready, memory_order_acquire);

		if (st > 0)
			return g;
		if (st < 0) {
			pthread_join(g->thread, NULL);
			free(g->ev);
			free(g);
			errno = -st;
			return NULL;
		}
		struct timespec ts = {0, 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	gap_detector__free(g);
	errno = ETIMEDOUT;
	return NULL;
}

void gap_detector__free(struct gap_detector *g)
{
	if (!g)
		return;
	if (!g->joined) {
		/* A thread that does not answer still ends at GAP_MAX_LIFETIME_S;
		 * join anyway rather than free memory it reads. */
		gap_command(g, GAP_OP_EXIT);
		pthread_join(g->thread, NULL);
	}
	free(g->ev);
	free(g);
}

int gap_detector__begin(struct gap_detector *g)
{
	int err;

	if (g->window_open)
		return -EBUSY;
	err = gap_command(g, GAP_OP_BEGIN);
	if (!err)
		g->window_open = true;
	return err;
}

int gap_detector__end(struct gap_detector *g, struct gap_result *out)
{
	int err;

	if (!g->window_open)
		return -EINVAL;
	g->window_open = false;
	err = gap_command(g, GAP_OP_END);
	if (!err)
		*out = g->res;
	return err;
}

/* The phase bins of one fold: gap count and gap time (µs) per bin. */
struct gap_fold {
	unsigned nb;
	double *cnt, *us;
};

static void gap_fold(const struct gap_detector *g, double period, struct gap_fold *f)
{
	memset(f->cnt, 0, f->nb * sizeof(*f->cnt));
	memset(f->us, 0, f->nb * sizeof(*f->us));
	for (uint32_t i = 0; i < g->n_ev; i++) {
		const struct gap_event *e = &g->ev[i];

		if (e->switched || e->len >= GAP_LONG_US * g->ticks_per_us)
			continue;
		double ph = fmod((double)(e->start - g->t0), period) / period;
		unsigned b = (unsigned)(ph * f->nb);

		if (b >= f->nb)
			b = f->nb - 1;
		f->cnt[b]++;
		f->us[b] += e->len / g->ticks_per_us;
	}
}

/* Count in the 3 bins around b (the phase wraps around). */
static double gap_fold_peak(const struct gap_fold *f, unsigned b)
{
	return f->cnt[(b + f->nb - 1) % f->nb] + f->cnt[b] + f->cnt[(b + 1) % f->nb];
}

static unsigned gap_fold_dist(const struct gap_fold *f, unsigned a, unsigned b)
{
	unsigned d = a > b ? a - b : b - a;

	return d < f->nb - d ? d : f->nb - d;
}

#define GAP_BIN_US     4.0 /* phase resolution */
#define GAP_PEAK_BINS  2   /* the peak: its bin and this many either side */
#define GAP_SEARCH_PPM 5.0 /* the period is searched within +-this of 1e9/hz ns */

int gap_detector__phase(const struct gap_detector *g, unsigned hz, struct gap_phase *out)
{
	struct gap_fold f;
	double ns_per_tick, period, best = -1, best_period = 0;
	unsigned best_bin = 0;

	memset(out, 0, sizeof(*out));
	if (!g->have_window || g->t1 <= g->t0 || g->ns1 <= g->ns0 || !hz)
		return -ENODATA;
	/* The window's own two ends calibrate the counter against the clock
	 * the kernel's timers run on, to a fraction of a µs over the window. */
	ns_per_tick = (double)(g->ns1 - g->ns0) / (double)(g->t1 - g->t0);
	period = (double)(1000000000ull / hz) / ns_per_tick;
	f.nb = (unsigned)(1e6 / hz / GAP_BIN_US);
	if (f.nb < 16)
		f.nb = 16;
	if (f.nb > 65536)
		f.nb = 65536;
	f.cnt = calloc(f.nb, sizeof(*f.cnt));
	f.us = calloc(f.nb, sizeof(*f.us));
	if (!f.cnt || !f.us) {
		free(f.cnt);
		free(f.us);
		return -ENOMEM;
	}
	/* Steps small enough that the fold drifts by less than half a bin
	 * over the window. */
	double span = (double)(g->t1 - g->t0);
	double step = 0.5 * (period / f.nb) / span;
	int n_steps = (int)(GAP_SEARCH_PPM * 1e-6 / step);
	if (n_steps > 200)
		n_steps = 200;
	for (int k = -n_steps; k <= n_steps; k++) {
		double p = period * (1 + k * step);

		gap_fold(g, p, &f);
		for (unsigned b = 0; b < f.nb; b++) {
			double c = gap_fold_peak(&f, b);

			if (c > best) {
				best = c;
				best_bin = b;
				best_period = p;
			}
		}
	}
	gap_fold(g, best_period, &f);
	double in_cnt = 0, in_us = 0, out_cnt = 0, out_us = 0, second = 0;
	unsigned n_in = 0, n_out = 0;
	for (unsigned b = 0; b < f.nb; b++) {
		unsigned d = gap_fold_dist(&f, b, best_bin);

		if (d <= GAP_PEAK_BINS) {
			in_cnt += f.cnt[b];
			in_us += f.us[b];
			n_in++;
		} else if (d > GAP_PEAK_BINS + 2) {
			out_cnt += f.cnt[b];
			out_us += f.us[b];
			n_out++;
			if (gap_fold_peak(&f, b) > second)
				second = gap_fold_peak(&f, b);
		}
	}
	out->periods = span / best_period;
	out->lost = g->ev_lost;
	out->phase_us = (best_bin + 0.5) * best_period / f.nb / g->ticks_per_us;
	/* The thread sees the timer only while it runs: per hit, and hits per
	 * period it ran. */
	double running = gap_result__running_s(&g->res) / (span / g->ticks_per_us / 1e6);
	double hits = n_out ? in_cnt - out_cnt / n_out * n_in : 0;
	if (hits > 0 && out->periods > 0 && running > 0) {
		out->us = (in_us - out_us / n_out * n_in) / hits;
		out->hits = hits / (out->periods * running);
	}
	out->second = best > 0 ? second / best : 0;
	/* One timer at hz hits (nearly) every period; a second peak half as
	 * tall means another timer at a rate locked to hz: not ours to tell. */
	out->found = out->hits >= 0.5 && out->second < 0.5;
	free(f.cnt);
	free(f.us);
	return 0;
}

double gap_detector__ticks_per_us(const struct gap_detector *g)
{
	return g->ticks_per_us;
}

int gap_detector__cpu(const struct gap_detector *g)
{
	return g->cpu;
}

double gap_detector__threshold_us(const struct gap_detector *g)
{
	return g->threshold_us;
}

/* ---- `pipeline-bench gap` ---------------------------------------------- */

static void gap_usage(FILE *f)
{
	fprintf(f,
		"Usage: pipeline-bench gap [--cpu N] [--seconds S] [--threshold-us T] [--hz HZ]\n"
		"Spins one thread pinned to CPU N (default: the last online CPU) reading the\n"
		"time-stamp counter for S seconds (default 5, at most 3600) and prints every\n"
		"gap of at least T µs (default %.1f, 0.05-1000) by size: the time taken from\n"
		"that CPU by interrupts, the host and other tasks (\"irq\": no context switch\n"
		"and under %.0f µs; \"long\": no switch, longer; \"other tasks\": switched\n"
		"out). Run it on a quiet machine to see its noise floor, or next to a\n"
		"profiler to see what it takes. With --hz, also folds the gaps on the period\n"
		"of a sampling timer at HZ and prints what one interrupt of it takes.\n"
		"Needs no privileges.\n",
		GAP_DEFAULT_THRESHOLD_US, GAP_LONG_US);
}

static int gap_last_cpu(void)
{
	cpu_set_t set;
	int last = 0;

	if (sched_getaffinity(0, sizeof(set), &set))
		return 0;
	for (int i = 0; i < CPU_SETSIZE; i++)
		if (CPU_ISSET(i, &set))
			last = i;
	return last;
}

void gap_result__print(const struct gap_result *r, FILE *f)
{
	double measured = r->window_s - r->dead_s;

	fprintf(f, "window %.3f s, detector bookkeeping %.3f ms, %.1f ns per loop\n", r->window_s,
		r->dead_s * 1e3, r->loops ? measured * 1e9 / (double)r->loops : 0.0);
	fprintf(f, "%-16s %10s %12s %10s %10s\n", "gap", "count", "total µs", "per s", "% of CPU");
	for (unsigned i = 0; i < GAP_BUCKETS; i++) {
		char name[32];

		if (!r->bucket_n[i])
			continue;
		if (i == GAP_BUCKETS - 1)
			snprintf(name, sizeof(name), ">= %.0f µs", gap_bucket__lo_us(i));
		else if (i == 0)
			snprintf(name, sizeof(name), "< 2 µs");
		else
			snprintf(name, sizeof(name), "%.0f-%.0f µs", gap_bucket__lo_us(i),
				 gap_bucket__lo_us(i + 1));
		fprintf(f, "%-16s %10llu %12.1f %10.1f %9.4f %%\n", name,
			(unsigned long long)r->bucket_n[i], r->bucket_us[i],
			(double)r->bucket_n[i] / r->window_s,
			r->bucket_us[i] / (r->window_s * 1e4));
	}
	fprintf(f, "%-16s %10llu %12.1f %10.1f %9.4f %%\n", "irq (no switch)",
		(unsigned long long)r->irq.n, r->irq.us, (double)r->irq.n / r->window_s,
		r->irq.us / (r->window_s * 1e4));
	fprintf(f, "%-16s %10llu %12.1f %10.1f %9.4f %%\n", "long (no switch)",
		(unsigned long long)r->lng.n, r->lng.us, (double)r->lng.n / r->window_s,
		r->lng.us / (r->window_s * 1e4));
	fprintf(f, "%-16s %10llu %12.1f %10.1f %9.4f %%\n", "other tasks",
		(unsigned long long)r->sched.n, r->sched.us, (double)r->sched.n / r->window_s,
		r->sched.us / (r->window_s * 1e4));
	fprintf(f, "longest gap %.1f µs\n", r->max_us);
}

int bench_gap__main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"cpu", required_argument, NULL, 'c'},
		{"seconds", required_argument, NULL, 's'},
		{"threshold-us", required_argument, NULL, 't'},
		{"hz", required_argument, NULL, 'z'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	int cpu = gap_last_cpu(), c;
	double seconds = 5, thr = GAP_DEFAULT_THRESHOLD_US;
	unsigned long hz = 0;
	struct gap_phase ph;
	struct gap_detector *g;
	struct gap_result r;
	char *end;

	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'c':
			errno = 0;
			cpu = (int)strtol(optarg, &end, 10);
			if (errno || *end || !*optarg || cpu < 0 || cpu >= CPU_SETSIZE) {
				fprintf(stderr, "pipeline-bench gap: --cpu '%s': not a CPU\n",
					optarg);
				return BENCH_EXIT_USAGE;
			}
			break;
		case 's':
			seconds = strtod(optarg, &end);
			if (*end || !*optarg || !(seconds >= 0.1 && seconds <= 3600)) {
				fprintf(stderr,
					"pipeline-bench gap: --seconds '%s': expected "
					"0.1-3600\n",
					optarg);
				return BENCH_EXIT_USAGE;
			}
			break;
		case 't':
			thr = strtod(optarg, &end);
			if (*end || !*optarg || !(thr >= 0.05 && thr <= 1000)) {
				fprintf(stderr,
					"pipeline-bench gap: --threshold-us '%s': expected "
					"0.05-1000\n",
					optarg);
				return BENCH_EXIT_USAGE;
			}
			break;
		case 'z':
			errno = 0;
			hz = strtoul(optarg, &end, 10);
			if (errno || *end || !*optarg || hz < 1 || hz > 100000) {
				fprintf(stderr,
					"pipeline-bench gap: --hz '%s': expected 1-100000\n",
					optarg);
				return BENCH_EXIT_USAGE;
			}
			break;
		case 'h':
			gap_usage(stdout);
			return BENCH_EXIT_OK;
		default:
			fprintf(stderr,
				"pipeline-bench gap: unknown option or missing argument: "
				"'%s'\n",
				argv[optind - 1]);
			return BENCH_EXIT_USAGE;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "pipeline-bench gap: unexpected argument '%s'\n", argv[optind]);
		return BENCH_EXIT_USAGE;
	}
	g = gap_detector__start(cpu, thr);
	if (!g) {
		fprintf(stderr, "pipeline-bench gap: cannot start on CPU %d: %s\n", cpu,
			strerror(errno));
		return BENCH_EXIT_ERROR;
	}
	printf("gap detector on CPU %d, TSC %.3f GHz, threshold %.2f µs\n", cpu,
	       gap_detector__ticks_per_us(g) / 1e3, thr);
	int err = gap_detector__begin(g);
	if (!err) {
		uint64_t ns = (uint64_t)(seconds * 1e9);
		struct timespec ts = {(time_t)(ns / 1000000000u), (long)(ns % 1000000000u)};

		while (nanosleep(&ts, &ts) && errno == EINTR)
			;
		err = gap_detector__end(g, &r);
	}
	if (!err && hz && gap_detector__phase(g, (unsigned)hz, &ph))
		hz = 0;
	gap_detector__free(g);
	if (err) {
		fprintf(stderr, "pipeline-bench gap: the detector thread did not answer: %s\n",
			strerror(-err));
		return BENCH_EXIT_ERROR;
	}
	gap_result__print(&r, stdout);
	if (hz)
		printf("at %lu Hz: %s: %.2f µs per gap there, a gap in %.0f %% of %.0f periods, at "
		       "%.1f µs into the period; next peak %.0f %% as tall\n",
		       hz, ph.found ? "one timer found" : "no single timer", ph.us, ph.hits * 100,
		       ph.periods, ph.phase_us, ph.second * 100);
	return BENCH_EXIT_OK;
}
