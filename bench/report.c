// SPDX-License-Identifier: BSD-2-Clause
/*
 * Benchmark report (see report.h): rows in one calloc'ed array, summarized
 * on output. The median of an even count is the mean of the middle two.
 * The header names the machine and the build, since a figure means little
 * without them: CPU model and count, kernel, build type, allocator, and
 * whether sanitizers were on (then the figures are not representative).
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "report.h"

#ifndef BENCH_BUILD_TYPE
#define BENCH_BUILD_TYPE "unknown"
#endif
#ifndef BENCH_ALLOCATOR
#define BENCH_ALLOCATOR "glibc"
#endif
#ifndef PIPELINE_VERSION
#define PIPELINE_VERSION "unknown"
#endif

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define BENCH_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define BENCH_SANITIZED 1
#endif
#endif
#ifndef BENCH_SANITIZED
#define BENCH_SANITIZED 0
#endif

struct bench_extra {
	char key[24];
	double v[BENCH_MAX_REPEAT];
	unsigned n;
};

struct bench_row {
	char stage[16];
	char name[64];
	char note[80];
	char skip[96]; /* non-empty: not measured, and why */
	double ns_per_op[BENCH_MAX_REPEAT];
	uint64_t ops[BENCH_MAX_REPEAT];
	unsigned n;
	struct bench_extra extras[BENCH_MAX_EXTRAS];
	unsigned n_extras;
};

struct bench_host {
	char cpu_model[96];
	long cpus;
	char kernel[208];
	char date[32];	   /* UTC, ISO 8601 */
	double loadavg[3]; /* at the start: a busy neighbour skews every figure */
};

struct bench_report {
	struct bench_run_info info;
	struct bench_host host;
	struct bench_row *rows; /* BENCH_MAX_ROWS */
	unsigned n_rows;
};

struct summary {
	double median, min, max;
};

static void read_cpu_model(char *buf, size_t size)
{
	FILE *f = fopen("/proc/cpuinfo", "re");
	char line[256];

	snprintf(buf, size, "unknown");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		char *colon = strchr(line, ':');

		if (strncmp(line, "model name", 10) || !colon)
			continue;
		colon += 1 + (colon[1] == ' ');
		colon[strcspn(colon, "\n")] = 0;
		snprintf(buf, size, "%s", colon);
		break;
	}
	fclose(f);
}

static void host_init(struct bench_host *h)
{
	struct utsname u;
	time_t now = time(NULL);
	struct tm tm;

	read_cpu_model(h->cpu_model, sizeof(h->cpu_model));
	h->cpus = sysconf(_SC_NPROCESSORS_ONLN);
	if (uname(&u) == 0)
		snprintf(h->kernel, sizeof(h->kernel), "%s %s %s", u.sysname, u.release, u.machine);
	else
		snprintf(h->kernel, sizeof(h->kernel), "unknown");
	if (gmtime_r(&now, &tm))
		strftime(h->date, sizeof(h->date), "%Y-%m-%dT%H:%M:%SZ", &tm);
	if (getloadavg(h->loadavg, 3) != 3)
		h->loadavg[0] = h->loadavg[1] = h->loadavg[2] = NAN;
}

struct bench_report *bench_report__new(const struct bench_run_info *info)
{
	struct bench_report *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	r->rows = calloc(BENCH_MAX_ROWS, sizeof(*r->rows));
	if (!r->rows) {
		free(r);
		errno = ENOMEM;
		return NULL;
	}
	r->info = *info;
	host_init(&r->host);
	return r;
}

void bench_report__free(struct bench_report *r)
{
	if (!r)
		return;
	free(r->rows);
	free(r);
}

struct bench_row *bench_report__row(struct bench_report *r, const char *stage, const char *name)
{
	struct bench_row *row;

	if (r->n_rows >= BENCH_MAX_ROWS) {
		errno = ENOSPC;
		return NULL;
	}
	row = &r->rows[r->n_rows++];
	snprintf(row->stage, sizeof(row->stage), "%s", stage);
	snprintf(row->name, sizeof(row->name), "%s", name);
	return row;
}

int bench_report__skip(struct bench_report *r, const char *stage, const char *name, const char *why)
{
	struct bench_row *row = bench_report__row(r, stage, name);

	if (!row)
		return -errno;
	snprintf(row->skip, sizeof(row->skip), "%s", why);
	return 0;
}

void bench_row__rep(struct bench_row *row, uint64_t ops, uint64_t ns)
{
	if (row->n >= BENCH_MAX_REPEAT || !ops)
		return;
	row->ops[row->n] = ops;
	row->ns_per_op[row->n] = (double)ns / (double)ops;
	row->n++;
}

int bench_row__extra(struct bench_row *row, const char *key, double value)
{
	struct bench_extra *e = NULL;

	for (unsigned i = 0; i < row->n_extras; i++)
		if (!strcmp(row->extras[i].key, key))
			e = &row->extras[i];
	if (!e) {
		if (row->n_extras >= BENCH_MAX_EXTRAS)
			return -ENOSPC;
		e = &row->extras[row->n_extras++];
		snprintf(e->key, sizeof(e->key), "%s", key);
	}
	if (e->n < BENCH_MAX_REPEAT)
		e->v[e->n++] = value;
	return 0;
}

void bench_row__note(struct bench_row *row, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(row->note, sizeof(row->note), fmt, ap);
	va_end(ap);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static struct summary summarize(const double *v, unsigned n)
{
	double s[BENCH_MAX_REPEAT];
	struct summary out = {NAN, NAN, NAN};

	if (!n)
		return out;
	memcpy(s, v, n * sizeof(*v));
	qsort(s, n, sizeof(*s), cmp_double);
	out.min = s[0];
	out.max = s[n - 1];
	out.median = n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
	return out;
}

static uint64_t median_ops(const struct bench_row *row)
{
	double v[BENCH_MAX_REPEAT];

	for (unsigned i = 0; i < row->n; i++)
		v[i] = (double)row->ops[i];
	return (uint64_t)summarize(v, row->n).median;
}

/* Formats a duration in ns with a unit that keeps 3-4 significant digits. */
static const char *fmt_ns(char *buf, size_t size, double ns)
{
	if (isnan(ns))
		snprintf(buf, size, "-");
	else if (ns < 1e3)
		snprintf(buf, size, "%.1f ns", ns);
	else if (ns < 1e6)
		snprintf(buf, size, "%.2f us", ns / 1e3);
	else if (ns < 1e9)
		snprintf(buf, size, "%.2f ms", ns / 1e6);
	else
		snprintf(buf, size, "%.2f s", ns / 1e9);
	return buf;
}

static const char *fmt_rate(char *buf, size_t size, double per_s)
{
	if (isnan(per_s) || isinf(per_s))
		snprintf(buf, size, "-");
	else if (per_s < 1e3)
		snprintf(buf, size, "%.1f", per_s);
	else if (per_s < 1e6)
		snprintf(buf, size, "%.1f k", per_s / 1e3);
	else if (per_s < 1e9)
		snprintf(buf, size, "%.2f M", per_s / 1e6);
	else
		snprintf(buf, size, "%.2f G", per_s / 1e9);
	return buf;
}

void bench_report__print(const struct bench_report *r, FILE *f)
{
	const struct bench_host *h = &r->host;
	char a[32], b[32], c[32], d[32];

	fprintf(f, "pipeline-bench %s %s (%s, %s malloc%s), %u repetitions%s\n", r->info.command,
		PIPELINE_VERSION, BENCH_BUILD_TYPE, BENCH_ALLOCATOR,
		BENCH_SANITIZED ? ", SANITIZERS ON: figures not representative" : "",
		r->info.repeat, r->info.quick ? ", --quick" : "");
	fprintf(f, "host: %ld CPUs, %s, %s, load average %.2f %.2f %.2f, %s\n\n", h->cpus,
		h->cpu_model, h->kernel, h->loadavg[0], h->loadavg[1], h->loadavg[2], h->date);
	fprintf(f, "%-10s %-44s %10s %10s %10s %10s  %s\n", "stage", "benchmark", "ops/s",
		"median/op", "min/op", "max/op", "notes");
	for (unsigned i = 0; i < r->n_rows; i++) {
		const struct bench_row *row = &r->rows[i];
		struct summary s = summarize(row->ns_per_op, row->n);

		fprintf(f, "%-10s %-44s ", row->stage, row->name);
		if (row->skip[0] || !row->n) {
			fprintf(f, "%10s %10s %10s %10s  skipped: %s\n", "-", "-", "-", "-",
				row->skip[0] ? row->skip : "no repetition finished");
			continue;
		}
		fprintf(f, "%10s %10s %10s %10s  %s", fmt_rate(a, sizeof(a), 1e9 / s.median),
			fmt_ns(b, sizeof(b), s.median), fmt_ns(c, sizeof(c), s.min),
			fmt_ns(d, sizeof(d), s.max), row->note);
		for (unsigned k = 0; k < row->n_extras; k++)
			fprintf(f, "%s%s=%.4g", k || row->note[0] ? " " : "", row->extras[k].key,
				summarize(row->extras[k].v, row->extras[k].n).median);
		fputc('\n', f);
	}
}

/* Writes s as a JSON string (our names are ASCII; escape what JSON requires). */
static void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch == '"' || ch == '\\')
			fprintf(f, "\\%c", ch);
		else if (ch < 0x20)
			fprintf(f, "\\u%04x", ch);
		else
			fputc(ch, f);
	}
	fputc('"', f);
}

static void json_num(FILE *f, double v)
{
	if (isnan(v) || isinf(v))
		fputs("null", f);
	else
		fprintf(f, "%.6g", v);
}

static void json_row(FILE *f, const struct bench_row *row)
{
	struct summary s = summarize(row->ns_per_op, row->n);

	fputs("    {\"stage\": ", f);
	json_str(f, row->stage);
	fputs(", \"name\": ", f);
	json_str(f, row->name);
	if (row->skip[0] || !row->n) {
		fputs(", \"skipped\": ", f);
		json_str(f, row->skip[0] ? row->skip : "no repetition finished");
		fputs("}", f);
		return;
	}
	fputs(", \"note\": ", f);
	json_str(f, row->note);
	fprintf(f, ", \"repetitions\": %u, \"ops_per_repetition\": %llu", row->n,
		(unsigned long long)median_ops(row));
	fputs(", \"ops_per_s\": ", f);
	json_num(f, 1e9 / s.median);
	fputs(", \"ns_per_op\": {\"median\": ", f);
	json_num(f, s.median);
	fputs(", \"min\": ", f);
	json_num(f, s.min);
	fputs(", \"max\": ", f);
	json_num(f, s.max);
	fputs(", \"all\": [", f);
	for (unsigned i = 0; i < row->n; i++) {
		fputs(i ? ", " : "", f);
		json_num(f, row->ns_per_op[i]);
	}
	fputs("]}, \"extra\": {", f);
	for (unsigned k = 0; k < row->n_extras; k++) {
		fputs(k ? ", " : "", f);
		json_str(f, row->extras[k].key);
		fputs(": ", f);
		json_num(f, summarize(row->extras[k].v, row->extras[k].n).median);
	}
	fputs("}}", f);
}

static void json_write(FILE *f, const struct bench_report *r)
{
	const struct bench_host *h = &r->host;

	fputs("{\n  \"command\": ", f);
	json_str(f, r->info.command);
	fputs(", \"version\": ", f);
	json_str(f, PIPELINE_VERSION);
	fputs(", \"date\": ", f);
	json_str(f, h->date);
	fprintf(f, ",\n  \"quick\": %s, \"repeat\": %u,\n", r->info.quick ? "true" : "false",
		r->info.repeat);
	fputs("  \"build\": {\"type\": ", f);
	json_str(f, BENCH_BUILD_TYPE);
	fputs(", \"allocator\": ", f);
	json_str(f, BENCH_ALLOCATOR);
	fprintf(f, ", \"sanitized\": %s},\n", BENCH_SANITIZED ? "true" : "false");
	fprintf(f, "  \"host\": {\"cpus\": %ld, \"cpu_model\": ", h->cpus);
	json_str(f, h->cpu_model);
	fputs(", \"kernel\": ", f);
	json_str(f, h->kernel);
	fputs(", \"loadavg\": [", f);
	for (int i = 0; i < 3; i++) {
		fputs(i ? ", " : "", f);
		json_num(f, h->loadavg[i]);
	}
	fputs("]},\n  \"results\": [\n", f);
	for (unsigned i = 0; i < r->n_rows; i++) {
		json_row(f, &r->rows[i]);
		fputs(i + 1 < r->n_rows ? ",\n" : "\n", f);
	}
	fputs("  ]\n}\n", f);
}

int bench_report__write_json(const struct bench_report *r, const char *path)
{
	char tmp[4096];
	FILE *f;
	int err = 0;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	f = fopen(tmp, "we");
	if (!f)
		return -errno;
	json_write(f, r);
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
