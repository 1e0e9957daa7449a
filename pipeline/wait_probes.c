// SPDX-License-Identifier: BSD-2-Clause
/*
 * Off-CPU and futex-wait probes (see wait_probes.h and
 * bpf/wait_sample.bpf.c).
 *
 * The budget: taking a stack costs microseconds (12 us with the kernel
 * stack, under load on a 2-vCPU KVM guest), and a busy host switches or
 * waits on futexes far more often than the CPU sampler ticks. Each CPU
 * keeps its own rate of each kind of event and samples 1 in N of them so
 * as to take at most max_rate stacks a second (bpf/wait_sample.bpf.c);
 * each record stands for N events, so the totals stay estimates of the
 * true ones.
 */
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>

#include "wait_probes.h"
#include "bpf_run_stats.h"
#include "wait_sample.skel.h"

#define TRACEFS "/sys/kernel/tracing"

struct wait_probes {
	struct wait_sample_bpf *skel;
	struct bpf_link *links[5];
	unsigned n_links;
	unsigned n_cpus;
	struct wait_sample_stats *now; /* per CPU, scratch */
	bool futex_waitv;	       /* its tracepoints were attached */
};

static int add_link(struct wait_probes *wp, struct bpf_link *l, const char *what)
{
	if (!l) {
		int err = -errno;

		fprintf(stderr, "pipeline: cannot attach the %s program: %s\n", what,
			strerror(-err));
		return err;
	}
	wp->links[wp->n_links++] = l;
	return 0;
}

/* The futex tracepoints, by id from tracefs (mounted here if need be). */
static int attach_futex(struct wait_probes *wp)
{
	struct wait_sample_bpf *skel = wp->skel;
	int err;

	if (access(TRACEFS "/events/syscalls", F_OK) &&
	    mount("tracefs", TRACEFS, "tracefs", 0, NULL) && errno != EBUSY) {
		err = -errno;
		fprintf(stderr,
			"pipeline: --profiles lock needs tracefs for the futex tracepoints, and "
			"it cannot be mounted on %s: %s\n",
			TRACEFS, strerror(-err));
		return err;
	}
	err = add_link(wp,
		       bpf_program__attach_tracepoint(skel->progs.futex_enter, "syscalls",
						      "sys_enter_futex"),
		       "syscalls:sys_enter_futex");
	if (!err)
		err = add_link(wp,
			       bpf_program__attach_tracepoint(skel->progs.futex_exit, "syscalls",
							      "sys_exit_futex"),
			       "syscalls:sys_exit_futex");
	if (err)
		return err;
	/* futex_waitv (Linux 5.16) is optional: older kernels lack it. */
	if (access(TRACEFS "/events/syscalls/sys_enter_futex_waitv", F_OK))
		return 0;
	struct bpf_link *a = bpf_program__attach_tracepoint(skel->progs.futex_waitv_enter,
							    "syscalls", "sys_enter_futex_waitv");
	struct bpf_link *b = a ? bpf_program__attach_tracepoint(skel->progs.futex_waitv_exit,
								"syscalls", "sys_exit_futex_waitv")
			       : NULL;
	if (a && b) {
		wp->links[wp->n_links++] = a;
		wp->links[wp->n_links++] = b;
		wp->futex_waitv = true;
	} else {
		bpf_link__destroy(a);
	}
	return 0;
}

int wait_probes__new(const struct wait_probes_opts *opts, struct wait_probes **out)
{
	struct wait_probes *wp = calloc(1, sizeof(*wp));
	int err;

	*out = NULL;
	if (!wp) {
		fprintf(stderr, "pipeline: out of memory for the off-CPU and lock probes\n");
		return -ENOMEM;
	}
	wp->n_cpus = opts->n_cpus;
	wp->now = calloc(opts->n_cpus, sizeof(*wp->now));
	wp->skel = wait_sample_bpf__open();
	if (!wp->now || !wp->skel) {
		err = -ENOMEM;
		fprintf(stderr, "pipeline: cannot open the off-CPU and lock BPF object\n");
		goto fail;
	}
	wp->skel->rodata->self_tgid = (uint32_t)getpid();
	wp->skel->rodata->filter_pids = opts->n_pids > 0;
	wp->skel->rodata->kernel_stacks = opts->kernel_stacks;
	wp->skel->rodata->min_ns = opts->min_ns;
	wp->skel->rodata->wakeup_bytes = opts->wakeup_bytes;
	wp->skel->rodata->max_rate = opts->max_rate ? opts->max_rate : 1;
	bpf_map__set_max_entries(wp->skel->maps.inflight, opts->inflight ? opts->inflight : 1);
	bpf_map__set_max_entries(wp->skel->maps.rings, opts->n_cpus);
	bpf_program__set_autoload(wp->skel->progs.offcpu_switch, opts->offcpu);
	bpf_program__set_autoload(wp->skel->progs.futex_enter, opts->lock);
	bpf_program__set_autoload(wp->skel->progs.futex_exit, opts->lock);
	bpf_program__set_autoload(wp->skel->progs.futex_waitv_enter, opts->lock);
	bpf_program__set_autoload(wp->skel->progs.futex_waitv_exit, opts->lock);
	err = bpf_map__reuse_fd(wp->skel->maps.rings, opts->rings_map_fd);
	if (err) {
		fprintf(stderr,
			"pipeline: cannot share the rings with the off-CPU and lock "
			"programs: %s\n",
			strerror(-err));
		goto fail;
	}
	err = wait_sample_bpf__load(wp->skel);
	if (err) {
		fprintf(stderr, "pipeline: cannot load the off-CPU and lock BPF programs: %s\n",
			strerror(-err));
		goto fail;
	}
	for (unsigned i = 0; i < opts->n_pids; i++) {
		uint8_t one = 1;

		err = bpf_map__update_elem(wp->skel->maps.target_pids, &opts->pids[i],
					   sizeof(uint32_t), &one, sizeof(one), BPF_ANY);
		if (err) {
			fprintf(stderr,
				"pipeline: cannot add pid %u to the off-CPU and lock filter: %s\n",
				opts->pids[i], strerror(-err));
			goto fail;
		}
	}
	if (opts->lock) {
		err = attach_futex(wp);
		if (err)
			goto fail;
	}
	if (opts->offcpu) {
		err = add_link(wp, bpf_program__attach(wp->skel->progs.offcpu_switch),
			       "sched_switch (tp_btf)");
		if (err)
			goto fail;
	}
	*out = wp;
	return 0;
fail:
	wait_probes__free(wp);
	return err;
}

void wait_probes__stop(struct wait_probes *wp)
{
	for (unsigned i = 0; wp && i < wp->n_links; i++)
		bpf_link__destroy(wp->links[i]);
	if (wp)
		wp->n_links = 0;
}

void wait_probes__free(struct wait_probes *wp)
{
	if (!wp)
		return;
	wait_probes__stop(wp);
	wait_sample_bpf__destroy(wp->skel);
	free(wp->now);
	free(wp);
}

static int read_per_cpu(const struct wait_probes *wp, struct wait_sample_stats *per_cpu)
{
	uint32_t zero = 0;

	if (bpf_map__lookup_elem(wp->skel->maps.stats, &zero, sizeof(zero), per_cpu,
				 wp->n_cpus * sizeof(*per_cpu), 0))
		return -errno;
	return 0;
}

int wait_probes__read_stats(const struct wait_probes *wp, struct wait_sample_stats *out)
{
	int err = read_per_cpu(wp, wp->now);

	memset(out, 0, sizeof(*out));
	if (err)
		return err;
	for (unsigned c = 0; c < wp->n_cpus; c++) {
		const uint64_t *src = (const uint64_t *)&wp->now[c];
		uint64_t *dst = (uint64_t *)out;

		for (size_t i = 0; i < sizeof(*out) / sizeof(uint64_t); i++)
			dst[i] += src[i];
	}
	return 0;
}

/* The largest 1 in N in force on a CPU for signal which (0: off-CPU, 1: lock). */
static uint32_t max_every(const struct wait_probes *wp, uint32_t which)
{
	struct wait_rate_state *per_cpu = calloc(wp->n_cpus, sizeof(*per_cpu));
	uint32_t n = 1;

	if (per_cpu && !bpf_map__lookup_elem(wp->skel->maps.rates, &which, sizeof(which), per_cpu,
					     wp->n_cpus * sizeof(*per_cpu), 0))
		for (unsigned c = 0; c < wp->n_cpus; c++)
			n = per_cpu[c].every > n ? per_cpu[c].every : n;
	free(per_cpu);
	return n;
}

/* Sampled threads off the CPU now: their records wait in `inflight` for
 * a switch-in (at the end of a run: never sent). */
static unsigned inflight_count(const struct wait_probes *wp)
{
	uint32_t key, next;
	unsigned n = 0;
	int fd = bpf_map__fd(wp->skel->maps.inflight);

	for (int err = bpf_map_get_next_key(fd, NULL, &next); !err && n < 1000000;
	     err = bpf_map_get_next_key(fd, &key, &next)) {
		key = next;
		n++;
	}
	return n;
}

int wait_probes__read_bpf_stats(const struct wait_probes *wp, uint64_t *run_ns, uint64_t *run_cnt)
{
	return bpf_run_stats__sum(wp->skel->obj, run_ns, run_cnt);
}

void wait_probes__print_stats(const struct wait_probes *wp, FILE *f)
{
	struct wait_sample_stats st;
	uint64_t run_ns = 0, run_cnt = 0;

	if (!wp || wait_probes__read_stats(wp, &st))
		return;
	wait_probes__read_bpf_stats(wp, &run_ns, &run_cnt);
	if (wp->skel->progs.offcpu_switch && bpf_program__fd(wp->skel->progs.offcpu_switch) >= 0)
		fprintf(f,
			"  off-CPU                    %llu switch-outs, %llu stacks taken (now up "
			"to "
			"1 in %u), %llu sent, %llu back within the minimum, %llu lost (more "
			"sampled "
			"threads asleep than tracked), %u still off the CPU (their time not in the "
			"profile); %llu switch-ins the kernel did not report (sent at the next "
			"switch-out)\n",
			(unsigned long long)st.switches, (unsigned long long)st.offcpu_taken,
			max_every(wp, 0), (unsigned long long)st.offcpu_sent,
			(unsigned long long)st.offcpu_short, (unsigned long long)st.offcpu_lost,
			inflight_count(wp), (unsigned long long)st.offcpu_unseen);
	if (bpf_program__fd(wp->skel->progs.futex_enter) >= 0)
		fprintf(f,
			"  futex waits                %llu waits, %llu taken (now up to 1 in %u), "
			"%llu sent, %llu did not sleep%s\n",
			(unsigned long long)st.futex_waits, (unsigned long long)st.lock_taken,
			max_every(wp, 1), (unsigned long long)st.lock_sent,
			(unsigned long long)st.lock_no_wait,
			wp->futex_waitv ? "" : " (futex_waitv not traced)");
	fprintf(f,
		"  wait drops                 %llu ring full, %llu no ring, %llu no thread state, "
		"%llu stack errors\n",
		(unsigned long long)st.ring_full, (unsigned long long)st.no_ring,
		(unsigned long long)st.no_task_state, (unsigned long long)st.stack_failed);
	if (run_cnt)
		fprintf(f, "  wait BPF run time          %.3f s over %llu runs (%.0f ns per run)\n",
			(double)run_ns / 1e9, (unsigned long long)run_cnt,
			(double)run_ns / (double)run_cnt);
}

void wait_probes__write_json(const struct wait_probes *wp, FILE *f)
{
	struct wait_sample_stats st;
	uint64_t run_ns = 0, run_cnt = 0;

	if (!wp || wait_probes__read_stats(wp, &st))
		return;
	wait_probes__read_bpf_stats(wp, &run_ns, &run_cnt);
	fprintf(f,
		",\n  \"wait\": {\"switches\": %llu, \"offcpu_taken\": %llu, \"offcpu_sent\": "
		"%llu, "
		"\"offcpu_short\": %llu, \"offcpu_lost\": %llu, \"offcpu_stale\": %llu, "
		"\"offcpu_unseen\": %llu, "
		"\"offcpu_unfinished\": %u, "
		"\"offcpu_every\": %u, "
		"\"futex_waits\": %llu, \"lock_taken\": %llu, \"lock_sent\": %llu, "
		"\"lock_no_wait\": %llu, \"lock_every\": %u, \"ring_full\": %llu, \"no_ring\": "
		"%llu, "
		"\"no_task_state\": %llu, \"stack_errors\": %llu, \"bpf_run_ns\": %llu, "
		"\"bpf_runs\": %llu}",
		(unsigned long long)st.switches, (unsigned long long)st.offcpu_taken,
		(unsigned long long)st.offcpu_sent, (unsigned long long)st.offcpu_short,
		(unsigned long long)st.offcpu_lost, (unsigned long long)st.offcpu_stale,
		(unsigned long long)st.offcpu_unseen, inflight_count(wp), max_every(wp, 0),
		(unsigned long long)st.futex_waits, (unsigned long long)st.lock_taken,
		(unsigned long long)st.lock_sent, (unsigned long long)st.lock_no_wait,
		max_every(wp, 1), (unsigned long long)st.ring_full, (unsigned long long)st.no_ring,
		(unsigned long long)st.no_task_state, (unsigned long long)st.stack_failed,
		(unsigned long long)run_ns, (unsigned long long)run_cnt);
}
