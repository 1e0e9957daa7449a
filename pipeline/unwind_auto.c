// SPDX-License-Identifier: BSD-2-Clause
/*
 * --unwind auto's judge (see unwind_auto.h). One per shard worker, touched
 * only by it; the counters are read by the stats thread with relaxed loads.
 */
#include <bpf/bpf.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "unwind_auto.h"

#define TABLE_SIZE 4096 /* processes judged per shard; emptied when 3/4 full */
/* Frame-pointer samples still in the rings and queues when a process was
 * switched are not a sign that the switch was undone. */
#define IN_FLIGHT_NS (3ull * 1000 * 1000 * 1000)

struct judged {
	uint32_t tgid; /* 0: free */
	uint32_t seen, short_;
	bool switched;
	uint64_t switched_ns;
	uint32_t size;	   /* copy bytes set in the map; 0: none set */
	uint32_t floor;	   /* never size below: what a cut stack once needed */
	uint32_t max_used; /* most bytes an unwind used in this window */
	uint32_t n_used;   /* unwinds in this window */
};

struct unwind_auto {
	int map_fd;
	uint32_t max_copy;
	size_t used;
	struct judged t[TABLE_SIZE];
	_Atomic uint64_t switched, failed;
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

struct unwind_auto *unwind_auto__new(int map_fd, uint32_t max_copy)
{
	struct unwind_auto *ua = calloc(1, sizeof(*ua));
	if (ua) {
		ua->map_fd = map_fd;
		ua->max_copy = max_copy;
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

void unwind_auto__judge(struct unwind_auto *ua, uint32_t tgid, uint64_t ts_ns,
			const struct sym_frame *const *user, uint32_t n, bool truncated)
{
	struct judged *j;

	if (!ua || !tgid || !n || !(j = find(ua, tgid)))
		return;
	if (j->switched) {
		if (ts_ns < j->switched_ns + IN_FLIGHT_NS)
			return;
		/* Sampled by frame pointers again: it exec'd or exited and its
		 * pid came back. Judge it afresh. */
		*j = (struct judged){.tgid = tgid};
	}
	j->seen++;
	if (!truncated && !is_root(user[n - 1]->function))
		j->short_++;
	if (j->seen < UNWIND_AUTO_MIN_SAMPLES)
		return;
	if (100ull * j->short_ >= (uint64_t)UNWIND_AUTO_SHORT_PCT * j->seen) {
		uint32_t size = ua->max_copy;
		if (bpf_map_update_elem(ua->map_fd, &tgid, &size, BPF_ANY)) {
			bump(&ua->failed);
			*j = (struct judged){.tgid = tgid}; /* try again after another window */
			return;
		}
		bump(&ua->switched);
		j->switched = true;
		j->switched_ns = ts_ns;
		j->size = size;
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

void unwind_auto__stats(const struct unwind_auto *ua, uint64_t *switched, uint64_t *failed)
{
	*switched = ua ? atomic_load_explicit(&ua->switched, memory_order_relaxed) : 0;
	*failed = ua ? atomic_load_explicit(&ua->failed, memory_order_relaxed) : 0;
}
