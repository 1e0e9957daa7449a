// SPDX-License-Identifier: BSD-2-Clause
/*
 * Self-stats as one JSON object (--stats-json FILE), for benchmarks and
 * tools that should not parse the text report: the same counters, plus the
 * samples taken on each CPU (the overhead suite divides the stolen time of
 * one CPU by the samples taken there). Written atomically through a
 * temporary file at exit.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "exporter.h"
#include "flush.h"
#include "sampler.h"
#include "proc_tracker.h"
#include "self_stats.h"
#include "shard.h"
#include "alloc_probes.h"
#include "wait_probes.h"
#include "symbolizer.h"

static double tv_sec(struct timeval tv)
{
	return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

static void write_json(FILE *f, const struct pipeline_config *cfg, struct sampler *smp,
		       struct shard *const *shards, unsigned n_shards, struct flusher *flusher,
		       struct symbolizer *sym, struct proc_tracker *procs,
		       struct otlp_exporter *exporter, const struct alloc_probes *ap,
		       const struct wait_probes *wp, uint64_t elapsed_ns,
		       const struct cpu_sample_stats *per_cpu)
{
	struct cpu_sample_stats ks = {0};
	struct sampler_bpf_stats bs = {0};
	struct shard_stats tot = {0};
	struct flush_stats fs;
	struct symbolizer_stats ss;
	struct rusage ru;
	unsigned n_cpus = sampler__n_cpus(smp);

	sampler__read_stats(smp, &ks);
	sampler__read_bpf_stats(smp, &bs);
	shard__stats_sum(shards, n_shards, &tot);
	flusher__stats(flusher, &fs);
	symbolizer__stats(sym, &ss);
	getrusage(RUSAGE_SELF, &ru);

	fprintf(f, "{\n  \"elapsed_s\": %.3f,\n  \"cpus\": %u,\n  \"frequency_hz\": %u,\n",
		(double)elapsed_ns / 1e9, n_cpus, cfg->frequency);
	fprintf(f, "  \"clock\": \"%s\",\n  \"sample_period_ns\": %llu,\n", sampler__clock(smp),
		(unsigned long long)cfg->sample_period_ns);
	fprintf(f, "  \"shards\": %u,\n  \"samples_taken\": %llu,\n  \"samples_filtered\": %llu,\n",
		n_shards, (unsigned long long)ks.seen, (unsigned long long)ks.filtered);
	fprintf(f, "  \"samples_received\": %llu,\n  \"samples_aggregated\": %llu,\n",
		(unsigned long long)tot.received, (unsigned long long)tot.processed);
	fprintf(f,
		"  \"dropped\": {\"kernel_ring_full\": %llu, \"kernel_no_ring\": %llu, "
		"\"queue_full\": %llu, \"malformed\": %llu, \"aggregator_full\": %llu, "
		"\"merge\": %llu},\n",
		(unsigned long long)ks.ring_full, (unsigned long long)ks.no_ring,
		(unsigned long long)tot.queue_full, (unsigned long long)tot.malformed,
		(unsigned long long)tot.aggregator_full, (unsigned long long)fs.merge_dropped);
	fprintf(f, "  \"dropped_total\": %llu,\n",
		(unsigned long long)(ks.ring_full + ks.no_ring + tot.queue_full + tot.malformed +
				     tot.aggregator_full + fs.merge_dropped));
	struct tick_unseen_stats tu;
	sampler__tick_unseen_stats(smp, &tu);
	fprintf(f, "  \"tick_unseen\": {\"ns\": %llu, \"threads\": %llu, \"lost_ns\": %llu},\n",
		(unsigned long long)tu.ns, (unsigned long long)tu.threads,
		(unsigned long long)ks.tick_unseen_lost_ns);
	fprintf(f, "  \"truncated_stacks\": %llu,\n  \"stack_errors\": %llu,\n",
		(unsigned long long)tot.truncated, (unsigned long long)tot.stack_errors);
	fprintf(f,
		"  \"unwind\": {\"stacks\": %llu, \"frames\": %llu, \"rule_hits\": %llu, "
		"\"rule_misses\": %llu, "
		"\"fp_steps\": %llu, \"end_window\": %llu, \"end_no_cfi\": %llu, "
		"\"end_bad_regs\": %llu, \"copy_failed\": %llu, \"copy_short\": %llu, "
		"\"copy_bytes\": %llu, "
		"\"cfi_open_errors\": %llu, \"leaf_callers\": %llu, \"auto_rule_walks\": %llu, "
		"\"auto_rules\": %llu, \"rule_walks\": %llu, \"rule_steps\": %llu, "
		"\"auto_switched\": %llu, "
		"\"auto_switch_failed\": %llu, \"unwind_us_mean\": %.3f, \"unwind_us_p99\": "
		"%.3f},\n",
		(unsigned long long)tot.unwind[SYM_UNWIND_STACKS],
		(unsigned long long)tot.unwind[SYM_UNWIND_FRAMES],
		(unsigned long long)tot.unwind[SYM_UNWIND_RULE_HITS],
		(unsigned long long)tot.unwind[SYM_UNWIND_RULE_MISSES],
		(unsigned long long)tot.unwind[SYM_UNWIND_FP_STEPS],
		(unsigned long long)tot.unwind[SYM_UNWIND_END_WINDOW],
		(unsigned long long)tot.unwind[SYM_UNWIND_END_NO_CFI],
		(unsigned long long)tot.unwind[SYM_UNWIND_END_BAD_REGS],
		(unsigned long long)ks.copy_failed, (unsigned long long)ks.copy_short,
		(unsigned long long)ks.copy_bytes,
		(unsigned long long)tot.unwind[SYM_UNWIND_OPEN_ERRORS],
		(unsigned long long)tot.unwind[SYM_UNWIND_LEAF_CALLERS],
		(unsigned long long)tot.unwind_auto.walked,
		(unsigned long long)tot.unwind_auto.rules, (unsigned long long)ks.rule_walks,
		(unsigned long long)ks.rule_steps, (unsigned long long)tot.unwind_auto.copied,
		(unsigned long long)tot.unwind_auto.failed,
		tot.unwind[SYM_UNWIND_STACKS]
			? (double)tot.unwind[SYM_UNWIND_NS] / tot.unwind[SYM_UNWIND_STACKS] / 1e3
			: 0.0,
		shard_stats__unwind_quantile_us(&tot, 0.99));
	fprintf(f, "  \"samples_by_cpu\": [");
	for (unsigned i = 0; per_cpu && i < n_cpus; i++)
		fprintf(f, "%s%llu", i ? ", " : "", (unsigned long long)per_cpu[i].seen);
	fprintf(f, "],\n");
	fprintf(f,
		"  \"agent_cpu_s\": %.6f,\n  \"agent_user_s\": %.6f,\n  \"agent_sys_s\": %.6f,\n",
		tv_sec(ru.ru_utime) + tv_sec(ru.ru_stime), tv_sec(ru.ru_utime),
		tv_sec(ru.ru_stime));
	fprintf(f, "  \"agent_max_rss_kib\": %ld,\n", ru.ru_maxrss);
	fprintf(f, "  \"bpf_stats\": %s,\n  \"bpf_run_time_s\": %.6f,\n  \"bpf_runs\": %llu,\n",
		cfg->bpf_stats ? "true" : "false", (double)bs.run_time_ns / 1e9,
		(unsigned long long)bs.run_cnt);
	fprintf(f, "  \"flushes\": %llu,\n  \"write_errors\": %llu,\n",
		(unsigned long long)fs.flushes, (unsigned long long)fs.write_errors);
	fprintf(f,
		"  \"symbolizer\": {\"lookups\": %llu, \"reader_hits\": %llu, \"shared_hits\": "
		"%llu, "
		"\"lockfree_hits\": %llu, \"misses\": %llu, \"unknown\": %llu, \"processes\": "
		"%llu, "
		"\"modules\": %llu, \"elf_errors\": %llu, "
		"\"cache_bytes\": %llu, \"cache_limit_bytes\": %u, \"images_evicted\": %llu, "
		"\"frames_coarse\": %llu},\n",
		(unsigned long long)ss.lookups, (unsigned long long)ss.reader_hits,
		(unsigned long long)ss.shared_hits, (unsigned long long)ss.lockfree_hits,
		(unsigned long long)ss.misses, (unsigned long long)ss.unknown,
		(unsigned long long)ss.processes, (unsigned long long)ss.modules,
		(unsigned long long)ss.elf_load_errors, (unsigned long long)ss.cache_bytes,
		cfg->symbol_cache_bytes, (unsigned long long)ss.images_evicted,
		(unsigned long long)ss.cache_full);
	struct proc_tracker_stats ps;
	proc_tracker__stats(procs, &ps); /* zeroes with no tracker */
	fprintf(f,
		"  \"process_events\": {\"enabled\": %s, \"execs\": %llu, \"exits\": %llu, "
		"\"dropped\": %llu, \"maps_read_at_exec\": %llu, \"gone_before_read\": %llu, "
		"\"exec_to_read_ms_max\": %.3f}",
		procs ? "true" : "false", (unsigned long long)ps.execs,
		(unsigned long long)ps.exits, (unsigned long long)ps.ring_full,
		(unsigned long long)ps.execs_handled, (unsigned long long)ps.gone,
		(double)ps.exec_lag_ns_max / 1e6);
	struct otlp_exporter_stats es = {0};
	if (exporter)
		otlp_exporter__stats(exporter, &es);
	if (exporter && flusher__writes_files(flusher))
		fprintf(f,
			",\n  \"profile_files\": {\"written\": %llu, \"failed\": %llu, "
			"\"dropped\": %llu, \"superseded\": %llu}",
			(unsigned long long)es.profile_files_written,
			(unsigned long long)es.profile_file_errors,
			(unsigned long long)es.profile_files_dropped,
			(unsigned long long)es.profile_files_superseded);
	if (exporter && flusher__sends_otlp(flusher)) {
		fprintf(f,
			",\n  \"otlp\": {\"encoded\": %llu, \"sent\": %llu, \"retried\": %llu, "
			"\"failed\": %llu, \"dropped\": %llu, \"partial_success\": %llu, "
			"\"bytes_raw\": %llu, \"bytes_sent\": %llu, \"queue_bytes_max\": %llu, "
			"\"intervals_batched\": %llu}",
			(unsigned long long)fs.otlp_requests, (unsigned long long)es.requests_sent,
			(unsigned long long)es.requests_retried,
			(unsigned long long)es.requests_failed,
			(unsigned long long)es.requests_dropped,
			(unsigned long long)es.partial_success, (unsigned long long)es.bytes_raw,
			(unsigned long long)es.bytes_sent, (unsigned long long)es.queue_bytes_max,
			(unsigned long long)fs.otlp_batched);
	}
	alloc_probes__write_json(ap, f);
	wait_probes__write_json(wp, f);
	fprintf(f, "\n}\n");
}

int self_stats__write_json(const char *path, const struct pipeline_config *cfg, struct sampler *smp,
			   struct shard *const *shards, unsigned n_shards, struct flusher *flusher,
			   struct symbolizer *sym, struct proc_tracker *procs,
			   struct otlp_exporter *exporter, const struct alloc_probes *ap,
			   const struct wait_probes *wp, uint64_t elapsed_ns)
{
	char tmp[4096];
	int err = 0;
	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	struct cpu_sample_stats *per_cpu = calloc(sampler__n_cpus(smp), sizeof(*per_cpu));
	if (per_cpu && sampler__read_stats_per_cpu(smp, per_cpu)) {
		free(per_cpu);
		per_cpu = NULL;
	}
	FILE *f = fopen(tmp, "we");
	if (!f) {
		err = -errno;
		goto out;
	}
	write_json(f, cfg, smp, shards, n_shards, flusher, sym, procs, exporter, ap, wp, elapsed_ns,
		   per_cpu);
	if (ferror(f))
		err = -EIO;
	if (fclose(f) && !err)
		err = -errno;
	if (!err && rename(tmp, path))
		err = -errno;
	if (err)
		unlink(tmp);
out:
	free(per_cpu);
	return err;
}
