// SPDX-License-Identifier: BSD-2-Clause
/*
 * Stage 4, the encoders, continued: OTLP Profiles (otlp__encode, encoder.h)
 * and the exporter's gzip, on whole synthetic 10 s intervals as the flusher
 * hands them over (synth_interval__new): per-sample times and CPUs, process
 * executables and containers.
 *
 *   20k  20,000 distinct stacks of 20-30 frames over 300 processes, 99 Hz x
 *        64 CPUs x 10 s = 63,360 samples, pool of 16384 user + 1024 kernel
 *        functions: the interval of issue 4's "Done when" (under 50 ms)
 *   1k   1000 stacks over 20 processes, 99 Hz x 8 CPUs x 10 s = 7920
 *        samples, pool of 4096 + 512 (the other encoder rows' pool)
 *
 * Rows per interval: otlp__encode alone in the timestamps shape (the
 * agent's default) and with aggregated values (--no-otlp-timestamps), both
 * as one request; encode + gzip as the exporter compresses (one request,
 * then under the agent's default 4 MiB split limit, each request
 * compressed); the timestamps shape alone and with gzip again on a warm
 * encoder context (otlp_encoder__encode on a struct otlp_encoder that has
 * already encoded this interval once, untimed: the flusher's steady state,
 * whose intervals share most of their frames); and for 20k the gzip alone of
 * the one-request body at levels 1, 3 and 6, for the size/time trade-off of
 * the exporter's level. otlp__encode is a context of its own, built and
 * freed in every call: those rows are the cold cost.
 *
 * gzip is the exporter's own gzip__compress() (exporter.h: libdeflate, one
 * bound-sized output buffer, allocation included) at the exporter's level
 * OTLP_EXPORTER_GZIP_LEVEL.
 *
 * An operation is one interval; freeing the outputs is not timed.
 * Single thread; each repetition encodes until its count or an eighth of the
 * time budget is spent (at least once): these operations are long, and the
 * repetitions give the spread.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "bench.h"
#include "encoder.h"
#include "exporter.h"
#include "synth.h"
#include "throughput.h"

#define SPLIT_LIMIT    (4u << 20) /* --otlp-max-request-bytes default */
#define BASE_OPS       10	  /* per repetition, full run; the time budget usually ends it */
#define MIN_DEPTH      20
#define MAX_DEPTH      30
#define HZ	       99
#define SECONDS	       10
#define MAX_LEVEL_ROWS 3

struct otlp_variant {
	const char *label;
	size_t n_stacks;
	unsigned n_processes, n_cpus;
	size_t pool_user, pool_kernel;
	bool levels; /* also the gzip-alone rows */
};

static const struct otlp_variant variants[] = {
	{"1k", 1000, 20, 8, 4096, 512, false},
	{"20k", 20000, 300, 64, 16384, 1024, true},
};
#define N_VARIANTS (sizeof(variants) / sizeof(variants[0]))

enum otlp_meas {
	M_TS,	      /* encode, timestamps, one request */
	M_AGG,	      /* encode, aggregated values, one request */
	M_TS_GZ,      /* encode + gzip, timestamps, one request */
	M_SPLIT_GZ,   /* encode + gzip, timestamps, 4 MiB split */
	M_TS_WARM,    /* encode on a warm context, timestamps, one request */
	M_TS_GZ_WARM, /* the same + gzip */
	N_MEAS,
};

static const char *const meas_names[N_MEAS] = {
	"OTLP timestamps",
	"OTLP aggregated",
	"OTLP timestamps + gzip 1",
	"OTLP ts + gzip 1, 4 MiB split",
	"OTLP timestamps, warm context",
	"OTLP ts + gzip 1, warm context",
};

static bool meas_gz(enum otlp_meas m)
{
	return m == M_TS_GZ || m == M_SPLIT_GZ || m == M_TS_GZ_WARM;
}

static bool meas_warm(enum otlp_meas m)
{
	return m == M_TS_WARM || m == M_TS_GZ_WARM;
}

static const int levels[MAX_LEVEL_ROWS] = {1, 3, 6};

static const struct otlp_attr agent_attrs[] = {
	{"deployment.environment", "prod"},
	{"service.name", "pipeline"},
};

/* What one operation produced (the last one of a repetition). */
struct otlp_result {
	size_t requests, raw, gz;
};

static void free_reqs(struct encoded_buf *reqs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(reqs[i].data);
	free(reqs);
}

/* One interval through measurement m, on enc for the warm rows; *ns gets
 * the timed part. */
static int otlp_once(enum otlp_meas m, const struct profile *p, struct otlp_encoder *enc,
		     struct otlp_result *res, uint64_t *ns)
{
	const struct profile *one[] = {p};
	struct otlp_encode_opts opts = {
		.agent_name = "pipeline",
		.agent_version = "bench",
		.resource_attrs = agent_attrs,
		.n_resource_attrs = sizeof(agent_attrs) / sizeof(agent_attrs[0]),
		.timestamps = m != M_AGG,
		.max_request_bytes = m == M_SPLIT_GZ ? SPLIT_LIMIT : 0,
	};
	bool gz = meas_gz(m);
	struct encoded_buf *reqs = NULL, *zs = NULL;
	size_t n = 0, done = 0;
	uint64_t t0, t1;
	int err;

	*res = (struct otlp_result){0};
	t0 = bench_now_ns();
	if (meas_warm(m))
		err = otlp_encoder__encode(enc, one, 1, &opts, &reqs, &n);
	else
		err = otlp__encode(one, 1, &opts, &reqs, &n);
	if (!err && gz) {
		zs = calloc(n ? n : 1, sizeof(*zs));
		if (!zs)
			err = -ENOMEM;
		for (; !err && done < n; done++)
			err = gzip__compress(reqs[done].data, reqs[done].len,
					     OTLP_EXPORTER_GZIP_LEVEL, &zs[done].data,
					     &zs[done].len);
	}
	t1 = bench_now_ns();
	*ns = t1 - t0;
	res->requests = n;
	for (size_t i = 0; i < n; i++)
		res->raw += reqs[i].len;
	for (size_t i = 0; i < done; i++)
		res->gz += zs[i].len;
	free_reqs(reqs, n);
	if (zs)
		free_reqs(zs, done);
	return err;
}

static int bench_otlp(const struct tp_cfg *cfg, enum otlp_meas m, const struct profile *p,
		      struct otlp_encoder *enc, struct bench_row *row)
{
	uint64_t n = tp_ops(cfg, BASE_OPS), deadline, ns = 0, k = 0, one;
	struct otlp_result res;
	int err = 0;

	if (meas_warm(m)) /* the context has seen this interval's frames: untimed */
		err = otlp_once(M_TS_WARM, p, enc, &res, &one);
	deadline = bench_now_ns() + cfg->budget_ns / 8;
	while (!err) {
		err = otlp_once(m, p, enc, &res, &one);
		ns += one;
		k++;
		if (k >= n || bench_now_ns() >= deadline)
			break;
	}
	if (err)
		return err;
	bench_row__rep(row, k, ns);
	bench_row__extra(row, "bytes_raw", (double)res.raw);
	if (meas_gz(m))
		bench_row__extra(row, "bytes_gz", (double)res.gz);
	if (m == M_SPLIT_GZ)
		bench_row__extra(row, "requests", (double)res.requests);
	return 0;
}

/* gzip alone of one request body at a level. */
static int bench_level(const struct tp_cfg *cfg, int level, const struct encoded_buf *body,
		       struct bench_row *row)
{
	uint64_t n = tp_ops(cfg, BASE_OPS), deadline = bench_now_ns() + cfg->budget_ns / 8;
	uint64_t ns = 0, k = 0;
	size_t out_len = 0;
	int err;

	do {
		uint8_t *z = NULL;
		uint64_t t0 = bench_now_ns();

		err = gzip__compress(body->data, body->len, level, &z, &out_len);
		ns += bench_now_ns() - t0;
		free(z);
		k++;
	} while (!err && k < n && bench_now_ns() < deadline);
	if (err)
		return err;
	bench_row__rep(row, k, ns);
	bench_row__extra(row, "bytes_raw", (double)body->len);
	bench_row__extra(row, "bytes_gz", (double)out_len);
	bench_row__extra(row, "ratio", (double)body->len / (double)(out_len ? out_len : 1));
	return 0;
}

/* The one-request timestamps body, for the gzip-alone rows. */
static int encode_body(const struct profile *p, struct encoded_buf *body)
{
	const struct profile *one[] = {p};
	struct otlp_encode_opts opts = {
		.agent_name = "pipeline",
		.agent_version = "bench",
		.resource_attrs = agent_attrs,
		.n_resource_attrs = sizeof(agent_attrs) / sizeof(agent_attrs[0]),
		.timestamps = true,
	};
	struct encoded_buf *reqs = NULL;
	size_t n = 0;
	int err = otlp__encode(one, 1, &opts, &reqs, &n);

	if (!err && n != 1)
		err = -EPROTO;
	if (!err) {
		*body = reqs[0];
		reqs[0].data = NULL;
	}
	free_reqs(reqs, n);
	return err;
}

struct otlp_run {
	struct synth *s;
	struct synth_interval *si;
	struct otlp_encoder *enc; /* the warm rows' context */
	struct encoded_buf body;
	struct bench_row *rows[N_MEAS];
	struct bench_row *level_rows[MAX_LEVEL_ROWS];
};

static int variant_setup(const struct tp_cfg *cfg, const struct otlp_variant *v, struct otlp_run *r,
			 struct bench_report *rep)
{
	struct synth_interval_cfg icfg = {
		.n_stacks = v->n_stacks,
		.min_depth = MIN_DEPTH,
		.max_depth = MAX_DEPTH,
		.n_processes = v->n_processes,
		.n_cpus = v->n_cpus,
		.hz = HZ,
		.seconds = SECONDS,
		.seed = cfg->seed,
	};
	char name[64];
	int err;

	r->s = synth__new(v->pool_user, v->pool_kernel, cfg->seed);
	if (!r->s)
		return -errno;
	r->si = synth_interval__new(r->s, &icfg);
	if (!r->si)
		return -errno;
	r->enc = otlp_encoder__new(NULL);
	if (!r->enc)
		return -errno;
	for (int m = 0; m < N_MEAS; m++) {
		snprintf(name, sizeof(name), "%s, %s stacks", meas_names[m], v->label);
		r->rows[m] = bench_report__row(rep, "encoder", name);
		if (!r->rows[m])
			return -errno;
		bench_row__note(
			r->rows[m], "per 10 s interval: %zu samples, %u procs, %d-%d frames",
			(size_t)r->si->profile.total_samples, v->n_processes, MIN_DEPTH, MAX_DEPTH);
	}
	if (!v->levels)
		return 0;
	err = encode_body(&r->si->profile, &r->body);
	if (err)
		return err;
	for (int l = 0; l < MAX_LEVEL_ROWS; l++) {
		snprintf(name, sizeof(name), "gzip %d alone, %s-stack OTLP request", levels[l],
			 v->label);
		r->level_rows[l] = bench_report__row(rep, "encoder", name);
		if (!r->level_rows[l])
			return -errno;
		bench_row__note(r->level_rows[l], "per request (timestamps shape, one request)");
	}
	return 0;
}

int tp_enc_otlp__run(const struct tp_cfg *cfg, struct bench_report *rep)
{
	struct otlp_run runs[N_VARIANTS] = {0};
	int err = 0;

	for (size_t i = 0; i < N_VARIANTS && !err; i++)
		err = variant_setup(cfg, &variants[i], &runs[i], rep);
	for (unsigned k = 0; k < cfg->repeat && !err; k++) {
		for (size_t i = 0; i < N_VARIANTS && !err; i++) {
			struct otlp_run *r = &runs[i];

			for (int m = 0; m < N_MEAS && !err; m++)
				err = bench_otlp(cfg, (enum otlp_meas)m, &r->si->profile, r->enc,
						 r->rows[m]);
			for (int l = 0; l < MAX_LEVEL_ROWS && !err && variants[i].levels; l++)
				err = bench_level(cfg, levels[l], &r->body, r->level_rows[l]);
		}
	}
	for (size_t i = 0; i < N_VARIANTS; i++) {
		otlp_encoder__free(runs[i].enc);
		free(runs[i].body.data);
		synth_interval__free(runs[i].si);
		synth__free(runs[i].s);
	}
	return err;
}
