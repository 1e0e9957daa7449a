// SPDX-License-Identifier: BSD-2-Clause
/*
 * The profilers under test (see peers.h). Command lines are built in a
 * struct of fixed buffers; reports are read back whole (bounded at
 * OVH_MAX_REPORT bytes) and searched for the figures each tool prints:
 *
 *   pipeline  --stats-json FILE, or its self-stats text on stderr
 *   perf      "[ perf record: Captured and wrote X MB FILE (N samples) ]"
 *             and "Processed N events and lost M chunks!" on stderr
 *   bpftrace  the map printed at exit on stdout: one "]: COUNT" line per
 *             distinct stack pair, the counts adding up to the samples; and
 *             on stderr one "failed to look up stack id" per stack it
 *             could not print
 *   offcputime the stacks printed at exit on stdout, each ending in a
 *             "    -   COMM (PID)" line: their number is its "samples"
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "peers.h"

#define OVH_MAX_REPORT (256u << 20)

static const char *const ovh_tool_names[] = {
	[OVH_TOOL_OFF] = "off",
	[OVH_TOOL_PIPELINE] = "pipeline",
	[OVH_TOOL_PERF] = "perf",
	[OVH_TOOL_BPFTRACE] = "bpftrace",
	[OVH_TOOL_OFFCPUTIME] = "offcputime",
};

const char *ovh_tool__name(enum ovh_tool t)
{
	return ovh_tool_names[t];
}

/* Returns the whole file, NUL-terminated (the caller frees), or NULL with
 * errno set. */
static char *ovh_slurp(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	size_t cap = 1 << 16, len = 0;
	char *buf = NULL;

	if (fd < 0)
		return NULL;
	for (;;) {
		if (len + 1 >= cap || !buf) {
			char *nb;

			if (buf)
				cap *= 2;
			if (cap > OVH_MAX_REPORT)
				break;
			nb = realloc(buf, cap);
			if (!nb)
				break;
			buf = nb;
		}
		ssize_t n = read(fd, buf + len, cap - 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	if (buf)
		buf[len] = 0;
	return buf;
}

double ovh_find_number(const char *text, const char *key)
{
	const char *p = text ? strstr(text, key) : NULL;
	char *end;
	double v;

	if (!p)
		return -1;
	p += strlen(key);
	while (*p == ' ' || *p == '\t' || *p == ':' || *p == '"')
		p++;
	if (!isdigit((unsigned char)*p) && *p != '-' && *p != '.')
		return -1;
	v = strtod(p, &end);
	return end == p ? -1 : v;
}

/* Returns true if name is an executable file: a path, or found in PATH. */
static bool ovh_executable(const char *name)
{
	const char *path = getenv("PATH");
	char buf[PATH_MAX];

	if (strchr(name, '/'))
		return access(name, X_OK) == 0;
	if (!path)
		path = "/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin";
	while (*path) {
		size_t len = strcspn(path, ":");

		ovh_fmt(buf, sizeof(buf), "%.*s/%s", (int)len, path, name);
		if (len && access(buf, X_OK) == 0)
			return true;
		path += len + (path[len] == ':');
	}
	return false;
}

int ovh_profiler__check(enum ovh_tool t, const char *bin_dir, char *why, size_t why_len)
{
	char buf[PATH_MAX];

	switch (t) {
	case OVH_TOOL_PIPELINE:
		ovh_fmt(buf, sizeof(buf), "%s/pipeline", bin_dir);
		if (ovh_executable(buf))
			return 0;
		snprintf(why, why_len, "%s not found (build the pipeline target)", buf);
		return -ENOENT;
	case OVH_TOOL_PERF:
		if (ovh_executable("perf"))
			return 0;
		snprintf(why, why_len, "perf not found (Debian package linux-perf)");
		return -ENOENT;
	case OVH_TOOL_BPFTRACE:
		if (ovh_executable("bpftrace"))
			return 0;
		snprintf(why, why_len, "bpftrace not found (Debian package bpftrace)");
		return -ENOENT;
	case OVH_TOOL_OFFCPUTIME:
		if (ovh_executable("offcputime"))
			return 0;
		snprintf(why, why_len, "offcputime not found (Debian package libbpf-tools)");
		return -ENOENT;
	default:
		return 0;
	}
}

bool ovh_pipeline__has_stats_json(const char *bin_dir, const char *tmp_dir)
{
	char exe[PATH_MAX], out[PATH_MAX];
	char *argv[] = {exe, "--help", NULL};
	struct ovh_child c;
	bool has = false;

	ovh_fmt(exe, sizeof(exe), "%s/pipeline", bin_dir);
	ovh_fmt(out, sizeof(out), "%s/pipeline-help.txt", tmp_dir);
	unlink(out);
	if (ovh_child__spawn(&c, argv, NULL, out, out))
		return false;
	ovh_child__stop(&c, 0, 5000); /* signal 0: just wait, at most 5 s */
	char *text = ovh_slurp(out);
	has = text && strstr(text, "--stats-json");
	free(text);
	return has;
}

int ovh_profiler__start(struct ovh_profiler *p, enum ovh_tool t, unsigned hz, const char *bin_dir,
			const char *dir, unsigned max_s, unsigned interval_s, bool stats_json,
			const char *unwind, const char *profiles, const char *clock)
{
	char exe[PATH_MAX], a_hz[16], a_dur[16], a_int[16], a_out[PATH_MAX], a_stats[PATH_MAX];
	char prog[128], out[PATH_MAX], err[PATH_MAX];
	char *argv[24];
	int n = 0;

	memset(p, 0, sizeof(*p));
	p->tool = t;
	p->hz = hz;
	p->profiles = profiles;
	p->clock = clock;
	snprintf(p->dir, sizeof(p->dir), "%s", dir);
	if (mkdir(dir, 0755) && errno != EEXIST)
		return -errno;
	snprintf(a_hz, sizeof(a_hz), "%u", hz);
	snprintf(a_dur, sizeof(a_dur), "%u", max_s);
	snprintf(a_int, sizeof(a_int), "%u", interval_s ? interval_s : 1);
	ovh_fmt(out, sizeof(out), "%s/stdout.txt", dir);
	ovh_fmt(err, sizeof(err), "%s/stderr.txt", dir);
	switch (t) {
	case OVH_TOOL_PIPELINE:
		ovh_fmt(exe, sizeof(exe), "%s/pipeline", bin_dir);
		ovh_fmt(a_out, sizeof(a_out), "%s/profile", dir);
		argv[n++] = exe;
		argv[n++] = "--shards";
		argv[n++] = "auto";
		argv[n++] = "--frequency";
		argv[n++] = a_hz;
		argv[n++] = "--duration";
		argv[n++] = a_dur;
		/* A flush every interval, each of that interval's samples
		 * only, as a continuous deployment runs it (the caller opens
		 * its window after the first, cold, flush). */
		argv[n++] = "--per-interval";
		argv[n++] = "--interval";
		argv[n++] = a_int;
		argv[n++] = "--output";
		argv[n++] = a_out;
		argv[n++] = "--unwind";
		argv[n++] = (char *)unwind;
		if (profiles) {
			argv[n++] = "--profiles";
			argv[n++] = (char *)profiles;
		}
		if (clock) {
			argv[n++] = "--clock";
			argv[n++] = (char *)clock;
		}
		if (stats_json) {
			ovh_fmt(a_stats, sizeof(a_stats), "%s/stats.json", dir);
			argv[n++] = "--stats-json";
			argv[n++] = a_stats;
			p->stats_json = true;
		}
		break;
	case OVH_TOOL_PERF:
		ovh_fmt(a_out, sizeof(a_out), "%s/perf.data", dir);
		argv[n++] = "perf";
		argv[n++] = "record";
		argv[n++] = "-e";
		argv[n++] = "cpu-clock";
		argv[n++] = "-F";
		argv[n++] = a_hz;
		argv[n++] = "-a";
		argv[n++] = "-g";
		argv[n++] = "-o";
		argv[n++] = a_out;
		break;
	case OVH_TOOL_BPFTRACE:
		/* Its output is stdout (DIR/stdout.txt), not -o FILE: bpftrace
		 * 0.17 (Debian bookworm) prints nothing of the map with -o once
		 * stack lookups fail at exit, which happens within seconds at
		 * 1000 Hz (docs/PERFORMANCE.md). */
		snprintf(prog, sizeof(prog), "profile:hz:%u { @[ustack, kstack] = count(); }", hz);
		argv[n++] = "bpftrace";
		argv[n++] = "-e";
		argv[n++] = prog;
		break;
	case OVH_TOOL_OFFCPUTIME:
		/* User threads, as pipeline's off-CPU profile: every process. */
		argv[n++] = "offcputime";
		argv[n++] = "-u";
		break;
	default:
		return -EINVAL;
	}
	argv[n] = NULL;
	return ovh_child__spawn(&p->child, argv, NULL, out, err);
}

static bool ovh_file_has(const char *path, const char *needle)
{
	char *text = ovh_slurp(path);
	bool has = text && strstr(text, needle);

	free(text);
	return has;
}

/* Whether a --profiles list (NULL: cpu) names signal. */
static bool ovh_profiles_have(const char *profiles, const char *signal)
{
	size_t n = strlen(signal);

	if (!profiles)
		return !strcmp(signal, "cpu");
	for (const char *q = profiles; *q;) {
		size_t len = strcspn(q, ",");
		if (len == n && !strncmp(q, signal, n))
			return true;
		q += len + (q[len] == ',');
	}
	return false;
}

int ovh_pipeline__flushes(const struct ovh_profiler *p)
{
	char path[PATH_MAX];
	struct dirent *e;
	int n = 0;

	ovh_fmt(path, sizeof(path), "%s/profile", p->dir);
	DIR *d = opendir(path);
	if (!d)
		return errno == ENOENT ? 0 : -errno;
	/* Files appear by rename once written; temporaries start with '.'.
	 * Each flush writes one folded file per signal with data: count the
	 * CPU ones, or without them the off-CPU ones. */
	const char *sig = ovh_profiles_have(p->profiles, "cpu") ? "cpu-" : "offcpu-";
	while ((e = readdir(d))) {
		size_t len = strlen(e->d_name);

		if (!strncmp(e->d_name, sig, strlen(sig)) && len > strlen(sig) + 7 &&
		    !strcmp(e->d_name + len - 7, ".folded"))
			n++;
	}
	closedir(d);
	return n;
}

int ovh_profiler__wait_ready(struct ovh_profiler *p, unsigned n_cpus, unsigned timeout_ms)
{
	char path[PATH_MAX];

	for (unsigned ms = 0; ms <= timeout_ms; ms += 20) {
		bool ready = false;
		sigset_t pending;

		if (!sigpending(&pending) &&
		    (sigismember(&pending, SIGINT) || sigismember(&pending, SIGTERM)))
			return -EINTR;
		if (!ovh_child__alive(&p->child))
			return -ECHILD;
		switch (p->tool) {
		case OVH_TOOL_PIPELINE:
			ovh_fmt(path, sizeof(path), "%s/stderr.txt", p->dir);
			ready = ovh_file_has(path, "pipeline: sampling") ||
				ovh_file_has(path, "pipeline: profiling time off the CPU");
			break;
		case OVH_TOOL_OFFCPUTIME: {
			/* It says nothing: ready once its program runs (the
			 * caller has the kernel's BPF counters on). */
			uint64_t ns = 0, cnt = 0;
			ready = ovh_proc__bpf_run(p->child.pid, &ns, &cnt) > 0 && cnt > 0;
			break;
		}
		case OVH_TOOL_PERF:
			ready = ovh_proc__perf_event_fds(p->child.pid) >= (int)n_cpus;
			break;
		case OVH_TOOL_BPFTRACE:
			ovh_fmt(path, sizeof(path), "%s/stdout.txt", p->dir);
			ready = ovh_file_has(path, "Attaching") &&
				ovh_proc__perf_event_fds(p->child.pid) >= (int)n_cpus;
			break;
		default:
			ready = true;
		}
		if (ready) {
			p->ready_ns = bench_now_ns();
			return 0;
		}
		struct timespec ts = {0, 20 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	return -ETIMEDOUT;
}

int ovh_profiler__stop(struct ovh_profiler *p, unsigned timeout_ms)
{
	p->stop_ns = bench_now_ns();
	return ovh_child__stop(&p->child, SIGINT, timeout_ms);
}

/* perf: "(N samples)" and the sum of "lost M chunks". */
static void ovh_perf_figures(const char *text, struct ovh_profiler_figures *f)
{
	const char *p = strstr(text, " samples) ]");
	const char *q;

	if (p) {
		for (q = p; q > text && q[-1] != '('; q--)
			;
		f->samples = strtod(q, NULL);
	}
	f->dropped = 0;
	for (p = text; (p = strstr(p, "and lost ")); p += 9)
		f->dropped += strtod(p + 9, NULL);
}

/* bpftrace: the sum of the counts of the map, each at the end of a line
 * "]: N" (after the key's last stack, or ", ]: N" when that stack is empty). */
static void ovh_bpftrace_figures(const char *text, struct ovh_profiler_figures *f)
{
	double sum = 0;
	bool any = false;

	for (const char *p = text; (p = strstr(p, "]: ")); p += 3) {
		char *end;
		double v = strtod(p + 3, &end);

		if (end == p + 3 || (*end != '\n' && *end))
			continue;
		sum += v;
		any = true;
	}
	if (any)
		f->samples = sum;
}

/* pipeline's --stats-json: "samples_by_cpu": [a, b, ...]. */
static double ovh_json_array_at(const char *text, const char *key, int idx)
{
	const char *p = strstr(text, key);
	char *end;

	if (!p || !(p = strchr(p, '[')))
		return -1;
	p++;
	for (int i = 0;; i++) {
		double v = strtod(p, &end);

		if (end == p)
			return -1;
		if (i == idx)
			return v;
		p = end;
		while (*p == ' ' || *p == '\n')
			p++;
		if (*p != ',')
			return -1;
		p++;
	}
}

static void ovh_pipeline_figures(const char *text, bool json, int cpu,
				 struct ovh_profiler_figures *f)
{
	if (json) {
		f->samples = ovh_find_number(text, "\"samples_received\"");
		f->dropped = ovh_find_number(text, "\"dropped_total\"");
		f->self_cpu_s = ovh_find_number(text, "\"agent_cpu_s\"");
		f->self_bpf_s = ovh_find_number(text, "\"bpf_run_time_s\"");
		f->self_elapsed_s = ovh_find_number(text, "\"elapsed_s\"");
		f->cpu_samples = ovh_json_array_at(text, "\"samples_by_cpu\"", cpu);
		f->stack_errors = ovh_find_number(text, "\"stack_errors\"");
		f->period_ns = ovh_find_number(text, "\"sample_period_ns\"");
		return;
	}
	/* The last self-stats block on stderr is the one printed at exit. */
	const char *last = text, *p;

	while ((p = strstr(last + 1, "pipeline: self-stats after ")))
		last = p;
	f->samples = ovh_find_number(last, "samples received");
	double k = ovh_find_number(last, "dropped in kernel");
	double q = ovh_find_number(last, "dropped in queues");
	double m = ovh_find_number(last, "dropped as malformed");
	double a = ovh_find_number(last, "dropped in aggregators");
	if (k >= 0 && q >= 0 && a >= 0)
		f->dropped = k + q + a + (m > 0 ? m : 0);
	f->self_cpu_s = ovh_find_number(last, "agent CPU time");
	f->self_bpf_s = ovh_find_number(last, "BPF run time");
	f->self_elapsed_s = ovh_find_number(last, "self-stats after");
	f->stack_errors = ovh_find_number(last, "stack capture errors");
}

int ovh_profiler__figures(const struct ovh_profiler *p, int cpu, struct ovh_profiler_figures *f)
{
	char path[PATH_MAX];
	char *text;

	*f = (struct ovh_profiler_figures){-1, -1, -1, -1, -1, -1, -1, -1};
	switch (p->tool) {
	case OVH_TOOL_PIPELINE:
		ovh_fmt(path, sizeof(path), "%s/%s", p->dir,
			p->stats_json ? "stats.json" : "stderr.txt");
		break;
	case OVH_TOOL_PERF:
		ovh_fmt(path, sizeof(path), "%s/stderr.txt", p->dir);
		break;
	case OVH_TOOL_BPFTRACE:
	case OVH_TOOL_OFFCPUTIME:
		ovh_fmt(path, sizeof(path), "%s/stdout.txt", p->dir);
		break;
	default:
		return 0;
	}
	text = ovh_slurp(path);
	if (!text && p->tool == OVH_TOOL_PIPELINE && p->stats_json) {
		/* No JSON (an agent older or newer than its --help): the text. */
		ovh_fmt(path, sizeof(path), "%s/stderr.txt", p->dir);
		text = ovh_slurp(path);
		if (text) {
			ovh_pipeline_figures(text, false, cpu, f);
			free(text);
			return 0;
		}
	}
	if (!text)
		return -errno;
	switch (p->tool) {
	case OVH_TOOL_PIPELINE:
		ovh_pipeline_figures(text, p->stats_json, cpu, f);
		break;
	case OVH_TOOL_PERF:
		ovh_perf_figures(text, f);
		break;
	case OVH_TOOL_OFFCPUTIME:
		f->samples = 0;
		for (const char *q = text; (q = strstr(q, "\n    -  ")); q++)
			f->samples++;
		f->dropped = 0; /* it does not say */
		break;
	default:
		ovh_bpftrace_figures(text, f);
		free(text);
		ovh_fmt(path, sizeof(path), "%s/stderr.txt", p->dir);
		text = ovh_slurp(path);
		f->stack_errors = 0;
		for (const char *q = text; q && (q = strstr(q, "failed to look up stack id")); q++)
			f->stack_errors++;
		break;
	}
	free(text);
	return 0;
}
