/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The allocation profile and leak report (see alloc_report.h).
 *
 * Values are estimates when sampling (each sampled allocation weighted by
 * the inverse of its probability of being sampled), exact with
 * --alloc-sample-bytes 1.
 *
 * Growth rate of a site: its change of in-use bytes from flush to flush,
 * averaged over time with weights that decay with a time constant of
 * GROWTH_TAU_S (the decayed sum of the changes over the decayed sum of the
 * elapsed times): over a short run the plain average since the start, over
 * a long one the last several minutes, so a cache that filled up and
 * levelled off falls back to about 0 while a leak keeps showing its rate.
 * The averaging also smooths sampling's noise: at the default 512 KiB, a
 * site leaking 1 MB/s gets about 2 samples a second.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "monotonic.h"
#include "alloc_agg.h"
#include "alloc_probes.h"
#include "alloc_report.h"
#include "report_text.h"

#define TOP_SITES	20
#define GROWTH_TAU_S	300.0
#define STACK_IN_REPORT 8 /* functions shown per site, leaf first */

struct alloc_report {
	const struct pipeline_config *cfg;
	struct alloc_probes *probes;
	struct symbolizer *sym; /* borrowed: names the stacks the kernel kept */
	struct sym_reader *rd;	/* the flush thread's, made when first needed */
	struct alloc_agg *total;
	uint64_t sites_dropped;
	uint64_t probed_ns; /* wall clock when the probes were in place: growth starts */
};

/* pprof columns, as Go's heap profile names them. */
static const struct profile_value_type alloc_columns[] = {
	{"alloc_objects", "count"},
	{"alloc_space", "bytes"},
	{"inuse_objects", "count"},
	{"inuse_space", "bytes"},
};
#define N_COLUMNS	(sizeof(alloc_columns) / sizeof(alloc_columns[0]))
#define COL_INUSE_SPACE 3
#define COL_ALLOC_SPACE 1

struct alloc_report *alloc_report__new(const struct pipeline_config *cfg,
				       struct alloc_probes *probes, struct symbolizer *sym)
{
	struct alloc_report *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	r->cfg = cfg;
	r->probes = probes;
	r->sym = sym;
	{
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		r->probed_ns = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
	}
	/* The union of every shard's sites over the run. */
	r->total = alloc_agg__new((size_t)cfg->max_stacks * 4);
	if (!r->total) {
		free(r);
		return NULL;
	}
	return r;
}

void alloc_report__free(struct alloc_report *r)
{
	if (!r)
		return;
	alloc_agg__free(r->total);
	sym_reader__free(r->rd);
	free(r);
}

int alloc_report__merge(struct alloc_report *r, const struct alloc_agg *retired)
{
	int64_t lost = alloc_agg__merge(r->total, retired);

	if (lost < 0)
		return (int)lost;
	r->sites_dropped += (uint64_t)lost;
	return 0;
}

uint64_t alloc_report__sites_dropped(const struct alloc_report *r)
{
	return r->sites_dropped;
}

static double inuse_bytes(const struct alloc_site *s)
{
	double v = s->alloc_bytes - s->free_bytes;

	return v > 0.5 ? v : 0;
}

static double inuse_objects(const struct alloc_site *s)
{
	double v = s->alloc_objects - s->free_objects;

	return v > 0.5 ? v : 0;
}

static void update_growth(struct alloc_site *s, uint64_t start_ns, uint64_t now_ns)
{
	double inuse = inuse_bytes(s);

	if (!s->last_ns) { /* new: it grew from nothing since the start */
		s->last_ns = start_ns;
		s->last_inuse = 0;
	}

	if (s->last_ns && now_ns > s->last_ns) {
		double dt = (double)(now_ns - s->last_ns) / 1e9, keep = exp(-dt / GROWTH_TAU_S);

		s->growth_bytes = s->growth_bytes * keep + (inuse - s->last_inuse);
		s->growth_secs = s->growth_secs * keep + dt;
	}
	s->last_inuse = inuse;
	s->last_ns = now_ns;
}

/* Bytes per minute. */
static double growth_per_min(const struct alloc_site *s)
{
	return s->growth_secs > 0 ? 60.0 * s->growth_bytes / s->growth_secs : 0;
}

/* A site known only from counts (none of its ALLOC records fit in a ring)
 * gets the stack the kernel kept for it. */
static void name_lost_site(struct alloc_report *r, uint32_t tgid, uint64_t site)
{
	const struct sym_frame *frames[CPU_SAMPLE_MAX_FRAMES];
	struct alloc_sample_rec rec;
	struct alloc_site *s = alloc_agg__find(r->total, tgid, site);
	uint32_t n;

	if (!s || s->frames || s->comm[0] || !r->sym ||
	    alloc_probes__site_stack(r->probes, tgid, site, &rec))
		return;
	if (!r->rd && !(r->rd = symbolizer__reader_new(r->sym)))
		return;
	n = rec.user_frames < CPU_SAMPLE_MAX_FRAMES ? rec.user_frames : CPU_SAMPLE_MAX_FRAMES;
	if (n)
		rec.frames[0]--; /* a return address, as in the shards */
	if (n && sym_reader__resolve_user(r->rd, tgid, (const uint64_t *)rec.frames, n, frames))
		n = 0;
	rec.comm[sizeof(rec.comm) - 1] = rec.pcomm[sizeof(rec.pcomm) - 1] = '\0';
	alloc_agg__set_stack(r->total, tgid, site, rec.comm, rec.pcomm, frames, n);
}

/* Records the rings had no room for, counted in the kernel instead. */
static void fold_lost(const struct alloc_lost_key *k, uint64_t count, void *arg)
{
	struct alloc_report *r = arg;

	if (alloc_agg__add_n(r->total, k->tgid, k->site, k->kind == CPU_SAMPLE_KIND_FREE, k->size,
			     r->cfg->alloc_sample_bytes, count))
		r->sites_dropped++;
	else if (k->kind == CPU_SAMPLE_KIND_ALLOC)
		name_lost_site(r, k->tgid, k->site);
}

#define ALIVE_CACHE 1024

struct leak_scan {
	struct alloc_agg *total;
	uint64_t now_mono_ns, min_age_ns, period;
	double leaked_bytes, leaked_objects;
	/* Whether a tgid still exists, cached for the scan (direct-mapped). */
	uint32_t alive_tgid[ALIVE_CACHE];
	bool alive[ALIVE_CACHE];
	uint64_t untracked; /* blocks of exited processes taken off the map */
};

static bool process_exited(uint32_t tgid);

static bool scan_alive(struct leak_scan *ls, uint32_t tgid)
{
	size_t i = tgid % ALIVE_CACHE;

	if (ls->alive_tgid[i] != tgid + 1) {
		ls->alive_tgid[i] = tgid + 1;
		ls->alive[i] = !process_exited(tgid);
	}
	return ls->alive[i];
}

/* Sums a live block into its site's leaked figures when old enough;
 * returns true (untrack it) when its process has exited: its memory went
 * with it, and an entry left there would only fill the map (and match a
 * reused pid's frees). The site keeps what it held. */
static bool leak_visit(uint32_t tgid, const struct alloc_val *v, void *arg)
{
	struct leak_scan *ls = arg;
	struct alloc_site *s;
	double w;

	if (!scan_alive(ls, tgid)) {
		ls->untracked++;
		return true;
	}
	if (ls->now_mono_ns < v->ts_ns || ls->now_mono_ns - v->ts_ns < ls->min_age_ns)
		return false;
	s = alloc_agg__find(ls->total, tgid, v->site);
	w = alloc_agg__weight(v->size, ls->period);
	if (s) {
		s->leaked_bytes += w * (double)v->size;
		s->leaked_objects += w;
	}
	ls->leaked_bytes += w * (double)v->size;
	ls->leaked_objects += w;
	return false;
}

/* ---- leaks.txt ---- */

static const char *fmt_bytes(double b, char *buf, size_t len)
{
	if (b < 1000)
		snprintf(buf, len, "%.0f B", b);
	else if (b < 1e6)
		snprintf(buf, len, "%.1f KB", b / 1e3);
	else if (b < 1e9)
		snprintf(buf, len, "%.1f MB", b / 1e6);
	else
		snprintf(buf, len, "%.2f GB", b / 1e9);
	return buf;
}

/* A process that has exited: its blocks went with it, and what the report
 * shows is what it held when it was last seen. */
static bool process_exited(uint32_t tgid)
{
	char path[32];

	snprintf(path, sizeof(path), "/proc/%u", tgid);
	return access(path, F_OK) != 0;
}

static int cmp_inuse_desc(const void *a, const void *b)
{
	double x = inuse_bytes(*(struct alloc_site *const *)a);
	double y = inuse_bytes(*(struct alloc_site *const *)b);

	return x < y ? 1 : x > y ? -1 : 0;
}

static int leaks_text(struct alloc_report *r, const struct leak_scan *ls, double secs,
		      struct alloc_built *b)
{
	size_t n = alloc_agg__size(r->total), k = 0;
	struct alloc_site **order = malloc((n ? n : 1) * sizeof(*order));
	double ta = 0, tao = 0, tf = 0, tu = 0, tuo = 0;
	struct report_text t = {0};
	char b1[32], b2[32], b3[32];

	if (!order)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		struct alloc_site *s = alloc_agg__site(r->total, i);

		ta += s->alloc_bytes;
		tao += s->alloc_objects;
		tf += s->free_bytes;
		tu += inuse_bytes(s);
		tuo += inuse_objects(s);
		if (inuse_bytes(s) > 0)
			order[k++] = s;
	}
	qsort(order, k, sizeof(*order), cmp_inuse_desc);
	if (r->cfg->alloc_sample_bytes <= 1)
		report_text__printf(
			&t, "Allocation profile over %.0f s: every allocation tracked (exact)\n",
			secs);
	else
		report_text__printf(
			&t,
			"Allocation profile over %.0f s: sampled every %u bytes on average, "
			"figures are weighted estimates\n",
			secs, r->cfg->alloc_sample_bytes);
	report_text__printf(&t, "Total allocated: %s in %.0f allocations\n",
			    fmt_bytes(ta, b1, sizeof(b1)), tao);
	report_text__printf(&t, "Total freed:     %s\n", fmt_bytes(tf, b1, sizeof(b1)));
	report_text__printf(&t, "Outstanding:     %s in %.0f allocations (older than %u s: %s)\n",
			    fmt_bytes(tu, b2, sizeof(b2)), tuo, r->cfg->leak_min_age,
			    fmt_bytes(ls->leaked_bytes, b3, sizeof(b3)));
	if (r->sites_dropped)
		report_text__printf(&t, "Sites dropped (table full): %" PRIu64 "\n",
				    r->sites_dropped);
	report_text__printf(&t, "\nTop allocation sites by outstanding bytes:\n");
	if (!k)
		report_text__printf(&t, " (none)\n");
	for (size_t i = 0; i < k && i < TOP_SITES; i++) {
		const struct alloc_site *s = order[i];
		double g = growth_per_min(s);

		if (fabs(g) < 0.5)
			g = 0; /* no "-0 B" */

		report_text__printf(&t, "%2zu. %9s  (%5.1f %%)  %s%s/min  ", i + 1,
				    fmt_bytes(inuse_bytes(s), b1, sizeof(b1)),
				    tu > 0 ? 100.0 * inuse_bytes(s) / tu : 0, g < 0 ? "-" : "+",
				    fmt_bytes(fabs(g), b2, sizeof(b2)));
		report_text__stack(&t, (const struct sym_frame *const *)s->frames, s->n_frames,
				   STACK_IN_REPORT);
		report_text__printf(
			&t,
			"\n    %.0f bytes in %.0f blocks outstanding, %.0f bytes older than "
			"%u s; %.0f bytes allocated, %.0f freed; growing %.0f bytes/min; "
			"process %u (%s)%s\n",
			inuse_bytes(s), inuse_objects(s), s->leaked_bytes, r->cfg->leak_min_age,
			s->alloc_bytes, s->free_bytes, g, s->tgid, s->pcomm,
			process_exited(s->tgid) ? ", exited" : "");
	}
	free(order);
	if (t.err) {
		free(t.buf);
		return t.err;
	}
	b->leaks = t.buf;
	b->leaks_len = t.len;
	return 0;
}

/* ---- the profile ---- */

int alloc_report__build(struct alloc_report *r, uint64_t start_ns, uint64_t now_ns,
			struct alloc_built *b)
{
	size_t n;
	struct leak_scan ls = {
		.total = r->total,
		.now_mono_ns = monotonic_ns(),
		.min_age_ns = (uint64_t)r->cfg->leak_min_age * 1000000000ull,
		.period = r->cfg->alloc_sample_bytes,
	};
	bool view_inuse = !strcmp(r->cfg->alloc_view, "inuse");
	uint64_t total = 0;
	int err;

	/* After the probes stopped nothing grows: the time since is not part
	 * of the rate. */
	uint64_t stopped = r->probes ? alloc_probes__stopped_ns(r->probes) : 0;
	uint64_t growth_now = stopped && stopped < now_ns ? stopped : now_ns;

	memset(b, 0, sizeof(*b));
	if (r->probes) {
		int64_t got = alloc_probes__drain_lost(r->probes, fold_lost, r);

		if (got < 0)
			fprintf(stderr,
				"pipeline: cannot read the allocation records counted "
				"in the kernel: %s\n",
				strerror((int)-got));
	}
	n = alloc_agg__size(r->total);
	for (size_t i = 0; i < n; i++) {
		struct alloc_site *s = alloc_agg__site(r->total, i);

		update_growth(s, r->probed_ns, growth_now);
		s->leaked_bytes = s->leaked_objects = 0;
	}
	if (r->probes) {
		int64_t seen = alloc_probes__for_each_live(r->probes, leak_visit, &ls);

		if (seen < 0)
			fprintf(stderr, "pipeline: cannot scan the live allocations: %s\n",
				strerror((int)-seen));
	}
	b->stacks = calloc(n ? n : 1, sizeof(*b->stacks));
	b->values = calloc((n ? n : 1) * N_COLUMNS, sizeof(*b->values));
	if (!b->stacks || !b->values) {
		alloc_built__free(b);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		const struct alloc_site *s = alloc_agg__site(r->total, i);
		struct profile_stack *st = &b->stacks[i];
		int64_t *v = &b->values[i * N_COLUMNS];

		v[0] = llround(s->alloc_objects);
		v[1] = llround(s->alloc_bytes);
		v[2] = llround(inuse_objects(s));
		v[3] = llround(inuse_bytes(s));
		*st = (struct profile_stack){
			.tgid = s->tgid,
			.n_user = s->n_frames,
			.frames = (const struct sym_frame *const *)s->frames,
			.count = (uint64_t)v[view_inuse ? COL_INUSE_SPACE : COL_ALLOC_SPACE],
			.values = v,
		};
		memcpy(st->comm, s->comm, PROFILE_COMM_LEN);
		memcpy(st->pcomm, s->pcomm, PROFILE_COMM_LEN);
		total += st->count;
	}
	b->p = (struct profile){
		.signal = "alloc",
		.time_ns = start_ns,
		.duration_ns = now_ns - start_ns,
		.stacks = b->stacks,
		.n_stacks = n,
		.total_samples = total,
		.value_types = alloc_columns,
		.n_value_types = N_COLUMNS,
		.default_value = view_inuse ? COL_INUSE_SPACE : COL_ALLOC_SPACE,
		.period_type = {"space", "bytes"},
		.period = r->cfg->alloc_sample_bytes,
		.count_unit = "bytes",
	};
	err = leaks_text(r, &ls, (double)(now_ns - start_ns) / 1e9, b);
	if (err)
		alloc_built__free(b);
	return err;
}

void alloc_built__free(struct alloc_built *b)
{
	free(b->stacks);
	free(b->values);
	free(b->leaks);
	memset(b, 0, sizeof(*b));
}
