// SPDX-License-Identifier: BSD-2-Clause
/*
 * Wait profiles (see wait_report.h). Each aggregated stack carries
 * values[0], the events it stands for (sampling weights applied), and
 * values[1], their total nanoseconds; the profile's count, which the
 * folded stacks and flame graph weigh by, is the nanoseconds.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report_text.h"
#include "wait_report.h"

#define LOCK_PATHS_SHOWN  20 /* call paths in lock.txt */
#define LOCK_FRAMES_SHOWN 10

static const struct profile_value_type offcpu_columns[] = {
	{"switches", "count"},
	{"off_cpu", "nanoseconds"},
};

/* As Go's mutex profile. */
static const struct profile_value_type lock_columns[] = {
	{"contentions", "count"},
	{"delay", "nanoseconds"},
};

int wait_report__build(enum shard_wait w, const struct stack_agg *agg, uint64_t start_ns,
		       uint64_t duration_ns, struct wait_built *b)
{
	memset(b, 0, sizeof(*b));
	int err = stack_agg__snapshot(agg, &b->snap);
	if (err)
		return err;
	uint64_t total = 0;
	for (size_t i = 0; i < b->snap.n_stacks; i++) {
		struct profile_stack *s = &b->snap.stacks[i];

		/* Every wait stack has values: add_weighted() is its only way in. */
		s->count = s->values ? (uint64_t)s->values[1] : 0;
		s->n_times = 0; /* record times, not one per nanosecond */
		total += s->count;
	}
	bool off = w == SHARD_WAIT_OFFCPU;
	b->p = (struct profile){
		.signal = off ? "offcpu" : "lock",
		.time_ns = start_ns,
		.duration_ns = duration_ns,
		.stacks = b->snap.stacks,
		.n_stacks = b->snap.n_stacks,
		.total_samples = total,
		.value_types = off ? offcpu_columns : lock_columns,
		.n_value_types = 2,
		.default_value = 1,
		.period_type = off ? (struct profile_value_type){"context_switch", "count"}
				   : (struct profile_value_type){"contentions", "count"},
		.period = 1,
		.count_unit = "nanoseconds",
	};
	return 0;
}

int wait_report__wall(const struct profile *cpu, const struct profile *off, struct wait_built *b)
{
	size_t n = cpu->n_stacks + off->n_stacks;

	memset(b, 0, sizeof(*b));
	b->stacks = malloc((n ? n : 1) * sizeof(*b->stacks));
	if (!b->stacks)
		return -ENOMEM;
	uint64_t total = 0;
	for (size_t i = 0; i < cpu->n_stacks; i++) {
		struct profile_stack *s = &b->stacks[i];

		*s = cpu->stacks[i];
		s->count *= cpu->period_ns; /* each sample stands for one period on the CPU */
		s->values = NULL;
		s->n_times = 0;
		total += s->count;
	}
	for (size_t i = 0; i < off->n_stacks; i++) {
		struct profile_stack *s = &b->stacks[cpu->n_stacks + i];

		*s = off->stacks[i];
		s->values = NULL;
		s->off_cpu = true;
		total += s->count;
	}
	b->p = *cpu;
	b->p.signal = "wall";
	b->p.stacks = b->stacks;
	b->p.n_stacks = n;
	b->p.total_samples = total;
	b->p.times_complete = false;
	b->p.frequency_hz = 0;
	b->p.count_unit = "nanoseconds";
	return 0;
}

void wait_built__free(struct wait_built *b)
{
	stack_agg__snapshot_free(&b->snap);
	free(b->stacks);
	memset(b, 0, sizeof(*b));
}

/* ---- lock.txt ---- */

/* One call path: a process's stacks with the same user frames. */
struct lock_path {
	const struct profile_stack *first;
	double contentions, delay_ns;
	uint32_t hist[STACK_AGG_HIST_BUCKETS];
	uint32_t threads;
};

static int cmp_path_order(const void *a, const void *b)
{
	const struct profile_stack *x = *(const struct profile_stack *const *)a;
	const struct profile_stack *y = *(const struct profile_stack *const *)b;

	if (x->tgid != y->tgid)
		return x->tgid < y->tgid ? -1 : 1;
	if (x->n_user != y->n_user)
		return x->n_user < y->n_user ? -1 : 1;
	return memcmp(x->frames + x->n_kernel, y->frames + y->n_kernel,
		      x->n_user * sizeof(x->frames[0]));
}

static int cmp_delay_desc(const void *a, const void *b)
{
	double x = ((const struct lock_path *)a)->delay_ns;
	double y = ((const struct lock_path *)b)->delay_ns;

	return x < y ? 1 : x > y ? -1 : 0;
}

static const char *fmt_ns(double ns, char *buf, size_t len)
{
	if (ns < 1e3)
		snprintf(buf, len, "%.0f ns", ns);
	else if (ns < 1e6)
		snprintf(buf, len, "%.1f us", ns / 1e3);
	else if (ns < 1e9)
		snprintf(buf, len, "%.1f ms", ns / 1e6);
	else
		snprintf(buf, len, "%.2f s", ns / 1e9);
	return buf;
}

/* Groups the stacks into call paths, heaviest first. Returns how many, or -ENOMEM. */
static long lock_paths(const struct profile *p, struct lock_path **out)
{
	const struct profile_stack **order =
		malloc((p->n_stacks ? p->n_stacks : 1) * sizeof(*order));
	struct lock_path *paths = calloc(p->n_stacks ? p->n_stacks : 1, sizeof(*paths));
	long n = 0;

	if (!order || !paths) {
		free(order);
		free(paths);
		return -ENOMEM;
	}
	for (size_t i = 0; i < p->n_stacks; i++)
		order[i] = &p->stacks[i];
	qsort(order, p->n_stacks, sizeof(*order), cmp_path_order);
	for (size_t i = 0; i < p->n_stacks; i++) {
		const struct profile_stack *s = order[i];
		struct lock_path *lp = n ? &paths[n - 1] : NULL;

		if (!lp || cmp_path_order(&lp->first, &order[i]))
			lp = &paths[n++], lp->first = s;
		lp->threads++;
		if (s->values) {
			lp->contentions += (double)s->values[0];
			lp->delay_ns += (double)s->values[1];
		}
		for (unsigned b = 0; s->value_hist && b < STACK_AGG_HIST_BUCKETS; b++) {
			uint64_t sum = (uint64_t)lp->hist[b] + s->value_hist[b];
			lp->hist[b] = sum > UINT32_MAX ? UINT32_MAX : (uint32_t)sum;
		}
	}
	free(order);
	qsort(paths, (size_t)n, sizeof(*paths), cmp_delay_desc);
	*out = paths;
	return n;
}

int wait_report__lock_text(const struct profile *p, char **text, size_t *len)
{
	struct report_text t = {0};
	struct lock_path *paths;
	char b1[32], b2[32], b3[32];
	double contentions = 0, delay = 0;
	long n = lock_paths(p, &paths);

	if (n < 0)
		return (int)n;
	for (long i = 0; i < n; i++) {
		contentions += paths[i].contentions;
		delay += paths[i].delay_ns;
	}
	report_text__printf(&t,
			    "Lock contention: futex waits over %.1f s\n"
			    "Waits: %.0f, total delay %s, in %ld call paths\n"
			    "(Sampled waits are weighted: counts and times estimate the totals.)\n"
			    "\nTop call paths by total delay (leaf first):\n",
			    (double)p->duration_ns / 1e9, contentions,
			    fmt_ns(delay, b1, sizeof(b1)), n);
	if (!n)
		report_text__printf(&t, " (none)\n");
	for (long i = 0; i < n && i < LOCK_PATHS_SHOWN; i++) {
		const struct lock_path *lp = &paths[i];
		const struct profile_stack *s = lp->first;

		report_text__printf(&t, "%2ld. %9s (%5.1f %%)  ", i + 1,
				    fmt_ns(lp->delay_ns, b1, sizeof(b1)),
				    delay > 0 ? 100.0 * lp->delay_ns / delay : 0);
		report_text__stack(&t, s->frames + s->n_kernel, s->n_user, LOCK_FRAMES_SHOWN);
		report_text__printf(
			&t, "\n    %.0f waits, mean %s, p99 %s; process %u (%s), %u thread%s\n",
			lp->contentions,
			fmt_ns(lp->contentions > 0 ? lp->delay_ns / lp->contentions : 0, b2,
			       sizeof(b2)),
			fmt_ns((double)stack_agg__hist_quantile(lp->hist, 0.99), b3, sizeof(b3)),
			s->tgid, s->pcomm, lp->threads, lp->threads == 1 ? "" : "s");
	}
	free(paths);
	if (t.err) {
		free(t.buf);
		return t.err;
	}
	*text = t.buf;
	*len = t.len;
	return 0;
}
