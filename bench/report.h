/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Benchmark results: one row per measured operation, one figure per
 * repetition (ns per operation), summarized as median, min and max; extra
 * figures (drops, bytes out, hit rate) per repetition, summarized as their
 * median. Printed as a table and written as JSON.
 *
 * Bounded by construction: at most BENCH_MAX_ROWS rows, BENCH_MAX_REPEAT
 * repetitions and BENCH_MAX_EXTRAS extra figures per row. The report owns
 * its rows; rows are borrowed by the benchmarks until the report is freed.
 * Single-threaded.
 */
#ifndef PIPELINE_BENCH_REPORT_H
#define PIPELINE_BENCH_REPORT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define BENCH_MAX_ROWS	 64
#define BENCH_MAX_REPEAT 100
#define BENCH_MAX_EXTRAS 4

struct bench_report;
struct bench_row;

/* What the run was, for the header and the JSON. */
struct bench_run_info {
	const char *command; /* "throughput" */
	bool quick;
	unsigned repeat;
};

/* Returns an empty report, or NULL with errno set. */
struct bench_report *bench_report__new(const struct bench_run_info *info);
/* Accepts NULL. */
void bench_report__free(struct bench_report *r);

/* Returns a new row of stage (e.g. "queue") named name, or NULL with errno set
 * (ENOSPC past BENCH_MAX_ROWS). Names longer than the row's buffer are cut. */
struct bench_row *bench_report__row(struct bench_report *r, const char *stage, const char *name);
/* Adds a row that was not measured, with the reason. Returns 0 or -errno. */
int bench_report__skip(struct bench_report *r, const char *stage, const char *name,
		       const char *why);

/* Records one repetition: ops operations took ns nanoseconds. Repetitions
 * past BENCH_MAX_REPEAT are ignored. */
void bench_row__rep(struct bench_row *row, uint64_t ops, uint64_t ns);
/* Records this repetition's value of an extra figure named key (a JSON key:
 * [a-z0-9_]). Returns 0, or -ENOSPC past BENCH_MAX_EXTRAS keys. */
int bench_row__extra(struct bench_row *row, const char *key, double value);
/* Sets the row's free-text note (what one operation is). */
void bench_row__note(struct bench_row *row, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Prints the table. */
void bench_report__print(const struct bench_report *r, FILE *f);
/* Writes the figures as JSON to path (via path.tmp and rename, so a reader
 * never sees half a file). Returns 0 or -errno. */
int bench_report__write_json(const struct bench_report *r, const char *path);

#endif /* PIPELINE_BENCH_REPORT_H */
