// SPDX-License-Identifier: BSD-2-Clause
/*
 * Stage 2, the stack aggregator (pipeline/stack_agg.h), bounded at the
 * agent's --max-stacks default (65536), on 2000 distinct synthetic stacks of
 * 20 frames (synth.h) drawn with Zipf skew, the shape a fleet's profile has:
 * a few hot stacks, a long tail.
 *
 * Measurements (single thread; only the named operation is inside the timer,
 * refills and resets between timed parts are not):
 *   - add, Zipf mix: intervals of 20000 samples (1000 Hz x 2 CPUs x 10 s),
 *     each into a reset table, as a shard sees them; hits and new entries
 *     reported;
 *   - add, every stack already present (the warm steady state);
 *   - add, every stack new (right after a reset: hash, probe, arena copy);
 *   - merge two shards' tables (one interval split in two) into the
 *     cumulative table, warm (stacks present) and empty;
 *   - reset of a table holding 2000 stacks.
 */
#include <errno.h>
#include <stdlib.h>

#include "bench.h"
#include "stack_agg.h"
#include "synth.h"
#include "throughput.h"

#define N_STACKS       2000
#define DEPTH	       20
#define MAX_ENTRIES    65536 /* the agent's --max-stacks default */
#define INTERVAL       20000 /* samples per flush interval */
#define BASE_INTERVALS 50    /* Zipf-mix intervals per repetition, full run */
#define BASE_HIT_ADDS  1000000
#define BASE_BATCHES   200   /* all-new batches, merges and resets per repetition */
#define PERM_STRIDE    7919u /* prime: maps a Zipf rank to a stack index */

struct agg_bench {
	const struct tp_cfg *cfg;
	const struct synth_stacks *st;
	uint32_t *seq; /* stack indices of the Zipf stream, n_seq of them */
	size_t n_seq;
	struct stack_agg *agg, *shard[2], *cum;
};

/* Adds seq[from .. from+n) to agg. Returns 0 or -errno (ENOSPC cannot happen). */
static int add_seq(struct agg_bench *b, struct stack_agg *agg, size_t from, size_t n, size_t step)
{
	for (size_t i = from; i < from + n; i += step) {
		const struct profile_stack *s = &b->st->stacks[b->seq[i % b->n_seq]];
		int err = stack_agg__add(agg, s, 1, s->first_ns, s->first_ns);

		if (err)
			return err;
	}
	return 0;
}

static int add_all(struct agg_bench *b, struct stack_agg *agg)
{
	for (size_t i = 0; i < b->st->n; i++) {
		const struct profile_stack *s = &b->st->stacks[i];
		int err = stack_agg__add(agg, s, 1, s->first_ns, s->first_ns);

		if (err)
			return err;
	}
	return 0;
}

static int bench_zipf_mix(struct agg_bench *b, struct bench_row *row)
{
	uint64_t n = tp_ops(b->cfg, BASE_INTERVALS), deadline = bench_now_ns() + b->cfg->budget_ns;
	uint64_t ns = 0, adds = 0, fresh = 0;
	int err = 0;

	for (uint64_t k = 0; k < n && bench_now_ns() < deadline; k++) {
		uint64_t t0;

		stack_agg__reset(b->agg);
		t0 = bench_now_ns();
		err = add_seq(b, b->agg, k * INTERVAL, INTERVAL, 1);
		ns += bench_now_ns() - t0;
		if (err)
			return err;
		adds += INTERVAL;
		fresh += stack_agg__size(b->agg);
	}
	bench_row__rep(row, adds, ns);
	bench_row__extra(row, "hit_pct", 100.0 * (double)(adds - fresh) / (double)adds);
	bench_row__extra(row, "new_per_interval", (double)fresh * INTERVAL / (double)adds);
	return 0;
}

static int bench_all_hits(struct agg_bench *b, struct bench_row *row)
{
	uint64_t n = tp_ops(b->cfg, BASE_HIT_ADDS), deadline = bench_now_ns() + b->cfg->budget_ns;
	uint64_t ns = 0, adds = 0;
	int err;

	stack_agg__reset(b->agg);
	err = add_all(b, b->agg);
	while (!err && adds < n && bench_now_ns() < deadline) {
		uint64_t t0 = bench_now_ns();

		err = add_seq(b, b->agg, adds, INTERVAL, 1);
		ns += bench_now_ns() - t0;
		adds += INTERVAL;
	}
	if (!err && stack_agg__size(b->agg) != b->st->n)
		err = -EPROTO; /* a "hit" created an entry: the stacks are not distinct */
	bench_row__rep(row, adds, ns);
	return err;
}

static int bench_all_new(struct agg_bench *b, struct bench_row *row)
{
	uint64_t n = tp_ops(b->cfg, BASE_BATCHES), deadline = bench_now_ns() + b->cfg->budget_ns;
	uint64_t ns = 0, adds = 0;
	int err = 0;

	for (uint64_t k = 0; k < n && !err && bench_now_ns() < deadline; k++) {
		uint64_t t0;

		stack_agg__reset(b->agg);
		t0 = bench_now_ns();
		err = add_all(b, b->agg);
		ns += bench_now_ns() - t0;
		adds += b->st->n;
	}
	if (!err && stack_agg__size(b->agg) != b->st->n)
		err = -EPROTO;
	bench_row__rep(row, adds, ns);
	return err;
}

/* Fills both shards with one interval, split sample by sample. */
static int fill_shards(struct agg_bench *b)
{
	int err;

	stack_agg__reset(b->shard[0]);
	stack_agg__reset(b->shard[1]);
	err = add_seq(b, b->shard[0], 0, INTERVAL, 2);
	return err ? err : add_seq(b, b->shard[1], 1, INTERVAL, 2);
}

static int merge_shards(struct agg_bench *b)
{
	for (int i = 0; i < 2; i++) {
		int64_t lost = stack_agg__merge(b->cum, b->shard[i]);

		if (lost)
			return lost < 0 ? (int)lost : -ENOSPC;
	}
	return 0;
}

static int bench_merge(struct agg_bench *b, struct bench_row *row, bool warm)
{
	uint64_t n = tp_ops(b->cfg, BASE_BATCHES), deadline = bench_now_ns() + b->cfg->budget_ns;
	uint64_t ns = 0, merges = 0;
	int err = fill_shards(b);

	stack_agg__reset(b->cum);
	if (!err && warm)
		err = merge_shards(b);
	for (; !err && merges < n && bench_now_ns() < deadline; merges++) {
		uint64_t t0;

		if (!warm)
			stack_agg__reset(b->cum);
		t0 = bench_now_ns();
		err = merge_shards(b);
		ns += bench_now_ns() - t0;
	}
	bench_row__rep(row, merges, ns);
	bench_row__extra(row, "stacks_in",
			 (double)(stack_agg__size(b->shard[0]) + stack_agg__size(b->shard[1])));
	return err;
}

static int bench_reset(struct agg_bench *b, struct bench_row *row)
{
	uint64_t n = tp_ops(b->cfg, BASE_BATCHES), deadline = bench_now_ns() + b->cfg->budget_ns;
	uint64_t ns = 0, resets = 0;
	int err = 0;

	for (; !err && resets < n && bench_now_ns() < deadline; resets++) {
		uint64_t t0;

		err = add_all(b, b->agg);
		t0 = bench_now_ns();
		stack_agg__reset(b->agg);
		ns += bench_now_ns() - t0;
	}
	bench_row__rep(row, resets, ns);
	return err;
}

/* Draws the Zipf stream. Returns 0 or -errno. */
static int make_seq(struct agg_bench *b)
{
	struct synth_zipf z = {0};
	uint64_t rng = b->cfg->seed;
	int err = synth_zipf__init(&z, b->st->n);

	if (err)
		return err;
	b->n_seq = (size_t)tp_ops(b->cfg, BASE_INTERVALS) * INTERVAL;
	b->seq = malloc(b->n_seq * sizeof(*b->seq));
	if (!b->seq) {
		synth_zipf__deinit(&z);
		return -ENOMEM;
	}
	for (size_t i = 0; i < b->n_seq; i++)
		b->seq[i] = (uint32_t)(synth_zipf__draw(&z, &rng) * PERM_STRIDE % b->st->n);
	synth_zipf__deinit(&z);
	return 0;
}

int tp_agg__run(const struct tp_cfg *cfg, struct bench_report *rep)
{
	static const char *const names[] = {
		"add, Zipf mix (20k-sample intervals)", "add, every stack present",
		"add, every stack new (after reset)",	"merge 2 shards into warm cumulative",
		"merge 2 shards into empty cumulative", "reset, 2000 stacks",
	};
	struct bench_row *rows[6];
	struct agg_bench b = {.cfg = cfg};
	struct synth *s = synth__new(4096, 512, cfg->seed);
	struct synth_stacks *st = s ? synth_stacks__new(s, N_STACKS, DEPTH, cfg->seed) : NULL;
	int err = 0;

	b.st = st;
	b.agg = stack_agg__new(MAX_ENTRIES);
	b.shard[0] = stack_agg__new(MAX_ENTRIES);
	b.shard[1] = stack_agg__new(MAX_ENTRIES);
	b.cum = stack_agg__new(MAX_ENTRIES);
	if (!st || !b.agg || !b.shard[0] || !b.shard[1] || !b.cum) {
		err = -ENOMEM;
		goto cleanup;
	}
	err = make_seq(&b);
	for (int i = 0; i < 6 && !err; i++) {
		rows[i] = bench_report__row(rep, "aggregator", names[i]);
		if (!rows[i])
			err = -errno;
	}
	if (err)
		goto cleanup;
	bench_row__note(rows[0], "per sample, %d stacks x %d frames", N_STACKS, DEPTH);
	bench_row__note(rows[1], "per sample");
	bench_row__note(rows[2], "per sample");
	bench_row__note(rows[3], "per merge");
	bench_row__note(rows[4], "per merge");
	bench_row__note(rows[5], "per reset");
	for (unsigned k = 0; k < cfg->repeat && !err; k++) {
		err = bench_zipf_mix(&b, rows[0]);
		err = err ? err : bench_all_hits(&b, rows[1]);
		err = err ? err : bench_all_new(&b, rows[2]);
		err = err ? err : bench_merge(&b, rows[3], true);
		err = err ? err : bench_merge(&b, rows[4], false);
		err = err ? err : bench_reset(&b, rows[5]);
	}
cleanup:
	stack_agg__free(b.agg);
	stack_agg__free(b.shard[0]);
	stack_agg__free(b.shard[1]);
	stack_agg__free(b.cum);
	free(b.seq);
	synth_stacks__free(st);
	synth__free(s);
	return err;
}
