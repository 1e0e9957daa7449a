// SPDX-License-Identifier: BSD-2-Clause
/*
 * Stage 5, the shards end to end: records per second through the agent's
 * own BPF ring buffers, its shard readers, SPSC queues, workers (with the
 * symbolizer) and aggregators (pipeline/shard.h, pipeline/sampler.h), with
 * 1, 2 and all shards (one per CPU, the most the agent runs).
 *
 * How records get in: sampler__new() builds the agent's kernel side as the
 * agent does (cpu_sample.bpf.c loaded, one RINGBUF per online CPU in its
 * ARRAY_OF_MAPS, cpu-clock events attached) but at 1 Hz with a pid filter
 * that matches no process, so cpu_sample only counts its runs as filtered.
 * bpf/bench_inject.bpf.c, a socket filter run with BPF_PROG_TEST_RUN and
 * `repeat`, gets the same ring fds in its own ARRAY_OF_MAPS and writes
 * struct cpu_sample records into them in place (reserve, copy a template of
 * 4 kernel + 16 user frames, submit), waking the reader as cpu_sample does:
 * on every record once a ring is a quarter full. The shards are the
 * agent's (shard__start), so their readers drain the rings with libbpf's
 * ring_buffer__poll exactly as in the agent; only their poll period is
 * 20 ms instead of 250, so that stopping them between runs is quick (during
 * a run the watermark wakes them long before either period ends).
 *
 * One injector thread per ring, pinned to that ring's CPU, closed loop: it
 * writes batches of an eighth of the ring and naps (20 us) while the ring
 * holds half of its size or more, which it reads from the ring's mmapped
 * producer and consumer positions. So the rate measured is the most the
 * readers and workers sustain, with every record accounted for: drops in
 * BPF (ring full, no ring), in the reader (queue full for 5 s, malformed),
 * in the worker (aggregator full), and records not accounted for within
 * 6 s; their sum is the `drops` figure, and a line on stderr breaks down any
 * that are not 0. The naps are the back-pressure the readers put on the
 * rings; the reader's own hold-and-retry on a full queue is not counted by
 * shard.h. A timed run injects for an eighth of the time budget (0.25 s;
 * 50 ms with --quick), then waits until the shards have accounted for every
 * record written: the wall time runs from the start of the injection to
 * that moment.
 *
 * Rows, per shard count: records per second (wall), and the CPU time per
 * record of the readers and workers (schedstat of the pl-reader-N and
 * pl-worker-N threads) and of the injectors (their thread CPU time: the
 * test-run syscalls, the BPF program and the wake-ups it sends). Then
 * 1 shard with the older wake-up rule of cpu_sample.bpf.c (a wake-up on
 * every record above the watermark, not only on the one crossing it), and
 * the injector program's own run time per record under both rules, from
 * bpf_stats, switched on only for a short separate run.
 *
 * Templates: 1024 stacks of this process (tgid = ours, 4 thread ids), user
 * frames spread over the text of pipeline-bench and libc (leaf and two
 * callers in libc) and kernel frames from /proc/kallsyms, drawn in a Zipf
 * sequence of 4096. Before each timed run every template goes through once,
 * so the symbolizer and the readers' caches are warm (steady state). Shards
 * are started afresh for each run.
 *
 * Not measured: the perf_event interrupt, bpf_get_stack and the pid filter
 * (../shared/MEASURED.md has those), flushes (swaps, merges, encoding), and
 * per-sample times (--otlp-timestamps; off here, as without OTLP). On a
 * machine with few CPUs the injectors share them with the readers and
 * workers: the wall figure is then the whole path's CPU cost per record,
 * BPF side included, rather than a per-thread limit; the CPU rows split it.
 */
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "self_text.h"
#include "bench.h"
#include "bench_inject.h"
#include "bench_inject.skel.h"
#include "config.h"
#include "sampler.h"
#include "shard.h"
#include "symbolizer.h"
#include "synth.h"
#include "throughput.h"

#define STAGE	      "shards"
#define N_TEMPLATES   1024
#define N_TIDS	      4
#define K_FRAMES      4
#define U_FRAMES      16
#define LIBC_FRAMES   3
#define POOL_PER_FILE 256
#define K_POOL	      256
#define RING_KIB      256	    /* the agent's ring at 99 Hz (--ring-kib 0) */
#define QUEUE_DEPTH   2048	    /* --queue-depth default */
#define MAX_STACKS    65536	    /* --max-stacks default */
#define POLL_MS	      20	    /* --poll-ms is 250: see the top comment */
#define BASE_RECORDS  20000000	    /* per repetition, full run: the time budget ends it first */
#define BATCH_DIV     8		    /* records per test run: an eighth of the ring */
#define WAIT_NS	      20000	    /* injector nap while its ring is half full */
#define DRAIN_MAX_NS  6000000000ull /* after the injectors: > the reader's 5 s hold */
#define POLL_NS	      100000	    /* main thread's completion poll */
#define NOBODY_PID    0xfffffffeu   /* pid filter matching no process */
#define MAX_CONFIGS   3		    /* shard counts: 1, 2, all */

/* A ring's producer and consumer positions, mapped read-only. */
struct ring_pos {
	void *map;
	size_t len;
	const uint64_t *cons, *prod;
};

struct shards_bench {
	const struct tp_cfg *cfg;
	struct symbolizer *sym;
	struct sampler *smp;
	struct bench_inject_bpf *skel;
	int prog_fd;
	unsigned n_cpus;      /* sampler__n_cpus(): possible CPUs */
	unsigned *rings;      /* CPUs with a ring, n_rings of them */
	struct ring_pos *pos; /* per entry of rings */
	unsigned n_rings;
	uint64_t ring_bytes, rec_bytes;
	unsigned batch; /* records per test run */
	bool kernel_frames;
};

/* The injectors' start line: they wait until go is set (1: run until
 * deadline_ns, -1: exit at once). Written under lock by the main thread. */
struct gate {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int go;
	uint64_t deadline_ns;
};

struct injector {
	struct shards_bench *b;
	unsigned idx; /* into b->rings */
	uint64_t target;
	uint32_t flags; /* BENCH_INJECT_IN_ORDER for the warm-up */
	struct gate *gate;
	pthread_t th;
	/* results, read after join */
	uint64_t attempted, written, ring_full, no_ring, waits;
	uint64_t cpu_ns; /* the thread's CPU time: test runs (BPF included) and naps */
	int err;
};

/* Totals of one run of the injectors and the shards behind them. */
struct run_result {
	uint64_t ns, written, bpf_dropped, waits;
	uint64_t reader_cpu_ns, worker_cpu_ns, inject_cpu_ns;
	struct shard_stats d; /* shard counters' deltas */
	uint64_t lost;	      /* written, not processed nor counted as dropped in time */
};

static uint64_t load_u64(const volatile uint64_t *p)
{
	return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

/* Fills exe[] and libc[] with addresses spread over our executable's and
 * libc's text (libc[] = exe[] without a libc). Returns 0 or -errno (-ENOENT:
 * no executable text found). */
static int user_pool(uint64_t *exe, uint64_t *libc, size_t n, bool *have_libc)
{
	struct bench_text_range e, l;
	int err = bench_self_text__find(&e, &l);

	if (err)
		return err;
	bench_self_text__spread(exe, n, &e);
	if (l.lo)
		bench_self_text__spread(libc, n, &l);
	else
		memcpy(libc, exe, n * sizeof(*libc));
	*have_libc = l.lo != 0;
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

/* Fills out[n] with kernel text addresses spread over /proc/kallsyms. Returns
 * true, or false when the file cannot be read or hides its addresses. */
static bool kernel_pool(uint64_t *out, size_t n)
{
	FILE *f = fopen("/proc/kallsyms", "re");
	uint64_t *addrs = NULL;
	size_t k = 0, cap = 0, got = 0;
	char line[512];

	if (!f)
		return false;
	while (fgets(line, sizeof(line), f)) {
		unsigned long long a;
		char type;

		if (sscanf(line, "%llx %c", &a, &type) != 2 || !a || (type != 't' && type != 'T'))
			continue;
		if (k == cap) {
			uint64_t *grown =
				realloc(addrs, (cap = cap ? 2 * cap : 4096) * sizeof(*addrs));

			if (!grown)
				break;
			addrs = grown;
		}
		addrs[k++] = a;
	}
	fclose(f);
	if (k >= 2 * n) {
		qsort(addrs, k, sizeof(*addrs), cmp_u64);
		for (size_t i = 0; i < n; i++)
			for (size_t j = i * (k / n); j < (i + 1) * (k / n) && j + 1 < k; j++)
				if (addrs[j + 1] - addrs[j] > 16) {
					out[got++] = addrs[j] + 8;
					break;
				}
	}
	free(addrs);
	for (size_t i = got; got && i < n; i++)
		out[i] = out[i % got];
	return got > 0;
}

/* The templates and their Zipf draw sequence, into the program's global data. */
static int fill_templates(struct shards_bench *b)
{
	struct bench_inject_bpf__bss *bss = b->skel->bss;
	uint64_t exe[POOL_PER_FILE], libc[POOL_PER_FILE], kpool[K_POOL];
	uint64_t rng = b->cfg->seed ^ 0x72696e67ull;
	uint32_t tgid = (uint32_t)getpid();
	struct synth_zipf z = {0};
	bool have_libc = false;
	int err = user_pool(exe, libc, POOL_PER_FILE, &have_libc);

	if (err)
		return err;
	b->kernel_frames = kernel_pool(kpool, K_POOL);
	for (unsigned t = 0; t < N_TEMPLATES; t++) {
		struct bench_inject_stack *s = &bss->stacks[t];

		memset(s, 0, sizeof(*s));
		s->tgid = tgid;
		s->tid = tgid + t % N_TIDS;
		snprintf(s->comm, sizeof(s->comm), "bench-w%u", t % N_TIDS);
		snprintf(s->pcomm, sizeof(s->pcomm), "pipeline-bench");
		s->kernel_frames = b->kernel_frames ? K_FRAMES : 0;
		s->user_frames = U_FRAMES;
		/* Packed as in the ring: the kernel frames, then the user ones. */
		for (unsigned d = 0; d < s->kernel_frames; d++)
			s->frames[d] = kpool[synth_rand(&rng) % K_POOL];
		for (unsigned d = 0; d < U_FRAMES; d++) {
			uint64_t r = synth_rand(&rng) % POOL_PER_FILE;

			s->frames[s->kernel_frames + d] =
				d < LIBC_FRAMES && have_libc ? libc[r] : exe[r];
		}
	}
	err = synth_zipf__init(&z, N_TEMPLATES);
	if (err)
		return err;
	for (unsigned i = 0; i < BENCH_INJECT_SEQ_LEN; i++)
		bss->seq[i] = (uint32_t)synth_zipf__draw(&z, &rng);
	synth_zipf__deinit(&z);
	b->skel->data->n_stacks = N_TEMPLATES;
	return 0;
}

/* Loads bench_inject over the sampler's rings and maps their positions.
 * Returns 0, or -errno with why set. */
static int inject_setup(struct shards_bench *b, char *why, size_t why_size)
{
	long page = sysconf(_SC_PAGESIZE);
	int template_fd = -1, outer_fd, err;

	b->rings = calloc(b->n_cpus, sizeof(*b->rings));
	b->pos = calloc(b->n_cpus, sizeof(*b->pos));
	if (!b->rings || !b->pos) {
		snprintf(why, why_size, "out of memory");
		return -ENOMEM;
	}
	for (unsigned cpu = 0; cpu < b->n_cpus; cpu++) {
		if (sampler__ring_fd(b->smp, cpu) < 0)
			continue;
		if (template_fd < 0)
			template_fd = sampler__ring_fd(b->smp, cpu);
		b->rings[b->n_rings++] = cpu;
	}
	if (template_fd < 0) {
		snprintf(why, why_size, "the sampler has no ring");
		return -ENODEV;
	}
	b->skel = bench_inject_bpf__open();
	if (!b->skel) {
		err = -errno;
		snprintf(why, why_size, "cannot open bench_inject: %s", strerror(-err));
		return err;
	}
	b->skel->rodata->wakeup_bytes = b->ring_bytes / 4; /* as sampler.c sets it */
	err = bpf_map__set_max_entries(b->skel->maps.rings, b->n_cpus);
	err = err ? err : bpf_map__set_inner_map_fd(b->skel->maps.rings, template_fd);
	err = err ? err : bench_inject_bpf__load(b->skel);
	if (err) {
		snprintf(why, why_size, "cannot load bench_inject: %s", strerror(-err));
		return err;
	}
	b->prog_fd = bpf_program__fd(b->skel->progs.bench_inject);
	outer_fd = bpf_map__fd(b->skel->maps.rings);
	for (unsigned i = 0; i < b->n_rings; i++) {
		unsigned cpu = b->rings[i];
		int fd = sampler__ring_fd(b->smp, cpu);

		if (bpf_map_update_elem(outer_fd, &cpu, &fd, BPF_ANY)) {
			err = -errno;
			snprintf(why, why_size, "cannot add the ring of CPU %u: %s", cpu,
				 strerror(-err));
			return err;
		}
		/* Page 0: consumer position; page 1: producer position. */
		b->pos[i].len = 2 * (size_t)page;
		b->pos[i].map = mmap(NULL, b->pos[i].len, PROT_READ, MAP_SHARED, fd, 0);
		if (b->pos[i].map == MAP_FAILED) {
			err = -errno;
			b->pos[i].map = NULL;
			snprintf(why, why_size, "cannot map the ring of CPU %u: %s", cpu,
				 strerror(-err));
			return err;
		}
		b->pos[i].cons = b->pos[i].map;
		b->pos[i].prod = (const uint64_t *)((const char *)b->pos[i].map + page);
	}
	err = fill_templates(b);
	if (err)
		snprintf(why, why_size, "cannot build the stack templates: %s", strerror(-err));
	return err;
}

static void shards_bench__teardown(struct shards_bench *b)
{
	for (unsigned i = 0; b->pos && i < b->n_rings; i++)
		if (b->pos[i].map)
			munmap(b->pos[i].map, b->pos[i].len);
	bench_inject_bpf__destroy(b->skel);
	sampler__free(b->smp);
	symbolizer__free(b->sym);
	free(b->rings);
	free(b->pos);
}

/* Builds everything outside the timer. Returns 0, or -errno with why set
 * (sampler__new also prints what failed, as it does in the agent). */
static int shards_bench__setup(struct shards_bench *b, char *why, size_t why_size)
{
	struct pipeline_config pc = {
		.frequency = 1,
		.interval = 10,
		.pids = {NOBODY_PID},
		.n_pids = 1,
		.kernel_stacks = true,
		.ring_kib = RING_KIB,
		.queue_depth = QUEUE_DEPTH,
		.max_stacks = MAX_STACKS,
		.poll_ms = POLL_MS,
	};
	struct symbolizer_opts so = {.kernel = true};
	int err;

	b->sym = symbolizer__new(&so);
	if (!b->sym) {
		err = -errno;
		snprintf(why, why_size, "cannot create the symbolizer: %s", strerror(-err));
		return err;
	}
	b->smp = sampler__new(&pc);
	if (!b->smp) {
		err = -errno;
		snprintf(why, why_size, "cannot load the agent's BPF side: %s%s", strerror(-err),
			 geteuid() ? " (run as root)" : "");
		return err;
	}
	b->n_cpus = sampler__n_cpus(b->smp);
	b->ring_bytes = sampler__ring_bytes(b->smp);
	b->rec_bytes = (sizeof(struct bench_inject_rec) + 8 + 7) & ~7ull; /* + BPF ring header */
	b->batch = (unsigned)(b->ring_bytes / b->rec_bytes / BATCH_DIV);
	if (!b->batch)
		b->batch = 1;
	return inject_setup(b, why, why_size);
}

static uint64_t thread_cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Sums the CPU time (schedstat, ns) of this process's threads named
 * pl-reader-N and pl-worker-N: the shards' own threads. */
static void shard_threads_cpu(uint64_t *reader_ns, uint64_t *worker_ns)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;

	*reader_ns = *worker_ns = 0;
	if (!d)
		return;
	while ((e = readdir(d))) {
		char path[64], comm[32] = "";
		unsigned long long ns = 0;
		FILE *f;

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/self/task/%.16s/comm", e->d_name);
		f = fopen(path, "re");
		if (!f)
			continue;
		if (!fgets(comm, sizeof(comm), f))
			comm[0] = 0;
		fclose(f);
		bool reader = !strncmp(comm, "pl-reader-", 10),
		     worker = !strncmp(comm, "pl-worker-", 10);
		if (!reader && !worker)
			continue;
		snprintf(path, sizeof(path), "/proc/self/task/%.16s/schedstat", e->d_name);
		f = fopen(path, "re");
		if (!f)
			continue;
		if (fscanf(f, "%llu", &ns) != 1)
			ns = 0;
		fclose(f);
		*(reader ? reader_ns : worker_ns) += ns;
	}
	closedir(d);
}

static void *injector_main(void *arg)
{
	struct injector *in = arg;
	struct shards_bench *b = in->b;
	unsigned cpu = b->rings[in->idx];
	const struct ring_pos *pos = &b->pos[in->idx];
	volatile struct bench_inject_ring_stats *st = &b->skel->bss->ring_stats[cpu];
	char pkt[64] = {0}; /* not looked at; a test run needs an Ethernet header's worth */
	struct __sk_buff ctx = {0};
	LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = pkt, .data_size_in = sizeof(pkt),
		    .ctx_in = &ctx, .ctx_size_in = sizeof(ctx));
	struct timespec nap = {.tv_nsec = WAIT_NS};
	uint64_t limit = b->ring_bytes / 2, next0, written0, full0, none0, deadline;
	cpu_set_t set;
	int go;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	pthread_setaffinity_np(pthread_self(), sizeof(set), &set); /* best effort */
	prctl(PR_SET_TIMERSLACK, 1000UL, 0, 0, 0);		   /* naps of 20 us, not 70 */
	pthread_mutex_lock(&in->gate->lock);
	while (!in->gate->go)
		pthread_cond_wait(&in->gate->cond, &in->gate->lock);
	go = in->gate->go;
	deadline = in->gate->deadline_ns;
	pthread_mutex_unlock(&in->gate->lock);
	if (go < 0)
		return NULL;
	ctx.cb[BENCH_INJECT_CB_RING] = cpu;
	ctx.cb[BENCH_INJECT_CB_FLAGS] = in->flags;
	in->cpu_ns = thread_cpu_ns();
	next0 = st->next;
	written0 = st->written;
	full0 = st->ring_full;
	none0 = st->no_ring;
	while (in->attempted < in->target) {
		uint64_t used = load_u64(pos->prod) - load_u64(pos->cons), n;

		if (bench_now_ns() > deadline)
			break;
		if (used + (uint64_t)b->batch * b->rec_bytes > limit) {
			in->waits++;
			nanosleep(&nap, NULL);
			continue;
		}
		n = in->target - in->attempted < b->batch ? in->target - in->attempted : b->batch;
		opts.repeat = (int)n;
		if (bpf_prog_test_run_opts(b->prog_fd, &opts)) {
			in->err = -errno;
			break;
		}
		in->attempted = st->next - next0;
	}
	/* One last record that wakes the reader whatever the ring holds. */
	ctx.cb[BENCH_INJECT_CB_FLAGS] |= BENCH_INJECT_FORCE_WAKEUP;
	opts.repeat = 1;
	if (!in->err && bpf_prog_test_run_opts(b->prog_fd, &opts))
		in->err = -errno;
	in->attempted = st->next - next0;
	in->written = st->written - written0;
	in->ring_full = st->ring_full - full0;
	in->no_ring = st->no_ring - none0;
	in->cpu_ns = thread_cpu_ns() - in->cpu_ns;
	return NULL;
}

static uint64_t accounted(const struct shard_stats *s)
{
	return s->processed + s->queue_full + s->malformed;
}

/*
 * Runs one injector per ring (target records each, until deadline_ns), then
 * waits until the shards have accounted for every record written (processed
 * or dropped), at most DRAIN_MAX_NS. Returns 0 or -errno.
 */
static int inject_run(struct shards_bench *b, struct shard *const *shards, unsigned n_shards,
		      uint64_t target, uint64_t budget_ns, uint32_t flags, struct run_result *out)
{
	struct injector *inj = calloc(b->n_rings, sizeof(*inj));
	struct gate gate = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0};
	struct shard_stats s0, s1;
	unsigned started = 0;
	uint64_t t0 = 0, until, r0, w0;
	int err = 0;

	if (!inj)
		return -ENOMEM;
	memset(out, 0, sizeof(*out));
	shard__stats_sum(shards, n_shards, &s0);
	shard_threads_cpu(&r0, &w0);
	for (; started < b->n_rings; started++) {
		inj[started] = (struct injector){
			.b = b,
			.idx = started,
			.target = target / b->n_rings + (started < target % b->n_rings),
			.flags = flags,
			.gate = &gate,
		};
		err = -pthread_create(&inj[started].th, NULL, injector_main, &inj[started]);
		if (err) {
			fprintf(stderr, "pipeline-bench: " STAGE ": cannot start an injector: %s\n",
				strerror(-err));
			break;
		}
	}
	pthread_mutex_lock(&gate.lock);
	t0 = bench_now_ns();
	gate.go = err ? -1 : 1;
	gate.deadline_ns = t0 + budget_ns;
	pthread_cond_broadcast(&gate.cond);
	pthread_mutex_unlock(&gate.lock);
	for (unsigned i = 0; i < started; i++)
		pthread_join(inj[i].th, NULL);
	pthread_cond_destroy(&gate.cond);
	pthread_mutex_destroy(&gate.lock);
	if (err)
		goto cleanup;
	for (unsigned i = 0; i < b->n_rings; i++) {
		out->written += inj[i].written;
		out->bpf_dropped += inj[i].ring_full + inj[i].no_ring;
		out->waits += inj[i].waits;
		out->inject_cpu_ns += inj[i].cpu_ns;
		if (inj[i].err && !err) {
			err = inj[i].err;
			fprintf(stderr, "pipeline-bench: " STAGE ": BPF_PROG_TEST_RUN: %s\n",
				strerror(-err));
		}
	}
	until = bench_now_ns() + DRAIN_MAX_NS;
	for (;;) {
		struct timespec nap = {.tv_nsec = POLL_NS};

		shard__stats_sum(shards, n_shards, &s1);
		if (accounted(&s1) - accounted(&s0) >= out->written || bench_now_ns() > until)
			break;
		nanosleep(&nap, NULL);
	}
	out->ns = bench_now_ns() - t0;
	shard_threads_cpu(&out->reader_cpu_ns, &out->worker_cpu_ns);
	out->reader_cpu_ns -= r0;
	out->worker_cpu_ns -= w0;
	out->d = (struct shard_stats){
		.received = s1.received - s0.received,
		.queue_full = s1.queue_full - s0.queue_full,
		.malformed = s1.malformed - s0.malformed,
		.processed = s1.processed - s0.processed,
		.aggregator_full = s1.aggregator_full - s0.aggregator_full,
		.resolve_errors = s1.resolve_errors - s0.resolve_errors,
		.wakeups = s1.wakeups - s0.wakeups,
	};
	if (out->written > accounted(&out->d))
		out->lost = out->written - accounted(&out->d);
cleanup:
	free(inj);
	return err;
}

/* Starts n shards over contiguous CPU ranges, as pipeline/main.c splits them.
 * Returns 0 or -errno; the shards started are in shards[] either way. */
static int shards_start(struct shards_bench *b, unsigned n, struct shard **shards)
{
	unsigned cpus[CPU_SAMPLE_MAX_CPUS];

	for (unsigned i = 0; i < n; i++) {
		unsigned lo = i * b->n_cpus / n, hi = (i + 1) * b->n_cpus / n;
		struct shard_opts so = {
			.id = i,
			.cpus = cpus,
			.n_cpus = hi - lo,
			.queue_depth = QUEUE_DEPTH,
			.max_stacks = MAX_STACKS,
			.poll_ms = POLL_MS,
			.copy_tgids_fd = -1,
			.unwind_rules_fd = -1,
		};

		for (unsigned c = lo; c < hi; c++)
			cpus[c - lo] = c;
		shards[i] = shard__start(&so, b->smp, b->sym);
		if (!shards[i]) {
			int err = -errno;

			fprintf(stderr, "pipeline-bench: " STAGE ": cannot start shard %u: %s\n", i,
				strerror(-err));
			return err;
		}
	}
	return 0;
}

static void report_drops(unsigned n_shards, const struct run_result *r)
{
	fprintf(stderr,
		"pipeline-bench: " STAGE ": %u shard%s: records dropped: %llu in BPF (ring full "
		"or no ring), %llu queue full, %llu malformed, %llu aggregator full, %llu "
		"unaccounted after 6 s\n",
		n_shards, n_shards == 1 ? "" : "s", (unsigned long long)r->bpf_dropped,
		(unsigned long long)r->d.queue_full, (unsigned long long)r->d.malformed,
		(unsigned long long)r->d.aggregator_full, (unsigned long long)r->lost);
}

struct config {
	unsigned n_shards;
	uint32_t flags; /* BENCH_INJECT_WAKE_ABOVE_MARK or 0 */
	struct bench_row *row, *cpu_row;
};

/* One repetition of a configuration: fresh shards, warm-up, timed run. */
static int bench_config(struct shards_bench *b, const struct config *c)
{
	struct shard **shards = calloc(c->n_shards, sizeof(*shards));
	struct run_result warm, r;
	double secs, recs;
	uint64_t drops;
	int err;

	if (!shards)
		return -ENOMEM;
	err = shards_start(b, c->n_shards, shards);
	if (err)
		goto cleanup;
	err = inject_run(b, shards, c->n_shards, (uint64_t)N_TEMPLATES * b->n_rings, 5000000000ull,
			 BENCH_INJECT_IN_ORDER | c->flags, &warm);
	if (err)
		goto cleanup;
	err = inject_run(b, shards, c->n_shards, tp_ops(b->cfg, BASE_RECORDS),
			 b->cfg->budget_ns / 8, c->flags, &r);
	if (err)
		goto cleanup;
	drops = r.bpf_dropped + r.d.queue_full + r.d.malformed + r.d.aggregator_full + r.lost;
	if (drops || warm.lost)
		report_drops(c->n_shards, drops ? &r : &warm);
	secs = (double)r.ns / 1e9;
	recs = r.d.processed ? (double)r.d.processed : 1;
	bench_row__rep(c->row, r.d.processed, r.ns);
	bench_row__extra(c->row, "per_shard_rec_s", recs / secs / c->n_shards);
	bench_row__extra(c->row, "drops", (double)drops);
	bench_row__extra(c->row, "ring_waits_per_1k",
			 r.written ? 1000.0 * (double)r.waits / (double)r.written : 0);
	bench_row__extra(c->row, "sleeps_per_1k", 1000.0 * (double)r.d.wakeups / recs);
	if (c->cpu_row) {
		bench_row__rep(c->cpu_row, r.d.processed, r.reader_cpu_ns + r.worker_cpu_ns);
		bench_row__extra(c->cpu_row, "reader_ns", (double)r.reader_cpu_ns / recs);
		bench_row__extra(c->cpu_row, "worker_ns", (double)r.worker_cpu_ns / recs);
		bench_row__extra(c->cpu_row, "inject_ns", (double)r.inject_cpu_ns / recs);
		bench_row__extra(c->cpu_row, "busy_cpus",
				 (double)(r.reader_cpu_ns + r.worker_cpu_ns + r.inject_cpu_ns) /
					 (double)r.ns);
	}
cleanup:
	for (unsigned i = 0; i < c->n_shards; i++)
		shard__free(shards[i]);
	free(shards);
	return err;
}

/* The injector program's own run time per record, from bpf_stats: on only
 * for this short 1-shard run, since it adds two clock reads to every run of
 * every BPF program. Returns 0 or -errno. */
static int bench_bpf_cost(struct shards_bench *b, uint32_t flags, struct bench_row *row)
{
	struct bpf_prog_info i0 = {0}, i1 = {0};
	uint32_t len = sizeof(i0);
	struct shard *sh = NULL;
	struct run_result r;
	int stats_fd = bpf_enable_stats(BPF_STATS_RUN_TIME), err;

	if (stats_fd < 0) {
		err = -errno;
		fprintf(stderr, "pipeline-bench: " STAGE ": bpf_enable_stats: %s\n",
			strerror(-err));
		return err;
	}
	err = shards_start(b, 1, &sh);
	if (!err && bpf_obj_get_info_by_fd(b->prog_fd, &i0, &len))
		err = -errno;
	if (!err)
		err = inject_run(b, &sh, 1, tp_ops(b->cfg, BASE_RECORDS), b->cfg->budget_ns / 16,
				 flags, &r);
	len = sizeof(i1);
	if (!err && bpf_obj_get_info_by_fd(b->prog_fd, &i1, &len))
		err = -errno;
	if (!err)
		bench_row__rep(row, i1.run_cnt - i0.run_cnt, i1.run_time_ns - i0.run_time_ns);
	shard__free(sh);
	close(stats_fd);
	return err;
}

/* Adds the stage's rows as skipped. Returns 0 or -errno. */
static int skip_rows(struct bench_report *rep, const char *why)
{
	int err = bench_report__skip(rep, STAGE, "ring->aggregator, 1 shard", why);

	err = err ? err : bench_report__skip(rep, STAGE, "ring->aggregator, all shards", why);
	return err;
}

/* Adds the rows of n shards (with wake_flags) to rep. Returns 0 or -errno. */
static int config_rows(struct shards_bench *b, struct bench_report *rep, struct config *c)
{
	char name[96], shards[32]; /* the report cuts names at 63 characters */

	snprintf(shards, sizeof(shards), "%u shard%s%s", c->n_shards, c->n_shards == 1 ? "" : "s",
		 c->n_shards == b->n_cpus && c->n_shards > 1 ? " (all)" : "");
	snprintf(name, sizeof(name), "ring->aggregator, %s%s", shards,
		 c->flags & BENCH_INJECT_WAKE_ABOVE_MARK ? ", old wake rule" : "");
	c->row = bench_report__row(rep, STAGE, name);
	if (!c->row)
		return -errno;
	bench_row__note(c->row, "wall per record, %u rings of %llu KiB, %u+%u frames", b->n_rings,
			(unsigned long long)(b->ring_bytes >> 10), b->kernel_frames ? K_FRAMES : 0,
			U_FRAMES);
	if (c->flags)
		return 0;
	snprintf(name, sizeof(name), "reader+worker CPU, %s", shards);
	c->cpu_row = bench_report__row(rep, STAGE, name);
	if (!c->cpu_row)
		return -errno;
	bench_row__note(c->cpu_row, "CPU time of the shards' threads per record");
	return 0;
}

int tp_shards__run(const struct tp_cfg *cfg, struct bench_report *rep)
{
	struct shards_bench *b = calloc(1, sizeof(*b));
	struct config configs[MAX_CONFIGS + 1] = {{0}};
	struct bench_row *bpf_rows[2] = {0};
	unsigned n_configs = 0;
	const char *ci = getenv("CI");
	char why[160] = "";
	int err;

	if (!b)
		return -ENOMEM;
	b->cfg = cfg;
	err = shards_bench__setup(b, why, sizeof(why));
	if (err) {
		/* Under CI the BPF path must run: a setup failure fails the stage. */
		if (ci && !strcmp(ci, "true")) {
			fprintf(stderr, "pipeline-bench: " STAGE ": %s\n", why);
		} else {
			fprintf(stderr, "pipeline-bench: " STAGE ": skipped: %s\n", why);
			err = skip_rows(rep, why);
		}
		goto cleanup;
	}
	/* 1, 2 and all shards (one per CPU), without repeats; then 1 shard with
	 * the wake-up rule changed, to show what the rule costs. */
	configs[n_configs++].n_shards = 1;
	if (b->n_cpus >= 2)
		configs[n_configs++].n_shards = 2;
	if (b->n_cpus > 2)
		configs[n_configs++].n_shards = b->n_cpus;
	configs[n_configs++] = (struct config){1, BENCH_INJECT_WAKE_ABOVE_MARK};
	for (unsigned i = 0; i < n_configs && !err; i++)
		err = config_rows(b, rep, &configs[i]);
	for (unsigned i = 0; i < 2 && !err; i++) {
		bpf_rows[i] = bench_report__row(rep, STAGE,
						i ? "bench_inject BPF write, old wake rule"
						  : "bench_inject BPF write");
		if (!bpf_rows[i])
			err = -errno;
		else
			bench_row__note(bpf_rows[i],
					"BPF run time per record (bpf_stats), 1 shard");
	}
	for (unsigned k = 0; k < cfg->repeat && !err; k++) {
		for (unsigned i = 0; i < n_configs && !err; i++)
			err = bench_config(b, &configs[i]);
		err = err ? err : bench_bpf_cost(b, 0, bpf_rows[0]);
		err = err ? err : bench_bpf_cost(b, BENCH_INJECT_WAKE_ABOVE_MARK, bpf_rows[1]);
	}
cleanup:
	shards_bench__teardown(b);
	free(b);
	return err;
}
