// SPDX-License-Identifier: BSD-2-Clause
/*
 * Flush: shards' retired aggregates -> the interval's aggregate, which goes
 * (1) to the OTLP encoder and the exporter's queue, as one interval, and
 * (2) to the files: with --per-interval as its own set of files, otherwise
 * merged into the run's cumulative aggregate, from which complete files are
 * rewritten, so the last one written is the whole profile.
 * Both aggregates are bounded (max_stacks x 4 stacks); samples that do not
 * fit are counted and exported as dropped. Runs on the main thread only;
 * never waits for the exporter: files and requests are encoded here and
 * handed over (ownership included) to the I/O loop, which writes the files
 * (atomic replace) and sends the requests on its own thread.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "alloc_agg.h"
#include "alloc_report.h"
#include "encoder.h"
#include "exporter.h"
#include "flush.h"
#include "shard.h"
#include "stack_agg.h"
#include "symbolizer.h"
#include "wait_report.h"

#define SWAP_TIMEOUT_MS 2000
/* OTLP batching: at most this many intervals in one batch; a batch goes out
 * early once its aggregate holds half its bound of stacks (so merging more
 * does not start dropping them) or a quarter of --export-queue-bytes (so
 * holding costs little next to the queue, and the batch's request fits it). */
#define OTLP_MAX_HELD 6

struct flusher {
	const struct pipeline_config *cfg;
	struct symbolizer *sym;		     /* borrowed: process metadata for the profile */
	struct otlp_exporter *exporter;	     /* borrowed: the I/O loop (files and OTLP) */
	bool send_otlp;			     /* queue OTLP requests on it */
	const struct otlp_encode_opts *otlp; /* borrowed */
	struct otlp_encoder *otlp_enc;	     /* owned: warm OTLP encodes (send_otlp only) */
	struct stack_agg *otlp_held;	     /* intervals held back for OTLP (send_otlp only) */
	unsigned n_held;		     /* intervals in otlp_held */
	uint64_t held_start_ns;		     /* start of the first of them */
	bool files;			     /* write local files */
	struct stack_agg *interval;	     /* this interval, all shards */
	struct stack_agg *total;	     /* the run, for cumulative files; NULL if unused */
	struct alloc_report *alloc;	     /* allocation profile of the run (profile_alloc) */
	/* Wait signals asked for (offcpu, lock): this interval's stacks, and the
	 * run's for cumulative files (NULL if unused). */
	struct stack_agg *wait_interval[SHARD_WAIT_N], *wait_total[SHARD_WAIT_N];
	uint64_t run_start_ns, interval_start_ns;
	char hostname[256];
	struct flush_stats stats;
};

static uint64_t now_real_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

struct flusher *flusher__new(const struct flusher_opts *opts)
{
	if ((opts->files || opts->send_otlp) && !opts->exporter) {
		errno = EINVAL;
		return NULL;
	}
	struct flusher *f = calloc(1, sizeof(*f));
	if (!f)
		return NULL;
	f->cfg = opts->cfg;
	f->sym = opts->sym;
	f->exporter = opts->exporter;
	f->send_otlp = opts->send_otlp;
	f->otlp = opts->otlp;
	f->files = opts->files;
	f->run_start_ns = f->interval_start_ns = opts->start_real_ns;
	/* Not bounded by shard count alone: the union of all shards' stacks. */
	size_t bound = (size_t)f->cfg->max_stacks * 4;
	f->interval = stack_agg__new(bound);
	if (f->files && !f->cfg->per_interval)
		f->total = stack_agg__new(bound);
	if (!f->interval || (f->files && !f->cfg->per_interval && !f->total)) {
		flusher__free(f);
		return NULL;
	}
	/* The context keeps the interned frames of earlier intervals, so a steady
	 * interval encodes in about half the time of a cold one
	 * (docs/BENCHMARKS.md). It holds the symbolizer's frames by pointer:
	 * callers free the flusher before the symbolizer. */
	if (f->send_otlp &&
	    (!(f->otlp_enc = otlp_encoder__new(NULL)) || !(f->otlp_held = stack_agg__new(bound)))) {
		flusher__free(f);
		return NULL;
	}
	if (f->cfg->profile_alloc &&
	    !(f->alloc = alloc_report__new(f->cfg, opts->alloc_probes, f->sym))) {
		flusher__free(f);
		return NULL;
	}
	for (int w = 0; w < SHARD_WAIT_N; w++) {
		if (!(w == SHARD_WAIT_OFFCPU ? f->cfg->profile_offcpu : f->cfg->profile_lock))
			continue;
		f->wait_interval[w] = stack_agg__new(bound);
		if (f->files && !f->cfg->per_interval)
			f->wait_total[w] = stack_agg__new(bound);
		if (!f->wait_interval[w] ||
		    (f->files && !f->cfg->per_interval && !f->wait_total[w])) {
			flusher__free(f);
			return NULL;
		}
		stack_agg__record_hist(f->wait_interval[w], w == SHARD_WAIT_LOCK);
		if (f->wait_total[w])
			stack_agg__record_hist(f->wait_total[w], w == SHARD_WAIT_LOCK);
	}
	if (opts->max_times)
		stack_agg__record_times(f->interval, opts->max_times);
	if (opts->max_times && f->otlp_held)
		stack_agg__record_times(f->otlp_held, opts->max_times * OTLP_MAX_HELD);
	if (gethostname(f->hostname, sizeof(f->hostname) - 1))
		strcpy(f->hostname, "unknown");
	return f;
}

void flusher__free(struct flusher *f)
{
	if (!f)
		return;
	otlp_encoder__free(f->otlp_enc);
	stack_agg__free(f->otlp_held);
	stack_agg__free(f->interval);
	stack_agg__free(f->total);
	alloc_report__free(f->alloc);
	for (int w = 0; w < SHARD_WAIT_N; w++) {
		stack_agg__free(f->wait_interval[w]);
		stack_agg__free(f->wait_total[w]);
	}
	free(f);
}

typedef int (*encode_fn)(const struct profile *p, struct encoded_buf *out);

static int encode_svg(const struct profile *p, struct encoded_buf *out)
{
	struct flamegraph_opts opts = {.title = "CPU flame graph", .width = 1200};
	return flamegraph__encode_svg(p, &opts, out);
}

static int encode_alloc_svg(const struct profile *p, struct encoded_buf *out)
{
	struct flamegraph_opts opts = {.title = p->default_value == 3
							? "Allocation flame graph: bytes in use"
							: "Allocation flame graph: bytes allocated",
				       .width = 1200};
	return flamegraph__encode_svg(p, &opts, out);
}

static int encode_offcpu_svg(const struct profile *p, struct encoded_buf *out)
{
	struct flamegraph_opts opts = {.title = "Off-CPU flame graph: time off the CPU",
				       .width = 1200};
	return flamegraph__encode_svg(p, &opts, out);
}

static int encode_lock_svg(const struct profile *p, struct encoded_buf *out)
{
	struct flamegraph_opts opts = {
		.title = "Lock contention flame graph: time waiting on futexes", .width = 1200};
	return flamegraph__encode_svg(p, &opts, out);
}

static int encode_wall_svg(const struct profile *p, struct encoded_buf *out)
{
	struct flamegraph_opts opts = {.title = "Wall-clock flame graph: on-CPU and off-CPU time",
				       .width = 1200};
	return flamegraph__encode_svg(p, &opts, out);
}

static int flusher__write_one(struct flusher *f, const struct profile *p, const char *suffix,
			      encode_fn encode)
{
	struct encoded_buf buf = {0};
	char name[64];
	if (f->cfg->per_interval) {
		/* Named by the interval's start, to the millisecond: two intervals
		 * never share a name, even after a late flush. */
		time_t t = (time_t)(p->time_ns / 1000000000ULL);
		unsigned ms = (unsigned)(p->time_ns / 1000000ULL % 1000);
		struct tm tm;
		char stamp[32];
		gmtime_r(&t, &tm);
		strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%S", &tm);
		snprintf(name, sizeof(name), "%s-%s.%03uZ.%s", p->signal, stamp, ms, suffix);
	} else {
		snprintf(name, sizeof(name), "%s.%s", p->signal, suffix);
	}
	int err = encode(p, &buf);
	if (err) {
		fprintf(stderr, "pipeline: cannot encode %s: %s\n", name, strerror(-err));
		return err;
	}
	/* The loop owns buf.data from here, queued or not; it logs and counts
	 * the failures of the write itself. */
	err = otlp_exporter__write_file(f->exporter, f->cfg->output, name, buf.data, buf.len);
	if (err) {
		f->stats.write_errors++;
		if (err == -ENOBUFS)
			fprintf(stderr,
				"pipeline: cannot write %s/%s: the file write queue is full (%s "
				"is slow to take writes); this version is not written\n",
				f->cfg->output, name, f->cfg->output);
		else
			fprintf(stderr, "pipeline: cannot write %s/%s: %s\n", f->cfg->output, name,
				strerror(-err));
	}
	return err;
}

struct tgid_ref {
	uint32_t tgid;
	const char *pcomm; /* process name of one of its stacks */
};

static int cmp_tgid_ref(const void *a, const void *b)
{
	uint32_t x = ((const struct tgid_ref *)a)->tgid, y = ((const struct tgid_ref *)b)->tgid;
	return x < y ? -1 : x > y;
}

/* Builds the sorted list of processes with samples, from what the symbolizer
 * learned of each (kept after a process exits). Returns 0 or -ENOMEM. */
static int flusher__processes(struct flusher *f, const struct profile_stack *stacks,
			      size_t n_stacks, struct profile_process **out, size_t *n_out)
{
	struct tgid_ref *refs = malloc((n_stacks ? n_stacks : 1) * sizeof(*refs));
	struct profile_process *procs = NULL;
	size_t n = 0, k = 0;
	if (!refs)
		return -ENOMEM;
	for (size_t i = 0; i < n_stacks; i++)
		if (stacks[i].tgid)
			refs[n++] = (struct tgid_ref){stacks[i].tgid, stacks[i].pcomm};
	qsort(refs, n, sizeof(*refs), cmp_tgid_ref);
	procs = calloc(n ? n : 1, sizeof(*procs));
	if (!procs) {
		free(refs);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		if (i && refs[i].tgid == refs[i - 1].tgid)
			continue;
		struct sym_process_info info = {0};
		struct profile_process *p = &procs[k++];
		p->tgid = refs[i].tgid;
		if (symbolizer__process_info(f->sym, refs[i].tgid, &info) == 0) {
			p->exe_path = info.exe_path;
			p->container_id = info.container_id;
		}
		const char *slash = p->exe_path ? strrchr(p->exe_path, '/') : NULL;
		p->exe_name = slash ? slash + 1 : p->exe_path ? p->exe_path : refs[i].pcomm;
	}
	free(refs);
	*out = procs;
	*n_out = k;
	return 0;
}

/* A profile of agg over [start_ns, now), with its snapshot and process list,
 * which the caller releases with built_profile__free(). */
struct built_profile {
	struct profile p;
	struct stack_agg_snapshot snap;
	struct profile_process *procs;
};

static void built_profile__free(struct built_profile *b)
{
	free(b->procs);
	stack_agg__snapshot_free(&b->snap);
}

static int flusher__build(struct flusher *f, const struct stack_agg *agg, uint64_t start_ns,
			  const struct profile_drops *drops, struct built_profile *b)
{
	size_t n_procs = 0;
	memset(b, 0, sizeof(*b));
	int err = stack_agg__snapshot(agg, &b->snap);
	if (!err)
		err = flusher__processes(f, b->snap.stacks, b->snap.n_stacks, &b->procs, &n_procs);
	if (err) {
		built_profile__free(b);
		return err;
	}
	b->p = (struct profile){
		.signal = "cpu",
		.hostname = f->hostname,
		.time_ns = start_ns,
		.duration_ns = now_real_ns() - start_ns,
		.frequency_hz =
			f->cfg->sample_period_ns
				? (uint32_t)((1000000000ULL + f->cfg->sample_period_ns / 2) /
					     f->cfg->sample_period_ns)
				: f->cfg->frequency,
		.period_ns = f->cfg->sample_period_ns ? f->cfg->sample_period_ns
						      : 1000000000ULL / f->cfg->frequency,
		.stacks = b->snap.stacks,
		.n_stacks = b->snap.n_stacks,
		.total_samples = stack_agg__total(agg),
		/* Drop counters are the run's so far. */
		.drops = *drops,
		.processes = b->procs,
		.n_processes = n_procs,
		.times_complete = b->snap.times_complete,
	};
	b->p.drops.aggregator_full += f->stats.merge_dropped;
	return 0;
}

/* Writes p as pprof, folded stacks and an SVG flame graph (svg: its
 * encoder, titled for the signal). */
static int flusher__write_files(struct flusher *f, const struct profile *p, encode_fn svg)
{
	const struct {
		const char *name;
		encode_fn encode;
	} outputs[] = {
		{"pb.gz", pprof__encode},
		{"folded", folded__encode},
		{"svg", svg},
	};
	int first_err = 0;
	for (size_t i = 0; i < sizeof(outputs) / sizeof(outputs[0]); i++) {
		int err = flusher__write_one(f, p, outputs[i].name, outputs[i].encode);
		if (err && !first_err)
			first_err = err;
	}
	return first_err;
}

/* Encodes profiles into requests and queues them for the collector; never
 * waits. */
static int flusher__export_list(struct flusher *f, const struct profile *const *list, size_t n_list)
{
	struct encoded_buf *reqs = NULL;
	size_t n = 0;
	int err = otlp_encoder__encode(f->otlp_enc, list, n_list, f->otlp, &reqs, &n);
	if (err) {
		f->stats.export_errors++;
		fprintf(stderr, "pipeline: cannot encode the OTLP request: %s\n", strerror(-err));
		return err;
	}
	for (size_t i = 0; i < n; i++) {
		f->stats.otlp_requests++;
		/* The exporter owns the body from here, queued or dropped. */
		otlp_exporter__submit(f->exporter, reqs[i].data, reqs[i].len);
	}
	free(reqs);
	return 0;
}

/* Encodes the interval and queues it for the collector. */
static int flusher__export(struct flusher *f, const struct profile *p)
{
	const struct profile *one[] = {p};

	return flusher__export_list(f, one, 1);
}

/* Whether the exporter still has requests of earlier intervals: queued,
 * in flight or waiting for a retry. */
static bool flusher__export_backlog(const struct flusher *f)
{
	struct otlp_exporter_stats st;
	otlp_exporter__stats(f->exporter, &st);
	return st.requests_pending > 0;
}

/*
 * OTLP batching. While the collector is slow or down, the exporter still
 * holds requests of earlier intervals; rather than queue one more request
 * per interval behind them, the flusher merges the intervals that pile up
 * into one aggregate and sends them as one profile (its time and duration
 * span them all; per-sample timestamps keep each sample's time) once the
 * exporter has caught up, or after OTLP_MAX_HELD intervals, or when the
 * batch reaches its size limits (above), or at exit. One dictionary and one
 * request instead of several: fewer bytes and fewer requests for a
 * collector that is already behind. With a healthy collector nothing is
 * held: each interval goes out on its own as soon as it ends. Memory: the
 * held aggregate stays under a quarter of --export-queue-bytes (plus one
 * interval merged past it), in addition to the export queue.
 */
static int flusher__export_batched(struct flusher *f, const struct stack_agg *interval,
				   uint64_t interval_start, const struct profile_drops *drops,
				   bool last)
{
	if (stack_agg__size(interval)) {
		if (!f->n_held)
			f->held_start_ns = interval_start;
		int64_t lost = stack_agg__merge(f->otlp_held, interval);
		if (lost < 0)
			return (int)lost;
		f->stats.merge_dropped += (uint64_t)lost;
		f->n_held++;
	}
	if (!f->n_held)
		return 0;
	if (!last && f->n_held < OTLP_MAX_HELD &&
	    stack_agg__size(f->otlp_held) < (size_t)f->cfg->max_stacks * 2 &&
	    stack_agg__bytes(f->otlp_held) < f->cfg->export_queue_bytes / 4 &&
	    flusher__export_backlog(f))
		return 0; /* hold: the exporter is still behind */
	if (f->n_held > 1)
		f->stats.otlp_batched += f->n_held;
	struct built_profile b;
	int err = flusher__build(f, f->otlp_held, f->held_start_ns, drops, &b);
	if (!err) {
		err = flusher__export(f, &b.p);
		if (!f->files)
			f->stats.distinct_stacks = b.p.n_stacks;
		built_profile__free(&b);
	}
	/* Sent or not (an encode error is counted and logged), the batch ends. */
	stack_agg__reset(f->otlp_held);
	f->n_held = 0;
	return err;
}

/*
 * A profile of several columns to the collector: one Profile per column
 * (alloc_objects, alloc_space, inuse_objects, inuse_space; switches and
 * off_cpu; contentions and delay), sharing one dictionary, as OTLP has one
 * sample type per Profile. Period: the profile's (for allocations, the
 * sampling period in bytes).
 */
static int flusher__export_columns(struct flusher *f, const struct profile *p)
{
	size_t n = p->n_stacks ? p->n_stacks : 1;
	struct profile views[4];
	const struct profile *list[4];
	struct profile_stack *stacks = malloc(4 * n * sizeof(*stacks));
	int err;

	if (!stacks)
		return -ENOMEM;
	for (size_t c = 0; c < 4 && c < p->n_value_types; c++) {
		views[c] = *p;
		views[c].signal = p->value_types[c].type;
		views[c].n_value_types = 0;
		views[c].period_ns = (uint64_t)p->period;
		views[c].stacks = stacks + c * n;
		views[c].total_samples = 0;
		for (size_t i = 0; i < p->n_stacks; i++) {
			stacks[c * n + i] = p->stacks[i];
			stacks[c * n + i].count = (uint64_t)p->stacks[i].values[c];
			stacks[c * n + i].n_times = 0;
			views[c].total_samples += stacks[c * n + i].count;
		}
		list[c] = &views[c];
	}
	err = flusher__export_list(f, list, p->n_value_types < 4 ? p->n_value_types : 4);
	free(stacks);
	return err;
}

/* The allocation profile and leak report of the run, rewritten at each
 * flush (in-use memory is cumulative by nature, even with --per-interval),
 * and sent to the collector. */
static int flusher__write_alloc(struct flusher *f, const struct profile_drops *drops)
{
	struct profile_process *procs = NULL;
	struct alloc_built b;
	size_t n_procs = 0;
	int err = alloc_report__build(f->alloc, f->run_start_ns, now_real_ns(), &b), first_err = 0;

	if (!err)
		err = flusher__processes(f, b.stacks, b.p.n_stacks, &procs, &n_procs);
	if (err) {
		alloc_built__free(&b);
		fprintf(stderr, "pipeline: cannot build the allocation profile: %s\n",
			strerror(-err));
		return err;
	}
	b.p.hostname = f->hostname;
	b.p.processes = procs;
	b.p.n_processes = n_procs;
	b.p.drops = *drops;
	b.p.drops.aggregator_full += alloc_report__sites_dropped(f->alloc);
	if (f->send_otlp) {
		err = flusher__export_columns(f, &b.p);
		if (err && !first_err)
			first_err = err;
	}
	if (!f->files) {
		free(procs);
		alloc_built__free(&b);
		return first_err;
	}
	err = flusher__write_files(f, &b.p, encode_alloc_svg);
	if (err && !first_err)
		first_err = err;
	/* The loop owns the text from here. */
	err = otlp_exporter__write_file(f->exporter, f->cfg->output, "leaks.txt", b.leaks,
					b.leaks_len);
	b.leaks = NULL;
	if (err) {
		f->stats.write_errors++;
		fprintf(stderr, "pipeline: cannot write %s/leaks.txt: %s\n", f->cfg->output,
			strerror(-err));
		if (!first_err)
			first_err = err;
	}
	free(procs);
	alloc_built__free(&b);
	return first_err;
}

/* The wait stacks the files of this flush show: the interval's with
 * --per-interval, else the run's. */
static const struct stack_agg *flusher__wait_files_agg(const struct flusher *f, enum shard_wait w)
{
	return f->cfg->per_interval ? f->wait_interval[w] : f->wait_total[w];
}

/* Builds wait signal w's profile of agg with its host, processes and drops.
 * Returns 0 or -errno; *procs is the caller's to free. */
static int flusher__build_wait(struct flusher *f, enum shard_wait w, const struct stack_agg *agg,
			       uint64_t start_ns, const struct profile_drops *drops,
			       struct wait_built *b, struct profile_process **procs)
{
	size_t n_procs = 0;
	int err = wait_report__build(w, agg, start_ns, now_real_ns() - start_ns, b);

	*procs = NULL;
	if (!err)
		err = flusher__processes(f, b->p.stacks, b->p.n_stacks, procs, &n_procs);
	if (err) {
		wait_built__free(b);
		return err;
	}
	b->p.hostname = f->hostname;
	b->p.processes = *procs;
	b->p.n_processes = n_procs;
	b->p.drops = *drops;
	return 0;
}

/* lock.txt of the lock profile p. */
static int flusher__write_lock_text(struct flusher *f, const struct profile *p)
{
	char *text = NULL;
	size_t len = 0;
	int err = wait_report__lock_text(p, &text, &len);

	if (!err)
		/* The loop owns the text from here. */
		err = otlp_exporter__write_file(f->exporter, f->cfg->output, "lock.txt", text, len);
	if (err) {
		f->stats.write_errors++;
		fprintf(stderr, "pipeline: cannot write %s/lock.txt: %s\n", f->cfg->output,
			strerror(-err));
	}
	return err;
}

/* Each wait signal's interval: merged into the run's stacks first, so a
 * failed export loses nothing of it, then sent to the collector, then the
 * files rewritten. Encode and write errors are said by their functions;
 * merge and build (memory) errors here. */
static int flusher__write_waits(struct flusher *f, uint64_t interval_start,
				const struct profile_drops *drops)
{
	int first_err = 0;

	for (int i = 0; i < SHARD_WAIT_N; i++) {
		enum shard_wait w = (enum shard_wait)i;
		const char *what = w == SHARD_WAIT_OFFCPU ? "off-CPU" : "lock";
		struct profile_process *procs;
		struct wait_built b;
		int err = 0;

		if (!f->wait_interval[w])
			continue;
		if (f->wait_total[w]) {
			int64_t lost = stack_agg__merge(f->wait_total[w], f->wait_interval[w]);
			if (lost < 0) {
				err = (int)lost;
				fprintf(stderr, "pipeline: cannot merge the %s stacks: %s\n", what,
					strerror(-err));
			} else {
				f->stats.merge_dropped += (uint64_t)lost;
			}
		}
		if (f->send_otlp && stack_agg__size(f->wait_interval[w])) {
			int e = flusher__build_wait(f, w, f->wait_interval[w], interval_start,
						    drops, &b, &procs);
			if (e) {
				fprintf(stderr, "pipeline: cannot build the %s profile: %s\n", what,
					strerror(-e));
			} else {
				e = flusher__export_columns(f, &b.p);
				free(procs);
				wait_built__free(&b);
			}
			err = err ? err : e;
		}
		const struct stack_agg *agg = flusher__wait_files_agg(f, w);
		if (f->files && agg && stack_agg__size(agg)) {
			uint64_t start = f->cfg->per_interval ? interval_start : f->run_start_ns;
			int e = flusher__build_wait(f, w, agg, start, drops, &b, &procs);
			if (e) {
				fprintf(stderr, "pipeline: cannot build the %s profile: %s\n", what,
					strerror(-e));
			} else {
				e = flusher__write_files(f, &b.p,
							 w == SHARD_WAIT_OFFCPU ? encode_offcpu_svg
										: encode_lock_svg);
				/* lock.txt: of the whole run, so not per interval. */
				if (w == SHARD_WAIT_LOCK && !f->cfg->per_interval) {
					int te = flusher__write_lock_text(f, &b.p);
					e = e ? e : te;
				}
				free(procs);
				wait_built__free(&b);
			}
			err = err ? err : e;
		}
		if (err && !first_err)
			first_err = err;
	}
	return first_err;
}

/* wall.svg: the CPU profile cpu (that of the files just written) and the
 * off-CPU time of the same span in one flame graph. */
static int flusher__write_wall(struct flusher *f, const struct profile *cpu,
			       const struct profile_drops *drops)
{
	const struct stack_agg *agg = flusher__wait_files_agg(f, SHARD_WAIT_OFFCPU);
	struct profile_process *procs;
	struct wait_built off, wall;
	int err;

	if (!agg || !f->cfg->profile_cpu)
		return 0;
	err = flusher__build_wait(f, SHARD_WAIT_OFFCPU, agg, cpu->time_ns, drops, &off, &procs);
	if (err)
		return err;
	err = wait_report__wall(cpu, &off.p, &wall);
	if (!err) {
		err = flusher__write_one(f, &wall.p, "svg", encode_wall_svg);
		wait_built__free(&wall);
	}
	free(procs);
	wait_built__free(&off);
	return err;
}

/* The CPU profile p's files (pprof, folded, SVG) and, with the off-CPU
 * signal, wall.svg. Returns 0 or the first -errno. */
static int flusher__write_cpu_files(struct flusher *f, const struct profile *p,
				    const struct profile_drops *drops)
{
	f->stats.distinct_stacks = p->n_stacks;
	int err = flusher__write_files(f, p, encode_svg);
	int wall = flusher__write_wall(f, p, drops);
	return err ? err : wall;
}

/* The one frame of a thread's CPU time that no sample saw (--clock tick). */
static const char unseen_frame_name[] = "[unsampled: ran between ticks]";

int flusher__add_unseen(struct flusher *f, const struct profile_stack *thread, uint64_t ns)
{
	uint64_t period = f->cfg->sample_period_ns;
	const struct sym_frame *frame = symbolizer__marker(f->sym, unseen_frame_name);

	if (!frame)
		return -ENOMEM;
	if (!period)
		return -EINVAL;
	struct profile_stack key = *thread;
	key.idle = key.off_cpu = false;
	key.n_kernel = 0;
	key.n_user = 1;
	key.frames = &frame;
	/* In samples, as the profile counts: ns over what one sample stands for. */
	uint64_t count = (ns + period / 2) / period, now = now_real_ns();
	if (!count)
		return 0;
	int err = stack_agg__add(f->interval, &key, count, now, now);
	if (err == -ENOSPC) {
		f->stats.merge_dropped += count;
		return 0;
	}
	return err;
}

int flusher__flush(struct flusher *f, struct shard *const *shards, unsigned n_shards,
		   const struct profile_drops *drops, bool last)
{
	int first_err = 0, err;

	for (unsigned i = 0; i < n_shards; i++) {
		struct stack_agg *retired = shard__swap(shards[i], SWAP_TIMEOUT_MS);
		if (!retired) {
			/* Its data stays in the shard and comes with the next flush. */
			f->stats.swap_timeouts++;
			fprintf(stderr,
				"pipeline: shard %u did not hand over its stacks in %d ms\n", i,
				SWAP_TIMEOUT_MS);
			continue;
		}
		int64_t lost = stack_agg__merge(f->interval, retired);
		stack_agg__reset(retired);
		if (lost < 0)
			return (int)lost;
		for (int w = 0; w < SHARD_WAIT_N; w++) {
			struct stack_agg *waits =
				shard__retired_waits(shards[i], (enum shard_wait)w);
			if (!waits || !f->wait_interval[w])
				continue;
			int64_t wlost = stack_agg__merge(f->wait_interval[w], waits);
			stack_agg__reset(waits);
			if (wlost < 0)
				return (int)wlost;
			f->stats.merge_dropped += (uint64_t)wlost;
		}
		struct alloc_agg *allocs = shard__retired_allocs(shards[i]);
		if (f->alloc && allocs) {
			err = alloc_report__merge(f->alloc, allocs);
			alloc_agg__reset(allocs);
			if (err)
				return err;
		}
		f->stats.merge_dropped += (uint64_t)lost;
	}
	f->stats.flushes++;
	f->stats.samples += stack_agg__total(f->interval);
	uint64_t interval_start = f->interval_start_ns;
	f->interval_start_ns = now_real_ns();
	/* The wait signals first: the CPU profile's errors below end the
	 * flush early, and must not take the waits' interval with them. */
	first_err = flusher__write_waits(f, interval_start, drops);

	/* Nothing sampled: nothing to send, and no interval files. */
	bool empty = stack_agg__size(f->interval) == 0;
	/* The common case, a collector keeping up: this interval goes out
	 * alone, from the same build as its interval files. */
	bool otlp_alone =
		f->send_otlp && !empty && !f->n_held && (last || !flusher__export_backlog(f));
	struct built_profile b;
	if (!empty && (otlp_alone || (f->files && f->cfg->per_interval))) {
		err = flusher__build(f, f->interval, interval_start, drops, &b);
		if (err)
			goto out;
		if (otlp_alone) {
			flusher__export(f, &b.p);
			if (!f->files)
				f->stats.distinct_stacks = b.p.n_stacks;
		}
		if (f->files && f->cfg->per_interval) {
			err = flusher__write_cpu_files(f, &b.p, drops);
			if (err && !first_err)
				first_err = err;
		}
		built_profile__free(&b);
	}
	if (f->send_otlp && !otlp_alone) {
		err = flusher__export_batched(f, f->interval, interval_start, drops, last);
		if (err && !first_err)
			first_err = err;
	}
	if ((f->files || f->send_otlp) && f->alloc) {
		err = flusher__write_alloc(f, drops);
		if (err && !first_err)
			first_err = err;
	}
	if (f->files && !f->cfg->per_interval && f->cfg->profile_cpu) {
		int64_t lost = stack_agg__merge(f->total, f->interval);
		if (lost < 0) {
			err = (int)lost;
			goto out;
		}
		f->stats.merge_dropped += (uint64_t)lost;
		err = flusher__build(f, f->total, f->run_start_ns, drops, &b);
		if (err)
			goto out;
		err = flusher__write_cpu_files(f, &b.p, drops);
		if (err && !first_err)
			first_err = err;
		built_profile__free(&b);
	}
	err = first_err;
out:
	stack_agg__reset(f->interval);
	for (int w = 0; w < SHARD_WAIT_N; w++)
		if (f->wait_interval[w])
			stack_agg__reset(f->wait_interval[w]);
	return err;
}

void flusher__stats(const struct flusher *f, struct flush_stats *st)
{
	*st = f->stats;
}

bool flusher__writes_files(const struct flusher *f)
{
	return f->files;
}

bool flusher__sends_otlp(const struct flusher *f)
{
	return f->send_otlp;
}
