// SPDX-License-Identifier: BSD-2-Clause
/*
 * `pipeline-bench overhead` output (see overhead.h): per configuration the
 * median over its repetitions, and for every difference against "off" the
 * min-max over repetitions of (this run) - (the mean of the off runs just
 * before and just after it). Two tables on stdout (the workload's view, then
 * the cost per sample), a third with --waits (the cost per context switch or
 * wait of the wait profiles), the gate, the targets, and the same
 * figures as JSON.
 *
 * Stolen time per sample: the gap CPU runs the detector's thread without a
 * pause, so every profiler's timer fires there exactly HZ times a second;
 * the extra "irq" time per second on that CPU, divided by HZ, is the cost of
 * one sample there (interrupt, BPF program, perf's sampling work).
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "overhead.h"

/* An off run folded at a rate with a peak this tall (gaps per period) has a
 * timer of its own there, and the fold cannot be used at that rate: the
 * 250 Hz scheduler tick stands 0.5-1 tall at 10 Hz (100 ms is 25 ticks) and
 * 0.25 at 1000 Hz (one tick every fourth period), where the profiler's own
 * peak, 1 tall, is still told apart. */
#define OVH_NULL_HITS 0.35

#ifndef BENCH_BUILD_TYPE
#define BENCH_BUILD_TYPE "unknown"
#endif
#ifndef BENCH_ALLOCATOR
#define BENCH_ALLOCATOR "glibc"
#endif

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

struct ovh_stat {
	double v[OVH_MAX_RUNS];
	unsigned n;
};

static void stat_add(struct ovh_stat *s, double v)
{
	if (isfinite(v) && s->n < OVH_MAX_RUNS)
		s->v[s->n++] = v;
}

/* Median, min and max of the finite values added (NAN when none). */
static double stat_median(struct ovh_stat *s, double *lo, double *hi)
{
	if (!s->n) {
		if (lo)
			*lo = NAN;
		if (hi)
			*hi = NAN;
		return NAN;
	}
	qsort(s->v, s->n, sizeof(s->v[0]), cmp_double);
	if (lo)
		*lo = s->v[0];
	if (hi)
		*hi = s->v[s->n - 1];
	return s->n % 2 ? s->v[s->n / 2] : (s->v[s->n / 2 - 1] + s->v[s->n / 2]) / 2;
}

/* "irq" time on the gap CPU, µs per second the detector ran (it sees
 * interrupts only then). */
static double irq_rate(const struct ovh_run *r)
{
	double running = gap_result__running_s(&r->gap);

	return running > 0 ? r->gap.irq.us / running : NAN;
}

/* The mean of the successful off runs on either side of run k; with
 * locked, whether either of them has a timer of its own at hz. */
static bool ovh_baseline(const struct ovh_bench *b, unsigned k, double *p99, double *irq,
			 unsigned hz, bool *locked)
{
	const struct ovh_run *near[2] = {NULL, NULL};
	unsigned n = 0;

	for (unsigned j = k; j-- > 0;)
		if (b->runs[j].config == 0 && b->runs[j].ok) {
			near[0] = &b->runs[j];
			break;
		}
	for (unsigned j = k + 1; j < b->n_runs; j++)
		if (b->runs[j].config == 0 && b->runs[j].ok) {
			near[1] = &b->runs[j];
			break;
		}
	*p99 = *irq = 0;
	*locked = false;
	for (int i = 0; i < 2; i++)
		if (near[i]) {
			*p99 += near[i]->p99_ms;
			*irq += irq_rate(near[i]);
			n++;
			for (unsigned h = 0; h < b->set.n_hz; h++)
				if (b->set.hz[h] == hz && !(near[i]->null_hits[h] < OVH_NULL_HITS))
					*locked = true;
		}
	if (!n)
		return false;
	*p99 /= n;
	*irq /= n;
	return true;
}

struct ovh_stats {
	struct ovh_stat p50, p99, qps, srv, dp99, agent, bpf, agent_bpf, ab, ab_pct, phase,
		phase_hits, irq, sps, proc, total, startup, exit_cpu, exit_wait, bpf_rate,
		bpf_per_run;
};

/* Adds run k of profiler configuration cfg. */
static void ovh_add_run(const struct ovh_bench *b, unsigned k, const struct ovh_config *cfg,
			struct ovh_stats *st, struct ovh_stat *total_ab, double *dropped,
			bool *dropped_known)
{
	const struct ovh_run *r = &b->runs[k];
	double cpus = b->n_cpus, base_p99, base_irq;
	/* pipeline does its output work in the window (the flush of each
	 * interval); at exit it only tears down, once per lifetime, as it
	 * starts up. perf and bpftrace process what they collected at exit. */
	double cpu_s = r->window_cpu_s + (cfg->tool == OVH_TOOL_PIPELINE ? 0 : r->exit_cpu_s);
	double rate = r->self.samples / r->sampling_s;
	double a = 100 * cpu_s / (r->window_s * cpus), p = 100 * r->bpf_s / (r->window_s * cpus);
	double proc_us = rate > 0 ? cpu_s / r->window_s / rate * 1e6 : NAN;

	stat_add(&st->agent, a);
	stat_add(&st->bpf, p);
	stat_add(&st->agent_bpf, a + p);
	stat_add(&st->sps, rate);
	stat_add(&st->proc, proc_us);
	stat_add(&st->startup, r->startup_cpu_s);
	stat_add(&st->exit_cpu, r->exit_cpu_s);
	stat_add(&st->exit_wait, r->exit_wait_s);
	stat_add(&st->bpf_rate, r->bpf_runs / r->window_s);
	stat_add(&st->bpf_per_run, r->bpf_runs ? 1e9 * r->bpf_s / (double)r->bpf_runs : NAN);
	if (r->self.dropped >= 0)
		*dropped += r->self.dropped;
	else
		*dropped_known = false;
	bool locked = true;
	bool have_base = ovh_baseline(b, k, &base_p99, &base_irq, cfg->hz, &locked);
	if (r->phase.found && !locked) {
		stat_add(&st->phase, r->phase.us);
		stat_add(&st->phase_hits, r->phase.hits);
		stat_add(&st->total, r->phase.us + proc_us);
	}
	if (!have_base)
		return;
	double d = irq_rate(r) - base_irq; /* µs per s */
	/* Samples a second on the busy gap CPU: the rate asked for, or with
	 * --clock tick the one the tick gave (its period, from the agent). */
	double hz = r->self.period_ns > 0 ? 1e9 / r->self.period_ns : cfg->hz;
	stat_add(&st->dp99, 100 * (r->p99_ms / base_p99 - 1));
	stat_add(&st->ab, d / hz);
	stat_add(&st->ab_pct, d / 1e4);
	stat_add(total_ab, d / hz + proc_us);
}

void ovh_summarize(const struct ovh_bench *b, unsigned c, struct ovh_summary *s)
{
	struct ovh_stats *st = calloc(1, sizeof(*st));
	struct ovh_stat *total_ab = calloc(1, sizeof(*total_ab));
	const struct ovh_config *cfg = &b->configs[c];
	double dropped = 0;
	bool dropped_known = true;

	memset(s, 0, sizeof(*s));
	if (!st || !total_ab) {
		free(st);
		free(total_ab);
		s->dropped = NAN;
		return;
	}
	for (unsigned k = 0; k < b->n_runs; k++) {
		const struct ovh_run *r = &b->runs[k];

		if (r->config != c || !r->ok)
			continue;
		s->reps++;
		stat_add(&st->p50, r->p50_ms);
		stat_add(&st->p99, r->p99_ms);
		stat_add(&st->qps, r->qps);
		stat_add(&st->srv, 100 * r->server_cpu_s / (r->window_s * b->n_cpus));
		if (cfg->tool == OVH_TOOL_OFF)
			stat_add(&st->irq, irq_rate(r) / 1e4);
		else
			ovh_add_run(b, k, cfg, st, total_ab, &dropped, &dropped_known);
	}
	s->p50_ms = stat_median(&st->p50, NULL, NULL);
	s->p99_ms = stat_median(&st->p99, NULL, NULL);
	s->qps = stat_median(&st->qps, NULL, NULL);
	s->server_cpu_pct = stat_median(&st->srv, NULL, NULL);
	s->irq_pct = stat_median(&st->irq, NULL, NULL);
	s->dp99_pct = stat_median(&st->dp99, &s->dp99_lo, &s->dp99_hi);
	s->agent_cpu_pct = stat_median(&st->agent, NULL, NULL);
	s->bpf_cpu_pct = stat_median(&st->bpf, NULL, NULL);
	s->agent_bpf_pct = stat_median(&st->agent_bpf, &s->agent_bpf_lo, &s->agent_bpf_hi);
	s->phase_found = st->phase.n;
	s->phase_us = stat_median(&st->phase, &s->phase_lo, &s->phase_hi);
	s->phase_hits = stat_median(&st->phase_hits, NULL, NULL);
	s->ab_us = stat_median(&st->ab, &s->ab_lo, &s->ab_hi);
	s->ab_pct = stat_median(&st->ab_pct, &s->ab_pct_lo, &s->ab_pct_hi);
	s->samples_per_s = stat_median(&st->sps, NULL, NULL);
	s->process_us = stat_median(&st->proc, NULL, NULL);
	s->startup_cpu_s = stat_median(&st->startup, NULL, NULL);
	s->exit_cpu_s = stat_median(&st->exit_cpu, NULL, NULL);
	s->exit_wait_s = stat_median(&st->exit_wait, NULL, NULL);
	s->bpf_runs_per_s = stat_median(&st->bpf_rate, NULL, NULL);
	s->bpf_ns_per_run = stat_median(&st->bpf_per_run, NULL, NULL);
	s->stolen_by_phase = s->phase_found * 2 > s->reps;
	if (s->stolen_by_phase) {
		s->stolen_us = s->phase_us;
		s->stolen_lo = s->phase_lo;
		s->stolen_hi = s->phase_hi;
		/* One interrupt per period on a CPU that never idles. */
		s->stolen_pct = s->phase_us * cfg->hz / 1e4;
		s->stolen_pct_lo = s->phase_lo * cfg->hz / 1e4;
		s->stolen_pct_hi = s->phase_hi * cfg->hz / 1e4;
		s->total_us = stat_median(&st->total, &s->total_lo, &s->total_hi);
	} else {
		s->stolen_us = s->ab_us;
		s->stolen_lo = s->ab_lo;
		s->stolen_hi = s->ab_hi;
		s->stolen_pct = s->ab_pct;
		s->stolen_pct_lo = s->ab_pct_lo;
		s->stolen_pct_hi = s->ab_pct_hi;
		s->total_us = stat_median(total_ab, &s->total_lo, &s->total_hi);
	}
	s->dropped = cfg->tool == OVH_TOOL_OFF || !s->reps || !dropped_known ? NAN : dropped;
	if (cfg->tool == OVH_TOOL_OFF) {
		s->stolen_us = s->stolen_lo = s->stolen_hi = NAN;
		s->stolen_pct = s->stolen_pct_lo = s->stolen_pct_hi = NAN;
		s->agent_cpu_pct = s->bpf_cpu_pct = s->agent_bpf_pct = NAN;
		s->samples_per_s = s->process_us = s->total_us = NAN;
		s->startup_cpu_s = s->exit_cpu_s = s->exit_wait_s = NAN;
		s->bpf_runs_per_s = s->bpf_ns_per_run = NAN;
	} else {
		s->irq_pct = NAN;
	}
	if (cfg->waits) {
		/* No timer of its own: nothing is stolen per sample. */
		s->stolen_us = s->stolen_lo = s->stolen_hi = NAN;
		s->stolen_pct = s->stolen_pct_lo = s->stolen_pct_hi = NAN;
		s->phase_us = s->ab_us = s->ab_pct = s->total_us = s->process_us = NAN;
	}
	free(st);
	free(total_ab);
}

/* ---- text ----------------------------------------------------------------- */

/* Formats v with fmt into buf, or "-" when v is not finite. */
static const char *fmt(char *buf, size_t size, const char *f, double v)
{
	if (!isfinite(v))
		snprintf(buf, size, "-");
	else
		snprintf(buf, size, f, v);
	return buf;
}

static const char *fmt_range(char *buf, size_t size, const char *f, double lo, double hi)
{
	char a[32], b[32];

	if (!isfinite(lo) || !isfinite(hi))
		return snprintf(buf, size, "-"), buf;
	snprintf(a, sizeof(a), f, lo);
	snprintf(b, sizeof(b), f, hi);
	snprintf(buf, size, "%s..%s", a, b);
	return buf;
}

/* The configuration the gate and the 0.1 % target are on: pipeline's
 * on-CPU sampling alone, its default unwinding, 99 Hz. */
static bool ovh_config__gated(const struct ovh_config *cfg)
{
	return cfg->tool == OVH_TOOL_PIPELINE && cfg->hz == OVH_GATE_HZ && !cfg->waits &&
	       !cfg->clock && (!cfg->unwind || !strcmp(cfg->unwind, OVH_DEFAULT_UNWIND));
}

bool ovh_gate(const struct ovh_bench *b, char *why, size_t why_len)
{
	for (unsigned c = 0; c < b->n_configs; c++) {
		const struct ovh_config *cfg = &b->configs[c];
		struct ovh_summary s;

		if (!ovh_config__gated(cfg))
			continue;
		ovh_summarize(b, c, &s);
		if (!s.reps) {
			snprintf(why, why_len, "pipeline at %u Hz did not run", OVH_GATE_HZ);
			return false;
		}
		if (!(s.agent_bpf_pct <= OVH_GATE_PCT)) {
			snprintf(why, why_len,
				 "pipeline at %u Hz: agent CPU + BPF %.3f %% of wall x CPUs > %.1f "
				 "%%",
				 OVH_GATE_HZ, s.agent_bpf_pct, OVH_GATE_PCT);
			return false;
		}
		if (!(s.dropped == 0)) {
			snprintf(why, why_len, "pipeline at %u Hz: %s samples dropped", OVH_GATE_HZ,
				 isfinite(s.dropped) ? "" : "unknown");
			if (isfinite(s.dropped))
				snprintf(why, why_len, "pipeline at %u Hz: %.0f samples dropped",
					 OVH_GATE_HZ, s.dropped);
			return false;
		}
		snprintf(why, why_len,
			 "pipeline at %u Hz: agent CPU + BPF %.3f %% of wall x CPUs (limit %.1f "
			 "%%), "
			 "0 dropped",
			 OVH_GATE_HZ, s.agent_bpf_pct, OVH_GATE_PCT);
		return true;
	}
	snprintf(why, why_len, "pipeline at %u Hz was not measured (--hz)", OVH_GATE_HZ);
	return false;
}

/* The targets at rate hz: pipeline's stolen + process time per
 * sample against the cheapest peer's. */
static void ovh_print_target(const struct ovh_bench *b, unsigned hz, FILE *f)
{
	double mine = NAN, best = NAN;
	const char *best_name = NULL;

	for (unsigned c = 1; c < b->n_configs; c++) {
		const struct ovh_config *cfg = &b->configs[c];
		struct ovh_summary s;

		if (cfg->hz != hz || cfg->waits || cfg->clock ||
		    (cfg->unwind && strcmp(cfg->unwind, OVH_DEFAULT_UNWIND)))
			continue;
		ovh_summarize(b, c, &s);
		if (cfg->tool == OVH_TOOL_PIPELINE)
			mine = s.total_us;
		else if (isfinite(s.total_us) && (!isfinite(best) || s.total_us < best)) {
			best = s.total_us;
			best_name = cfg->name;
		}
	}
	if (!isfinite(mine) || !isfinite(best))
		return;
	fprintf(f,
		"  %4u Hz: pipeline %.2f µs per sample (stolen + process) vs cheapest peer %.2f µs "
		"(%s): %s\n",
		hz, mine, best, best_name, mine <= best ? "met" : "NOT met");
}

/* --waits: the cost per event of the wait profiles, and their targets. */
static void ovh_print_waits(const struct ovh_bench *b, FILE *f)
{
	struct ovh_summary off;
	char t[4][80];

	ovh_summarize(b, 0, &off);
	fprintf(f, "\n%-21s %14s %14s %12s %14s\n", "wait profiles", "agent+BPF CPU", "BPF runs/s",
		"BPF ns/run", "records/s");
	for (unsigned c = 1; c < b->n_configs; c++) {
		const struct ovh_config *cfg = &b->configs[c];
		struct ovh_summary s;

		if (!cfg->waits || cfg->skip[0])
			continue;
		ovh_summarize(b, c, &s);
		if (!s.reps)
			continue;
		fprintf(f, "%-21s %14s %14s %12s %14s\n", cfg->name,
			fmt(t[0], 80, "%.3f %%", s.agent_bpf_pct),
			fmt(t[1], 80, "%.0f", s.bpf_runs_per_s),
			fmt(t[2], 80, "%.0f", s.bpf_ns_per_run),
			fmt(t[3], 80, "%.0f", s.samples_per_s));
	}
	fprintf(f, "BPF runs are context switches (sched_switch) and futex calls; records/s: "
		   "what reached the\nagent (offcputime: stacks printed at exit, per second "
		   "of its run).\n");
	for (unsigned c = 1; c < b->n_configs; c++) {
		const struct ovh_config *cfg = &b->configs[c];
		struct ovh_summary s;

		if (!cfg->waits || cfg->tool != OVH_TOOL_PIPELINE || cfg->skip[0])
			continue;
		ovh_summarize(b, c, &s);
		if (!s.reps)
			continue;
		/* The off runs' own spread: their p99 against their median. */
		double lo = NAN, hi = NAN;
		for (unsigned k = 0; k < b->n_runs; k++) {
			const struct ovh_run *r = &b->runs[k];
			if (r->config || !r->ok)
				continue;
			double d = 100 * (r->p99_ms / off.p99_ms - 1);
			lo = isfinite(lo) && lo < d ? lo : d;
			hi = isfinite(hi) && hi > d ? hi : d;
		}
		bool p99_ok = isfinite(s.dp99_pct) && s.dp99_pct >= lo && s.dp99_pct <= hi;
		fprintf(f,
			"target: %s below %.0f %% of wall x CPUs: %.3f %%: %s; Δp99 %+.1f %% "
			"within "
			"the off runs' spread [%+.1f %%, %+.1f %%]: %s\n",
			cfg->name, OVH_WAITS_PCT, s.agent_bpf_pct,
			s.agent_bpf_pct < OVH_WAITS_PCT ? "met" : "NOT met", s.dp99_pct, lo, hi,
			p99_ok ? "met" : "NOT met");
	}
}

/* The lowest and highest rate served in the off runs. */
static void ovh_off_qps_spread(const struct ovh_bench *b, double *lo, double *hi)
{
	*lo = *hi = NAN;
	for (unsigned k = 0; k < b->n_runs; k++) {
		const struct ovh_run *r = &b->runs[k];
		if (r->config || !r->ok)
			continue;
		*lo = isfinite(*lo) && *lo < r->qps ? *lo : r->qps;
		*hi = isfinite(*hi) && *hi > r->qps ? *hi : r->qps;
	}
}

/* --closed: each configuration's served rate against the off runs'. */
static void ovh_print_closed(const struct ovh_bench *b, FILE *f)
{
	struct ovh_summary off;
	double lo, hi;

	ovh_off_qps_spread(b, &lo, &hi);
	ovh_summarize(b, 0, &off);
	fprintf(f, "closed loop: requests/s served; off runs: median %.0f, [%.0f, %.0f]\n", off.qps,
		lo, hi);
	for (unsigned c = 1; c < b->n_configs; c++) {
		const struct ovh_config *cfg = &b->configs[c];
		struct ovh_summary s;

		if (cfg->skip[0])
			continue;
		ovh_summarize(b, c, &s);
		if (!s.reps)
			continue;
		fprintf(f, "  %-21s %.0f req/s, %+.1f %% against the off runs' median: %s\n",
			cfg->name, s.qps, 100.0 * (s.qps / off.qps - 1),
			s.qps >= lo ? "within their spread or above" : "below their spread");
	}
}

/* --tick: tick mode's cost per sample against the cheapest peer's at the
 * same rate (target: a third of it), and its throughput against the off
 * runs' spread. */
static void ovh_print_tick_targets(const struct ovh_bench *b, FILE *f)
{
	double qps_lo, qps_hi;

	ovh_off_qps_spread(b, &qps_lo, &qps_hi);
	for (unsigned c = 1; c < b->n_configs; c++) {
		const struct ovh_config *cfg = &b->configs[c];
		struct ovh_summary s, p;
		double best = NAN;
		const char *best_name = NULL;

		if (!cfg->clock || cfg->skip[0])
			continue;
		ovh_summarize(b, c, &s);
		if (!s.reps)
			continue;
		for (unsigned q = 1; q < b->n_configs; q++) {
			const struct ovh_config *peer = &b->configs[q];
			if (peer->hz != cfg->hz || peer->waits || peer->tool == OVH_TOOL_PIPELINE ||
			    peer->skip[0])
				continue;
			ovh_summarize(b, q, &p);
			if (isfinite(p.total_us) && (!isfinite(best) || p.total_us < best)) {
				best = p.total_us;
				best_name = peer->name;
			}
		}
		if (isfinite(best))
			fprintf(f,
				"target: %s at most a third of the cheapest peer's cost per "
				"sample: "
				"%.2f µs vs %s %.2f µs: %s\n",
				cfg->name, s.total_us, best_name, best,
				s.total_us * 3 <= best ? "met" : "NOT met");
		/* Open-loop load serves the rate asked whatever the profiler
		 * costs, unless it costs a great deal: the measure is closed
		 * loop (--closed), where the server runs flat out. */
		fprintf(f,
			"target: %s throughput no lower than the off runs' spread (%s load): "
			"%.0f req/s, off [%.0f, %.0f]: %s\n",
			cfg->name, b->set.closed ? "closed-loop" : "open-loop, a weak test", s.qps,
			qps_lo, qps_hi, s.qps >= qps_lo ? "met" : "NOT met");
	}
}

void ovh_report__print(const struct ovh_bench *b, FILE *f)
{
	char t[10][80];

	fprintf(f,
		"\npipeline-bench overhead: %u CPUs, gap detector on CPU %d, workload on CPU %s, "
		"%.0f req/s%s, %u reps of %.0f s, %.0f s in all\n\n",
		b->n_cpus, b->set.gap_cpu, b->workload_cpu_list, b->qps,
		b->set.closed	? " (closed loop: as fast as served)"
		: b->qps_scaled ? " (lowered by the probe)"
				: "",
		b->set.reps, b->set.seconds, b->elapsed_s);
	/* Header widths are one more where a cell holds a two-byte character. */
	fprintf(f, "%-21s %7s %8s  %-9s %-17s %6s %11s %14s %10s %8s\n", "config", "p50 ms",
		"p99 ms", "Δp99", "Δp99 range", "QPS", "server CPU", "agent+BPF CPU", "samples/s",
		"dropped");
	for (unsigned c = 0; c < b->n_configs; c++) {
		const struct ovh_config *cfg = &b->configs[c];
		struct ovh_summary s;

		if (cfg->skip[0]) {
			fprintf(f, "%-21s not run: %s\n", cfg->name, cfg->skip);
			continue;
		}
		ovh_summarize(b, c, &s);
		if (!s.reps) {
			fprintf(f, "%-21s no successful run\n", cfg->name);
			continue;
		}
		if (isfinite(s.dropped))
			snprintf(t[8], 80, "%.0f", s.dropped);
		else
			snprintf(t[8], 80, "%s", cfg->tool == OVH_TOOL_OFF ? "-" : "n/a");
		fprintf(f, "%-21s %7s %8s  %-8s %-16s %6s %11s %14s %10s %8s\n", cfg->name,
			fmt(t[0], 80, "%.2f", s.p50_ms), fmt(t[1], 80, "%.2f", s.p99_ms),
			fmt(t[2], 80, "%+.1f %%", s.dp99_pct),
			fmt_range(t[3], 80, "%+.1f %%", s.dp99_lo, s.dp99_hi),
			fmt(t[4], 80, "%.0f", s.qps), fmt(t[5], 80, "%.1f %%", s.server_cpu_pct),
			fmt(t[6], 80, "%.3f %%", s.agent_bpf_pct),
			fmt(t[7], 80, "%.0f", s.samples_per_s), t[8]);
	}

	fprintf(f, "\n%-21s %10s %9s %18s %-14s %15s %-14s %13s %19s %17s\n", "config", "agent CPU",
		"BPF CPU", "stolen µs/sample", " range", "A/B µs/sample", " range", "stolen % CPU",
		"process µs/sample", "total µs/sample");
	for (unsigned c = 0; c < b->n_configs; c++) {
		const struct ovh_config *cfg = &b->configs[c];
		struct ovh_summary s;

		if (cfg->skip[0] || cfg->waits)
			continue;
		ovh_summarize(b, c, &s);
		if (!s.reps)
			continue;
		if (cfg->tool == OVH_TOOL_OFF) {
			fprintf(f,
				"%-21s %10s %9s %17s %-13s %14s %-13s %13s %18s %16s  (the gap "
				"CPU's own interrupt time)\n",
				cfg->name, "-", "-", "-", "", "-", "",
				fmt(t[0], 80, "%.3f %%", s.irq_pct), "-", "-");
			continue;
		}
		t[8][0] = ' '; /* a space before the range */
		fmt_range(t[8] + 1, 79, "%.2f", s.phase_lo, s.phase_hi);
		t[7][0] = ' ';
		fmt_range(t[7] + 1, 79, "%.2f", s.ab_lo, s.ab_hi);
		fprintf(f, "%-21s %10s %9s %17s %-13s %14s %-13s %13s %18s %16s\n", cfg->name,
			fmt(t[0], 80, "%.3f %%", s.agent_cpu_pct),
			fmt(t[1], 80, "%.3f %%", s.bpf_cpu_pct), fmt(t[2], 80, "%.2f", s.phase_us),
			t[8], fmt(t[3], 80, "%.2f", s.ab_us), t[7],
			fmt(t[4], 80, s.stolen_by_phase ? "%.3f %%" : "%.3f %% (A/B)",
			    s.stolen_pct),
			fmt(t[5], 80, "%.2f", s.process_us),
			fmt(t[6], 80, s.stolen_by_phase ? "%.2f" : "%.2f (A/B)", s.total_us));
	}
	fprintf(f,
		"\nCPU percentages are of wall time x %u CPUs. Agent CPU: pipeline's in the "
		"window, which holds one of its\nperiodic flushes (its start-up, first flush and "
		"exit are one-time costs, in the JSON); perf's and\nbpftrace's from the window's "
		"start to their exit, where they process what they collected. Stolen\ntime is "
		"measured on the gap CPU, where the sampling timer fires HZ times a second: "
		"\"stolen\" folds\nits gaps on the sampling period (the gap at the timer's phase "
		"less the background at other\nphases); \"A/B\" is the extra interrupt time "
		"against the off runs around each run, per sample.\nTotal = stolen + process CPU, "
		"per sample.\n",
		b->n_cpus);

	char why[256];
	bool pass = ovh_gate(b, why, sizeof(why));
	fprintf(f, "\ngate%s: %s: %s\n", b->set.gate ? "" : " (not enforced: --gate)",
		pass ? "PASS" : "FAIL", why);
	for (unsigned c = 1; c < b->n_configs; c++) {
		const struct ovh_config *cfg = &b->configs[c];
		struct ovh_summary s;

		if (!ovh_config__gated(cfg))
			continue;
		ovh_summarize(b, c, &s);
		if (s.reps)
			fprintf(f,
				"target: pipeline at 99 Hz below 0.1 %% of wall x CPUs: %.3f %%: "
				"%s\n",
				s.agent_bpf_pct, s.agent_bpf_pct < 0.1 ? "met" : "NOT met");
	}
	if (b->set.waits)
		ovh_print_waits(b, f);
	if (b->set.peers) {
		fprintf(f,
			"target: pipeline's cost per sample no more than the cheapest peer's (at "
			"99 and 1000 Hz):\n");
		for (unsigned h = 0; h < b->set.n_hz; h++)
			if (b->set.hz[h] == 99 || b->set.hz[h] == 1000)
				ovh_print_target(b, b->set.hz[h], f);
	}
	if (b->set.tick)
		ovh_print_tick_targets(b, f);
	if (b->set.closed)
		ovh_print_closed(b, f);
}

/* ---- JSON ------------------------------------------------------------------ */

static void json_num(FILE *f, const char *key, double v, const char *sep)
{
	if (isfinite(v))
		fprintf(f, "\"%s\": %.6g%s", key, v, sep);
	else
		fprintf(f, "\"%s\": null%s", key, sep);
}

static void json_str(FILE *f, const char *key, const char *v, const char *sep)
{
	fprintf(f, "\"%s\": \"", key);
	for (const char *p = v; *p; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(f, "\\%c", *p);
		else if ((unsigned char)*p < 0x20)
			fprintf(f, "\\u%04x", *p);
		else
			fputc(*p, f);
	}
	fprintf(f, "\"%s", sep);
}

static void json_pair(FILE *f, const char *key, double lo, double hi, const char *sep)
{
	if (isfinite(lo) && isfinite(hi))
		fprintf(f, "\"%s\": [%.6g, %.6g]%s", key, lo, hi, sep);
	else
		fprintf(f, "\"%s\": null%s", key, sep);
}

static void json_machine(const struct ovh_bench *b, FILE *f)
{
	char model[128] = "unknown", line[256], date[32] = "";
	struct utsname u;
	double la[3] = {NAN, NAN, NAN};
	time_t now = time(NULL);
	struct tm tm;
	FILE *ci = fopen("/proc/cpuinfo", "re");

	while (ci && fgets(line, sizeof(line), ci)) {
		char *colon = strchr(line, ':');

		if (strncmp(line, "model name", 10) || !colon)
			continue;
		colon += 1 + (colon[1] == ' ');
		colon[strcspn(colon, "\n")] = 0;
		snprintf(model, sizeof(model), "%s", colon);
		break;
	}
	if (ci)
		fclose(ci);
	if (uname(&u))
		memset(&u, 0, sizeof(u));
	getloadavg(la, 3);
	if (gmtime_r(&now, &tm))
		strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%SZ", &tm);
	fprintf(f, "  \"machine\": {");
	json_str(f, "cpu_model", model, ", ");
	fprintf(f, "\"cpus\": %u, ", b->n_cpus);
	json_str(f, "kernel", u.release, ", ");
	json_str(f, "date", date, ", ");
	fprintf(f, "\"loadavg\": [%.2f, %.2f, %.2f], ", la[0], la[1], la[2]);
	json_str(f, "build_type", BENCH_BUILD_TYPE, ", ");
	json_str(f, "allocator", BENCH_ALLOCATOR, ", ");
	json_num(f, "tsc_ghz", b->tsc_ghz, "},\n");
}

static void json_run(const struct ovh_bench *b, const struct ovh_run *r, FILE *f)
{
	double meas = r->gap.window_s - r->gap.dead_s;

	fprintf(f, "    {");
	json_str(f, "config", b->configs[r->config].name, ", ");
	fprintf(f, "\"rep\": %u, \"ok\": %s, ", r->rep + 1, r->ok ? "true" : "false");
	if (!r->ok) {
		json_str(f, "why", r->why[0] ? r->why : "not run", "}");
		return;
	}
	json_num(f, "p50_ms", r->p50_ms, ", ");
	json_num(f, "p90_ms", r->p90_ms, ", ");
	json_num(f, "p99_ms", r->p99_ms, ", ");
	json_num(f, "p999_ms", r->p999_ms, ", ");
	json_num(f, "qps", r->qps, ", ");
	fprintf(f, "\"errors\": %llu, \"timeouts\": %llu, \"late\": %llu, ",
		(unsigned long long)r->errors, (unsigned long long)r->timeouts,
		(unsigned long long)r->late);
	json_num(f, "server_cpu_s", r->server_cpu_s, ", ");
	json_num(f, "window_s", r->window_s, ", ");
	json_num(f, "gap_dead_s", r->gap.dead_s, ", ");
	json_num(f, "gap_running_s", gap_result__running_s(&r->gap), ", ");
	json_num(f, "gap_irq_us_per_s", meas > 0 ? r->gap.irq.us / meas : NAN, ", ");
	json_num(f, "gap_irq_per_s", meas > 0 ? (double)r->gap.irq.n / meas : NAN, ", ");
	json_num(f, "gap_long_us_per_s", meas > 0 ? r->gap.lng.us / meas : NAN, ", ");
	json_num(f, "gap_sched_us_per_s", meas > 0 ? r->gap.sched.us / meas : NAN, ", ");
	json_num(f, "gap_max_us", r->gap.max_us, ", ");
	json_num(f, "host_steal_s", r->steal_s, ", ");
	fprintf(f, "\"gap_buckets\": [");
	for (unsigned i = 0; i < GAP_BUCKETS; i++)
		fprintf(f, "%s[%g, %llu, %.1f]", i ? ", " : "", gap_bucket__lo_us(i),
			(unsigned long long)r->gap.bucket_n[i], r->gap.bucket_us[i]);
	fprintf(f, "]");
	if (b->configs[r->config].tool == OVH_TOOL_OFF) {
		fprintf(f, ", \"null_peak_hits\": {");
		for (unsigned h = 0; h < b->set.n_hz; h++) {
			char key[16];

			snprintf(key, sizeof(key), "%u", b->set.hz[h]);
			json_num(f, key, r->null_hits[h], h + 1 < b->set.n_hz ? ", " : "");
		}
		fprintf(f, "}");
	} else {
		fprintf(f, ", \"phase\": {\"found\": %s, ", r->phase.found ? "true" : "false");
		json_num(f, "us", r->phase.us, ", ");
		json_num(f, "hits", r->phase.hits, ", ");
		json_num(f, "periods", r->phase.periods, ", ");
		json_num(f, "phase_us", r->phase.phase_us, ", ");
		json_num(f, "second_peak", r->phase.second, ", ");
		fprintf(f, "\"lost\": %llu}, ", (unsigned long long)r->phase.lost);
		json_num(f, "startup_cpu_s", r->startup_cpu_s, ", ");
		json_num(f, "window_cpu_s", r->window_cpu_s, ", ");
		json_num(f, "exit_cpu_s", r->exit_cpu_s, ", ");
		json_num(f, "exit_wait_s", r->exit_wait_s, ", ");
		json_num(f, "bpf_s", r->bpf_s, ", ");
		fprintf(f, "\"bpf_runs\": %llu, ", (unsigned long long)r->bpf_runs);
		json_num(f, "sampling_s", r->sampling_s, ", ");
		json_num(f, "samples", r->self.samples >= 0 ? r->self.samples : NAN, ", ");
		json_num(f, "dropped", r->self.dropped >= 0 ? r->self.dropped : NAN, ", ");
		json_num(f, "self_cpu_s", r->self.self_cpu_s >= 0 ? r->self.self_cpu_s : NAN, ", ");
		json_num(f, "self_bpf_s", r->self.self_bpf_s >= 0 ? r->self.self_bpf_s : NAN, ", ");
		json_num(f, "self_elapsed_s",
			 r->self.self_elapsed_s >= 0 ? r->self.self_elapsed_s : NAN, ", ");
		json_num(f, "gap_cpu_samples", r->self.cpu_samples >= 0 ? r->self.cpu_samples : NAN,
			 ", ");
		json_num(f, "stack_errors", r->self.stack_errors >= 0 ? r->self.stack_errors : NAN,
			 "");
	}
	fprintf(f, "}");
}

int ovh_report__write_json(const struct ovh_bench *b, const char *path)
{
	char tmp[4096], why[256];
	int err = 0;
	FILE *f;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	f = fopen(tmp, "we");
	if (!f)
		return -errno;
	fprintf(f, "{\n");
	json_machine(b, f);
	fprintf(f, "  \"settings\": {");
	json_str(f, "command", b->set.command, ", ");
	fprintf(f, "\"reps\": %u, ", b->set.reps);
	json_num(f, "seconds", b->set.seconds, ", ");
	json_num(f, "warmup_s", b->set.warmup_s, ", ");
	fprintf(f, "\"quick\": %s, \"peers\": %s, \"hz\": [", b->set.quick ? "true" : "false",
		b->set.peers ? "true" : "false");
	for (unsigned h = 0; h < b->set.n_hz; h++)
		fprintf(f, "%s%u", h ? ", " : "", b->set.hz[h]);
	fprintf(f, "], ");
	json_num(f, "qps_asked", b->set.qps_asked ? b->set.qps_asked : NAN, ", ");
	json_num(f, "qps", b->qps, ", ");
	fprintf(f, "\"qps_lowered\": %s, \"closed_loop\": %s, \"off_every\": %u, \"gap_cpu\": %d, ",
		b->qps_scaled ? "true" : "false", b->set.closed ? "true" : "false",
		b->set.off_every, b->set.gap_cpu);
	json_str(f, "workload_cpus", b->workload_cpu_list, ", ");
	fprintf(f, "\"shared_cpu\": %s, ", b->set.shared_cpu ? "true" : "false");
	json_num(f, "gap_threshold_us", b->set.threshold_us, ", ");
	json_num(f, "gap_long_us", GAP_LONG_US, ", ");
	fprintf(f, "\"server_threads\": %u, \"loadgen_threads\": %u, \"pipeline_stats_json\": %s, ",
		b->server_threads, b->loadgen_threads, b->stats_json ? "true" : "false");
	json_num(f, "elapsed_s", b->elapsed_s, "},\n");
	if (b->server_final[0])
		fprintf(f, "  \"server\": %s,\n", b->server_final);

	fprintf(f, "  \"configs\": [\n");
	for (unsigned c = 0; c < b->n_configs; c++) {
		const struct ovh_config *cfg = &b->configs[c];
		struct ovh_summary s;

		ovh_summarize(b, c, &s);
		fprintf(f, "    {");
		json_str(f, "name", cfg->name, ", ");
		json_str(f, "tool", ovh_tool__name(cfg->tool), ", ");
		if (cfg->tool == OVH_TOOL_PIPELINE)
			json_str(f, "unwind", cfg->unwind ? cfg->unwind : OVH_DEFAULT_UNWIND, ", ");
		if (cfg->profiles)
			json_str(f, "profiles", cfg->profiles, ", ");
		if (cfg->clock)
			json_str(f, "clock", cfg->clock, ", ");
		fprintf(f, "\"waits\": %s, ", cfg->waits ? "true" : "false");
		fprintf(f, "\"hz\": %u, \"reps\": %u, ", cfg->hz, s.reps);
		if (cfg->skip[0])
			json_str(f, "skipped", cfg->skip, ", ");
		json_num(f, "p50_ms", s.p50_ms, ", ");
		json_num(f, "p99_ms", s.p99_ms, ", ");
		json_num(f, "dp99_pct", s.dp99_pct, ", ");
		json_pair(f, "dp99_spread_pct", s.dp99_lo, s.dp99_hi, ", ");
		json_num(f, "qps", s.qps, ", ");
		json_num(f, "server_cpu_pct", s.server_cpu_pct, ", ");
		json_num(f, "agent_cpu_pct", s.agent_cpu_pct, ", ");
		json_num(f, "bpf_cpu_pct", s.bpf_cpu_pct, ", ");
		json_num(f, "agent_bpf_cpu_pct", s.agent_bpf_pct, ", ");
		json_pair(f, "agent_bpf_cpu_spread_pct", s.agent_bpf_lo, s.agent_bpf_hi, ", ");
		json_num(f, "stolen_us_per_sample", s.stolen_us, ", ");
		json_pair(f, "stolen_us_per_sample_spread", s.stolen_lo, s.stolen_hi, ", ");
		json_num(f, "stolen_pct", s.stolen_pct, ", ");
		json_pair(f, "stolen_pct_spread", s.stolen_pct_lo, s.stolen_pct_hi, ", ");
		if (cfg->tool != OVH_TOOL_OFF)
			json_str(f, "stolen_method", s.stolen_by_phase ? "phase" : "ab", ", ");
		json_num(f, "stolen_us_per_sample_phase", s.phase_us, ", ");
		json_pair(f, "stolen_us_per_sample_phase_spread", s.phase_lo, s.phase_hi, ", ");
		fprintf(f, "\"phase_found_reps\": %u, ", s.phase_found);
		json_num(f, "phase_hits_per_period", s.phase_hits, ", ");
		json_num(f, "stolen_us_per_sample_ab", s.ab_us, ", ");
		json_pair(f, "stolen_us_per_sample_ab_spread", s.ab_lo, s.ab_hi, ", ");
		json_num(f, "stolen_pct_ab", s.ab_pct, ", ");
		json_pair(f, "stolen_pct_ab_spread", s.ab_pct_lo, s.ab_pct_hi, ", ");
		json_num(f, "process_us_per_sample", s.process_us, ", ");
		json_num(f, "total_us_per_sample", s.total_us, ", ");
		json_pair(f, "total_us_per_sample_spread", s.total_lo, s.total_hi, ", ");
		json_num(f, "baseline_irq_pct", s.irq_pct, ", ");
		json_num(f, "startup_cpu_s", s.startup_cpu_s, ", ");
		json_num(f, "exit_cpu_s", s.exit_cpu_s, ", ");
		json_num(f, "exit_wait_s", s.exit_wait_s, ", ");
		json_num(f, "samples_per_s", s.samples_per_s, ", ");
		json_num(f, "bpf_runs_per_s", s.bpf_runs_per_s, ", ");
		json_num(f, "bpf_ns_per_run", s.bpf_ns_per_run, ", ");
		json_num(f, "dropped", s.dropped, "");
		fprintf(f, "}%s\n", c + 1 < b->n_configs ? "," : "");
	}
	fprintf(f, "  ],\n");
	bool pass = ovh_gate(b, why, sizeof(why));
	fprintf(f, "  \"gate\": {\"enforced\": %s, \"passed\": %s, ",
		b->set.gate ? "true" : "false", pass ? "true" : "false");
	json_num(f, "limit_pct", OVH_GATE_PCT, ", ");
	fprintf(f, "\"hz\": %u, ", OVH_GATE_HZ);
	json_str(f, "why", why, "},\n");
	fprintf(f, "  \"runs\": [\n");
	for (unsigned k = 0; k < b->n_runs; k++) {
		json_run(b, &b->runs[k], f);
		fprintf(f, "%s\n", k + 1 < b->n_runs ? "," : "");
	}
	fprintf(f, "  ]\n}\n");
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
