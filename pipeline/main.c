// SPDX-License-Identifier: BSD-2-Clause
/*
 * pipeline: the agent's conductor.
 *
 * Order of a run: parse flags; check privileges, BTF, the output directory
 * and the target pids before anything starts; create the shared symbolizer;
 * load and attach the sampler; start the I/O loop (exporter/: one thread
 * that writes the files and sends OTLP requests) and the shards (a reader
 * and a worker thread each); then the main thread alone waits for signals
 * and the flush timer. At the end: stop sampling, let every reader drain its
 * rings and every worker its queue, flush one last time (nothing collected
 * is lost), let the I/O loop finish the files (and the collector its
 * --shutdown-timeout), print self-stats and tear down in reverse order.
 *
 * Signals are blocked in every thread and taken synchronously by the main
 * thread with sigtimedwait(), so no work ever runs in a signal handler.
 */
#include <errno.h>
#include <linux/capability.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <bpf/libbpf.h>

#include "alloc_probes.h"
#include "config.h"
#include "exporter.h"
#include "flush.h"
#include "otlp_setup.h"
#include "proc_tracker.h"
#include "sampler.h"
#include "self_stats.h"
#include "shard.h"
#include "symbolizer.h"
#include "wait_probes.h"

#define MAX_SHARDS 256

static uint64_t clock_ns(clockid_t id)
{
	struct timespec ts;
	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static bool has_cap(const struct __user_cap_data_struct *d, int cap)
{
	return d[cap / 32].effective & (1u << (cap % 32));
}

/* Returns 0 if this process may load BPF and open perf events on every CPU. */
static int check_privileges(void)
{
	struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
	struct __user_cap_data_struct data[2] = {0};
	if (syscall(SYS_capget, &hdr, data))
		return -errno;
	if (has_cap(data, CAP_SYS_ADMIN))
		return 0;
	if (has_cap(data, CAP_BPF) && has_cap(data, CAP_PERFMON))
		return 0;
	return -EPERM;
}

static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	if (level == LIBBPF_DEBUG)
		return 0;
	fprintf(stderr, "libbpf: ");
	return vfprintf(stderr, fmt, ap);
}

/* Warns about pids that do not exist; returns how many do. */
static unsigned check_pids(const struct pipeline_config *cfg)
{
	unsigned alive = 0;
	for (unsigned i = 0; i < cfg->n_pids; i++) {
		if (kill((pid_t)cfg->pids[i], 0) == 0 || errno == EPERM)
			alive++;
		else
			fprintf(stderr,
				"pipeline: --pid %u: no such process; sampling goes on "
				"for the others\n",
				cfg->pids[i]);
	}
	return alive;
}

static bool any_pid_alive(const struct pipeline_config *cfg)
{
	for (unsigned i = 0; i < cfg->n_pids; i++)
		if (kill((pid_t)cfg->pids[i], 0) == 0 || errno == EPERM)
			return true;
	return false;
}

/* The run's drops so far, exported with every profile: the CPU sampler's
 * and the wait probes' (wp may be NULL) in the kernel, the shards' after. */
static void collect_drops(struct sampler *smp, const struct wait_probes *wp,
			  struct shard *const *shards, unsigned n, struct profile_drops *d)
{
	struct cpu_sample_stats ks = {0};
	struct wait_sample_stats ws = {0};
	memset(d, 0, sizeof(*d));
	if (sampler__read_stats(smp, &ks) == 0) {
		d->kernel_ring_full = ks.ring_full;
		d->kernel_no_ring = ks.no_ring;
	}
	if (wp && wait_probes__read_stats(wp, &ws) == 0) {
		d->kernel_ring_full += ws.ring_full;
		d->kernel_no_ring += ws.no_ring;
	}
	struct shard_stats st;
	shard__stats_sum(shards, n, &st);
	d->queue_full = st.queue_full;
	d->aggregator_full = st.aggregator_full;
	d->truncated_stacks = st.truncated;
	d->stack_errors = st.stack_errors;
}

/* --clock tick: a thread's CPU time that no sample saw goes into the next
 * profile under that thread, rather than out of it (tick_unseen.h). */
static void add_unseen(void *flusher, uint32_t tid, const struct cpu_sample_tick_unseen *u)
{
	struct profile_stack thread = {.tgid = u->tgid, .tid = tid};
	memcpy(thread.comm, u->comm, sizeof(thread.comm));
	memcpy(thread.pcomm, u->pcomm, sizeof(thread.pcomm));
	thread.comm[sizeof(thread.comm) - 1] = thread.pcomm[sizeof(thread.pcomm) - 1] = 0;
	int err = flusher__add_unseen(flusher, &thread, u->ns);
	if (err)
		fprintf(stderr, "pipeline: cannot add the unsampled time of thread %u: %s\n", tid,
			strerror(-err));
}

int main(int argc, char **argv)
{
	struct pipeline_config cfg;
	struct symbolizer *sym = NULL;
	struct proc_tracker *procs = NULL;
	struct sampler *smp = NULL;
	struct alloc_probes *aprobes = NULL;
	struct wait_probes *wprobes = NULL;
	struct flusher *flusher = NULL;
	struct otlp_exporter *exporter = NULL;
	struct otlp_setup otlp = {0};
	struct shard *shards[MAX_SHARDS] = {0};
	unsigned n_shards = 0;
	int rc = 1, err;

	switch (config__parse(&cfg, argc, argv)) {
	case CONFIG_OK:
		break;
	case CONFIG_EXIT_OK:
		return 0;
	default:
		return 2;
	}

	err = check_privileges();
	if (err) {
		fprintf(stderr, "pipeline: not enough privileges to load BPF programs and open "
				"perf events: run as root, or grant CAP_BPF and CAP_PERFMON (or "
				"CAP_SYS_ADMIN)\n");
		return 1;
	}
	if (access("/sys/kernel/btf/vmlinux", R_OK)) {
		fprintf(stderr, "pipeline: kernel BTF not found at /sys/kernel/btf/vmlinux: the "
				"BPF programs need a kernel built with CONFIG_DEBUG_INFO_BTF=y\n");
		return 1;
	}
	if (otlp_setup__init(&otlp, &cfg))
		return 2; /* otlp_setup said which flag or variable is wrong */
	/* With a collector, local files are written only when asked for. */
	bool files = !otlp.enabled || cfg.output_given;
	if (files) {
		err = file_sink__check_dir(cfg.output);
		if (err) {
			fprintf(stderr, "pipeline: output directory '%s' cannot be written: %s\n",
				cfg.output, strerror(-err));
			otlp_setup__deinit(&otlp);
			return 1;
		}
	}
	if (cfg.n_pids && !check_pids(&cfg))
		fprintf(stderr, "pipeline: none of the --pid processes exist; the profile will "
				"be empty\n");

	libbpf_set_print(libbpf_print);

	/* Block the signals we handle in every thread; main takes them below. */
	sigset_t sigs;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGUSR1);
	sigaddset(&sigs, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	uint64_t start_mono = clock_ns(CLOCK_MONOTONIC);
	uint64_t start_real = clock_ns(CLOCK_REALTIME);

	struct symbolizer_opts sopts = {.max_cache_bytes = cfg.symbol_cache_bytes,
					.kernel = cfg.kernel_stacks};
	sym = symbolizer__new(&sopts);
	if (!sym) {
		fprintf(stderr, "pipeline: cannot create the symbolizer: %s\n", strerror(errno));
		goto cleanup;
	}
	/* Whole-host runs only: a --pid list names processes that exist already. */
	if (cfg.track_processes && !cfg.n_pids) {
		procs = proc_tracker__start(sym);
		if (!procs)
			fprintf(stderr, "pipeline: short-lived processes may be left unnamed\n");
	}
	/* Readers wake 4 times a second, or once: with exec and exit traced a
	 * process's maps outlive it until its samples are flushed, so records
	 * may wait in the rings; without them a record must reach the
	 * symbolizer while its process lives. Each wake-up of an idle reader
	 * costs about 40 us of CPU on a KVM guest. */
	if (!cfg.poll_ms)
		cfg.poll_ms = procs ? 1000 : 250;
	smp = sampler__new(&cfg);
	if (!smp)
		goto cleanup; /* sampler__new said what failed */
	unsigned n_cpus = sampler__n_cpus(smp);
	cfg.sample_period_ns = sampler__period_ns(smp);
	if (cfg.unwind_dwarf)
		proc_tracker__forget_at_exec_exit(procs, sampler__copy_tgids_fd(smp));
	if (cfg.profile_alloc) {
		struct alloc_probes_opts ao = {
			.sample_bytes = cfg.alloc_sample_bytes,
			.max_tracked = cfg.alloc_max_tracked,
			.rings_map_fd = sampler__rings_map_fd(smp),
			.n_cpus = n_cpus,
			.wakeup_bytes = sampler__wakeup_bytes(smp),
			.pids = cfg.pids,
			.n_pids = cfg.n_pids,
			.all = cfg.alloc_all,
		};
		if (alloc_probes__new(&ao, &aprobes))
			goto cleanup; /* alloc_probes__new said what failed */
	}
	if (cfg.profile_offcpu || cfg.profile_lock) {
		struct wait_probes_opts wo = {
			.offcpu = cfg.profile_offcpu,
			.lock = cfg.profile_lock,
			.kernel_stacks = cfg.kernel_stacks,
			.min_ns = (uint64_t)cfg.offcpu_min_us * 1000,
			.max_rate = cfg.wait_max_rate,
			.inflight = 4096,
			.rings_map_fd = sampler__rings_map_fd(smp),
			.n_cpus = n_cpus,
			.wakeup_bytes = sampler__wakeup_bytes(smp),
			.pids = cfg.pids,
			.n_pids = cfg.n_pids,
		};
		if (wait_probes__new(&wo, &wprobes))
			goto cleanup; /* wait_probes__new said what failed */
	}

	/* Per-sample times only when they are sent; bounded at twice an
	 * interval's worth of samples, beyond which counts stay exact and the
	 * interval is sent as aggregated values. */
	size_t max_times = 0;
	if (otlp.enabled && cfg.otlp_timestamps)
		max_times = (size_t)cfg.frequency * n_cpus * cfg.interval * 2;
	/* The I/O loop (pl-io) writes the files and sends the OTLP requests;
	 * without an endpoint it runs for the files alone. */
	if (files || otlp.enabled) {
		struct otlp_exporter_opts xo = otlp.exporter; /* zeroed without OTLP */
		xo.local_files = files;
		if (!otlp.enabled)
			xo.max_queue_bytes = cfg.export_queue_bytes;
		exporter = otlp_exporter__new(&xo);
		if (!exporter)
			goto cleanup; /* otlp_exporter__new said what is wrong */
	}
	struct flusher_opts fopts = {
		.cfg = &cfg,
		.sym = sym,
		.exporter = exporter,
		.send_otlp = otlp.enabled,
		.otlp = &otlp.encoder,
		.files = files,
		.max_times = max_times,
		.start_real_ns = start_real,
		.alloc_probes = aprobes,
	};
	flusher = flusher__new(&fopts);
	if (!flusher) {
		fprintf(stderr, "pipeline: out of memory\n");
		goto cleanup;
	}

	n_shards = cfg.shards ? cfg.shards : config__auto_shards(n_cpus, cfg.frequency);
	if (n_shards > n_cpus)
		n_shards = n_cpus;
	unsigned cpus[CPU_SAMPLE_MAX_CPUS];
	for (unsigned i = 0; i < n_shards; i++) {
		/* Contiguous CPU ranges per shard keep a shard's rings close together. */
		unsigned lo = i * n_cpus / n_shards, hi = (i + 1) * n_cpus / n_shards;
		for (unsigned c = lo; c < hi; c++)
			cpus[c - lo] = c;
		struct shard_opts so = {
			.id = i,
			.cpus = cpus,
			.n_cpus = hi - lo,
			.queue_depth = cfg.queue_depth,
			.max_stacks = cfg.max_stacks,
			.max_times = max_times,
			.poll_ms = cfg.poll_ms,
			.mono_to_real_ns = start_real - start_mono,
			.alloc_period = cfg.profile_alloc ? cfg.alloc_sample_bytes : 0,
			.stack_copy_bytes = cfg.unwind_dwarf ? cfg.stack_copy_bytes : 0,
			.copy_tgids_fd = cfg.unwind_dwarf ? sampler__copy_tgids_fd(smp) : -1,
			.unwind_rules_fd = cfg.unwind_auto ? sampler__unwind_rules_fd(smp) : -1,
			.auto_switch = cfg.unwind_auto,
			.waits = {cfg.profile_offcpu, cfg.profile_lock},
		};
		shards[i] = shard__start(&so, smp, sym);
		if (!shards[i]) {
			fprintf(stderr, "pipeline: cannot start shard %u: %s\n", i,
				strerror(errno));
			n_shards = i;
			goto cleanup;
		}
	}
	if (!cfg.quiet) {
		if (cfg.profile_cpu)
			fprintf(stderr,
				"pipeline: sampling %u CPUs at %u Hz%s with %u shard%s, %llu KiB "
				"ring per CPU; clock: %s\n",
				n_cpus, cfg.frequency, cfg.n_pids ? " (--pid filter)" : "",
				n_shards, n_shards == 1 ? "" : "s",
				(unsigned long long)(sampler__ring_bytes(smp) / 1024),
				sampler__clock(smp));
		if (aprobes) {
			fprintf(stderr,
				"pipeline: profiling allocations (%s) with %u shard%s; writing "
				"%s/alloc.{pb.gz,folded,svg} and %s/leaks.txt every %u s\n",
				cfg.alloc_sample_bytes > 1 ? "sampled by bytes" : "every one",
				n_shards, n_shards == 1 ? "" : "s", cfg.output, cfg.output,
				cfg.interval);
			alloc_probes__describe(aprobes, stderr, "pipeline:   ");
		}
		if (files && cfg.profile_cpu)
			fprintf(stderr,
				"pipeline: writing %s/cpu%s.{pb.gz,folded,svg} every %u s\n",
				cfg.output, cfg.per_interval ? "-<interval start>" : "",
				cfg.interval);
		if (wprobes && files)
			fprintf(stderr, "pipeline: profiling %s%s%s; writing %s/%s every %u s\n",
				cfg.profile_offcpu ? "time off the CPU" : "",
				cfg.profile_offcpu && cfg.profile_lock ? " and " : "",
				cfg.profile_lock ? "futex waits" : "", cfg.output,
				cfg.profile_offcpu && cfg.profile_lock
					? "{offcpu,lock}.{pb.gz,folded,svg} and lock.txt"
				: cfg.profile_offcpu ? "offcpu.{pb.gz,folded,svg}"
						     : "lock.{pb.gz,folded,svg} and lock.txt",
				cfg.interval);
		if (otlp.enabled)
			fprintf(stderr, "pipeline: sending OTLP profiles to %s every %u s%s\n",
				otlp.url, cfg.interval, otlp.exporter.gzip ? " (gzip)" : "");
	}

	uint64_t end_mono = cfg.duration ? start_mono + cfg.duration * 1000000000ULL : 0;
	uint64_t next_flush = start_mono + cfg.interval * 1000000000ULL;
	struct profile_drops drops;
	bool pids_gone = false;

	for (;;) {
		uint64_t now = clock_ns(CLOCK_MONOTONIC);
		if (end_mono && now >= end_mono)
			break;
		if (now >= next_flush) {
			collect_drops(smp, wprobes, shards, n_shards, &drops);
			sampler__tick_unseen(smp, add_unseen, flusher);
			flusher__flush(flusher, shards, n_shards, &drops, false);
			symbolizer__interval_flushed(sym);
			/* A late flush covers the slots it missed; no back-to-back catch-up. */
			while (next_flush <= clock_ns(CLOCK_MONOTONIC))
				next_flush += cfg.interval * 1000000000ULL;
			continue;
		}
		if (cfg.n_pids && !any_pid_alive(&cfg)) {
			pids_gone = true;
			break;
		}
		/* With --pid, wake at least once a second to notice exited
		 * targets; otherwise only for the next flush or the end. */
		uint64_t wake = next_flush;
		if (end_mono && end_mono < wake)
			wake = end_mono;
		if (cfg.n_pids && wake > now + 1000000000ULL)
			wake = now + 1000000000ULL;
		uint64_t d = wake - now;
		struct timespec ts = {.tv_sec = d / 1000000000ULL, .tv_nsec = d % 1000000000ULL};
		int sig = sigtimedwait(&sigs, NULL, &ts);
		if (sig == SIGINT || sig == SIGTERM || sig == SIGHUP)
			break;
		if (sig == SIGUSR1) {
			collect_drops(smp, wprobes, shards, n_shards, &drops);
			self_stats__print(stderr, &cfg, smp, shards, n_shards, flusher, sym,
					  exporter, clock_ns(CLOCK_MONOTONIC) - start_mono);
			proc_tracker__print(procs, stderr);
		}
	}
	if (pids_gone && !cfg.quiet)
		fprintf(stderr, "pipeline: every --pid process has exited; finishing\n");

	/* Drain in data-path order so the final flush sees every sample. */
	sampler__stop(smp);
	alloc_probes__stop(aprobes);
	wait_probes__stop(wprobes);
	for (unsigned i = 0; i < n_shards; i++)
		shard__stop(shards[i]);
	collect_drops(smp, wprobes, shards, n_shards, &drops);
	struct otlp_exporter_stats io_before = {0}, io_after = {0};
	if (exporter)
		otlp_exporter__stats(exporter, &io_before);
	sampler__tick_unseen(smp, add_unseen, flusher);
	err = flusher__flush(flusher, shards, n_shards, &drops, true);
	/* The final flush's files are written whatever --shutdown-timeout says
	 * (the loop gives them up to 30 s); what the collector has not taken yet
	 * gets --shutdown-timeout more. A file write that failed since the final
	 * flush began (the loop logged it) makes the exit status 1, as one that
	 * failed to queue does. */
	if (exporter) {
		otlp_exporter__shutdown(exporter, cfg.shutdown_timeout * 1000);
		otlp_exporter__stats(exporter, &io_after);
		if (!err && io_after.profile_file_errors > io_before.profile_file_errors)
			err = -EIO;
	}
	uint64_t elapsed = clock_ns(CLOCK_MONOTONIC) - start_mono;
	if (!cfg.quiet) {
		self_stats__print(stderr, &cfg, smp, shards, n_shards, flusher, sym, exporter,
				  elapsed);
		proc_tracker__print(procs, stderr);
		alloc_probes__print_stats(aprobes, stderr);
		wait_probes__print_stats(wprobes, stderr);
	}
	if (cfg.stats_json) {
		int jerr =
			self_stats__write_json(cfg.stats_json, &cfg, smp, shards, n_shards, flusher,
					       sym, procs, exporter, aprobes, wprobes, elapsed);
		if (jerr) {
			fprintf(stderr, "pipeline: cannot write --stats-json %s: %s\n",
				cfg.stats_json, strerror(-jerr));
			err = err ? err : jerr;
		}
	}
	rc = err ? 1 : 0;

cleanup:
	for (unsigned i = 0; i < n_shards; i++)
		shard__free(shards[i]);
	sampler__free(smp);
	flusher__free(flusher);
	alloc_probes__free(aprobes);
	wait_probes__free(wprobes);
	otlp_exporter__free(exporter);
	otlp_setup__deinit(&otlp);
	proc_tracker__free(procs);
	symbolizer__free(sym);
	return rc;
}
