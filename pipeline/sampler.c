// SPDX-License-Identifier: BSD-2-Clause
/*
 * Loads bpf/cpu_sample.bpf.c and wires it to the hardware-independent
 * software cpu-clock event (no PMU is assumed), in period mode so every
 * sample stands for exactly 1e9/frequency ns of CPU; or, with --clock tick
 * (or auto, where the tick can serve the rate), to the scheduler tick's
 * hrtimer (tick_clock.h), every Nth tick on average a sample standing for
 * N ticks, with the cpu-clock event only on CPUs whose tick stops while
 * busy (NO_HZ_FULL).
 *
 * Ring sizing: by default each CPU's ring holds about one second of samples
 * at the configured frequency (at least 256 KiB), and the BPF program wakes
 * the reader only when a ring is a quarter full; the reader's own poll
 * period (250 ms by default) picks up the rest. So the agent wakes a few
 * times a second instead of once per sample, and a stalled reader has
 * seconds, not milliseconds, before anything is dropped.
 */
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <linux/perf_event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "cpu_sample.skel.h"
#include "monotonic.h"
#include "sampler.h"
#include "bpf_run_stats.h"
#include "tick_clock.h"
#include "tick_unseen.h"

struct sampler {
	struct cpu_sample_bpf *skel;
	unsigned n_cpus; /* possible CPUs */
	int *perf_fds;	 /* per CPU, -1 if offline */
	struct bpf_link **links;
	int *ring_fds; /* per CPU, -1 if offline */
	int stats_fd;  /* bpf_enable_stats fd, -1 if off */
	uint64_t ring_bytes;
	bool tick;				  /* sampling rides the scheduler tick */
	unsigned hz, tick_every;		  /* tick: the kernel's HZ, ticks per sample */
	struct bpf_link *tick_link;		  /* tick: the hrtimer_expire_entry program */
	struct bpf_link *reckon_link, *exit_link; /* tick: tick_reckon, tick_thread_exit */
	uint64_t reckoned_ns;			  /* tick: the last reckoning's start */
	struct tick_unseen_stats unseen;
	uint64_t period_ns; /* what one sample stands for */
	char clock[256];    /* the clock in use, for people */
};

/* --clock tick or auto: decides whether samples ride the tick, filling
 * s->tick, hz, tick_every. Returns 0, or -errno when tick was asked for and
 * cannot be had (said why). */
static int sampler__choose_clock(struct sampler *s, const struct pipeline_config *cfg)
{
	struct tick_clock tc;
	char why[200];
	bool forced = cfg->clock && !strcmp(cfg->clock, "tick");
	int err;

	snprintf(s->clock, sizeof(s->clock), "cpu-clock");
	if (!cfg->profile_cpu || !cfg->clock || !strcmp(cfg->clock, "cpu-clock"))
		return 0;
	err = tick_clock__probe(&tc, why, sizeof(why));
	if (!err && cfg->frequency > tc.hz) {
		snprintf(why, sizeof(why), "--frequency %u is above the tick's %u Hz",
			 cfg->frequency, tc.hz);
		err = -ERANGE;
	}
	if (err) {
		if (forced) {
			fprintf(stderr, "pipeline: --clock tick: %s\n", why);
			return err;
		}
		snprintf(s->clock, sizeof(s->clock), "cpu-clock (--clock auto: %s)", why);
		return 0;
	}
	s->tick = true;
	s->hz = tc.hz;
	s->tick_every = tick_clock__every(tc.hz, cfg->frequency);
	s->skel->rodata->tick_fn = tc.handler;
	s->skel->rodata->tick_every = s->tick_every;
	snprintf(s->clock, sizeof(s->clock),
		 "tick (1 in %u of the %u Hz scheduler tick, %s: %.1f Hz)", s->tick_every, tc.hz,
		 tc.handler_name, (double)tc.hz / s->tick_every);
	return 0;
}

/* Tick mode: attaches the reckoning of each thread's CPU time against its
 * samples (tick_unseen.h) and takes its baseline, before the first tick is
 * sampled. Returns 0 or -errno (said). */
static int sampler__tick_reckoning(struct sampler *s)
{
	int err;

	s->reckon_link = bpf_program__attach_iter(s->skel->progs.tick_reckon, NULL);
	if (!s->reckon_link) {
		err = -errno;
		fprintf(stderr, "pipeline: --clock tick: cannot attach the task iterator: %s\n",
			strerror(errno));
		return err;
	}
	s->exit_link = bpf_program__attach(s->skel->progs.tick_thread_exit);
	if (!s->exit_link) {
		err = -errno;
		fprintf(stderr, "pipeline: --clock tick: cannot attach to sched_process_exit: %s\n",
			strerror(errno));
		return err;
	}
	s->reckoned_ns = monotonic_ns();
	err = tick_unseen__reckon(s->reckon_link);
	if (err)
		fprintf(stderr, "pipeline: --clock tick: cannot reckon the threads' CPU time: %s\n",
			strerror(-err));
	return err;
}

int sampler__tick_unseen(struct sampler *s, tick_unseen_fn fn, void *ctx)
{
	if (!s->tick)
		return 0;
	uint64_t now = monotonic_ns();
	/* Threads born since the previous reckoning have all their time new. */
	s->skel->bss->tick_reckoned_ns = s->reckoned_ns;
	s->reckoned_ns = now;
	int err = tick_unseen__reckon(s->reckon_link);
	if (err) {
		fprintf(stderr, "pipeline: --clock tick: cannot reckon the threads' CPU time: %s\n",
			strerror(-err));
		return err;
	}
	err = tick_unseen__drain(bpf_map__fd(s->skel->maps.tick_unseen), fn, ctx, &s->unseen);
	if (err)
		fprintf(stderr, "pipeline: --clock tick: cannot read the unseen CPU time: %s\n",
			strerror(-err));
	return err;
}

void sampler__tick_unseen_stats(const struct sampler *s, struct tick_unseen_stats *out)
{
	*out = s->unseen;
}

/* Tick mode: CPUs whose tick stops while busy get the cpu-clock event and
 * are left out by the tick program. Marks them in cpu_clock[]. */
static int sampler__nohz_full(struct sampler *s, bool *cpu_clock)
{
	struct cpu_sample_tick_state *per_cpu = calloc(s->n_cpus, sizeof(*per_cpu));
	uint32_t zero = 0;
	int err = 0;

	if (!per_cpu)
		return -ENOMEM;
	if (tick_clock__nohz_full(cpu_clock, s->n_cpus)) {
		for (unsigned c = 0; c < s->n_cpus; c++)
			per_cpu[c].off = cpu_clock[c];
		err = bpf_map__update_elem(s->skel->maps.tick_states, &zero, sizeof(zero), per_cpu,
					   s->n_cpus * sizeof(*per_cpu), BPF_ANY);
		size_t len = strlen(s->clock);
		snprintf(s->clock + len, sizeof(s->clock) - len,
			 "; cpu-clock on the NO_HZ_FULL CPUs");
	}
	free(per_cpu);
	return err;
}

/* The cpu-clock event of cpu, a sample every period_ns of its CPU time. */
static int perf_event_open_cpu_clock(int cpu, uint64_t period_ns)
{
	struct perf_event_attr attr = {
		.type = PERF_TYPE_SOFTWARE,
		.size = sizeof(attr),
		.config = PERF_COUNT_SW_CPU_CLOCK,
		.sample_period = period_ns,
		.freq = 0,
	};
	return (int)syscall(SYS_perf_event_open, &attr, -1, cpu, -1, PERF_FLAG_FD_CLOEXEC);
}

/*
 * Per-CPU ring size: one second of samples at RING_BYTES_PER_SAMPLE each,
 * at least 256 KiB, rounded up to a power of two (the kernel's rule). Ring
 * records are packed to their stack depth (bpf/cpu_sample.h), 200-400 bytes
 * for typical stacks; deeper stacks only make the reader wake sooner (at a
 * quarter full). 1000 Hz takes 512 KiB per CPU, 64 MiB on a 128-CPU host.
 */
#define RING_BYTES_PER_SAMPLE 512
#define RING_MIN_BYTES	      (256 * 1024)
/* Allocation records come in bursts a timer never makes: a thread can
 * allocate a million times a second, every call a record in exact mode.
 * 4 MiB holds about 40,000 records, a burst of a tenth of a second, and the
 * reader is woken at a quarter of it. */
#define RING_ALLOC_MIN_BYTES (4u << 20)
#define RING_COPY_MAX_BYTES  (32u << 20)

static uint64_t ring_size_for(const struct pipeline_config *cfg, bool with_copies)
{
	uint64_t want;
	if (cfg->ring_kib)
		want = (uint64_t)cfg->ring_kib * 1024;
	else if (cfg->profile_alloc)
		want = RING_ALLOC_MIN_BYTES;
	else
		want = (uint64_t)cfg->frequency * RING_BYTES_PER_SAMPLE;
	/* A dwarf-mode record carries the stack copy: one second of them, at
	 * most RING_COPY_MAX_BYTES. With --unwind auto most records are
	 * frame-pointer ones and only processes switched to copies send
	 * copies: a quarter of a second of them (the reader is woken long
	 * before, at a quarter of the ring without copies). */
	if (with_copies && cfg->unwind_dwarf && !cfg->ring_kib) {
		uint64_t copy = (uint64_t)cfg->frequency * (cfg->stack_copy_bytes + 1024);
		if (cfg->unwind_auto)
			copy /= 4;
		if (copy > RING_COPY_MAX_BYTES)
			copy = RING_COPY_MAX_BYTES;
		if (copy > want)
			want = copy;
	}
	uint64_t size = RING_MIN_BYTES;
	while (size < want)
		size <<= 1;
	return size;
}

/* Reads /sys/devices/system/cpu/online ("0-3,5,7-8") into a per-CPU flag array. */
static int online_cpus(bool *online, unsigned n)
{
	char buf[4096];
	FILE *f = fopen("/sys/devices/system/cpu/online", "re");
	if (!f)
		return -errno;
	if (!fgets(buf, sizeof(buf), f)) {
		fclose(f);
		return -EIO;
	}
	fclose(f);
	memset(online, 0, n * sizeof(*online));
	for (char *tok = strtok(buf, ",\n"); tok; tok = strtok(NULL, ",\n")) {
		unsigned lo, hi;
		int k = sscanf(tok, "%u-%u", &lo, &hi);
		if (k < 1)
			return -EINVAL;
		if (k == 1)
			hi = lo;
		for (unsigned c = lo; c <= hi && c < n; c++)
			online[c] = true;
	}
	return 0;
}

struct sampler *sampler__new(const struct pipeline_config *cfg)
{
	struct sampler *s = calloc(1, sizeof(*s));
	bool *online = NULL;
	int err = 0;

	if (!s)
		return NULL;
	s->stats_fd = -1;

	int n = libbpf_num_possible_cpus();
	if (n <= 0 || n > CPU_SAMPLE_MAX_CPUS) {
		fprintf(stderr, "pipeline: cannot count CPUs (%d)\n", n);
		err = n < 0 ? n : -EINVAL;
		goto cleanup;
	}
	s->n_cpus = (unsigned)n;
	s->perf_fds = malloc(n * sizeof(int));
	s->ring_fds = malloc(n * sizeof(int));
	s->links = calloc(n, sizeof(*s->links));
	online = calloc(n, sizeof(bool));
	if (!s->perf_fds || !s->ring_fds || !s->links || !online) {
		err = -ENOMEM;
		goto cleanup;
	}
	for (int i = 0; i < n; i++)
		s->perf_fds[i] = s->ring_fds[i] = -1;
	err = online_cpus(online, s->n_cpus);
	if (err) {
		fprintf(stderr, "pipeline: cannot read online CPUs: %s\n", strerror(-err));
		goto cleanup;
	}

	s->skel = cpu_sample_bpf__open();
	if (!s->skel) {
		err = -errno;
		fprintf(stderr, "pipeline: cannot open BPF object: %s\n", strerror(errno));
		goto cleanup;
	}
	s->skel->rodata->filter_pids = cfg->n_pids > 0;
	s->skel->rodata->include_idle = cfg->idle;
	s->skel->rodata->kernel_stacks = cfg->kernel_stacks;
	if (cfg->unwind_dwarf) {
		s->skel->rodata->stack_copy_bytes = cfg->stack_copy_bytes;
		s->skel->rodata->copy_auto = cfg->unwind_auto;
		bpf_map__set_max_entries(s->skel->maps.copy_scratch, s->n_cpus);
	}
	if (!cfg->unwind_auto)
		bpf_map__set_max_entries(s->skel->maps.unwind_rules, 1); /* unused */
	err = sampler__choose_clock(s, cfg);
	if (err)
		goto cleanup;
	s->period_ns = s->tick ? (uint64_t)s->tick_every * 1000000000ULL / s->hz
			       : 1000000000ULL / cfg->frequency;
	bpf_program__set_autoload(s->skel->progs.on_tick, s->tick);
	bpf_program__set_autoload(s->skel->progs.tick_reckon, s->tick);
	bpf_program__set_autoload(s->skel->progs.tick_thread_exit, s->tick);
	s->skel->rodata->tick_period_ns = s->tick ? s->period_ns : 0;
	if (!s->tick)
		bpf_map__set_max_entries(s->skel->maps.tick_unseen, 1); /* unused */
	s->ring_bytes = ring_size_for(cfg, true);
	/* The reader is woken at a quarter of the ring without copies, so
	 * that a ring sized for copies does not hold frame-pointer records
	 * (--unwind auto's usual ones) four times longer: a short-lived
	 * process's samples must reach the symbolizer while its maps can
	 * still be read. */
	s->skel->rodata->wakeup_bytes = ring_size_for(cfg, false) / 4;
	bpf_map__set_max_entries(s->skel->maps.rings, s->n_cpus);
	/* The rings exist before load: one of them is the inner-map template
	 * (libbpf 1.1 cannot resize the declared template), and a sample never
	 * finds its CPU without a ring once the perf events are attached. */
	int template_fd = -1;
	for (unsigned cpu = 0; cpu < s->n_cpus; cpu++) {
		if (!online[cpu])
			continue;
		char name[24]; /* kernel map names hold 15 characters */
		snprintf(name, sizeof(name), "ring_cpu%u", cpu % 10000);
		name[15] = 0;
		s->ring_fds[cpu] = bpf_map_create(BPF_MAP_TYPE_RINGBUF, name, 0, 0,
						  (uint32_t)s->ring_bytes, NULL);
		if (s->ring_fds[cpu] < 0) {
			err = -errno;
			fprintf(stderr,
				"pipeline: cannot create the ring of CPU %u (%llu bytes): %s\n",
				cpu, (unsigned long long)s->ring_bytes, strerror(errno));
			goto cleanup;
		}
		if (template_fd < 0)
			template_fd = s->ring_fds[cpu];
	}
	if (template_fd < 0 || bpf_map__set_inner_map_fd(s->skel->maps.rings, template_fd)) {
		err = -EINVAL;
		fprintf(stderr, "pipeline: cannot set up the per-CPU rings\n");
		goto cleanup;
	}
	err = cpu_sample_bpf__load(s->skel);
	if (err) {
		fprintf(stderr, "pipeline: cannot load the BPF program: %s\n", strerror(-err));
		goto cleanup;
	}

	for (unsigned i = 0; i < cfg->n_pids; i++) {
		uint8_t one = 1;
		err = bpf_map__update_elem(s->skel->maps.target_pids, &cfg->pids[i],
					   sizeof(cfg->pids[i]), &one, sizeof(one), BPF_ANY);
		if (err) {
			fprintf(stderr, "pipeline: cannot add pid %u to the filter: %s\n",
				cfg->pids[i], strerror(-err));
			goto cleanup;
		}
	}

	if (cfg->bpf_stats) {
		s->stats_fd = bpf_enable_stats(BPF_STATS_RUN_TIME);
		if (s->stats_fd < 0)
			fprintf(stderr,
				"pipeline: BPF run time not measured: bpf_enable_stats: %s\n",
				strerror(errno));
	}

	int outer_fd = bpf_map__fd(s->skel->maps.rings);
	for (unsigned cpu = 0; cpu < s->n_cpus; cpu++) {
		if (s->ring_fds[cpu] < 0)
			continue;
		err = bpf_map_update_elem(outer_fd, &cpu, &s->ring_fds[cpu], BPF_ANY);
		if (err) {
			err = -errno;
			fprintf(stderr, "pipeline: cannot register the ring of CPU %u: %s\n", cpu,
				strerror(errno));
			goto cleanup;
		}
	}
	/* Tick mode: cpu-clock only where the tick stops while busy. */
	bool *cpu_clock = calloc(s->n_cpus, sizeof(bool));
	if (!cpu_clock) {
		err = -ENOMEM;
		goto cleanup;
	}
	if (s->tick) {
		err = sampler__nohz_full(s, cpu_clock);
		if (err)
			fprintf(stderr,
				"pipeline: --clock tick: cannot mark the NO_HZ_FULL CPUs: %s\n",
				strerror(-err));
	} else
		memset(cpu_clock, 1, s->n_cpus * sizeof(bool));
	if (!err && s->tick)
		err = sampler__tick_reckoning(s);
	if (!err && s->tick) {
		s->tick_link = bpf_program__attach(s->skel->progs.on_tick);
		if (!s->tick_link) {
			err = -errno;
			fprintf(stderr,
				"pipeline: --clock tick: cannot attach to "
				"timer:hrtimer_expire_entry: %s\n",
				strerror(errno));
		}
	}
	/* Without the cpu signal the rings still carry the other signals'
	 * records (allocations): no perf event then. */
	for (unsigned cpu = 0; !err && cfg->profile_cpu && cpu < s->n_cpus; cpu++) {
		if (!online[cpu] || !cpu_clock[cpu])
			continue;
		s->perf_fds[cpu] = perf_event_open_cpu_clock((int)cpu, s->period_ns);
		if (s->perf_fds[cpu] < 0) {
			err = -errno;
			fprintf(stderr, "pipeline: cannot open the cpu-clock event on CPU %u: %s\n",
				cpu, strerror(errno));
			break;
		}
		s->links[cpu] = bpf_program__attach_perf_event(s->skel->progs.on_cpu_sample,
							       s->perf_fds[cpu]);
		if (!s->links[cpu]) {
			err = -errno;
			fprintf(stderr, "pipeline: cannot attach to CPU %u: %s\n", cpu,
				strerror(errno));
			break;
		}
	}
	free(cpu_clock);
	if (err)
		goto cleanup;
	free(online);
	return s;

cleanup:
	free(online);
	sampler__free(s);
	errno = err < 0 ? -err : EINVAL;
	return NULL;
}

void sampler__stop(struct sampler *s)
{
	bpf_link__destroy(s->tick_link);
	s->tick_link = NULL;
	for (unsigned cpu = 0; cpu < s->n_cpus; cpu++)
		if (s->perf_fds[cpu] >= 0)
			ioctl(s->perf_fds[cpu], PERF_EVENT_IOC_DISABLE, 0);
}

void sampler__free(struct sampler *s)
{
	if (!s)
		return;
	bpf_link__destroy(s->tick_link);
	bpf_link__destroy(s->exit_link);
	bpf_link__destroy(s->reckon_link);
	for (unsigned cpu = 0; s->links && cpu < s->n_cpus; cpu++)
		bpf_link__destroy(s->links[cpu]);
	for (unsigned cpu = 0; s->perf_fds && cpu < s->n_cpus; cpu++)
		if (s->perf_fds[cpu] >= 0)
			close(s->perf_fds[cpu]);
	for (unsigned cpu = 0; s->ring_fds && cpu < s->n_cpus; cpu++)
		if (s->ring_fds[cpu] >= 0)
			close(s->ring_fds[cpu]);
	cpu_sample_bpf__destroy(s->skel);
	if (s->stats_fd >= 0)
		close(s->stats_fd);
	free(s->links);
	free(s->perf_fds);
	free(s->ring_fds);
	free(s);
}

uint64_t sampler__period_ns(const struct sampler *s)
{
	return s->period_ns;
}

const char *sampler__clock(const struct sampler *s)
{
	return s->clock;
}

int sampler__rings_map_fd(const struct sampler *s)
{
	return bpf_map__fd(s->skel->maps.rings);
}

uint64_t sampler__wakeup_bytes(const struct sampler *s)
{
	return s->skel->rodata->wakeup_bytes;
}

unsigned sampler__n_cpus(const struct sampler *s)
{
	return s->n_cpus;
}

int sampler__ring_fd(const struct sampler *s, unsigned cpu)
{
	return cpu < s->n_cpus ? s->ring_fds[cpu] : -1;
}

uint64_t sampler__ring_bytes(const struct sampler *s)
{
	return s->ring_bytes;
}

int sampler__read_stats_per_cpu(const struct sampler *s, struct cpu_sample_stats *out)
{
	uint32_t zero = 0;
	return bpf_map__lookup_elem(s->skel->maps.stats, &zero, sizeof(zero), out,
				    s->n_cpus * sizeof(*out), 0);
}

int sampler__read_stats(const struct sampler *s, struct cpu_sample_stats *out)
{
	struct cpu_sample_stats *per_cpu = calloc(s->n_cpus, sizeof(*per_cpu));
	if (!per_cpu)
		return -ENOMEM;
	int err = sampler__read_stats_per_cpu(s, per_cpu);
	if (err) {
		free(per_cpu);
		return err;
	}
	memset(out, 0, sizeof(*out));
	for (unsigned i = 0; i < s->n_cpus; i++) {
		out->seen += per_cpu[i].seen;
		out->filtered += per_cpu[i].filtered;
		out->ring_full += per_cpu[i].ring_full;
		out->no_ring += per_cpu[i].no_ring;
		out->user_failed += per_cpu[i].user_failed;
		out->kernel_failed += per_cpu[i].kernel_failed;
		out->copy_failed += per_cpu[i].copy_failed;
		out->copy_short += per_cpu[i].copy_short;
		out->copy_bytes += per_cpu[i].copy_bytes;
		out->rule_walks += per_cpu[i].rule_walks;
		out->rule_steps += per_cpu[i].rule_steps;
		out->tick_unseen_lost_ns += per_cpu[i].tick_unseen_lost_ns;
	}
	free(per_cpu);
	return 0;
}

int sampler__read_bpf_stats(const struct sampler *s, struct sampler_bpf_stats *out)
{
	/* on_cpu_sample; with --clock tick on_tick and the reckoning (tick_reckon,
	 * tick_thread_exit). */
	return bpf_run_stats__sum(s->skel->obj, &out->run_time_ns, &out->run_cnt);
}

int sampler__copy_tgids_fd(const struct sampler *s)
{
	return bpf_map__fd(s->skel->maps.copy_tgids);
}

int sampler__unwind_rules_fd(const struct sampler *s)
{
	return bpf_map__fd(s->skel->maps.unwind_rules);
}
