// SPDX-License-Identifier: BSD-2-Clause
/*
 * Unit tests of pipeline/ without privileges: option parsing, the stack
 * aggregator (add, bound, merge across shards, reset, weighted values and
 * their distribution), the wait profiles and lock report built from it, and
 * the --shards auto rule. The SPSC queue under two threads is in spsc_queue_test.c.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "encoder.h"
#include "stack_agg.h"
#include "test_helpers.h"
#include "wait_report.h"

static int parse(struct pipeline_config *cfg, const char *const *args)
{
	char *argv[32];
	int argc = 0;
	argv[argc++] = "pipeline";
	for (; *args; args++)
		argv[argc++] = (char *)*args;
	argv[argc] = NULL;
	return config__parse(cfg, argc, argv);
}

static int test_config_defaults(void)
{
	struct pipeline_config cfg;
	const char *args[] = {NULL};
	CHECK(parse(&cfg, args) == CONFIG_OK);
	CHECK_EQ_U64(cfg.frequency, 99);
	CHECK_EQ_U64(cfg.interval, 10);
	CHECK_EQ_U64(cfg.shards, 0);
	CHECK(cfg.kernel_stacks);
	CHECK(!cfg.idle);
	CHECK_STR(cfg.output, "profile");
	return 0;
}

static int test_config_values(void)
{
	struct pipeline_config cfg;
	const char *args[] = {
		"--shards", "3",	"--frequency", "1000",		"--duration",
		"5",	    "--pid",	"12",	       "--pid=34",	"--no-kernel-stacks",
		"--idle",   "--output", "/tmp/x",      "--queue-depth", "100",
		NULL};
	CHECK(parse(&cfg, args) == CONFIG_OK);
	CHECK_EQ_U64(cfg.shards, 3);
	CHECK_EQ_U64(cfg.frequency, 1000);
	CHECK_EQ_U64(cfg.duration, 5);
	CHECK_EQ_U64(cfg.n_pids, 2);
	CHECK_EQ_U64(cfg.pids[0], 12);
	CHECK_EQ_U64(cfg.pids[1], 34);
	CHECK(!cfg.kernel_stacks);
	CHECK(cfg.idle);
	CHECK_STR(cfg.output, "/tmp/x");
	CHECK_EQ_U64(cfg.queue_depth, 128); /* rounded up to a power of two */
	const char *autos[] = {"--shards", "auto", NULL};
	CHECK(parse(&cfg, autos) == CONFIG_OK);
	CHECK_EQ_U64(cfg.shards, 0);
	return 0;
}

static int test_config_rejects(void)
{
	struct pipeline_config cfg;
	const char *unknown[] = {"--frobnicate", NULL};
	const char *range_hi[] = {"--frequency", "10001", NULL};
	const char *range_lo[] = {"--frequency", "0", NULL};
	const char *not_num[] = {"--duration", "ten", NULL};
	const char *negative[] = {"--interval", "-1", NULL};
	const char *bad_shards[] = {"--shards", "many", NULL};
	const char *missing[] = {"--output", NULL};
	const char *stray[] = {"extra", NULL};
	CHECK(parse(&cfg, unknown) == CONFIG_EXIT_USAGE);
	CHECK(parse(&cfg, range_hi) == CONFIG_EXIT_USAGE);
	CHECK(parse(&cfg, range_lo) == CONFIG_EXIT_USAGE);
	CHECK(parse(&cfg, not_num) == CONFIG_EXIT_USAGE);
	CHECK(parse(&cfg, negative) == CONFIG_EXIT_USAGE);
	CHECK(parse(&cfg, bad_shards) == CONFIG_EXIT_USAGE);
	CHECK(parse(&cfg, missing) == CONFIG_EXIT_USAGE);
	CHECK(parse(&cfg, stray) == CONFIG_EXIT_USAGE);
	return 0;
}

static int test_config_wait_signals(void)
{
	struct pipeline_config cfg;
	const char *both[] = {"--profiles", "cpu,offcpu,lock", "--offcpu-min-us",
			      "50",	    "--wait-max-rate", "100",
			      NULL};
	const char *unknown[] = {"--profiles", "cpu,offcpus", NULL};
	const char *empty[] = {"--profiles", "", NULL};
	const char *rate0[] = {"--wait-max-rate", "0", NULL};
	CHECK(parse(&cfg, both) == CONFIG_OK);
	CHECK(cfg.profile_cpu && cfg.profile_offcpu && cfg.profile_lock && !cfg.profile_alloc);
	CHECK_EQ_U64(cfg.offcpu_min_us, 50);
	CHECK_EQ_U64(cfg.wait_max_rate, 100);
	const char *lock_only[] = {"--profiles", "lock", NULL};
	CHECK(parse(&cfg, lock_only) == CONFIG_OK);
	CHECK(!cfg.profile_cpu && !cfg.profile_offcpu && cfg.profile_lock);
	CHECK_EQ_U64(cfg.offcpu_min_us, 1);
	CHECK_EQ_U64(cfg.wait_max_rate, 200);
	CHECK(parse(&cfg, unknown) == CONFIG_EXIT_USAGE);
	CHECK(parse(&cfg, empty) == CONFIG_EXIT_USAGE);
	CHECK(parse(&cfg, rate0) == CONFIG_EXIT_USAGE);
	return 0;
}

static int test_auto_shards(void)
{
	CHECK_EQ_U64(config__auto_shards(2, 99), 1);
	CHECK_EQ_U64(config__auto_shards(2, 10000), 1); /* never more than half the CPUs */
	CHECK_EQ_U64(config__auto_shards(128, 99), 1);
	CHECK_EQ_U64(config__auto_shards(128, 1000), 7);
	CHECK_EQ_U64(config__auto_shards(1, 99), 1);
	return 0;
}

/* Hand-made frames: the aggregator compares them by pointer only. */
static struct sym_module mod = {.path = "/bin/x", .name = "x", .build_id = ""};
static struct sym_frame frames[8];

static void init_frames(void)
{
	for (int i = 0; i < 8; i++)
		frames[i] = (struct sym_frame){.module = &mod, .address = 0x1000 + i, .id = i + 1};
}

static struct profile_stack make_stack(uint32_t tgid, uint32_t tid, const char *comm,
				       const struct sym_frame **f, uint32_t nk, uint32_t nu)
{
	struct profile_stack s = {
		.tgid = tgid, .tid = tid, .n_kernel = nk, .n_user = nu, .frames = f};
	strncpy(s.comm, comm, PROFILE_COMM_LEN - 1);
	strncpy(s.pcomm, comm, PROFILE_COMM_LEN - 1);
	return s;
}

static int test_agg_add_and_bound(void)
{
	init_frames();
	struct stack_agg *agg = stack_agg__new(3);
	CHECK(agg);
	const struct sym_frame *a[] = {&frames[0], &frames[1], &frames[2]};
	const struct sym_frame *b[] = {&frames[0], &frames[1], &frames[3]};
	struct profile_stack sa = make_stack(10, 11, "app", a, 1, 2);
	struct profile_stack sb = make_stack(10, 11, "app", b, 1, 2);
	struct profile_stack sc = make_stack(10, 12, "app", a, 1, 2); /* other tid */
	struct profile_stack sd = make_stack(10, 11, "app", a, 0, 3); /* other split */
	CHECK(stack_agg__add(agg, &sa, 1, 100, 100) == 0);
	CHECK(stack_agg__add(agg, &sa, 2, 50, 200) == 0);
	CHECK(stack_agg__add(agg, &sb, 1, 10, 10) == 0);
	CHECK(stack_agg__add(agg, &sc, 1, 10, 10) == 0);
	CHECK_EQ_U64(stack_agg__size(agg), 3);
	CHECK(stack_agg__add(agg, &sd, 1, 10, 10) == -ENOSPC); /* bound hit */
	CHECK(stack_agg__add(agg, &sa, 1, 300, 300) == 0);     /* known stacks still count */
	CHECK_EQ_U64(stack_agg__total(agg), 6);

	struct stack_agg_snapshot snap;
	CHECK(stack_agg__snapshot(agg, &snap) == 0);
	CHECK_EQ_U64(snap.n_stacks, 3);
	CHECK(!snap.times_complete); /* recording was off */
	int found = 0;
	for (size_t i = 0; i < snap.n_stacks; i++) {
		if (snap.stacks[i].tid == 11 && snap.stacks[i].frames[2] == &frames[2]) {
			CHECK_EQ_U64(snap.stacks[i].count, 4);
			CHECK_EQ_U64(snap.stacks[i].first_ns, 50);
			CHECK_EQ_U64(snap.stacks[i].last_ns, 300);
			CHECK_EQ_U64(snap.stacks[i].n_times, 0);
			CHECK(snap.stacks[i].frames != a); /* frames were copied */
			found++;
		}
	}
	stack_agg__snapshot_free(&snap);
	CHECK(found == 1);
	stack_agg__free(agg);
	return 0;
}

static int test_agg_merge_across_shards(void)
{
	init_frames();
	struct stack_agg *s1 = stack_agg__new(1000), *s2 = stack_agg__new(1000);
	struct stack_agg *total = stack_agg__new(1000);
	CHECK(s1 && s2 && total);
	const struct sym_frame *a[] = {&frames[4], &frames[5]};
	const struct sym_frame *b[] = {&frames[6], &frames[7]};
	struct profile_stack sa = make_stack(7, 7, "svc", a, 0, 2);
	struct profile_stack sb = make_stack(7, 8, "svc", b, 0, 2);
	/* The same process's samples land in both shards (routing is by CPU). */
	for (int i = 0; i < 100; i++)
		CHECK(stack_agg__add(s1, &sa, 1, 1000 + i, 1000 + i) == 0);
	for (int i = 0; i < 50; i++)
		CHECK(stack_agg__add(s2, &sa, 1, 500 + i, 500 + i) == 0);
	for (int i = 0; i < 30; i++)
		CHECK(stack_agg__add(s2, &sb, 1, 2000, 2000) == 0);
	CHECK(stack_agg__merge(total, s1) == 0);
	CHECK(stack_agg__merge(total, s2) == 0);
	CHECK_EQ_U64(stack_agg__size(total), 2);
	CHECK_EQ_U64(stack_agg__total(total), 180);
	struct stack_agg_snapshot snap;
	CHECK(stack_agg__snapshot(total, &snap) == 0);
	CHECK_EQ_U64(snap.n_stacks, 2);
	for (size_t i = 0; i < 2; i++) {
		if (snap.stacks[i].tid == 7) {
			CHECK_EQ_U64(snap.stacks[i].count, 150);
			CHECK_EQ_U64(snap.stacks[i].first_ns, 500);
			CHECK_EQ_U64(snap.stacks[i].last_ns, 1099);
		} else {
			CHECK_EQ_U64(snap.stacks[i].count, 30);
		}
	}
	stack_agg__snapshot_free(&snap);

	/* Reset keeps nothing, and the table works again afterwards. */
	stack_agg__reset(s1);
	CHECK_EQ_U64(stack_agg__size(s1), 0);
	CHECK_EQ_U64(stack_agg__total(s1), 0);
	CHECK(stack_agg__add(s1, &sb, 5, 1, 1) == 0);
	CHECK_EQ_U64(stack_agg__total(s1), 5);

	/* A full destination reports what it could not take. */
	struct stack_agg *tiny = stack_agg__new(1);
	CHECK(tiny);
	int64_t lost = stack_agg__merge(tiny, s2);
	CHECK(lost == 30 || lost == 50);
	CHECK_EQ_U64(stack_agg__total(tiny) + (uint64_t)lost, 80);
	stack_agg__free(tiny);
	stack_agg__free(s1);
	stack_agg__free(s2);
	stack_agg__free(total);
	return 0;
}

static int test_agg_many_stacks(void)
{
	/* Growth and arena reuse over many distinct stacks and resets. */
	enum { N = 20000 };
	static struct sym_frame many[N];
	struct stack_agg *agg = stack_agg__new(N);
	CHECK(agg);
	for (int round = 0; round < 3; round++) {
		for (int i = 0; i < N; i++) {
			many[i] = (struct sym_frame){.module = &mod, .id = i + 1};
			const struct sym_frame *f[] = {&many[i], &many[(i + 1) % N]};
			struct profile_stack s = make_stack(1, 1, "m", f, 0, 2);
			CHECK(stack_agg__add(agg, &s, 1, 0, 0) == 0);
		}
		CHECK_EQ_U64(stack_agg__size(agg), N);
		CHECK_EQ_U64(stack_agg__total(agg), N);
		stack_agg__reset(agg);
	}
	stack_agg__free(agg);
	return 0;
}

static int test_agg_times(void)
{
	init_frames();
	struct stack_agg *s1 = stack_agg__new(100), *s2 = stack_agg__new(100);
	struct stack_agg *total = stack_agg__new(100);
	CHECK(s1 && s2 && total);
	stack_agg__record_times(s1, 1000);
	stack_agg__record_times(s2, 1000);
	stack_agg__record_times(total, 1000);
	const struct sym_frame *a[] = {&frames[0]};
	const struct sym_frame *b[] = {&frames[1]};
	struct profile_stack sa = make_stack(5, 5, "t", a, 0, 1);
	struct profile_stack sb = make_stack(5, 6, "t", b, 0, 1);
	/* More than one block's worth on one stack, across two shards. */
	for (uint64_t i = 0; i < 40; i++)
		CHECK(stack_agg__add_sample(s1, &sa, 1000 + i, 0) == 0);
	for (uint64_t i = 0; i < 7; i++)
		CHECK(stack_agg__add_sample(s2, &sa, 5000 + i, 1) == 0);
	CHECK(stack_agg__add_sample(s2, &sb, 9000, 1) == 0);
	CHECK(stack_agg__merge(total, s1) == 0);
	CHECK(stack_agg__merge(total, s2) == 0);

	struct stack_agg_snapshot snap;
	CHECK(stack_agg__snapshot(total, &snap) == 0);
	CHECK(snap.times_complete);
	for (size_t i = 0; i < snap.n_stacks; i++) {
		const struct profile_stack *s = &snap.stacks[i];
		CHECK_EQ_U64(s->n_times, s->count);
		if (s->tid == 5) {
			CHECK_EQ_U64(s->count, 47);
			CHECK_EQ_U64(s->times[0].ns, 1000); /* arrival order kept */
			CHECK_EQ_U64(s->times[39].ns, 1039);
			CHECK_EQ_U64(s->times[40].ns, 5000);
			CHECK_EQ_U64(s->times[40].cpu, 1);
			CHECK_EQ_U64(s->times[46].ns, 5006);
		} else {
			CHECK_EQ_U64(s->times[0].ns, 9000);
		}
	}
	stack_agg__snapshot_free(&snap);

	/* Past the bound: counts stay exact, the snapshot says times are incomplete. */
	struct stack_agg *small = stack_agg__new(100);
	CHECK(small);
	stack_agg__record_times(small, 10);
	for (uint64_t i = 0; i < 25; i++)
		CHECK(stack_agg__add_sample(small, &sa, i, 0) == 0);
	CHECK(stack_agg__snapshot(small, &snap) == 0);
	CHECK_EQ_U64(snap.stacks[0].count, 25);
	CHECK_EQ_U64(snap.stacks[0].n_times, 10);
	CHECK(!snap.times_complete);
	stack_agg__snapshot_free(&snap);
	stack_agg__reset(small);
	CHECK(stack_agg__add_sample(small, &sa, 1, 0) == 0);
	CHECK(stack_agg__snapshot(small, &snap) == 0);
	CHECK(snap.times_complete); /* reset starts a new interval */
	stack_agg__snapshot_free(&snap);

	stack_agg__free(small);
	stack_agg__free(s1);
	stack_agg__free(s2);
	stack_agg__free(total);
	return 0;
}

/* Weighted records (off-CPU periods, lock waits) in two shards, merged:
 * events and nanoseconds add up with their weights, the distribution
 * gives the p99, and the wait profiles and lock report read them. */
static int test_agg_weighted_waits(void)
{
	init_frames();
	struct stack_agg *s1 = stack_agg__new(100), *s2 = stack_agg__new(100);
	struct stack_agg *total = stack_agg__new(100);
	CHECK(s1 && s2 && total);
	stack_agg__record_hist(s1, true);
	stack_agg__record_hist(s2, true);
	stack_agg__record_hist(total, true);
	const struct sym_frame *a[] = {&frames[0], &frames[1]};
	const struct sym_frame *b[] = {&frames[2]};
	struct profile_stack sa = make_stack(9, 9, "svc", a, 0, 2);
	struct profile_stack sa2 = make_stack(9, 10, "svc", a, 0, 2); /* same path, other thread */
	struct profile_stack sb = make_stack(9, 9, "svc", b, 0, 1);
	/* 98 waits of 1 ms and 2 of 50 ms on path a; one of 3 ms, sampled 1 in
	 * 4, on path b. */
	for (int i = 0; i < 49; i++) {
		CHECK(stack_agg__add_weighted(s1, &sa, 1, 1000000, 10 + i, 0) == 0);
		CHECK(stack_agg__add_weighted(s2, &sa2, 1, 1000000, 10 + i, 1) == 0);
	}
	CHECK(stack_agg__add_weighted(s1, &sa, 1, 50000000, 100, 0) == 0);
	CHECK(stack_agg__add_weighted(s2, &sa, 1, 50000000, 100, 1) == 0);
	CHECK(stack_agg__add_weighted(s2, &sb, 4, 3000000, 200, 1) == 0);
	CHECK(stack_agg__merge(total, s1) == 0);
	CHECK(stack_agg__merge(total, s2) == 0);
	CHECK_EQ_U64(stack_agg__size(total), 3);

	struct wait_built lock;
	CHECK(wait_report__build(SHARD_WAIT_LOCK, total, 1000, 5000000000ull, &lock) == 0);
	CHECK_STR(lock.p.signal, "lock");
	CHECK_EQ_U64(lock.p.n_value_types, 2);
	CHECK_STR(lock.p.value_types[0].type, "contentions");
	CHECK_STR(lock.p.value_types[1].type, "delay");
	CHECK_EQ_U64(lock.p.total_samples, 49000000ull + 100000000 + 49000000 + 12000000);
	for (size_t i = 0; i < lock.p.n_stacks; i++) {
		const struct profile_stack *s = &lock.p.stacks[i];
		CHECK(s->values);
		CHECK_EQ_U64(s->count, (uint64_t)s->values[1]); /* weighed by time */
		if (s->n_user == 1) {
			CHECK_EQ_U64(s->values[0], 4); /* 1 record standing for 4 waits */
			CHECK_EQ_U64(s->values[1], 12000000);
		} else if (s->tid == 9) {
			CHECK_EQ_U64(s->values[0], 51);
			CHECK_EQ_U64(s->values[1], 49000000ull + 100000000);
			/* p99 of 49 x 1 ms and 2 x 50 ms: 50 ms, within a bucket */
			uint64_t p99 = stack_agg__hist_quantile(s->value_hist, 0.99);
			CHECK(p99 >= 50000000 && p99 <= 50000000 * 5 / 4);
			uint64_t p50 = stack_agg__hist_quantile(s->value_hist, 0.5);
			CHECK(p50 >= 1000000 && p50 <= 1000000 * 5 / 4);
		}
	}
	char *text = NULL;
	size_t len = 0;
	CHECK(wait_report__lock_text(&lock.p, &text, &len) == 0);
	CHECK(text && len == strlen(text));
	/* Path a first (198 ms over 2 threads, 100 waits), then b. */
	CHECK(strstr(text, "Waits: 104, total delay 210.0 ms, in 2 call paths"));
	CHECK(strstr(text, " 1.  198.0 ms ( 94.3 %)  [x+0x1000] <- [x+0x1001]"));
	CHECK(strstr(text, "100 waits, mean 2.0 ms, p99 "));
	CHECK(strstr(text, "2 threads"));
	CHECK(strstr(text, " 2.   12.0 ms"));
	free(text);

	/* The wall view: a CPU profile's samples worth a period each, and the
	 * off-CPU stacks marked. */
	struct wait_built off, wall;
	CHECK(wait_report__build(SHARD_WAIT_OFFCPU, total, 1000, 5000000000ull, &off) == 0);
	CHECK_STR(off.p.value_types[1].type, "off_cpu");
	struct profile_stack cpu_stack = make_stack(9, 9, "svc", b, 0, 1);
	cpu_stack.count = 3;
	struct profile cpu = {.signal = "cpu",
			      .period_ns = 10000000,
			      .stacks = &cpu_stack,
			      .n_stacks = 1,
			      .total_samples = 3,
			      .frequency_hz = 100};
	CHECK(wait_report__wall(&cpu, &off.p, &wall) == 0);
	CHECK_EQ_U64(wall.p.n_stacks, 4);
	CHECK_EQ_U64(wall.p.total_samples, 30000000ull + off.p.total_samples);
	CHECK(!wall.p.stacks[0].off_cpu && wall.p.stacks[0].count == 30000000);
	for (size_t i = 1; i < wall.p.n_stacks; i++)
		CHECK(wall.p.stacks[i].off_cpu);
	struct flamegraph_opts fo = {.title = "wall"};
	struct encoded_buf svg = {0};
	CHECK(flamegraph__encode_svg(&wall.p, &fo, &svg) == 0);
	CHECK(memmem(svg.data, svg.len, "[off-CPU]", 9));
	CHECK(memmem(svg.data, svg.len, "fg-offcpu", 9));
	free(svg.data);
	wait_built__free(&wall);
	wait_built__free(&off);
	wait_built__free(&lock);

	/* Buckets: every value falls in a bucket whose upper bound is above it
	 * and within 25 %. */
	for (uint64_t v = 1024; v < (1ull << 40); v = v * 3 / 2 + 7) {
		uint64_t up = stack_agg__hist_upper(stack_agg__hist_bucket(v));
		CHECK(up > v && up <= v + v / 4 + 1);
	}
	stack_agg__free(s1);
	stack_agg__free(s2);
	stack_agg__free(total);
	return 0;
}

static const struct test_case cases[] = {
	{"agg_weighted_waits", test_agg_weighted_waits},
	{"config_wait_signals", test_config_wait_signals},
	{"agg_times", test_agg_times},
	{"config_defaults", test_config_defaults},
	{"config_values", test_config_values},
	{"config_rejects", test_config_rejects},
	{"auto_shards", test_auto_shards},
	{"agg_add_and_bound", test_agg_add_and_bound},
	{"agg_merge_across_shards", test_agg_merge_across_shards},
	{"agg_many_stacks", test_agg_many_stacks},
};

TEST_MAIN(cases)
