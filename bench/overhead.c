// SPDX-License-Identifier: BSD-2-Clause
/*
 * `pipeline-bench overhead`: options, set-up, the schedule of runs, and one
 * run (see overhead.h for the pieces; overhead_report.c for the output).
 *
 * Placement. The gap detector's thread spins on the gap CPU (default: the
 * last CPU) from start to end, in "off" runs and profiler runs alike; the
 * server and the load generator are kept off that CPU, so the detector's
 * baseline is the kernel's own noise and not the workload's scheduling.
 * The profilers may run anywhere, as they would in production: their
 * threads landing on the gap CPU are seen as "sched" gaps and are counted
 * in their own process CPU, not in the stolen time.
 *
 * Schedule. For each repetition, the profiler configurations in an order
 * rotated by one per repetition, with an off run before the first and after
 * every --off-every of them, and one more off run at the very end: each
 * profiler run is compared with the off runs on either side of it, so
 * drift (the host's load, the page cache, the server's warm-up) cancels.
 *
 * Signals. SIGINT and SIGTERM are blocked in every thread (children get an
 * empty mask) and taken only by the sleeps here (sigtimedwait), which end
 * the schedule early; the run in progress stops its profiler, the
 * sysctl is restored and what was measured so far is reported.
 */
#include <errno.h>
#include <ftw.h>
#include <getopt.h>
#include <libgen.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "help_wrap.h"
#include "bench.h"
#include "loadgen.h"
#include "overhead.h"
#include "overhead_proc.h"

#define OVH_READY_TIMEOUT_MS  60000  /* a profiler's start-up */
#define OVH_STOP_TIMEOUT_MS   120000 /* a profiler's exit (perf's build-id pass) */
#define OVH_SERVER_TIMEOUT_MS 30000  /* the server's calibration */
#define OVH_BPF_STATS	      "kernel/bpf_stats_enabled"
#define OVH_WARMUP_SAMPLES    50  /* per CPU, before a profiler's window */
#define OVH_FLUSH_MARGIN_S    1.5 /* pipeline's first flush, done before its window */

enum ovh_opt {
	OVH_OPT_REPS,
	OVH_OPT_SECONDS,
	OVH_OPT_WARMUP,
	OVH_OPT_QUICK,
	OVH_OPT_PEERS,
	OVH_OPT_UNWIND,
	OVH_OPT_WAITS,
	OVH_OPT_TICK,
	OVH_OPT_TOOLS,
	OVH_OPT_JSON,
	OVH_OPT_HZ,
	OVH_OPT_QPS,
	OVH_OPT_CLOSED,
	OVH_OPT_OFF_EVERY,
	OVH_OPT_GAP_CPU,
	OVH_OPT_THRESHOLD,
	OVH_OPT_SHARED_CPU,
	OVH_OPT_GATE,
	OVH_OPT_KEEP,
	OVH_OPT_HELP,
};

struct ovh_opt_desc {
	const char *name;
	const char *arg; /* NULL: no argument */
	double min, max; /* numeric arguments */
	const char *help;
};

static const struct ovh_opt_desc ovh_opts[] = {
	[OVH_OPT_REPS] = {"reps", "N", 1, OVH_MAX_REPS,
			  "repetitions of every configuration (default 5, 3 with --quick)"},
	[OVH_OPT_SECONDS] = {"seconds", "S", 2, 600,
			     "measurement window of each run (default 10, 8 with --quick)"},
	[OVH_OPT_WARMUP] = {"warmup", "S", 0, 60,
			    "load before each window, not measured (default 1); with a "
			    "profiler, at least 50 of its sampling periods"},
	[OVH_OPT_QUICK] = {"quick", NULL, 0, 0,
			   "CI size, under 3 minutes: pipeline at 99 Hz only, 3 repetitions of "
			   "8 s; implies --gate"},
	[OVH_OPT_PEERS] = {"peers", NULL, 0, 0,
			   "also run perf record -e cpu-clock -F HZ -a -g and bpftrace "
			   "profile:hz:HZ at every rate"},
	[OVH_OPT_UNWIND] = {"unwind", "LIST", 0, 0,
			    "pipeline's --unwind modes, each run at every rate: fp, dwarf, auto "
			    "(comma-separated; default auto, pipeline's default); the gate and "
			    "targets are on auto"},
	[OVH_OPT_WAITS] = {"waits", NULL, 0, 0,
			   "also the wait profiles: pipeline --profiles offcpu, and "
			   "offcpu,lock, at 99 Hz's warm-up, beside libbpf-tools offcputime -u; "
			   "their cost is per context switch (BPF ns per run), not per sample"},
	[OVH_OPT_TICK] = {"tick", NULL, 0, 0,
			  "also pipeline --clock tick (fp) at every rate: samples on the "
			  "scheduler tick, at the closest rate HZ/N"},
	[OVH_OPT_TOOLS] = {"tools", "LIST", 0, 0,
			   "only these profilers: pipeline, perf, bpftrace (comma-separated; "
			   "default pipeline, all three with --peers)"},
	[OVH_OPT_JSON] = {"json", "FILE", 0, 0, "also write the figures as JSON to FILE"},
	[OVH_OPT_HZ] = {"hz", "LIST", 1, 10000,
			"comma-separated sampling rates (default 10,99,1000; 99 with --quick)"},
	[OVH_OPT_QPS] = {"qps", "Q", 1, 1000000,
			 "request rate asked of the load generator (default 10000); lowered, "
			 "and said so, if a probe finds the server cannot keep up"},
	[OVH_OPT_CLOSED] = {"closed", NULL, 0, 0,
			    "closed-loop load instead of --qps: every connection sends its next "
			    "request when its response is in, so the server runs flat out and "
			    "the requests per second it serves are what a profiler costs it "
			    "(latency then runs from each send)"},
	[OVH_OPT_OFF_EVERY] = {"off-every", "N", 1, 9,
			       "an off run after every N profiler runs (default 1 with one "
			       "profiler, 3 with more)"},
	[OVH_OPT_GAP_CPU] = {"gap-cpu", "N", 0, CPU_SETSIZE - 1,
			     "the CPU of the gap detector (default: the last one)"},
	[OVH_OPT_THRESHOLD] = {"threshold-us", "T", 0.05, 1000,
			       "shortest gap the detector records, in µs (default 2)"},
	[OVH_OPT_SHARED_CPU] = {"shared-cpu", NULL, 0, 0,
				"let the server and load generator run on the gap CPU too "
				"(noisier stolen time)"},
	[OVH_OPT_GATE] = {"gate", NULL, 0, 0,
			  "exit with 1 when pipeline at 99 Hz uses more than 0.5 % of wall x "
			  "CPUs (agent CPU + BPF) or drops a sample"},
	[OVH_OPT_KEEP] = {"keep", NULL, 0, 0,
			  "keep the profilers' outputs (the directory is printed)"},
	[OVH_OPT_HELP] = {"help", NULL, 0, 0, "print this help and exit"},
};
#define N_OVH_OPTS (sizeof(ovh_opts) / sizeof(ovh_opts[0]))

static void ovh_usage(FILE *f)
{
	fprintf(f, "Usage: pipeline-bench overhead [OPTION]...\n"
		   "What a profiler costs a running service: a loopback HTTP server under an\n"
		   "open-loop load, with no profiler and with pipeline (and with --peers, perf\n"
		   "and bpftrace) at each rate, in interleaved repetitions. Reports latency,\n"
		   "CPU, BPF run time and the time stolen from a CPU per sample (a TSC gap\n"
		   "detector pinned to one CPU). Run as root. See docs/PERFORMANCE.md.\n\n"
		   "Options:\n");
	for (size_t i = 0; i < N_OVH_OPTS; i++) {
		char lhs[40];

		snprintf(lhs, sizeof(lhs), "--%s%s%s", ovh_opts[i].name, ovh_opts[i].arg ? " " : "",
			 ovh_opts[i].arg ? ovh_opts[i].arg : "");
		fprintf(f, "  %-18s ", lhs);
		bench_help__print_wrapped(f, ovh_opts[i].help, 21, 79);
	}
	fprintf(f, "\nExit status: 0; 1 when a run could not be made (server, pipeline) or, with\n"
		   "--gate or --quick, when the gate fails; 2 on a usage error.\n");
}

static int ovh_parse_number(enum ovh_opt o, const char *arg, double *v)
{
	char *end;

	errno = 0;
	*v = strtod(arg, &end);
	if (errno || *end || !*arg || !(*v >= ovh_opts[o].min && *v <= ovh_opts[o].max)) {
		fprintf(stderr, "pipeline-bench overhead: --%s '%s': expected %g-%g\n",
			ovh_opts[o].name, arg, ovh_opts[o].min, ovh_opts[o].max);
		return -EINVAL;
	}
	return 0;
}

static int ovh_parse_hz(const char *list, struct ovh_settings *s)
{
	const char *p = list;

	s->n_hz = 0;
	while (*p) {
		char item[16];
		size_t len = strcspn(p, ",");
		double v;

		if (s->n_hz == OVH_MAX_HZ || len >= sizeof(item)) {
			fprintf(stderr, "pipeline-bench overhead: --hz: at most %d rates\n",
				OVH_MAX_HZ);
			return -EINVAL;
		}
		memcpy(item, p, len);
		item[len] = 0;
		if (ovh_parse_number(OVH_OPT_HZ, item, &v) || v != floor(v))
			return -EINVAL;
		s->hz[s->n_hz++] = (unsigned)v;
		p += len + (p[len] == ',');
	}
	if (!s->n_hz) {
		fprintf(stderr, "pipeline-bench overhead: --hz: empty list\n");
		return -EINVAL;
	}
	return 0;
}

const char *const ovh_unwind_names[OVH_N_UNWINDS] = {"fp", "dwarf", "auto"};

/* Parses a comma-separated list of names[first..n) into a bit mask (bit i
 * for names[i]). Returns 0, or -EINVAL after saying which item of --opt is
 * not a `what` (one of choices). */
static int ovh_parse_names(const char *opt, const char *what, const char *choices,
			   const char *const *names, unsigned first, unsigned n, const char *list,
			   unsigned *mask)
{
	*mask = 0;
	for (const char *p = list; *p;) {
		size_t len = strcspn(p, ",");
		unsigned i;
		for (i = first; i < n; i++)
			if (len == strlen(names[i]) && !strncmp(p, names[i], len))
				break;
		if (i == n) {
			fprintf(stderr,
				"pipeline-bench overhead: --%s: unknown %s '%.*s' (one of: %s)\n",
				opt, what, (int)len, p, choices);
			return -EINVAL;
		}
		*mask |= 1u << i;
		p += len + (p[len] == ',');
	}
	if (!*mask) {
		fprintf(stderr, "pipeline-bench overhead: --%s: empty list\n", opt);
		return -EINVAL;
	}
	return 0;
}

static int ovh_parse_unwinds(const char *list, unsigned *mask)
{
	return ovh_parse_names("unwind", "mode", "fp, dwarf, auto", ovh_unwind_names, 0,
			       OVH_N_UNWINDS, list, mask);
}

static int ovh_parse_tools(const char *list, unsigned *mask)
{
	const char *names[OVH_TOOL_BPFTRACE + 1];
	for (int t = OVH_TOOL_OFF; t <= OVH_TOOL_BPFTRACE; t++)
		names[t] = ovh_tool__name(t);
	return ovh_parse_names("tools", "profiler", "pipeline, perf, bpftrace", names,
			       OVH_TOOL_PIPELINE, OVH_TOOL_BPFTRACE + 1, list, mask);
}

/* Returns 0, 1 for --help, or -EINVAL after printing why. */
static int ovh_parse(int argc, char **argv, struct ovh_settings *s)
{
	struct option longopts[N_OVH_OPTS + 1];
	bool have_hz = false;
	double reps = 0, secs = 0, off_every = 0, v = 0;
	int c;

	memset(longopts, 0, sizeof(longopts));
	for (size_t i = 0; i < N_OVH_OPTS; i++)
		longopts[i] = (struct option){ovh_opts[i].name,
					      ovh_opts[i].arg ? required_argument : no_argument,
					      NULL, (int)i};
	*s = (struct ovh_settings){
		.warmup_s = 1, .gap_cpu = -1, .threshold_us = GAP_DEFAULT_THRESHOLD_US};
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		enum ovh_opt o = (enum ovh_opt)c;

		if (c >= 0 && c < (int)N_OVH_OPTS && ovh_opts[c].arg && o != OVH_OPT_JSON &&
		    o != OVH_OPT_HZ && o != OVH_OPT_TOOLS && o != OVH_OPT_UNWIND &&
		    ovh_parse_number(o, optarg, &v))
			return -EINVAL;
		switch (c) {
		case OVH_OPT_REPS:
			reps = v;
			break;
		case OVH_OPT_SECONDS:
			secs = v;
			break;
		case OVH_OPT_WARMUP:
			s->warmup_s = v;
			break;
		case OVH_OPT_QUICK:
			s->quick = true;
			break;
		case OVH_OPT_PEERS:
			s->peers = true;
			break;
		case OVH_OPT_UNWIND:
			if (ovh_parse_unwinds(optarg, &s->unwinds))
				return -EINVAL;
			break;
		case OVH_OPT_WAITS:
			s->waits = true;
			break;
		case OVH_OPT_TICK:
			s->tick = true;
			break;
		case OVH_OPT_TOOLS:
			if (ovh_parse_tools(optarg, &s->tools))
				return -EINVAL;
			break;
		case OVH_OPT_JSON:
			s->json = optarg;
			break;
		case OVH_OPT_HZ:
			if (ovh_parse_hz(optarg, s))
				return -EINVAL;
			have_hz = true;
			break;
		case OVH_OPT_QPS:
			s->qps_asked = v;
			break;
		case OVH_OPT_CLOSED:
			s->closed = true;
			break;
		case OVH_OPT_OFF_EVERY:
			off_every = v;
			break;
		case OVH_OPT_GAP_CPU:
			s->gap_cpu = (int)v;
			break;
		case OVH_OPT_THRESHOLD:
			s->threshold_us = v;
			break;
		case OVH_OPT_SHARED_CPU:
			s->shared_cpu = true;
			break;
		case OVH_OPT_GATE:
			s->gate = true;
			break;
		case OVH_OPT_KEEP:
			s->keep = true;
			break;
		case OVH_OPT_HELP:
			return 1;
		default:
			fprintf(stderr,
				"pipeline-bench overhead: unknown option or missing argument: "
				"'%s'\n",
				argv[optind - 1]);
			return -EINVAL;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "pipeline-bench overhead: unexpected argument '%s'\n",
			argv[optind]);
		return -EINVAL;
	}
	s->reps = reps ? (unsigned)reps : s->quick ? 3 : 5;
	s->seconds = secs ? secs : s->quick ? 8 : 10;
	s->gate |= s->quick;
	if (!s->unwinds)
		s->unwinds = 1u << 2; /* auto, pipeline's default (ovh_unwind_names) */
	if (!s->tools)
		s->tools = 1u << OVH_TOOL_PIPELINE |
			   (s->peers ? 1u << OVH_TOOL_PERF | 1u << OVH_TOOL_BPFTRACE : 0);
	s->peers = s->tools & ~(1u << OVH_TOOL_PIPELINE);
	/* Off between every run for one profiler; every third for several. */
	s->off_every = off_every ? (unsigned)off_every : s->tools & (s->tools - 1) ? 3 : 1;
	if (!have_hz) {
		static const unsigned full[] = {10, 99, 1000};

		if (s->quick) {
			s->hz[0] = 99;
			s->n_hz = 1;
		} else {
			memcpy(s->hz, full, sizeof(full));
			s->n_hz = 3;
		}
	}
	size_t len = snprintf(s->command, sizeof(s->command), "pipeline-bench");
	for (int i = 0; i < argc && len < sizeof(s->command); i++)
		len += snprintf(s->command + len, sizeof(s->command) - len, " %s", argv[i]);
	return 0;
}

/* ---- helpers ------------------------------------------------------------ */

/* Sleeps up to seconds; returns false if SIGINT or SIGTERM came (taken). */
static bool ovh_sleep(double seconds)
{
	sigset_t set;
	uint64_t end = bench_now_ns() + (uint64_t)(seconds * 1e9);

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	for (;;) {
		uint64_t now = bench_now_ns();

		if (now >= end)
			return true;
		uint64_t d = end - now;
		struct timespec ts = {(time_t)(d / 1000000000u), (long)(d % 1000000000u)};
		int sig = sigtimedwait(&set, NULL, &ts);
		if (sig == SIGINT || sig == SIGTERM)
			return false;
	}
}

static double ovh_cpu_s(pid_t pid)
{
	uint64_t ns;

	return ovh_proc__cpu_ns(pid, &ns) ? NAN : (double)ns / 1e9;
}

static double tv_s(struct timeval tv)
{
	return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

static void ovh_cpu_list(const cpu_set_t *set, char *buf, size_t size)
{
	size_t len = 0;

	buf[0] = 0;
	for (int i = 0; i < CPU_SETSIZE && len < size; i++) {
		int j = i;

		if (!CPU_ISSET(i, set))
			continue;
		while (j + 1 < CPU_SETSIZE && CPU_ISSET(j + 1, set))
			j++;
		len += snprintf(buf + len, size - len, j > i ? "%s%d-%d" : "%s%d", len ? "," : "",
				i, j);
		i = j;
	}
}

/* ---- the workload server ------------------------------------------------- */

struct ovh_server {
	struct ovh_child child;
	unsigned port;
};

static int ovh_server__start(struct ovh_server *srv, struct ovh_bench *b, const char *bin_dir,
			     const char *tmp)
{
	char exe[PATH_MAX], threads[16], out[PATH_MAX], err[PATH_MAX], buf[4096];
	char *argv[] = {exe, "--threads", threads, NULL};
	int rc;

	ovh_fmt(exe, sizeof(exe), "%s/pipeline-bench-server", bin_dir);
	snprintf(threads, sizeof(threads), "%u", b->server_threads);
	ovh_fmt(out, sizeof(out), "%s/server.out", tmp);
	ovh_fmt(err, sizeof(err), "%s/server.err", tmp);
	if (access(exe, X_OK)) {
		fprintf(stderr,
			"pipeline-bench overhead: %s not found (build the target "
			"pipeline-bench-server)\n",
			exe);
		return -ENOENT;
	}
	rc = ovh_child__spawn(&srv->child, argv, &b->workload_cpus, out, err);
	if (rc)
		return rc;
	for (unsigned ms = 0; ms < OVH_SERVER_TIMEOUT_MS; ms += 20) {
		double port;

		if (ovh_read_file(out, buf, sizeof(buf)) > 0 &&
		    (port = ovh_find_number(buf, "PORT ")) > 0) {
			srv->port = (unsigned)port;
			return 0;
		}
		if (!ovh_child__alive(&srv->child))
			break;
		if (!ovh_sleep(0.02))
			break;
	}
	fprintf(stderr, "pipeline-bench overhead: the server did not start (see %s)\n", err);
	ovh_child__stop(&srv->child, SIGKILL, 1000);
	return -EIO;
}

static void ovh_server__stop(struct ovh_server *srv, struct ovh_bench *b)
{
	char buf[4096], *line, *last = NULL;

	if (!srv->child.pid)
		return;
	ovh_child__stop(&srv->child, SIGTERM, 10000);
	if (ovh_read_file(srv->child.out, buf, sizeof(buf)) <= 0)
		return;
	for (line = strtok(buf, "\n"); line; line = strtok(NULL, "\n"))
		if (line[0] == '{')
			last = line;
	if (last)
		snprintf(b->server_final, sizeof(b->server_final), "%s", last);
}

/* ---- the load generator, on a thread of its own ---------------------------- */

struct ovh_load {
	pthread_t thread;
	struct loadgen_opts opts;
	struct loadgen_result res;
	int rc;
};

static void *ovh_load_thread(void *arg)
{
	struct ovh_load *l = arg;

	l->rc = loadgen__run(&l->opts, &l->res);
	return NULL;
}

/* ---- one run ---------------------------------------------------------------- */

struct ovh_ctx {
	struct ovh_bench *b;
	struct gap_detector *gap;
	struct ovh_server srv;
	char bin_dir[PATH_MAX];
	char tmp[PATH_MAX];
	bool stopped; /* SIGINT or SIGTERM came */
};

/* pipeline's flush period: the window's length, so the window holds one
 * flush (10 s, its default, in a full run). */
static unsigned ovh_flush_interval_s(const struct ovh_bench *b)
{
	return b->set.seconds < 1 ? 1 : (unsigned)(b->set.seconds + 0.5);
}

static void ovh_run_init(struct ovh_run *r)
{
	unsigned config = r->config, rep = r->rep;

	memset(r, 0, sizeof(*r));
	r->config = config;
	r->rep = rep;
	r->p50_ms = r->p90_ms = r->p99_ms = r->p999_ms = r->qps = NAN;
	r->server_cpu_s = r->steal_s = r->window_s = NAN;
	r->startup_cpu_s = r->window_cpu_s = r->exit_cpu_s = r->exit_wait_s = NAN;
	r->bpf_s = r->sampling_s = NAN;
	for (unsigned h = 0; h < OVH_MAX_HZ; h++)
		r->null_hits[h] = NAN;
	r->self = (struct ovh_profiler_figures){-1, -1, -1, -1, -1, -1, -1};
}

static void ovh_run_one(struct ovh_ctx *x, unsigned k)
{
	struct ovh_bench *b = x->b;
	struct ovh_run *r = &b->runs[k];
	const struct ovh_config *cfg = &b->configs[r->config];
	bool prof = cfg->tool != OVH_TOOL_OFF;
	struct ovh_profiler p = {0};
	struct ovh_load load = {0};
	long bpf_stats_old = -1;
	bool load_started = false;
	char dir[PATH_MAX];
	int err;

	ovh_run_init(r);
	ovh_fmt(dir, sizeof(dir), "%s/%03u-%s-%u", x->tmp, k, ovh_tool__name(cfg->tool), cfg->hz);
	if (mkdir(dir, 0755) && errno != EEXIST) {
		ovh_fmt(r->why, sizeof(r->why), "mkdir %s: %s", dir, strerror(errno));
		return;
	}
	if (cfg->tool == OVH_TOOL_BPFTRACE || cfg->tool == OVH_TOOL_OFFCPUTIME) {
		/* bpftrace and offcputime do not measure their programs: switch
		 * the kernel's counters on for this run only (they cost a little
		 * per run). */
		if (!ovh_sysctl__get(OVH_BPF_STATS, &bpf_stats_old) && bpf_stats_old != 1 &&
		    ovh_sysctl__set(OVH_BPF_STATS, 1))
			bpf_stats_old = -1;
	}
	if (prof) {
		unsigned max_s = (unsigned)(b->set.warmup_s + OVH_WARMUP_SAMPLES / cfg->hz +
					    2 * b->set.seconds) +
				 120;

		err = ovh_profiler__start(&p, cfg->tool, cfg->hz, x->bin_dir, dir, max_s,
					  ovh_flush_interval_s(b), b->stats_json,
					  cfg->unwind ? cfg->unwind : OVH_DEFAULT_UNWIND,
					  cfg->profiles, cfg->clock);
		if (!err)
			err = ovh_profiler__wait_ready(&p, b->n_cpus, OVH_READY_TIMEOUT_MS);
		if (err) {
			ovh_fmt(r->why, sizeof(r->why), "%s did not start sampling: %s (see %s)",
				ovh_tool__name(cfg->tool),
				err == -ECHILD ? "it exited" : strerror(-err), dir);
			if (err == -EINTR)
				x->stopped = true;
			goto out;
		}
	}

	/* The window opens once a profiler has taken OVH_WARMUP_SAMPLES per CPU
	 * (at least --warmup): lazy start-up work (pipeline parses kallsyms
	 * at its first kernel frame) then falls before it, at 10 Hz too. */
	double warmup = b->set.warmup_s;
	if (prof && warmup < (double)OVH_WARMUP_SAMPLES / cfg->hz)
		warmup = (double)OVH_WARMUP_SAMPLES / cfg->hz;
	/* pipeline's first flush meets every stack and frame for the first
	 * time (its symbols load as samples arrive, its encoder warms up):
	 * start-up work, left out as its kallsyms parse is. The window holds
	 * the next flush, a warm one, as each interval of a long run does. */
	if (cfg->tool == OVH_TOOL_PIPELINE) {
		double since = (double)(bench_now_ns() - p.child.start_ns) / 1e9;
		double first = ovh_flush_interval_s(b) + OVH_FLUSH_MARGIN_S - since;

		if (warmup < first)
			warmup = first;
	}
	load.opts = (struct loadgen_opts){
		.port = x->srv.port,
		.qps = b->qps,
		.seconds = b->set.seconds,
		.threads = b->loadgen_threads,
		.warmup_s = warmup,
		.closed = b->set.closed,
	};
	err = pthread_create(&load.thread, NULL, ovh_load_thread, &load);
	if (err) {
		ovh_fmt(r->why, sizeof(r->why), "pthread_create: %s", strerror(err));
		goto out;
	}
	load_started = true;
	if (!ovh_sleep(warmup)) {
		x->stopped = true;
		ovh_fmt(r->why, sizeof(r->why), "interrupted");
		goto out;
	}

	int flushes0 = cfg->tool == OVH_TOOL_PIPELINE ? ovh_pipeline__flushes(&p) : 0;
	if (cfg->tool == OVH_TOOL_PIPELINE && flushes0 < 1) {
		ovh_fmt(r->why, sizeof(r->why),
			"pipeline had not flushed its first interval %.1f s after its start "
			"(see %s)",
			(double)(bench_now_ns() - p.child.start_ns) / 1e9, dir);
		goto out;
	}

	/* The window: every counter read at both ends. */
	uint64_t bpf_ns0 = 0, bpf_cnt0 = 0, bpf_ns1 = 0, bpf_cnt1 = 0;
	double srv0 = ovh_cpu_s(x->srv.child.pid), prof0 = prof ? ovh_cpu_s(p.child.pid) : 0;
	double steal0 = ovh_proc__cpu_steal_s(gap_detector__cpu(x->gap));
	if (prof)
		ovh_proc__bpf_run(p.child.pid, &bpf_ns0, &bpf_cnt0);
	err = gap_detector__begin(x->gap);
	if (err) {
		ovh_fmt(r->why, sizeof(r->why), "gap detector: %s", strerror(-err));
		goto out;
	}
	bool whole = ovh_sleep(b->set.seconds);
	err = gap_detector__end(x->gap, &r->gap);
	double srv1 = ovh_cpu_s(x->srv.child.pid), prof1 = prof ? ovh_cpu_s(p.child.pid) : 0;
	double steal1 = ovh_proc__cpu_steal_s(gap_detector__cpu(x->gap));
	if (prof)
		ovh_proc__bpf_run(p.child.pid, &bpf_ns1, &bpf_cnt1);
	if (!whole) {
		x->stopped = true;
		ovh_fmt(r->why, sizeof(r->why), "interrupted");
		goto out;
	}
	if (err) {
		ovh_fmt(r->why, sizeof(r->why), "gap detector: %s", strerror(-err));
		goto out;
	}
	if (prof && !ovh_child__alive(&p.child)) {
		ovh_fmt(r->why, sizeof(r->why), "%s exited during the window (status %d; see %s)",
			ovh_tool__name(cfg->tool), ovh_child__exit_code(&p.child), dir);
		goto out;
	}
	if (cfg->tool == OVH_TOOL_PIPELINE && ovh_pipeline__flushes(&p) <= flushes0) {
		ovh_fmt(r->why, sizeof(r->why),
			"pipeline made no flush in the window, which must hold one (see %s)", dir);
		goto out;
	}
	r->window_s = r->gap.window_s;
	if (prof)
		gap_detector__phase(x->gap, cfg->hz, &r->phase);
	for (unsigned h = 0; !prof && h < b->set.n_hz; h++) {
		struct gap_phase null;

		r->null_hits[h] =
			gap_detector__phase(x->gap, b->set.hz[h], &null) ? NAN : null.hits;
	}
	r->server_cpu_s = srv1 - srv0;
	r->steal_s = steal0 >= 0 && steal1 >= 0 ? steal1 - steal0 : NAN;
	if (prof) {
		r->startup_cpu_s = prof0;
		r->window_cpu_s = prof1 - prof0;
		r->bpf_s = (double)(bpf_ns1 - bpf_ns0) / 1e9;
		r->bpf_runs = bpf_cnt1 - bpf_cnt0;
	}
	r->ok = true;

out:
	if (load_started) {
		pthread_join(load.thread, NULL);
		if (r->ok && load.rc) {
			r->ok = false;
			ovh_fmt(r->why, sizeof(r->why), "load generator: %s", strerror(-load.rc));
		} else if (r->ok) {
			r->p50_ms = load.res.p50_ms;
			r->p90_ms = load.res.p90_ms;
			r->p99_ms = load.res.p99_ms;
			r->p999_ms = load.res.p999_ms;
			r->qps = load.res.qps_achieved;
			r->errors = load.res.errors;
			r->timeouts = load.res.timeouts;
			r->late = load.res.late;
		}
	}
	if (prof && p.child.pid) {
		if (ovh_profiler__stop(&p, OVH_STOP_TIMEOUT_MS) && r->ok) {
			r->ok = false;
			ovh_fmt(r->why, sizeof(r->why), "%s did not exit within %u s of SIGINT",
				ovh_tool__name(cfg->tool), OVH_STOP_TIMEOUT_MS / 1000);
		}
		r->exit_wait_s = (double)(p.child.end_ns - p.stop_ns) / 1e9;
		if (r->ok) {
			double total = tv_s(p.child.ru.ru_utime) + tv_s(p.child.ru.ru_stime);

			r->exit_cpu_s = total - (r->startup_cpu_s + r->window_cpu_s);
			r->sampling_s = (double)(p.stop_ns - p.ready_ns) / 1e9;
			ovh_profiler__figures(&p, gap_detector__cpu(x->gap), &r->self);
			if (cfg->tool == OVH_TOOL_PIPELINE && ovh_child__exit_code(&p.child)) {
				r->ok = false;
				ovh_fmt(r->why, sizeof(r->why),
					"pipeline exited with status %d (see %s/stderr.txt)",
					ovh_child__exit_code(&p.child), dir);
			} else if (r->self.samples < 0) {
				r->ok = false;
				ovh_fmt(r->why, sizeof(r->why),
					"%s reported no sample count (exit status %d; see %s)",
					ovh_tool__name(cfg->tool), ovh_child__exit_code(&p.child),
					dir);
			}
		}
	}
	if (bpf_stats_old >= 0 && bpf_stats_old != 1)
		ovh_sysctl__set(OVH_BPF_STATS, bpf_stats_old);
}

/* ---- set-up and the schedule ---------------------------------------------- */

static struct ovh_config *ovh_add_config(struct ovh_bench *b, enum ovh_tool t, unsigned hz,
					 const char *unwind, const char *skip)
{
	struct ovh_config *c = &b->configs[b->n_configs++];

	c->tool = t;
	c->hz = hz;
	c->unwind = unwind;
	if (t == OVH_TOOL_OFF)
		snprintf(c->name, sizeof(c->name), "off");
	else if (t == OVH_TOOL_OFFCPUTIME)
		snprintf(c->name, sizeof(c->name), "offcputime");
	else
		snprintf(c->name, sizeof(c->name), "%s %uHz%s%s", ovh_tool__name(t), hz,
			 unwind && strcmp(unwind, OVH_DEFAULT_UNWIND) ? " " : "",
			 unwind && strcmp(unwind, OVH_DEFAULT_UNWIND) ? unwind : "");
	if (skip)
		ovh_fmt(c->skip, sizeof(c->skip), "%s", skip);
	return c;
}

/* --waits: pipeline's off-CPU profile alone and with the lock profile (no
 * CPU sampling: what they add is theirs), and offcputime, the peer. hz is
 * the warm-up's unit only: none of them samples on a timer. */
static void ovh_add_waits(struct ovh_bench *b, const char *bin_dir, unsigned *order,
			  unsigned *n_order)
{
	static const char *const profiles[2] = {"offcpu", "offcpu,lock"};
	char why[160];
	bool usable = !ovh_profiler__check(OVH_TOOL_OFFCPUTIME, bin_dir, why, sizeof(why));

	for (int i = 0; i < 2; i++) {
		order[(*n_order)++] = b->n_configs;
		struct ovh_config *c =
			ovh_add_config(b, OVH_TOOL_PIPELINE, OVH_GATE_HZ, OVH_DEFAULT_UNWIND, NULL);
		c->waits = true;
		c->profiles = profiles[i];
		snprintf(c->name, sizeof(c->name), "pipeline %s", i ? "offcpu+lock" : "offcpu");
	}
	if (usable)
		order[(*n_order)++] = b->n_configs;
	ovh_add_config(b, OVH_TOOL_OFFCPUTIME, OVH_GATE_HZ, NULL, usable ? NULL : why)->waits =
		true;
}

static int ovh_build(struct ovh_bench *b, const char *bin_dir)
{
	char why[3][160];
	const enum ovh_tool tools[] = {OVH_TOOL_PIPELINE, OVH_TOOL_PERF, OVH_TOOL_BPFTRACE};
	bool usable[3];
	unsigned order[OVH_MAX_CONFIGS], n_order = 0;

	for (int t = 0; t < 3; t++)
		usable[t] = !ovh_profiler__check(tools[t], bin_dir, why[t], sizeof(why[t]));
	if (!usable[0] && b->set.tools & 1u << OVH_TOOL_PIPELINE) {
		fprintf(stderr, "pipeline-bench overhead: %s\n", why[0]);
		return -ENOENT;
	}
	ovh_add_config(b, OVH_TOOL_OFF, 0, NULL, NULL);
	for (int t = 0; t < 3; t++)
		for (unsigned h = 0; h < b->set.n_hz && b->set.tools & 1u << tools[t]; h++) {
			for (unsigned u = 0; u < OVH_N_UNWINDS; u++) {
				if (t == 0 ? !(b->set.unwinds & 1u << u) : u > 0)
					continue;
				if (usable[t])
					order[n_order++] = b->n_configs;
				ovh_add_config(b, tools[t], b->set.hz[h],
					       t == 0 ? ovh_unwind_names[u] : NULL,
					       usable[t] ? NULL : why[t]);
			}
			if (t == 0 && b->set.tick && usable[0]) {
				order[n_order++] = b->n_configs;
				struct ovh_config *c =
					ovh_add_config(b, OVH_TOOL_PIPELINE, b->set.hz[h],
						       OVH_DEFAULT_UNWIND, NULL);
				c->clock = "tick";
				snprintf(c->name, sizeof(c->name), "pipeline %uHz tick",
					 b->set.hz[h]);
			}
		}
	if (b->set.waits)
		ovh_add_waits(b, bin_dir, order, &n_order);

	b->runs = calloc(OVH_MAX_RUNS, sizeof(*b->runs));
	if (!b->runs)
		return -ENOMEM;
	unsigned reps_of[OVH_MAX_CONFIGS] = {0};
	for (unsigned rep = 0; rep < b->set.reps; rep++) {
		b->runs[b->n_runs++].config = 0;
		for (unsigned i = 0; i < n_order; i++) {
			unsigned c = order[(i + rep) % n_order];

			b->runs[b->n_runs].config = c;
			b->runs[b->n_runs++].rep = reps_of[c]++;
			if ((i + 1) % b->set.off_every == 0 && i + 1 < n_order)
				b->runs[b->n_runs++].config = 0;
		}
	}
	b->runs[b->n_runs++].config = 0;
	for (unsigned k = 0; k < b->n_runs; k++)
		if (b->runs[k].config == 0)
			b->runs[k].rep = reps_of[0]++;
	return 0;
}

/* The workload CPUs: every CPU this process may use, but the gap CPU. */
static int ovh_place(struct ovh_bench *b)
{
	cpu_set_t all;
	int last = -1;

	if (sched_getaffinity(0, sizeof(all), &all))
		return -errno;
	b->n_cpus = (unsigned)CPU_COUNT(&all);
	for (int i = 0; i < CPU_SETSIZE; i++)
		if (CPU_ISSET(i, &all))
			last = i;
	if (b->set.gap_cpu < 0)
		b->set.gap_cpu = last;
	if (!CPU_ISSET(b->set.gap_cpu, &all)) {
		fprintf(stderr,
			"pipeline-bench overhead: --gap-cpu %d: not a CPU this process "
			"may use\n",
			b->set.gap_cpu);
		return -EINVAL;
	}
	b->workload_cpus = all;
	if (b->n_cpus < 2 && !b->set.shared_cpu) {
		fprintf(stderr, "pipeline-bench overhead: one CPU: the workload shares it with "
				"the gap detector (--shared-cpu)\n");
		b->set.shared_cpu = true;
	}
	if (!b->set.shared_cpu)
		CPU_CLR(b->set.gap_cpu, &b->workload_cpus);
	ovh_cpu_list(&b->workload_cpus, b->workload_cpu_list, sizeof(b->workload_cpu_list));
	unsigned n_work = (unsigned)CPU_COUNT(&b->workload_cpus);
	b->server_threads = n_work > 64 ? 64 : n_work;
	b->loadgen_threads = n_work / 4 ? n_work / 4 : 1;
	return 0;
}

/* One short load at the asked rate, halved while the server cannot keep up. */
static int ovh_probe_qps(struct ovh_ctx *x)
{
	struct loadgen_opts o = {
		.port = x->srv.port,
		.qps = x->b->set.qps_asked,
		.seconds = 2,
		.threads = x->b->loadgen_threads,
		.warmup_s = 0.5,
		.auto_scale = true,
	};
	struct loadgen_result r;
	int err;

	o.closed = x->b->set.closed;
	err = loadgen__run(&o, &r);
	if (err) {
		fprintf(stderr, "pipeline-bench overhead: load generator: %s\n", strerror(-err));
		return err;
	}
	if (o.closed) {
		x->b->qps = 0;
		fprintf(stderr,
			"pipeline-bench overhead: closed-loop load (probe: %.0f requests/s, p99 "
			"%.2f ms)\n",
			r.qps_achieved, r.p99_ms);
		return 0;
	}
	x->b->qps = r.scaled_down ? r.scaled_qps : r.qps_target;
	x->b->qps_scaled = r.scaled_down;
	fprintf(stderr,
		"pipeline-bench overhead: %.0f requests/s (probe: %.0f achieved, p99 %.2f ms)%s\n",
		x->b->qps, r.qps_achieved, r.p99_ms,
		r.scaled_down ? "; lowered: the server could not keep up with more" : "");
	return 0;
}

static void ovh_progress(const struct ovh_bench *b, unsigned k, double t0)
{
	const struct ovh_run *r = &b->runs[k];
	const struct ovh_config *c = &b->configs[r->config];
	double el = (double)bench_now_ns() / 1e9 - t0;

	if (!r->ok) {
		fprintf(stderr, "[%3u/%u %5.0fs] %-16s rep %u: failed: %s\n", k + 1, b->n_runs, el,
			c->name, r->rep + 1, r->why);
		return;
	}
	fprintf(stderr,
		"[%3u/%u %5.0fs] %-16s rep %u: p99 %.2f ms, %.0f req/s, gap CPU irq %.3f %%, "
		"sched %.3f %%",
		k + 1, b->n_runs, el, c->name, r->rep + 1, r->p99_ms, r->qps,
		r->gap.irq.us / (r->window_s * 1e4), r->gap.sched.us / (r->window_s * 1e4));
	if (c->tool != OVH_TOOL_OFF)
		fprintf(stderr, ", cpu %.3f s, bpf %.3f s, %.0f samples",
			r->window_cpu_s + r->exit_cpu_s, r->bpf_s, r->self.samples);
	fputc('\n', stderr);
}

int bench_overhead__main(int argc, char **argv)
{
	struct ovh_bench *b = calloc(1, sizeof(*b));
	struct ovh_ctx x = {.b = b};
	char exe[PATH_MAX];
	sigset_t block, old;
	int rc, exit_code = BENCH_EXIT_ERROR;
	ssize_t len;

	if (!b) {
		fprintf(stderr, "pipeline-bench overhead: out of memory\n");
		return BENCH_EXIT_ERROR;
	}
	rc = ovh_parse(argc, argv, &b->set);
	if (rc) {
		if (rc > 0)
			ovh_usage(stdout);
		else
			fprintf(stderr, "Try 'pipeline-bench overhead --help'.\n");
		free(b);
		return rc > 0 ? BENCH_EXIT_OK : BENCH_EXIT_USAGE;
	}
	if (geteuid() != 0) {
		fprintf(stderr, "pipeline-bench overhead: run as root (the profilers need it)\n");
		free(b);
		return BENCH_EXIT_ERROR;
	}
	len = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (len <= 0) {
		fprintf(stderr, "pipeline-bench overhead: /proc/self/exe: %s\n", strerror(errno));
		free(b);
		return BENCH_EXIT_ERROR;
	}
	exe[len] = 0;
	snprintf(x.bin_dir, sizeof(x.bin_dir), "%s", dirname(exe));
	snprintf(x.tmp, sizeof(x.tmp), "/tmp/pipeline-bench-overhead.XXXXXX");
	if (!mkdtemp(x.tmp)) {
		fprintf(stderr, "pipeline-bench overhead: mkdtemp: %s\n", strerror(errno));
		free(b);
		return BENCH_EXIT_ERROR;
	}
	if (ovh_place(b) || ovh_build(b, x.bin_dir))
		goto cleanup;
	b->stats_json = ovh_pipeline__has_stats_json(x.bin_dir, x.tmp);

	/* From here SIGINT and SIGTERM wait for ovh_sleep(); threads inherit
	 * the mask. */
	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &block, &old);
	signal(SIGPIPE, SIG_IGN);

	x.gap = gap_detector__start(b->set.gap_cpu, b->set.threshold_us);
	if (!x.gap) {
		fprintf(stderr, "pipeline-bench overhead: gap detector on CPU %d: %s\n",
			b->set.gap_cpu, strerror(errno));
		goto unblock;
	}
	b->tsc_ghz = gap_detector__ticks_per_us(x.gap) / 1e3;
	/* This thread, the load generator's and the server: off the gap CPU. */
	if (sched_setaffinity(0, sizeof(b->workload_cpus), &b->workload_cpus)) {
		fprintf(stderr, "pipeline-bench overhead: sched_setaffinity: %s\n",
			strerror(errno));
		goto unblock;
	}
	if (ovh_server__start(&x.srv, b, x.bin_dir, x.tmp) || ovh_probe_qps(&x))
		goto unblock;

	double est = b->n_runs * (b->set.seconds + b->set.warmup_s + 1.5);
	/* pipeline's window waits for its first flush (one interval). */
	for (unsigned k = 0; k < b->n_runs; k++)
		if (b->configs[b->runs[k].config].tool == OVH_TOOL_PIPELINE)
			est += ovh_flush_interval_s(b) + OVH_FLUSH_MARGIN_S;
	fprintf(stderr,
		"pipeline-bench overhead: %u runs of %.0f s (+%.0f s warm-up) in about %.0f min; "
		"gap detector on CPU %d, workload on CPU %s, pipeline self-stats from %s\n",
		b->n_runs, b->set.seconds, b->set.warmup_s, est / 60, b->set.gap_cpu,
		b->workload_cpu_list, b->stats_json ? "--stats-json" : "stderr");
	double t0 = (double)bench_now_ns() / 1e9;
	for (unsigned k = 0; k < b->n_runs && !x.stopped; k++) {
		ovh_run_one(&x, k);
		ovh_progress(b, k, t0);
	}
	b->elapsed_s = (double)bench_now_ns() / 1e9 - t0;
	ovh_server__stop(&x.srv, b);

	ovh_report__print(b, stdout);
	exit_code = BENCH_EXIT_OK;
	if (b->set.json) {
		rc = ovh_report__write_json(b, b->set.json);
		if (rc) {
			fprintf(stderr, "pipeline-bench overhead: cannot write %s: %s\n",
				b->set.json, strerror(-rc));
			exit_code = BENCH_EXIT_ERROR;
		}
	}
	if (x.stopped) {
		fprintf(stderr, "pipeline-bench overhead: interrupted; the figures cover the runs "
				"done\n");
		exit_code = BENCH_EXIT_ERROR;
	}
	if (b->set.gate) {
		char why[256];

		if (!ovh_gate(b, why, sizeof(why)))
			exit_code = BENCH_EXIT_ERROR;
	}

unblock:
	ovh_server__stop(&x.srv, b);
	gap_detector__free(x.gap);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
cleanup:
	if (b->set.keep)
		fprintf(stderr, "pipeline-bench overhead: outputs kept in %s\n", x.tmp);
	else
		ovh_tmp__remove(x.tmp);
	free(b->runs);
	free(b);
	return exit_code;
}
