// SPDX-License-Identifier: BSD-2-Clause
/*
 * --unwind auto's judge (see unwind_auto.h). One per shard worker, touched
 * only by it; the counters are read by the stats thread with relaxed loads.
 */
#include <bpf/bpf.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "monotonic.h"
#include "cpu_sample.h"
#include "unwind_auto.h"

#define TABLE_SIZE 4096 /* processes judged per shard; emptied when 3/4 full */
#define LEARNED	   4096 /* rules this judge put in, direct-mapped (saves syscalls) */
/* Frame-pointer samples still in the rings and queues when a process was
 * switched are not a sign that the switch was undone. */
#define IN_FLIGHT_NS (3ull * 1000 * 1000 * 1000)

enum judged_mode { MODE_FP, MODE_WALK, MODE_COPY };

struct judged {
	uint32_t tgid; /* 0: free */
	uint32_t seen, short_;
	uint8_t mode; /* enum judged_mode */
	uint64_t switched_ns;
	/* MODE_WALK: this window's rule walks, the short ones, windows done */
	uint32_t walks, walks_short, windows;
	/* MODE_WALK: walks sampled before this are not judged (the end of the
	 * last window: rules learned by then were not in for them) */
	uint64_t window_from_ns;
	uint32_t size;	   /* copy bytes set in the map; 0: none set */
	uint32_t floor;	   /* never size below: what a cut stack once needed */
	uint32_t max_used; /* most bytes an unwind used in this window */
	uint32_t n_used;   /* unwinds in this window */
};

struct unwind_auto {
	int map_fd, rules_fd;
	uint32_t max_copy;
	struct sym_unwinder *unwinder; /* borrowed: the worker's */
	size_t used;
	struct judged t[TABLE_SIZE];
	struct cpu_sample_rule_key learned[LEARNED];
	_Atomic uint64_t walked, copied, rules, failed;
};

/* Where a frame-pointer walk that got everything ends: the first function
 * of a process or thread, whichever C library or runtime started it. */
static const char *const roots[] = {
	"_start",
	"__libc_start_main",
	"__libc_start_main_impl",
	"__libc_start_call_main",
	"start_thread",
	"clone",
	"clone3",
	"__clone",
	"__clone3",
	"thread_start",
	"runtime.goexit",
	"runtime.goexit.abi0",
	"runtime.mstart",
	"runtime.rt0_go",
};

static bool is_root(const char *fn)
{
	if (!fn)
		return false;
	for (size_t i = 0; i < sizeof(roots) / sizeof(roots[0]); i++)
		if (!strcmp(fn, roots[i]))
			return true;
	return false;
}

struct unwind_auto *unwind_auto__new(int map_fd, int rules_fd, uint32_t max_copy,
				     struct sym_unwinder *unwinder)
{
	struct unwind_auto *ua = calloc(1, sizeof(*ua));
	if (ua) {
		ua->map_fd = map_fd;
		ua->rules_fd = rules_fd;
		ua->max_copy = max_copy;
		ua->unwinder = unwinder;
	}
	return ua;
}

void unwind_auto__free(struct unwind_auto *ua)
{
	free(ua);
}

static struct judged *find(struct unwind_auto *ua, uint32_t tgid)
{
	if (ua->used >= TABLE_SIZE * 3 / 4) {
		/* Bounded: forget everyone (switched processes stay in the map). */
		memset(ua->t, 0, sizeof(ua->t));
		ua->used = 0;
	}
	size_t h = (tgid * 2654435761u) % TABLE_SIZE;
	for (size_t i = 0; i < TABLE_SIZE; i++) {
		struct judged *j = &ua->t[(h + i) % TABLE_SIZE];
		if (j->tgid == tgid)
			return j;
		if (!j->tgid) {
			j->tgid = tgid;
			ua->used++;
			return j;
		}
	}
	return NULL; /* cannot happen below 3/4 full */
}

static void bump(_Atomic uint64_t *c)
{
	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + 1,
			      memory_order_relaxed);
}

/* Sets tgid's value in copy_tgids; false (counted) when the map refused. */
static bool set_mode(struct unwind_auto *ua, uint32_t tgid, uint32_t value)
{
	if (bpf_map_update_elem(ua->map_fd, &tgid, &value, BPF_ANY)) {
		bump(&ua->failed);
		return false;
	}
	return true;
}

static void switch_to_copies(struct unwind_auto *ua, struct judged *j, uint64_t ts_ns)
{
	if (!set_mode(ua, j->tgid, ua->max_copy)) {
		*j = (struct judged){.tgid = j->tgid}; /* try again after another window */
		return;
	}
	bump(&ua->copied);
	j->mode = MODE_COPY;
	j->switched_ns = ts_ns;
	j->size = ua->max_copy;
}

/* A frame the kernel's frame-pointer walk steps right: rbp points at the
 * saved rbp, the return address above it. */
static bool is_fp_frame(const struct sym_cfa_rule *r)
{
	return r->cfa_on_bp && r->cfa_off == 16 && r->ra_off == -8 && r->bp_saved &&
	       r->bp_off == -16 && !r->outermost;
}

/*
 * A rule walk of tgid came out short: puts in the rule of the first frame
 * (leaf first) whose CFI says it keeps no frame pointer at that address,
 * unless this judge already did. Frames past it came from a frame pointer
 * that was not one and are not looked at. Returns whether a rule went in.
 */
static bool learn(struct unwind_auto *ua, uint32_t tgid, const uint64_t *pcs, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++) {
		struct sym_cfa_rule r;
		if (sym_unwinder__rule(ua->unwinder, tgid, pcs[i], i == 0, &r))
			return false; /* no CFI there: nothing to learn */
		if (is_fp_frame(&r))
			continue;
		struct cpu_sample_rule_key key = {.tgid = tgid, .pc = i ? pcs[i] - 1 : pcs[i]};
		struct cpu_sample_rule_key *seen =
			&ua->learned[((key.pc ^ tgid) * 0x9E3779B97F4A7C15ull >> 40) % LEARNED];
		if (!memcmp(seen, &key, sizeof(key)))
			continue;
		if (r.ra_off != (int16_t)r.ra_off || r.bp_off != (int16_t)r.bp_off)
			return false;
		struct cpu_sample_rule v = {
			.cfa_off = r.cfa_off,
			.ra_off = (int16_t)r.ra_off,
			.bp_off = (int16_t)r.bp_off,
			.cfa_on_bp = r.cfa_on_bp,
			.bp_saved = r.bp_saved,
			.outermost = r.outermost,
		};
		if (bpf_map_update_elem(ua->rules_fd, &key, &v, BPF_ANY)) {
			bump(&ua->failed);
			return false;
		}
		*seen = key;
		bump(&ua->rules);
		return true;
	}
	return false;
}

/* A rule walk: learn from it if short, and switch the process to copies
 * when, after the learning window, too many still are. A window holds only
 * walks sampled after the previous one was judged, so the rules learned in
 * that one were in for them: at 1000 Hz a quarter second's batch holds
 * five windows of walks sampled before any rule, and judging those sent
 * processes that the rules serve well on to copies. */
static void judge_walk(struct unwind_auto *ua, struct judged *j, uint64_t ts_ns,
		       const uint64_t *pcs, uint32_t n, bool is_short)
{
	if (j->mode == MODE_COPY)
		return; /* in flight from before the copies */
	if (j->mode == MODE_FP) {
		/* Another shard's judge switched it. */
		j->mode = MODE_WALK;
		j->switched_ns = ts_ns;
		j->walks = j->walks_short = j->windows = 0;
		j->window_from_ns = 0;
	}
	if (is_short)
		learn(ua, j->tgid, pcs, n);
	if (ts_ns < j->window_from_ns)
		return;
	j->walks_short += is_short;
	if (++j->walks < UNWIND_WALK_WINDOW)
		return;
	if (j->windows >= 1 &&
	    100ull * j->walks_short >= (uint64_t)UNWIND_AUTO_SHORT_PCT * j->walks) {
		switch_to_copies(ua, j, ts_ns);
		return;
	}
	j->windows++;
	j->walks = j->walks_short = 0;
	j->window_from_ns = monotonic_ns();
}

void unwind_auto__judge(struct unwind_auto *ua, uint32_t tgid, uint64_t ts_ns, const uint64_t *pcs,
			const struct sym_frame *const *user, uint32_t n, bool truncated,
			bool rule_walk)
{
	struct judged *j;

	if (!ua || !tgid || !n || !(j = find(ua, tgid)))
		return;
	bool is_short = !truncated && !is_root(user[n - 1]->function);
	if (rule_walk) {
		judge_walk(ua, j, ts_ns, pcs, n, is_short);
		return;
	}
	if (j->mode != MODE_FP) {
		if (ts_ns < j->switched_ns + IN_FLIGHT_NS)
			return;
		/* Sampled by frame pointers again: it exec'd or exited and its
		 * pid came back. Judge it afresh. */
		*j = (struct judged){.tgid = tgid};
	}
	j->seen++;
	if (is_short)
		j->short_++;
	if (j->seen < UNWIND_AUTO_MIN_SAMPLES)
		return;
	if (100ull * j->short_ >= (uint64_t)UNWIND_AUTO_SHORT_PCT * j->seen) {
		if (ua->rules_fd < 0) {
			switch_to_copies(ua, j, ts_ns);
			return;
		}
		if (!set_mode(ua, tgid, CPU_SAMPLE_COPY_WALK)) {
			*j = (struct judged){.tgid = tgid};
			return;
		}
		bump(&ua->walked);
		j->mode = MODE_WALK;
		j->switched_ns = ts_ns;
		j->walks = j->walks_short = j->windows = 0;
		j->window_from_ns = 0;
		return;
	}
	/* Judged complete: keep judging in windows, so a phase that starts
	 * running through code without frame pointers is caught too. */
	if (j->seen >= 50 * UNWIND_AUTO_MIN_SAMPLES)
		j->seen = j->short_ = 0;
}

static void set_size(struct unwind_auto *ua, struct judged *j, uint32_t size)
{
	if (bpf_map_update_elem(ua->map_fd, &j->tgid, &size, BPF_ANY)) {
		bump(&ua->failed);
		return;
	}
	j->size = size;
}

void unwind_auto__sized(struct unwind_auto *ua, uint32_t tgid, size_t used, bool cut,
			uint32_t asked)
{
	struct judged *j;

	if (!ua || !tgid || !(j = find(ua, tgid)))
		return;
	j->mode = MODE_COPY; /* (another shard's judge may have switched it) */
	if (cut) {
		/* Too small: grow at once, not after a window of cut stacks. */
		if (asked < ua->max_copy) {
			uint32_t grown = asked * 2 < ua->max_copy ? asked * 2 : ua->max_copy;
			/* Deep stacks can be rare (a signal handler's frame holds
			 * the whole saved context): what one needed stays. */
			j->floor = grown;
			set_size(ua, j, grown);
		}
		j->max_used = j->n_used = 0;
		return;
	}
	if (used > j->max_used)
		j->max_used = (uint32_t)used;
	if (++j->n_used < UNWIND_SIZE_WINDOW)
		return;
	uint32_t want = (j->max_used + j->max_used / 4 + 512 + 1023) & ~1023u;
	if (want < j->floor)
		want = j->floor;
	if (want > ua->max_copy)
		want = ua->max_copy;
	j->max_used = j->n_used = 0;
	/* Only a change of a quarter or more is worth a map update. */
	uint32_t cur = j->size ? j->size : ua->max_copy;
	if (want * 4 <= cur * 3 || want * 4 >= cur * 5)
		set_size(ua, j, want);
}

void unwind_auto__stats(const struct unwind_auto *ua, struct unwind_auto_stats *out)
{
	*out = (struct unwind_auto_stats){0};
	if (!ua)
		return;
	out->walked = atomic_load_explicit(&ua->walked, memory_order_relaxed);
	out->copied = atomic_load_explicit(&ua->copied, memory_order_relaxed);
	out->rules = atomic_load_explicit(&ua->rules, memory_order_relaxed);
	out->failed = atomic_load_explicit(&ua->failed, memory_order_relaxed);
}
