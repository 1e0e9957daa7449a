// SPDX-License-Identifier: BSD-2-Clause
/*
 * pipeline-bench alloc: what allocation profiling adds to each malloc+free
 * pair of a tight loop (pipeline-bench-alloc-loop, glibc's malloc), side by
 * side in one run, each configuration in turn within every repetition:
 *
 *   off             no probe
 *   floor, entry    do-nothing programs where the classic tools probe:
 *                   malloc entry, malloc return, free entry
 *   floor, chosen   do-nothing programs where pipeline probes (the probe
 *                   points of pipeline/probe_point.c; the return at entry)
 *   classic         bench/memleak_classic.bt under bpftrace: bcc memleak's
 *                   probes, every allocation tracked with its stack
 *   pipeline        pipeline --profiles alloc at the default sampling
 *                   (512 KiB), and exact (--alloc-sample-bytes 1)
 *
 * Each measurement attaches the tool to the loop's process, waits until it
 * is attached, lets the loop run for --ms milliseconds, then stops the tool.
 *
 * Then (full runs) the same tools on the workload server
 * (pipeline-bench-server --allocs 8: eight request-scoped buffers malloc'ed
 * and freed per request) under open-loop load at its default 10,000
 * requests/s: p50, p99 and achieved rate per configuration.
 * The figure is ns per pair; the summary gives each configuration's added
 * cost (its median less off's) and how many times the classic approach's
 * added cost is pipeline's. Needs root.
 */
#include <bpf/libbpf.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "alloc_target.h"
#include "bench.h"
#include "loadgen.h"
#include "overhead_proc.h"
#include "report.h"
#include "uprobe_floor.skel.h"

enum cfg_id {
	CFG_OFF,
	CFG_FLOOR_ENTRY,
	CFG_FLOOR_CHOSEN,
	CFG_FLOOR_MALLOC,
	CFG_FLOOR_RETURN,
	CFG_FLOOR_FREE,
	CFG_CLASSIC,
	CFG_SAMPLED,
	CFG_EXACT,
	N_CFG,
};

static const char *const cfg_names[N_CFG] = {
	[CFG_OFF] = "off",
	[CFG_FLOOR_ENTRY] = "floor: empty probes at malloc/free entry + malloc return",
	[CFG_FLOOR_CHOSEN] = "floor: empty probes at pipeline's probe points",
	[CFG_FLOOR_MALLOC] = "floor: of which malloc's entry probe alone",
	[CFG_FLOOR_RETURN] = "floor: of which malloc's return probe alone",
	[CFG_FLOOR_FREE] = "floor: of which free's probe alone (pipeline's point)",
	[CFG_CLASSIC] = "classic: bpftrace memleak (entry probes, every block)",
	[CFG_SAMPLED] = "pipeline --profiles alloc (512 KiB sampling)",
	[CFG_EXACT] = "pipeline --profiles alloc --alloc-sample-bytes 1",
};

struct alloc_bench {
	unsigned repeat, ms;
	unsigned server_s; /* seconds of load per server measurement; 0: no server phase */
	double qps;
	bool quick;
	const char *json;
	char bin_dir[PATH_MAX], tmp[PATH_MAX];
	pid_t loop_pid;
	FILE *loop_in, *loop_out;
	struct alloc_target target;
	struct uprobe_floor_bpf *floor;
	struct bench_row *rows[N_CFG];
	double ns[N_CFG][BENCH_MAX_REPEAT];
	bool skip[N_CFG];
};

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: pipeline-bench alloc [OPTION]...\n"
		"Cost per malloc+free pair of a tight loop under allocation profilers: no\n"
		"probe, empty probes where the classic tools and where pipeline put them,\n"
		"bcc memleak's probes under bpftrace, and pipeline --profiles alloc (sampled\n"
		"and exact), each in turn in every repetition. Needs root.\n\n"
		"Options:\n"
		"  --quick      CI size: 3 repetitions of 300 ms\n"
		"  --repeat N   repetitions, 1-%d (default 5)\n"
		"  --ms MS      loop time per measurement, 100-10000 (default 1000)\n"
		"  --server-s S seconds of load per server measurement, 0-60; 0 skips the\n"
		"               server (default 5, 0 with --quick)\n"
		"  --qps N      the server's load (default 10000)\n"
		"  --json FILE  also write the figures as JSON\n"
		"  --help       print this help and exit\n",
		BENCH_MAX_REPEAT);
}

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Starts the loop with pipes to its stdin and stdout. Returns 0 or -errno. */
static int loop_start(struct alloc_bench *b)
{
	char path[PATH_MAX + 32], line[64];
	int in[2], out[2];
	pid_t pid;

	snprintf(path, sizeof(path), "%s/pipeline-bench-alloc-loop", b->bin_dir);
	if (pipe2(in, O_CLOEXEC) || pipe2(out, O_CLOEXEC))
		return -errno;
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		dup2(in[0], 0);
		dup2(out[1], 1);
		execl(path, path, (char *)NULL);
		_exit(127);
	}
	close(in[0]);
	close(out[1]);
	b->loop_pid = pid;
	b->loop_in = fdopen(in[1], "w");
	b->loop_out = fdopen(out[0], "r");
	if (!b->loop_in || !b->loop_out)
		return -ENOMEM;
	setvbuf(b->loop_in, NULL, _IOLBF, 0);
	if (!fgets(line, sizeof(line), b->loop_out) || strncmp(line, "ready", 5)) {
		fprintf(stderr, "pipeline-bench alloc: %s did not start\n", path);
		return -EIO;
	}
	return 0;
}

static void loop_stop(struct alloc_bench *b)
{
	if (b->loop_in) {
		fprintf(b->loop_in, "quit\n");
		fclose(b->loop_in);
	}
	if (b->loop_out)
		fclose(b->loop_out);
	if (b->loop_pid > 0) {
		kill(b->loop_pid, SIGTERM);
		waitpid(b->loop_pid, NULL, 0);
	}
}

/* One timed run of the loop: ns per pair, or a negative errno. */
static double loop_run(struct alloc_bench *b)
{
	unsigned long long pairs, ns;
	char line[64];

	fprintf(b->loop_in, "run %u\n", b->ms);
	if (!fgets(line, sizeof(line), b->loop_out) ||
	    sscanf(line, "%llu %llu", &pairs, &ns) != 2 || !pairs)
		return -EIO;
	return (double)ns / (double)pairs;
}

/* Waits (bounded) for a file to contain marker. */
static bool wait_marker(const char *path, const char *marker, struct ovh_child *c, unsigned ms)
{
	uint64_t end = mono_ns() + (uint64_t)ms * 1000000ull;
	char buf[8192];

	while (mono_ns() < end && ovh_child__alive(c)) {
		FILE *f = fopen(path, "re");
		size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;

		if (f)
			fclose(f);
		buf[n] = 0;
		if (strstr(buf, marker))
			return true;
		usleep(50 * 1000);
	}
	return false;
}

#define FLOOR_MALLOC 1u
#define FLOOR_RETURN 2u
#define FLOOR_FREE   4u

/* Attaches the do-nothing programs of set (FLOOR_*); chosen: at pipeline's
 * probe points, else at the entries. */
static int floor_attach(struct alloc_bench *b, unsigned set, bool chosen, struct bpf_link **links)
{
	const struct alloc_fn_site *m = &b->target.fn[ALLOC_FN_MALLOC],
				   *f = &b->target.fn[ALLOC_FN_FREE];
	LIBBPF_OPTS(bpf_uprobe_opts, ret, .retprobe = true);
	LIBBPF_OPTS(bpf_uprobe_opts, ent);
	const char *path = b->target.attach_path;
	int n = 0;

	if (set & FLOOR_MALLOC)
		links[n++] = bpf_program__attach_uprobe_opts(
			b->floor->progs.floor_entry, b->loop_pid, path,
			m->file_offset + (chosen ? m->entry_point.offset : 0), &ent);
	if (set & FLOOR_RETURN)
		links[n++] = bpf_program__attach_uprobe_opts(
			b->floor->progs.floor_return, b->loop_pid, path, m->file_offset, &ret);
	if (set & FLOOR_FREE)
		links[n++] = bpf_program__attach_uprobe_opts(
			b->floor->progs.floor_entry, b->loop_pid, path,
			f->file_offset + (chosen ? f->entry_point.offset : 0), &ent);
	for (int i = 0; i < n; i++)
		if (!links[i])
			return -errno;
	return 0;
}

/* Attaches configuration c's tool to process target (its programs in
 * links, or its process in tool). Returns 0 or -errno. */
static int tool_start(struct alloc_bench *b, enum cfg_id c, pid_t target, struct ovh_child *tool,
		      struct bpf_link **links)
{
	char pid[16], out[PATH_MAX + 16], err[PATH_MAX + 16], dir[PATH_MAX + 16];
	char script[PATH_MAX + 32], exe[PATH_MAX + 16];
	int e = 0;

	snprintf(pid, sizeof(pid), "%d", (int)target);
	snprintf(out, sizeof(out), "%s/%d.out", b->tmp, (int)c);
	snprintf(err, sizeof(err), "%s/%d.err", b->tmp, (int)c);
	snprintf(dir, sizeof(dir), "%s/out", b->tmp);
	unlink(out);
	unlink(err);
	switch (c) {
	case CFG_OFF:
		break;
	case CFG_FLOOR_ENTRY:
		e = floor_attach(b, FLOOR_MALLOC | FLOOR_RETURN | FLOOR_FREE, false, links);
		break;
	case CFG_FLOOR_CHOSEN:
		e = floor_attach(b, FLOOR_MALLOC | FLOOR_RETURN | FLOOR_FREE, true, links);
		break;
	case CFG_FLOOR_MALLOC:
		e = floor_attach(b, FLOOR_MALLOC, true, links);
		break;
	case CFG_FLOOR_RETURN:
		e = floor_attach(b, FLOOR_RETURN, true, links);
		break;
	case CFG_FLOOR_FREE:
		e = floor_attach(b, FLOOR_FREE, true, links);
		break;
	case CFG_CLASSIC: {
		snprintf(script, sizeof(script), "%s/memleak_classic.bt", b->bin_dir);
		char *argv[] = {"bpftrace", "-p", pid, script, b->target.path, NULL};
		e = ovh_child__spawn(tool, argv, NULL, out, err);
		if (!e && !wait_marker(out, "ready", tool, 30000))
			e = -ETIMEDOUT;
		break;
	}
	case CFG_SAMPLED:
	case CFG_EXACT: {
		snprintf(exe, sizeof(exe), "%s/pipeline", b->bin_dir);
		char *argv[] = {exe,
				"--profiles",
				"alloc",
				"--pid",
				pid,
				"--output",
				dir,
				"--interval",
				"60",
				"--alloc-sample-bytes",
				c == CFG_EXACT ? "1" : "524288",
				NULL};
		e = ovh_child__spawn(tool, argv, NULL, out, err);
		if (!e && !wait_marker(err, "profiling allocations", tool, 30000))
			e = -ETIMEDOUT;
		break;
	}
	default:
		e = -EINVAL;
	}
	if (e)
		fprintf(stderr, "pipeline-bench alloc: %s: %s (see %s)\n", cfg_names[c],
			strerror(-e), err);
	return e;
}

static void tool_stop(struct ovh_child *tool, struct bpf_link **links)
{
	for (int i = 0; i < 3; i++)
		bpf_link__destroy(links[i]);
	if (tool->pid)
		ovh_child__stop(tool, SIGINT, 20000);
}

/* One measurement of configuration c on the loop. Returns ns per pair, or
 * -errno. */
static double measure(struct alloc_bench *b, enum cfg_id c)
{
	struct bpf_link *links[3] = {0};
	struct ovh_child tool = {0};
	int e = tool_start(b, c, b->loop_pid, &tool, links);
	double v = e ? e : loop_run(b);

	tool_stop(&tool, links);
	return v;
}

static int parse(int argc, char **argv, struct alloc_bench *b)
{
	static const struct option opts[] = {
		{"quick", no_argument, NULL, 'q'},     {"repeat", required_argument, NULL, 'r'},
		{"ms", required_argument, NULL, 'm'},  {"json", required_argument, NULL, 'j'},
		{"help", no_argument, NULL, 'h'},      {"server-s", required_argument, NULL, 's'},
		{"qps", required_argument, NULL, 'Q'}, {0},
	};
	int c;

	b->repeat = 5;
	b->ms = 1000;
	b->server_s = 5;
	b->qps = 10000;
	bool server_given = false;
	optind = 1;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'q':
			b->quick = true;
			b->repeat = 3;
			b->ms = 300;
			if (!server_given)
				b->server_s = 0;
			break;
		case 's':
			b->server_s = (unsigned)atoi(optarg);
			server_given = true;
			if (b->server_s > 60) {
				fprintf(stderr, "pipeline-bench alloc: --server-s must be 0-60\n");
				return -1;
			}
			break;
		case 'Q':
			b->qps = atof(optarg);
			if (!(b->qps >= 100 && b->qps <= 1e6)) {
				fprintf(stderr,
					"pipeline-bench alloc: --qps must be 100-1000000\n");
				return -1;
			}
			break;
		case 'r':
			b->repeat = (unsigned)atoi(optarg);
			if (b->repeat < 1 || b->repeat > BENCH_MAX_REPEAT) {
				fprintf(stderr, "pipeline-bench alloc: --repeat must be 1-%d\n",
					BENCH_MAX_REPEAT);
				return -1;
			}
			break;
		case 'm':
			b->ms = (unsigned)atoi(optarg);
			if (b->ms < 100 || b->ms > 10000) {
				fprintf(stderr, "pipeline-bench alloc: --ms must be 100-10000\n");
				return -1;
			}
			break;
		case 'j':
			b->json = optarg;
			break;
		case 'h':
			return 1;
		default:
			return -1;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "pipeline-bench alloc: unexpected argument '%s'\n", argv[optind]);
		return -1;
	}
	return 0;
}

/* ---- the workload server under load ---- */

static const enum cfg_id server_cfgs[] = {CFG_OFF, CFG_SAMPLED, CFG_EXACT, CFG_CLASSIC};
#define N_SERVER_CFGS (sizeof(server_cfgs) / sizeof(server_cfgs[0]))

static int server_phase(struct alloc_bench *b, struct bench_report *rep)
{
	char exe[PATH_MAX + 32], out[PATH_MAX + 16], err[PATH_MAX + 16], name[128];
	struct bench_row *rows[N_SERVER_CFGS];
	struct ovh_child srv = {0};
	unsigned port = 0;
	int e;

	snprintf(exe, sizeof(exe), "%s/pipeline-bench-server", b->bin_dir);
	snprintf(out, sizeof(out), "%s/server.out", b->tmp);
	snprintf(err, sizeof(err), "%s/server.err", b->tmp);
	char *argv[] = {exe, "--allocs", "8", NULL};
	e = ovh_child__spawn(&srv, argv, NULL, out, err);
	if (!e && !wait_marker(out, "PORT ", &srv, 30000))
		e = -ETIMEDOUT;
	if (!e) {
		FILE *f = fopen(out, "re");
		char line[128];

		while (f && fgets(line, sizeof(line), f))
			if (sscanf(line, "PORT %u", &port) == 1)
				break;
		if (f)
			fclose(f);
		e = port ? 0 : -EIO;
	}
	if (e) {
		fprintf(stderr, "pipeline-bench alloc: %s did not start (see %s)\n", exe, err);
		ovh_child__stop(&srv, SIGTERM, 5000);
		return e;
	}
	for (size_t c = 0; c < N_SERVER_CFGS; c++) {
		static const char *const short_names[N_SERVER_CFGS] = {
			"off", "pipeline sampled", "pipeline exact", "classic memleak"};

		snprintf(name, sizeof(name), "server p99, %s", short_names[c]);
		rows[c] = bench_report__row(rep, "alloc", name);
		if (!rows[c]) {
			ovh_child__stop(&srv, SIGTERM, 5000);
			return -errno;
		}
		bench_row__note(rows[c], "%.0f req/s, 8 mallocs per request; p99 from the due time",
				b->qps);
	}
	for (unsigned r = 0; r < b->repeat; r++) {
		for (size_t c = 0; c < N_SERVER_CFGS; c++) {
			struct loadgen_opts lo = {
				.port = port, .qps = b->qps, .seconds = b->server_s, .warmup_s = 1};
			struct bpf_link *links[3] = {0};
			struct ovh_child tool = {0};
			struct loadgen_result res;

			e = tool_start(b, server_cfgs[c], srv.pid, &tool, links);
			if (!e)
				e = loadgen__run(&lo, &res);
			tool_stop(&tool, links);
			if (e) {
				fprintf(stderr, "pipeline-bench alloc: server run: %s\n",
					strerror(-e));
				ovh_child__stop(&srv, SIGTERM, 5000);
				return e;
			}
			bench_row__rep(rows[c], 1, (uint64_t)(res.p99_ms * 1e6));
			bench_row__extra(rows[c], "p50_ms", res.p50_ms);
			bench_row__extra(rows[c], "qps", res.qps_achieved);
			fprintf(stderr,
				"[%u/%u] server, %-52s p50 %.2f ms, p99 %.2f ms, %.0f req/s\n",
				r + 1, b->repeat, cfg_names[server_cfgs[c]], res.p50_ms, res.p99_ms,
				res.qps_achieved);
		}
	}
	ovh_child__stop(&srv, SIGTERM, 5000);
	return 0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(const double *v, unsigned n)
{
	double s[BENCH_MAX_REPEAT];

	memcpy(s, v, n * sizeof(*s));
	qsort(s, n, sizeof(*s), cmp_double);
	return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

static void summary(const struct alloc_bench *b, FILE *f)
{
	double off = median(b->ns[CFG_OFF], b->repeat), add[N_CFG];

	fprintf(f, "\nadded cost per malloc+free pair (median of %u, less off's %.1f ns):\n",
		b->repeat, off);
	for (int c = 1; c < N_CFG; c++) {
		if (b->skip[c])
			continue;
		add[c] = median(b->ns[c], b->repeat) - off;
		fprintf(f, "  %-58s %8.0f ns\n", cfg_names[c], add[c]);
	}
	if (!b->skip[CFG_CLASSIC] && !b->skip[CFG_SAMPLED] && add[CFG_SAMPLED] > 0)
		fprintf(f,
			"classic / pipeline (sampled): %.1f x; classic / pipeline (exact): %.1f "
			"x\n",
			add[CFG_CLASSIC] / add[CFG_SAMPLED],
			add[CFG_EXACT] > 0 ? add[CFG_CLASSIC] / add[CFG_EXACT] : 0);
}

int bench_alloc__main(int argc, char **argv)
{
	struct alloc_bench *b = calloc(1, sizeof(*b));
	struct bench_report *rep = NULL;
	char exe[PATH_MAX], why[512];
	int rc = BENCH_EXIT_ERROR, err;
	ssize_t len;

	if (!b)
		return BENCH_EXIT_ERROR;
	err = parse(argc, argv, b);
	if (err) {
		if (err > 0)
			usage(stdout);
		free(b);
		return err > 0 ? BENCH_EXIT_OK : BENCH_EXIT_USAGE;
	}
	if (geteuid() != 0) {
		fprintf(stderr, "pipeline-bench alloc: run as root (uprobes need it)\n");
		free(b);
		return BENCH_EXIT_ERROR;
	}
	len = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (len <= 0) {
		fprintf(stderr, "pipeline-bench alloc: /proc/self/exe: %s\n", strerror(errno));
		free(b);
		return BENCH_EXIT_ERROR;
	}
	exe[len] = 0;
	snprintf(b->bin_dir, sizeof(b->bin_dir), "%s", dirname(exe));
	snprintf(b->tmp, sizeof(b->tmp), "/tmp/pipeline-bench-alloc.XXXXXX");
	if (!mkdtemp(b->tmp)) {
		fprintf(stderr, "pipeline-bench alloc: mkdtemp: %s\n", strerror(errno));
		free(b);
		return BENCH_EXIT_ERROR;
	}
	struct bench_run_info info = {.command = "alloc", .quick = b->quick, .repeat = b->repeat};
	rep = bench_report__new(&info);
	if (!rep || loop_start(b))
		goto out;
	err = alloc_target__find((uint32_t)b->loop_pid, &b->target, why, sizeof(why));
	if (err) {
		fprintf(stderr, "pipeline-bench alloc: %s\n", why);
		goto out;
	}
	b->floor = uprobe_floor_bpf__open_and_load();
	if (!b->floor) {
		fprintf(stderr, "pipeline-bench alloc: cannot load the empty probes: %s\n",
			strerror(errno));
		goto out;
	}
	fprintf(stderr,
		"pipeline-bench alloc: %u repetitions of %u ms per configuration; malloc in %s "
		"(probe %s), free probe %s\n",
		b->repeat, b->ms, b->target.path, b->target.fn[ALLOC_FN_MALLOC].entry_point.why,
		b->target.fn[ALLOC_FN_FREE].entry_point.why);
	for (int c = 0; c < N_CFG; c++) {
		b->rows[c] = bench_report__row(rep, "alloc", cfg_names[c]);
		if (!b->rows[c])
			goto out;
		bench_row__note(b->rows[c], "per malloc(64)+free pair");
	}
	for (unsigned r = 0; r < b->repeat; r++) {
		for (int c = 0; c < N_CFG; c++) {
			double v;

			if (b->skip[c])
				continue;
			v = measure(b, (enum cfg_id)c);
			if (v < 0) {
				if (c == CFG_OFF || c == CFG_SAMPLED || c == CFG_EXACT)
					goto out; /* the figures that matter */
				b->skip[c] = true;
				continue;
			}
			b->ns[c][r] = v;
			bench_row__rep(b->rows[c], 1000, (uint64_t)(v * 1000));
			fprintf(stderr, "[%u/%u] %-58s %9.1f ns per pair\n", r + 1, b->repeat,
				cfg_names[c], v);
		}
	}
	if (b->server_s && server_phase(b, rep))
		goto out;
	bench_report__print(rep, stdout);
	summary(b, stdout);
	if (b->json && bench_report__write_json(rep, b->json))
		goto out;
	rc = BENCH_EXIT_OK;
out:
	loop_stop(b);
	uprobe_floor_bpf__destroy(b->floor);
	bench_report__free(rep);
	ovh_tmp__remove(b->tmp);
	free(b);
	return rc;
}
