// SPDX-License-Identifier: BSD-2-Clause
/*
 * Stage 4, the encoders (encoder/encoder.h): pprof (gzip included), folded
 * stacks and the SVG flame graph, each on a synthetic profile (synth.h) of
 * 1000 and of 10000 distinct 20-frame stacks over 8 processes, Zipf-like
 * counts, frames from a pool of 4096 user and 512 kernel functions. Then the
 * OTLP rows, on whole intervals with per-sample times (throughput_otlp.c).
 *
 * An operation is one whole encode, output buffer freed outside the timer;
 * the figure is the time per encode and the extra is the bytes out. Single
 * thread; each repetition encodes until its count or time budget is spent
 * (at least once).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "bench.h"
#include "encoder.h"
#include "synth.h"
#include "throughput.h"

#define DEPTH	     20
#define BASE_ENCODES 50 /* per repetition, full run; the time budget usually ends it first */

enum enc_kind { ENC_PPROF, ENC_FOLDED, ENC_SVG, N_ENC };

static const char *const enc_names[N_ENC] = {"pprof (gzip)", "folded", "SVG flame graph"};

static int encode(enum enc_kind kind, const struct profile *p, struct encoded_buf *out)
{
	static const struct flamegraph_opts svg_opts = {.title = "pipeline-bench", .width = 1200};

	switch (kind) {
	case ENC_PPROF:
		return pprof__encode(p, out);
	case ENC_FOLDED:
		return folded__encode(p, out);
	default:
		return flamegraph__encode_svg(p, &svg_opts, out);
	}
}

static int bench_encode(const struct tp_cfg *cfg, enum enc_kind kind, const struct profile *p,
			struct bench_row *row)
{
	uint64_t n = tp_ops(cfg, BASE_ENCODES), deadline = bench_now_ns() + cfg->budget_ns / 4;
	uint64_t ns = 0, k = 0;
	size_t bytes = 0;
	int err = 0;

	do {
		struct encoded_buf out = {0};
		uint64_t t0 = bench_now_ns();

		err = encode(kind, p, &out);
		ns += bench_now_ns() - t0;
		bytes = out.len;
		free(out.data);
		k++;
	} while (!err && k < n && bench_now_ns() < deadline);
	if (err)
		return err;
	bench_row__rep(row, k, ns);
	bench_row__extra(row, "bytes_out", (double)bytes);
	return 0;
}

int tp_enc__run(const struct tp_cfg *cfg, struct bench_report *rep)
{
	static const size_t sizes[] = {1000, 10000};
	struct bench_row *rows[2][N_ENC];
	struct synth_stacks *st[2] = {NULL, NULL};
	struct profile prof[2];
	struct synth *s = synth__new(4096, 512, cfg->seed);
	int err = 0;

	if (!s)
		return -errno;
	for (int i = 0; i < 2 && !err; i++) {
		st[i] = synth_stacks__new(s, sizes[i], DEPTH, cfg->seed);
		if (!st[i]) {
			err = -errno;
			break;
		}
		prof[i] = (struct profile){
			.signal = "cpu",
			.hostname = "bench-host",
			.time_ns = 1700000000000000000ull,
			.duration_ns = 10000000000ull,
			.frequency_hz = 99,
			.period_ns = 1000000000ull / 99,
			.stacks = st[i]->stacks,
			.n_stacks = st[i]->n,
			.total_samples = st[i]->total,
		};
		for (int e = 0; e < N_ENC && !err; e++) {
			char name[64];

			snprintf(name, sizeof(name), "%s, %zuk stacks", enc_names[e],
				 sizes[i] / 1000);
			rows[i][e] = bench_report__row(rep, "encoder", name);
			if (!rows[i][e]) {
				err = -errno;
				break;
			}
			bench_row__note(rows[i][e], "per encode, %d frames/stack", DEPTH);
		}
	}
	for (unsigned k = 0; k < cfg->repeat && !err; k++)
		for (int i = 0; i < 2 && !err; i++)
			for (int e = 0; e < N_ENC && !err; e++)
				err = bench_encode(cfg, (enum enc_kind)e, &prof[i], rows[i][e]);
	synth_stacks__free(st[0]);
	synth_stacks__free(st[1]);
	synth__free(s);
	if (!err)
		err = tp_enc_otlp__run(cfg, rep);
	return err;
}
