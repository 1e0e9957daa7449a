/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Process tracker (see proc_tracker.h).
 *
 * Threads: one thread, pl-procs, owns the events ring. It is the
 * symbolizer's helper, not a sample ring reader: the slow work an exec asks
 * for (reading /proc/PID/maps) runs here, so no shard reader ever does it and
 * no sample waits behind it. The BPF program wakes it on each exec; exits
 * ride along (or wait for the poll timeout). A ring that fills while this
 * thread reads maps drops events in the kernel and counts them: the
 * symbolizer then falls back to reading maps on the process's first sample.
 *
 * Ownership: the tracker owns the skeleton, the ring and the thread; the
 * symbolizer is borrowed and must outlive it.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "proc_events.h" /* bpf/: the record layout */
#include "proc_events.skel.h"
#include "monotonic.h"
#include "proc_tracker.h"
#include "ring_wait.h"
#include "symbolizer.h"

/* Execs wake the thread; the timeout only collects exits, which are not
 * urgent (a process is dropped two flushes after its exit). */
#define PROC_EVENTS_POLL_MS 1000
#define PROC_EVENTS_NICE    -10

struct proc_tracker {
	struct proc_events_bpf *skel;
	struct ring_buffer *rb;
	struct ring_wait wait; /* valid once has_wait */
	bool has_wait;
	struct symbolizer *sym;
	pthread_t thread;
	bool started;
	atomic_bool stop;
	_Atomic uint64_t handled, execs_handled, gone;
	_Atomic uint64_t exec_lag_ns_sum, exec_lag_ns_max; /* event to maps read */
	atomic_int forget_fd; /* --unwind auto: the sampler's copy_tgids map, or -1 */
};

static int on_event(void *ctx, void *data, size_t size)
{
	struct proc_tracker *pe = ctx;
	const struct pl_proc_event *e = data;

	if (size < sizeof(*e))
		return 0;
	if (e->kind == PL_PROC_EXEC) {
		uint64_t lag = monotonic_ns() - e->time_ns;

		/* Single writer (this thread): plain load and store. */
		atomic_store_explicit(
			&pe->exec_lag_ns_sum,
			atomic_load_explicit(&pe->exec_lag_ns_sum, memory_order_relaxed) + lag,
			memory_order_relaxed);
		atomic_store_explicit(
			&pe->execs_handled,
			atomic_load_explicit(&pe->execs_handled, memory_order_relaxed) + 1,
			memory_order_relaxed);
		if (lag > atomic_load_explicit(&pe->exec_lag_ns_max, memory_order_relaxed))
			atomic_store_explicit(&pe->exec_lag_ns_max, lag, memory_order_relaxed);
		if (symbolizer__process_exec(pe->sym, e->tgid) == -ENOENT)
			atomic_fetch_add_explicit(&pe->gone, 1, memory_order_relaxed);
	} else if (e->kind == PL_PROC_EXIT)
		symbolizer__process_exit(pe->sym, e->tgid);
	/* A new program, or none: judge its stacks afresh. */
	int fd = atomic_load_explicit(&pe->forget_fd, memory_order_relaxed);
	if (fd >= 0)
		bpf_map_delete_elem(fd, &e->tgid);
	atomic_fetch_add_explicit(&pe->handled, 1, memory_order_relaxed);
	return 0;
}

static void *run(void *arg)
{
	struct proc_tracker *pe = arg;

	/* A 30 ms process must be read within 30 ms of its exec, on a host whose
	 * CPUs may all be busy: this thread's small, exec-bounded work gets a
	 * larger share than the host's default. Best effort. */
	setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), PROC_EVENTS_NICE);
	while (!atomic_load_explicit(&pe->stop, memory_order_acquire)) {
		int n = ring_wait__sleep(&pe->wait, PROC_EVENTS_POLL_MS);

		if (!n)
			n = ring_buffer__consume(pe->rb);
		if (n < 0 && n != -EINTR) {
			fprintf(stderr, "pipeline: process events: ring poll failed: %s\n",
				strerror(-n));
			break;
		}
	}
	return NULL;
}

struct proc_tracker *proc_tracker__start(struct symbolizer *sym)
{
	struct proc_tracker *pe = calloc(1, sizeof(*pe));
	if (pe)
		atomic_init(&pe->forget_fd, -1);
	int err;

	if (!pe)
		return NULL;
	pe->sym = sym;
	pe->skel = proc_events_bpf__open_and_load();
	if (!pe->skel) {
		err = -errno;
		fprintf(stderr, "pipeline: cannot load the process events program: %s\n",
			strerror(-err));
		goto fail;
	}
	err = proc_events_bpf__attach(pe->skel);
	if (err) {
		fprintf(stderr, "pipeline: cannot attach to sched_process_exec/exit: %s\n",
			strerror(-err));
		goto fail;
	}
	pe->rb = ring_buffer__new(bpf_map__fd(pe->skel->maps.events), on_event, pe, NULL);
	if (!pe->rb) {
		err = -errno;
		fprintf(stderr, "pipeline: cannot open the process events ring: %s\n",
			strerror(-err));
		goto fail;
	}
	err = ring_wait__init(&pe->wait, pe->rb);
	if (err) {
		fprintf(stderr, "pipeline: cannot wait on the process events ring: %s\n",
			strerror(-err));
		goto fail;
	}
	pe->has_wait = true;
	err = -pthread_create(&pe->thread, NULL, run, pe);
	if (err) {
		fprintf(stderr, "pipeline: cannot start the process events thread: %s\n",
			strerror(-err));
		goto fail;
	}
	pthread_setname_np(pe->thread, "pl-procs");
	pe->started = true;
	return pe;
fail:
	proc_tracker__free(pe);
	errno = -err;
	return NULL;
}

void proc_tracker__free(struct proc_tracker *pe)
{
	if (!pe)
		return;
	if (pe->skel)
		proc_events_bpf__detach(pe->skel);
	if (pe->started) {
		atomic_store_explicit(&pe->stop, true, memory_order_release);
		ring_wait__wake(&pe->wait);
		pthread_join(pe->thread, NULL);
	}
	if (pe->has_wait)
		ring_wait__destroy(&pe->wait);
	ring_buffer__free(pe->rb);
	proc_events_bpf__destroy(pe->skel);
	free(pe);
}

void proc_tracker__stats(struct proc_tracker *pe, struct proc_tracker_stats *st)
{
	int ncpu = libbpf_num_possible_cpus();
	struct pl_proc_event_stats *per = NULL;
	uint32_t zero = 0;

	memset(st, 0, sizeof(*st));
	if (!pe)
		return;
	st->handled = atomic_load_explicit(&pe->handled, memory_order_relaxed);
	st->gone = atomic_load_explicit(&pe->gone, memory_order_relaxed);
	st->execs_handled = atomic_load_explicit(&pe->execs_handled, memory_order_relaxed);
	st->exec_lag_ns_sum = atomic_load_explicit(&pe->exec_lag_ns_sum, memory_order_relaxed);
	st->exec_lag_ns_max = atomic_load_explicit(&pe->exec_lag_ns_max, memory_order_relaxed);
	if (ncpu <= 0)
		return;
	per = calloc((size_t)ncpu, sizeof(*per));
	if (!per)
		return;
	if (bpf_map__lookup_elem(pe->skel->maps.stats, &zero, sizeof(zero), per,
				 (size_t)ncpu * sizeof(*per), 0) == 0) {
		for (int i = 0; i < ncpu; i++) {
			st->execs += per[i].execs;
			st->exits += per[i].exits;
			st->ring_full += per[i].ring_full;
		}
	}
	free(per);
}

void proc_tracker__print(struct proc_tracker *pe, FILE *f)
{
	struct proc_tracker_stats ps;
	struct symbolizer_stats ss;

	if (!pe)
		return;
	proc_tracker__stats(pe, &ps);
	symbolizer__stats(pe->sym, &ss);
	fprintf(f,
		"  process events             %llu execs, %llu exits, %llu dropped (ring full); "
		"%llu maps read at exec (%llu too late: gone), exec to read %.2f ms on average, "
		"%.1f at most; %llu perf maps read\n",
		(unsigned long long)ps.execs, (unsigned long long)ps.exits,
		(unsigned long long)ps.ring_full, (unsigned long long)ss.exec_reads,
		(unsigned long long)ps.gone,
		ps.execs_handled ? (double)ps.exec_lag_ns_sum / 1e6 / (double)ps.execs_handled
				 : 0.0,
		(double)ps.exec_lag_ns_max / 1e6, (unsigned long long)ss.perf_map_reads);
}

void proc_tracker__forget_at_exec_exit(struct proc_tracker *pe, int map_fd)
{
	if (pe)
		atomic_store_explicit(&pe->forget_fd, map_fd, memory_order_relaxed);
}
