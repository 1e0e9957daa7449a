// SPDX-License-Identifier: BSD-2-Clause
/*
 * Self-stats report. The agent's cost has two parts that process accounting
 * shows differently: its threads' CPU time (getrusage) and the BPF program's
 * run time, which the kernel charges to whatever task was interrupted. Both
 * are reported, and their sum as a share of one CPU and of wall x CPUs.
 * The timer interrupt that carries each sample is a cost of the host's
 * cpu-clock event, not of this agent; bench/ measures it.
 */
#include <stdio.h>
#include <sys/resource.h>

#include "exporter.h"
#include "flush.h"
#include "sampler.h"
#include "self_stats.h"
#include "shard.h"
#include "symbolizer.h"

static double tv_sec(struct timeval tv)
{
	return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

void self_stats__print(FILE *f, const struct pipeline_config *cfg, struct sampler *smp,
		       struct shard *const *shards, unsigned n_shards, struct flusher *flusher,
		       struct symbolizer *sym, struct otlp_exporter *exporter, uint64_t elapsed_ns)
{
	struct cpu_sample_stats ks = {0};
	struct sampler_bpf_stats bs = {0};
	struct shard_stats tot = {0};
	struct flush_stats fs;
	struct symbolizer_stats ss;
	struct rusage ru;

	sampler__read_stats(smp, &ks);
	sampler__read_bpf_stats(smp, &bs);
	shard__stats_sum(shards, n_shards, &tot);
	flusher__stats(flusher, &fs);
	symbolizer__stats(sym, &ss);
	getrusage(RUSAGE_SELF, &ru);

	double wall = (double)elapsed_ns / 1e9;
	double cpu = tv_sec(ru.ru_utime) + tv_sec(ru.ru_stime);
	double bpf = (double)bs.run_time_ns / 1e9;
	unsigned n_cpus = sampler__n_cpus(smp);
	double one_cpu = wall > 0 ? 100.0 * (cpu + bpf) / wall : 0;

	fprintf(f, "pipeline: self-stats after %.1f s (%u CPUs, %u Hz, %u shard%s)\n", wall, n_cpus,
		cfg->frequency, n_shards, n_shards == 1 ? "" : "s");
	fprintf(f, "  samples taken in kernel    %llu (left out by filters: %llu)\n",
		(unsigned long long)ks.seen, (unsigned long long)ks.filtered);
	if (tot.alloc_records)
		fprintf(f,
			"  records received           %llu (samples %llu, allocation records "
			"%llu)\n",
			(unsigned long long)tot.received,
			(unsigned long long)(tot.processed - tot.alloc_records),
			(unsigned long long)tot.alloc_records);
	else
		fprintf(f, "  samples received           %llu\n", (unsigned long long)tot.received);
	fprintf(f, "  dropped in kernel          %llu (ring full %llu, no ring %llu)\n",
		(unsigned long long)(ks.ring_full + ks.no_ring), (unsigned long long)ks.ring_full,
		(unsigned long long)ks.no_ring);
	fprintf(f, "  dropped in queues          %llu\n", (unsigned long long)tot.queue_full);
	if (tot.malformed)
		fprintf(f, "  dropped as malformed       %llu\n",
			(unsigned long long)tot.malformed);
	fprintf(f, "  dropped in aggregators     %llu (shards %llu, merge %llu)\n",
		(unsigned long long)(tot.aggregator_full + fs.merge_dropped),
		(unsigned long long)tot.aggregator_full, (unsigned long long)fs.merge_dropped);
	fprintf(f, "  samples aggregated         %llu (in profile: %llu)\n",
		(unsigned long long)(tot.processed - tot.alloc_records),
		(unsigned long long)fs.samples);
	if (tot.alloc_records || tot.alloc_sites_full)
		fprintf(f,
			"  allocation records         %llu aggregated, %llu dropped (sites full)\n",
			(unsigned long long)(tot.alloc_records - tot.alloc_sites_full),
			(unsigned long long)tot.alloc_sites_full);
	struct tick_unseen_stats tu;
	sampler__tick_unseen_stats(smp, &tu);
	if (tu.reckonings)
		fprintf(f,
			"  tick: unsampled CPU time   %.3f s of %llu threads (times a thread was "
			"found) ran between the ticks taken: in the profile as "
			"[unsampled: ran between ticks] (--clock cpu-clock samples it); %.3f s "
			"not added (table full)\n",
			(double)tu.ns / 1e9, (unsigned long long)tu.threads,
			(double)ks.tick_unseen_lost_ns / 1e9);
	fprintf(f, "  stacks truncated           %llu\n", (unsigned long long)tot.truncated);
	fprintf(f, "  stack capture errors       %llu (user %llu, kernel %llu)\n",
		(unsigned long long)tot.stack_errors, (unsigned long long)ks.user_failed,
		(unsigned long long)ks.kernel_failed);
	if (tot.unwind[SYM_UNWIND_STACKS] || ks.copy_failed) {
		const uint64_t *u = tot.unwind;
		fprintf(f,
			"  CFI unwinding              %llu stacks (copies; wait records' windows), "
			"%.1f frames each, %.1f us each "
			"(p99 %.1f us), %llu%% of steps from cached rules, %llu by frame pointer "
			"(no CFI); ended early: %llu at the copy's end, %llu no CFI or frame "
			"pointer, %llu bad register state; %llu copies failed, %llu stacks shorter "
			"than the copy; %.0f bytes copied per sample; %llu files without readable "
			"CFI\n",
			(unsigned long long)u[SYM_UNWIND_STACKS],
			u[SYM_UNWIND_STACKS] ? (double)u[SYM_UNWIND_FRAMES] / u[SYM_UNWIND_STACKS]
					     : 0.0,
			u[SYM_UNWIND_STACKS] ? (double)u[SYM_UNWIND_NS] / u[SYM_UNWIND_STACKS] / 1e3
					     : 0.0,
			shard_stats__unwind_quantile_us(&tot, 0.99),
			(unsigned long long)(u[SYM_UNWIND_RULE_HITS] + u[SYM_UNWIND_RULE_MISSES]
						     ? 100 * u[SYM_UNWIND_RULE_HITS] /
							       (u[SYM_UNWIND_RULE_HITS] +
								u[SYM_UNWIND_RULE_MISSES])
						     : 0),
			(unsigned long long)u[SYM_UNWIND_FP_STEPS],
			(unsigned long long)u[SYM_UNWIND_END_WINDOW],
			(unsigned long long)u[SYM_UNWIND_END_NO_CFI],
			(unsigned long long)u[SYM_UNWIND_END_BAD_REGS],
			(unsigned long long)ks.copy_failed, (unsigned long long)ks.copy_short,
			u[SYM_UNWIND_STACKS] ? (double)ks.copy_bytes / u[SYM_UNWIND_STACKS] : 0.0,
			(unsigned long long)u[SYM_UNWIND_OPEN_ERRORS]);
	}
	if (tot.unwind_auto.walked || tot.unwind_auto.copied || tot.unwind_auto.failed)
		fprintf(f,
			"  unwind auto                %llu processes switched to rule walks (their "
			"frame-pointer stacks ended early; %llu stacks walked, %llu steps by "
			"%llu rules learned), %llu of them on to stack copies, %llu map updates "
			"refused (full)\n",
			(unsigned long long)tot.unwind_auto.walked,
			(unsigned long long)ks.rule_walks, (unsigned long long)ks.rule_steps,
			(unsigned long long)tot.unwind_auto.rules,
			(unsigned long long)tot.unwind_auto.copied,
			(unsigned long long)tot.unwind_auto.failed);
	if (tot.unwind[SYM_UNWIND_LEAF_CALLERS])
		fprintf(f, "  leaf callers put back      %llu (frame-pointer stacks)\n",
			(unsigned long long)tot.unwind[SYM_UNWIND_LEAF_CALLERS]);
	fprintf(f, "  distinct stacks            %llu\n", (unsigned long long)fs.distinct_stacks);
	fprintf(f, "  flushes                    %llu (write errors %llu, swap timeouts %llu)\n",
		(unsigned long long)fs.flushes, (unsigned long long)fs.write_errors,
		(unsigned long long)fs.swap_timeouts);
	struct otlp_exporter_stats es = {0};
	if (exporter)
		otlp_exporter__stats(exporter, &es);
	if (exporter && flusher__writes_files(flusher))
		fprintf(f,
			"  profile files              %llu written, %llu failed, %llu dropped "
			"(queue full), %llu superseded; queue %llu bytes now, %llu at most\n",
			(unsigned long long)es.profile_files_written,
			(unsigned long long)es.profile_file_errors,
			(unsigned long long)es.profile_files_dropped,
			(unsigned long long)es.profile_files_superseded,
			(unsigned long long)es.file_queue_bytes,
			(unsigned long long)es.file_queue_bytes_max);
	if (exporter && flusher__sends_otlp(flusher)) {
		fprintf(f,
			"  OTLP requests              %llu encoded, %llu sent, %llu retried, %llu "
			"failed, %llu dropped (queue full), %llu partial success\n",
			(unsigned long long)fs.otlp_requests, (unsigned long long)es.requests_sent,
			(unsigned long long)es.requests_retried,
			(unsigned long long)es.requests_failed,
			(unsigned long long)es.requests_dropped,
			(unsigned long long)es.partial_success);
		fprintf(f,
			"  OTLP bytes                 %llu before compression, %llu sent; queue "
			"%llu now, %llu at most\n",
			(unsigned long long)es.bytes_raw, (unsigned long long)es.bytes_sent,
			(unsigned long long)es.queue_bytes, (unsigned long long)es.queue_bytes_max);
		if (es.files_written || es.file_errors)
			fprintf(f, "  OTLP request files         %llu written, %llu failed\n",
				(unsigned long long)es.files_written,
				(unsigned long long)es.file_errors);
		if (fs.export_errors)
			fprintf(f, "  OTLP intervals not encoded %llu\n",
				(unsigned long long)fs.export_errors);
		if (fs.otlp_batched)
			fprintf(f,
				"  OTLP intervals batched     %llu (held while the collector was "
				"behind, sent together)\n",
				(unsigned long long)fs.otlp_batched);
	}
	fprintf(f, "  worker wake-ups            %llu\n", (unsigned long long)tot.wakeups);
	fprintf(f,
		"  symbolizer                 %llu lookups, %llu reader hits, %llu shared hits "
		"(%llu lock-free), %llu misses, %llu unknown, %llu processes, %llu modules, %llu "
		"ELF errors, "
		"%.1f of %.0f MiB (%llu files' symbols evicted, %llu frames left coarse)\n",
		(unsigned long long)ss.lookups, (unsigned long long)ss.reader_hits,
		(unsigned long long)ss.shared_hits, (unsigned long long)ss.lockfree_hits,
		(unsigned long long)ss.misses, (unsigned long long)ss.unknown,
		(unsigned long long)ss.processes, (unsigned long long)ss.modules,
		(unsigned long long)ss.elf_load_errors, (double)ss.cache_bytes / (1024.0 * 1024.0),
		(double)cfg->symbol_cache_bytes / (1024.0 * 1024.0),
		(unsigned long long)ss.images_evicted, (unsigned long long)ss.cache_full);
	fprintf(f, "  agent CPU time             %.3f s (user %.3f, sys %.3f)\n", cpu,
		tv_sec(ru.ru_utime), tv_sec(ru.ru_stime));
	if (cfg->bpf_stats)
		fprintf(f, "  BPF run time               %.3f s over %llu runs (%.0f ns per run)\n",
			bpf, (unsigned long long)bs.run_cnt,
			bs.run_cnt ? (double)bs.run_time_ns / (double)bs.run_cnt : 0.0);
	else
		fprintf(f, "  BPF run time               not measured (--no-bpf-stats)\n");
	fprintf(f, "  agent + BPF                %.3f %% of one CPU, %.4f %% of wall x %u CPUs\n",
		one_cpu, n_cpus ? one_cpu / n_cpus : 0.0, n_cpus);
}
