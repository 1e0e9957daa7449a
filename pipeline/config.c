// SPDX-License-Identifier: BSD-2-Clause
/*
 * Option table and parser. The table is the single description of every
 * flag: getopt_long's long options, --help and range checks all come from
 * it, so a new flag is one row here plus its field in struct pipeline_config.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

enum opt_kind {
	OPT_UINT,   /* unsigned field, range-checked */
	OPT_SHARDS, /* "auto" or 1..max */
	OPT_STRING, /* const char * field */
	OPT_PID,    /* repeatable pid */
	OPT_HEADER, /* repeatable KEY=VALUE */
	OPT_TRUE,   /* sets a bool field to true */
	OPT_FALSE,  /* sets a bool field to false */
	OPT_HELP,
	OPT_VERSION,
};

struct opt_desc {
	const char *name;
	enum opt_kind kind;
	size_t offset; /* into struct pipeline_config */
	unsigned long min, max;
	const char *arg;  /* argument name for --help, NULL if none */
	const char *help; /* default shown after it */
};

#define CFG(field) offsetof(struct pipeline_config, field)

static const struct opt_desc opt_table[] = {
	{"shards", OPT_SHARDS, CFG(shards), 1, 256, "auto|N",
	 "worker shards (default auto: one shard per 20000 expected samples/s "
	 "(frequency x CPUs), at least 1, at most CPUs/2 (min 1); each shard is one "
	 "ring reader and one worker thread)"},
	{"frequency", OPT_UINT, CFG(frequency), 1, 10000, "HZ",
	 "samples per second on each CPU, 1-10000 (default 99)"},
	{"clock", OPT_STRING, CFG(clock), 0, 0, "cpu-clock|tick|auto",
	 "what paces the CPU samples: cpu-clock (a software perf event per CPU: its own "
	 "timer interrupt), tick (every Nth scheduler tick, N the closest HZ/N to "
	 "--frequency, no interrupt of its own; HZ is measured from the kernel), auto (tick "
	 "where the kernel's tick can serve --frequency, else cpu-clock) (default "
	 "cpu-clock)"},
	{"duration", OPT_UINT, CFG(duration), 0, 31536000, "SEC",
	 "stop after SEC seconds; 0 runs until SIGINT/SIGTERM (default 0)"},
	{"interval", OPT_UINT, CFG(interval), 1, 3600, "SEC",
	 "flush period: output files are rewritten every SEC seconds (default 10)"},
	{"output", OPT_STRING, CFG(output), 0, 0, "DIR",
	 "directory for cpu.pb.gz, cpu.folded and cpu.svg (default ./profile)"},
	{"pid", OPT_PID, 0, 1, 4194304, "PID",
	 "sample only this process (repeatable; filtered in the kernel)"},
	{"kernel-stacks", OPT_TRUE, CFG(kernel_stacks), 0, 0, NULL,
	 "capture kernel stacks (default)"},
	{"no-kernel-stacks", OPT_FALSE, CFG(kernel_stacks), 0, 0, NULL, "capture user stacks only"},
	{"unwind", OPT_STRING, CFG(unwind), 0, 0, "fp|dwarf|auto",
	 "how user stacks are walked: fp follows frame pointers in the kernel and puts "
	 "back the caller of a function sampled without a frame (stacks through code "
	 "built without frame pointers end early); dwarf copies the top of each sampled "
	 "thread's stack and unwinds it in the agent with the binaries' .eh_frame CFI "
	 "(complete stacks, about twice the cost per sample); auto walks frame pointers, "
	 "and a process whose stacks end short of a thread's start is walked in the "
	 "kernel with the CFI rules of the code where its walks broke, or, when that is "
	 "not enough, with copies (docs/UNWINDING.md) (default auto)"},
	{"stack-copy-bytes", OPT_UINT, CFG(stack_copy_bytes), 512, 65536, "N",
	 "dwarf: bytes of user stack copied per sample, from the stack pointer up; frames "
	 "above them are cut off and counted (default 16384)"},
	{"no-process-events", OPT_FALSE, CFG(track_processes), 0, 0, NULL,
	 "do not trace exec and exit (without --pid, they let processes that live a few ms "
	 "be named)"},
	{"idle", OPT_TRUE, CFG(idle), 0, 0, NULL,
	 "include samples of the idle task, shown as [idle]"},
	{"no-bpf-stats", OPT_FALSE, CFG(bpf_stats), 0, 0, NULL,
	 "do not measure BPF run time (it adds a little to every program run)"},
	{"ring-kib", OPT_UINT, CFG(ring_kib), 0, 262144, "KIB",
	 "per-CPU BPF ring size in KiB, rounded up to a power of two; 0 sizes it to "
	 "hold one second of samples (default 0)"},
	{"queue-depth", OPT_UINT, CFG(queue_depth), 16, 1048576, "N",
	 "records each shard queue holds, rounded up to a power of two (default 2048; "
	 "512 with --unwind dwarf, whose records carry the stack copy)"},
	{"max-stacks", OPT_UINT, CFG(max_stacks), 16, 16777216, "N",
	 "distinct stacks each shard keeps per interval; more are dropped and "
	 "counted (default 65536)"},
	{"symbol-cache-bytes", OPT_UINT, CFG(symbol_cache_bytes), 1048576, 4294967295UL, "N",
	 "bound on the symbol cache shared by all shards (frames, symbol tables, DWARF "
	 "indexes, process mappings); past it the least recently used files' symbols "
	 "are dropped and loaded again when needed (default 268435456)"},
	{"poll-ms", OPT_UINT, CFG(poll_ms), 1, 10000, "MS",
	 "ring reader poll period; rings also wake it when a quarter full (default "
	 "1000 while exec and exit are traced, which keep a process's maps until its "
	 "samples are flushed; 250 without them, so a process that exits is read "
	 "while it lives)"},
	{"per-interval", OPT_TRUE, CFG(per_interval), 0, 0, NULL,
	 "write each interval to its own files, cpu-YYYYMMDDTHHMMSS.mmmZ.{pb.gz,folded,svg} "
	 "named by the interval's start, and keep nothing older in memory (for "
	 "continuous runs); default: cpu.* rewritten at every flush with the whole run"},
	{"otlp-endpoint", OPT_STRING, CFG(otlp_endpoint), 0, 0, "URL",
	 "send profiles as OTLP/HTTP to this collector (http://HOST:4318 or https://...; "
	 "/v1development/profiles is appended when the URL has no path); default "
	 "$OTEL_EXPORTER_OTLP_PROFILES_ENDPOINT (used as is) or $OTEL_EXPORTER_OTLP_ENDPOINT. "
	 "With an endpoint, local files are written only if --output is given"},
	{"otlp-header", OPT_HEADER, 0, 0, 0, "K=V",
	 "extra HTTP header on every request (repeatable); added to "
	 "$OTEL_EXPORTER_OTLP_HEADERS"},
	{"otlp-compression", OPT_STRING, CFG(otlp_compression), 0, 0, "gzip|none",
	 "request body compression (default $OTEL_EXPORTER_OTLP_COMPRESSION, else gzip)"},
	{"otlp-timeout-ms", OPT_UINT, CFG(otlp_timeout_ms), 1, 600000, "MS",
	 "per-request timeout (default $OTEL_EXPORTER_OTLP_TIMEOUT, else 10000)"},
	{"otlp-ca", OPT_STRING, CFG(otlp_ca), 0, 0, "FILE",
	 "https: also trust the CA certificates in FILE (default: the system store)"},
	{"otlp-insecure-skip-verify", OPT_TRUE, CFG(otlp_insecure), 0, 0, NULL,
	 "https: do not verify the collector's certificate"},
	{"otlp-timestamps", OPT_TRUE, CFG(otlp_timestamps), 0, 0, NULL,
	 "send a timestamp per sample (default)"},
	{"no-otlp-timestamps", OPT_FALSE, CFG(otlp_timestamps), 0, 0, NULL,
	 "send aggregated counts per stack instead of per-sample timestamps"},
	{"otlp-file", OPT_TRUE, CFG(otlp_file), 0, 0, NULL,
	 "also write each request to DIR/otlp/NNNNNN.binpb (needs --output)"},
	{"otlp-max-request-bytes", OPT_UINT, CFG(otlp_max_request_bytes), 65536, 67108864, "N",
	 "split an interval into several requests, by process, above N bytes before "
	 "compression (default 4194304, at most 64 MiB)"},
	{"export-queue-bytes", OPT_UINT, CFG(export_queue_bytes), 65536, 4294967295UL, "N",
	 "bound on requests waiting for the collector; when full the oldest is dropped and "
	 "counted (default 67108864)"},
	{"shutdown-timeout", OPT_UINT, CFG(shutdown_timeout), 0, 3600, "SEC",
	 "at exit, keep sending what is queued for at most SEC seconds (default 5)"},
	{"profiles", OPT_STRING, CFG(profiles_arg), 0, 0, "LIST",
	 "comma-separated signals: cpu (on-CPU sampling), alloc (allocations and leaks of "
	 "the --pid processes, from uprobes on their allocator: alloc.pb.gz, alloc.folded, "
	 "alloc.svg, leaks.txt), offcpu (time threads spend off the CPU, by the stack they "
	 "left it in: offcpu.*; with cpu also wall.svg, both in one flame graph), lock (time "
	 "waiting on futexes, by user stack: lock.*, lock.txt) (default cpu)"},
	{"offcpu-min-us", OPT_UINT, CFG(offcpu_min_us), 0, 60000000, "US",
	 "offcpu: periods off the CPU shorter than this are left out (default 1)"},
	{"wait-max-rate", OPT_UINT, CFG(wait_max_rate), 1, 1000000, "N",
	 "offcpu, lock: stacks taken per second per CPU and signal, at most; above it 1 in "
	 "N switches or waits is sampled and stands for N (default 200)"},
	{"alloc-sample-bytes", OPT_UINT, CFG(alloc_sample_bytes), 1, 1073741824, "N",
	 "alloc: sample allocations by bytes, each byte with probability 1/N, weighted "
	 "back as pprof and Go's heap profiler do; 1 tracks every allocation exactly "
	 "(default 524288)"},
	{"alloc-max-tracked", OPT_UINT, CFG(alloc_max_tracked), 1024, 67108864, "N",
	 "alloc: sampled allocations tracked until freed, in the kernel; more are counted "
	 "but not matched to their free (default 1000000)"},
	{"leak-min-age", OPT_UINT, CFG(leak_min_age), 0, 31536000, "SEC",
	 "alloc: blocks outstanding at least SEC seconds count as leaked in leaks.txt "
	 "(default 60)"},
	{"alloc-all", OPT_TRUE, CFG(alloc_all), 0, 0, NULL,
	 "alloc: probe every process that uses the host's C library (not the --pid list): "
	 "each of their malloc and free calls then pays the uprobe traps (about 1.6 us a "
	 "pair); programs with their own allocator (jemalloc, tcmalloc, static) or their "
	 "own libc (containers) are not covered"},
	{"alloc-view", OPT_STRING, CFG(alloc_view), 0, 0, "inuse|alloc",
	 "alloc: what alloc.folded and alloc.svg weigh stacks by: bytes in use, or bytes "
	 "allocated (default inuse)"},
	{"stats-json", OPT_STRING, CFG(stats_json), 0, 0, "FILE",
	 "at exit, also write the self-stats as one JSON object to FILE (samples and drops, "
	 "samples per CPU, agent CPU time, BPF run time)"},
	{"quiet", OPT_TRUE, CFG(quiet), 0, 0, NULL, "do not print self-stats at exit"},
	{"help", OPT_HELP, 0, 0, 0, NULL, "print this help and exit"},
	{"version", OPT_VERSION, 0, 0, 0, NULL, "print the version and exit"},
};

#define N_OPTS (sizeof(opt_table) / sizeof(opt_table[0]))

static void config__defaults(struct pipeline_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->shards = 0;
	cfg->frequency = 99;
	cfg->duration = 0;
	cfg->interval = 10;
	cfg->output = "profile";
	cfg->otlp_timestamps = true;
	cfg->otlp_max_request_bytes = 4u << 20;
	cfg->export_queue_bytes = 64u << 20;
	cfg->shutdown_timeout = 5;
	cfg->kernel_stacks = true;
	cfg->unwind = "auto";
	cfg->stack_copy_bytes = 16384;
	cfg->track_processes = true;
	cfg->idle = false;
	cfg->bpf_stats = true;
	cfg->ring_kib = 0;
	cfg->queue_depth = CONFIG_DEFAULT_QUEUE_DEPTH;
	cfg->max_stacks = 65536;
	cfg->symbol_cache_bytes = 256u << 20;
	cfg->poll_ms = 0; /* resolved in main: depends on process events */
	cfg->profile_cpu = true;
	cfg->alloc_sample_bytes = 512u << 10;
	cfg->alloc_max_tracked = 1000000;
	cfg->leak_min_age = 60;
	cfg->clock = "cpu-clock";
	cfg->offcpu_min_us = 1;
	cfg->wait_max_rate = 200;
	cfg->alloc_view = "inuse";
}

/* Parses --profiles LIST into cfg's profile_* flags. Returns 0 or -EINVAL
 * with a message naming the bad entry. */
static int parse_profiles(struct pipeline_config *cfg, const char *list)
{
	const char *p = list;

	const struct {
		const char *name;
		bool *on;
	} signals[] = {
		{"cpu", &cfg->profile_cpu},
		{"alloc", &cfg->profile_alloc},
		{"offcpu", &cfg->profile_offcpu},
		{"lock", &cfg->profile_lock},
	};
	size_t n_signals = sizeof(signals) / sizeof(signals[0]);
	bool any = false;

	for (size_t i = 0; i < n_signals; i++)
		*signals[i].on = false;
	while (*p) {
		size_t n = strcspn(p, ","), i;

		for (i = 0; i < n_signals; i++)
			if (strlen(signals[i].name) == n && !strncmp(p, signals[i].name, n))
				break;
		if (i == n_signals) {
			fprintf(stderr,
				"pipeline: invalid value '%s' for --profiles: unknown signal "
				"'%.*s' (expected cpu, alloc, offcpu, lock)\n",
				list, (int)n, p);
			return -EINVAL;
		}
		*signals[i].on = any = true;
		p += n + (p[n] == ',');
	}
	if (!any) {
		fprintf(stderr, "pipeline: --profiles needs at least one signal\n");
		return -EINVAL;
	}
	return 0;
}

/* Prints text from column `indent`, wrapped at word boundaries before `width`. */
static void print_wrapped(FILE *f, const char *text, int indent, int width)
{
	int col = indent;
	const char *p = text;
	while (*p) {
		const char *end = strchr(p, ' ');
		int len = end ? (int)(end - p) : (int)strlen(p);
		if (col > indent && col + 1 + len > width) {
			fprintf(f, "\n%*s", indent, "");
			col = indent;
		} else if (col > indent) {
			fputc(' ', f);
			col++;
		}
		fprintf(f, "%.*s", len, p);
		col += len;
		p += len;
		while (*p == ' ')
			p++;
	}
	fputc('\n', f);
}

static void config__usage(FILE *f)
{
	fprintf(f,
		"Usage: pipeline [OPTION]...\n"
		"Samples every CPU (or the given processes) with eBPF and writes symbolized,\n"
		"aggregated CPU profiles: pprof (cpu.pb.gz), folded stacks (cpu.folded) and an\n"
		"interactive SVG flame graph (cpu.svg). Needs root (CAP_BPF, CAP_PERFMON, or\n"
		"CAP_SYS_ADMIN). SIGINT/SIGTERM end the run after a final flush; SIGUSR1 prints\n"
		"self-stats.\n\nOptions:\n");
	for (size_t i = 0; i < N_OPTS; i++) {
		const struct opt_desc *o = &opt_table[i];
		char lhs[64];
		snprintf(lhs, sizeof(lhs), "--%s%s%s", o->name, o->arg ? " " : "",
			 o->arg ? o->arg : "");
		fprintf(f, "  %-22s ", lhs);
		print_wrapped(f, o->help, 25, 79);
	}
	fprintf(f, "\nExit status: 0 on success, 1 on a runtime error, 2 on a usage error.\n");
}

static int parse_ulong(const char *s, unsigned long *out)
{
	char *end;
	if (!s || !*s || *s == '-')
		return -EINVAL;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (errno || *end)
		return -EINVAL;
	*out = v;
	return 0;
}

static int config__apply(struct pipeline_config *cfg, const struct opt_desc *o, const char *arg)
{
	char *base = (char *)cfg;
	unsigned long v;

	switch (o->kind) {
	case OPT_SHARDS:
		if (strcmp(arg, "auto") == 0) {
			cfg->shards = 0;
			return CONFIG_OK;
		}
		/* fallthrough */
	case OPT_UINT:
	case OPT_PID:
		if (parse_ulong(arg, &v) || v < o->min || v > o->max) {
			fprintf(stderr,
				"pipeline: invalid value '%s' for --%s: expected %s%lu-%lu\n", arg,
				o->name, o->kind == OPT_SHARDS ? "auto or " : "", o->min, o->max);
			return CONFIG_EXIT_USAGE;
		}
		if (o->kind == OPT_PID) {
			if (cfg->n_pids >= CONFIG_MAX_PIDS) {
				fprintf(stderr, "pipeline: too many --pid (at most %d)\n",
					CONFIG_MAX_PIDS);
				return CONFIG_EXIT_USAGE;
			}
			cfg->pids[cfg->n_pids++] = (uint32_t)v;
		} else {
			*(unsigned *)(base + o->offset) = (unsigned)v;
		}
		return CONFIG_OK;
	case OPT_STRING:
		if (!*arg) {
			fprintf(stderr, "pipeline: --%s needs a non-empty value\n", o->name);
			return CONFIG_EXIT_USAGE;
		}
		*(const char **)(base + o->offset) = arg;
		if (o->offset == CFG(output))
			cfg->output_given = true;
		return CONFIG_OK;
	case OPT_HEADER:
		if (!strchr(arg, '=') || *arg == '=' || strpbrk(arg, "\r\n")) {
			fprintf(stderr,
				"pipeline: invalid value '%s' for --%s: expected KEY=VALUE\n", arg,
				o->name);
			return CONFIG_EXIT_USAGE;
		}
		if (cfg->n_otlp_headers >= CONFIG_MAX_HEADERS) {
			fprintf(stderr, "pipeline: too many --%s (at most %d)\n", o->name,
				CONFIG_MAX_HEADERS);
			return CONFIG_EXIT_USAGE;
		}
		cfg->otlp_headers[cfg->n_otlp_headers++] = arg;
		return CONFIG_OK;
	case OPT_TRUE:
		*(bool *)(base + o->offset) = true;
		return CONFIG_OK;
	case OPT_FALSE:
		*(bool *)(base + o->offset) = false;
		return CONFIG_OK;
	case OPT_HELP:
		config__usage(stdout);
		return CONFIG_EXIT_OK;
	case OPT_VERSION:
		printf("pipeline %s\n", PIPELINE_VERSION);
		return CONFIG_EXIT_OK;
	}
	return CONFIG_EXIT_USAGE;
}

int config__parse(struct pipeline_config *cfg, int argc, char **argv)
{
	struct option longopts[N_OPTS + 1];

	config__defaults(cfg);
	for (size_t i = 0; i < N_OPTS; i++) {
		longopts[i] = (struct option){
			.name = opt_table[i].name,
			.has_arg = opt_table[i].arg ? required_argument : no_argument,
			.flag = NULL,
			.val = 256 + (int)i,
		};
	}
	memset(&longopts[N_OPTS], 0, sizeof(longopts[N_OPTS]));

	optind = 1;
	opterr = 0;
	for (;;) {
		int idx = optind;
		int c = getopt_long(argc, argv, "", longopts, NULL);
		if (c == -1)
			break;
		if (c == '?' || c == ':') {
			const char *bad = idx < argc ? argv[idx] : "?";
			if (c == ':' || (optopt >= 256 && optopt < 256 + (int)N_OPTS))
				fprintf(stderr, "pipeline: option '%s' needs a value\n", bad);
			else
				fprintf(stderr, "pipeline: unknown option '%s'\n", bad);
			fprintf(stderr, "Try 'pipeline --help'.\n");
			return CONFIG_EXIT_USAGE;
		}
		int rc = config__apply(cfg, &opt_table[c - 256], optarg);
		if (rc != CONFIG_OK)
			return rc;
	}
	if (optind < argc) {
		fprintf(stderr, "pipeline: unexpected argument '%s'\nTry 'pipeline --help'.\n",
			argv[optind]);
		return CONFIG_EXIT_USAGE;
	}
	if (cfg->otlp_compression && strcmp(cfg->otlp_compression, "gzip") &&
	    strcmp(cfg->otlp_compression, "none")) {
		fprintf(stderr,
			"pipeline: invalid value '%s' for --otlp-compression: expected gzip "
			"or none\n",
			cfg->otlp_compression);
		return CONFIG_EXIT_USAGE;
	}
	if (cfg->otlp_file && !cfg->output_given) {
		fprintf(stderr, "pipeline: --otlp-file needs --output DIR\n");
		return CONFIG_EXIT_USAGE;
	}
	if (strcmp(cfg->clock, "cpu-clock") && strcmp(cfg->clock, "tick") &&
	    strcmp(cfg->clock, "auto")) {
		fprintf(stderr,
			"pipeline: invalid value '%s' for --clock: expected cpu-clock, tick or "
			"auto\n",
			cfg->clock);
		return CONFIG_EXIT_USAGE;
	}
	if (!strcmp(cfg->unwind, "dwarf") || !strcmp(cfg->unwind, "auto")) {
		cfg->unwind_dwarf = true;
		cfg->unwind_auto = !strcmp(cfg->unwind, "auto");
	} else if (strcmp(cfg->unwind, "fp")) {
		fprintf(stderr,
			"pipeline: invalid value '%s' for --unwind: expected fp, dwarf or auto\n",
			cfg->unwind);
		return CONFIG_EXIT_USAGE;
	}
	cfg->stack_copy_bytes &= ~7u; /* whole stack words */
	/* Dwarf slots are stack_copy_bytes longer: keep the default queue
	 * near the memory of the frame-pointer one. */
	if (cfg->unwind_dwarf && cfg->queue_depth == CONFIG_DEFAULT_QUEUE_DEPTH)
		cfg->queue_depth = CONFIG_DWARF_QUEUE_DEPTH;
	if (cfg->profiles_arg && parse_profiles(cfg, cfg->profiles_arg))
		return CONFIG_EXIT_USAGE;
	if (strcmp(cfg->alloc_view, "inuse") && strcmp(cfg->alloc_view, "alloc")) {
		fprintf(stderr,
			"pipeline: invalid value '%s' for --alloc-view: expected inuse or alloc\n",
			cfg->alloc_view);
		return CONFIG_EXIT_USAGE;
	}
	if (cfg->profile_alloc && !cfg->n_pids && !cfg->alloc_all) {
		fprintf(stderr, "pipeline: --profiles alloc needs --pid PID (the processes whose "
				"allocator is probed) or --alloc-all\n");
		return CONFIG_EXIT_USAGE;
	}
	if (cfg->alloc_all && !cfg->profile_alloc) {
		fprintf(stderr, "pipeline: --alloc-all needs --profiles alloc\n");
		return CONFIG_EXIT_USAGE;
	}
	/* Power-of-two sizes let the queue index by mask. */
	unsigned d = 16;
	while (d < cfg->queue_depth)
		d <<= 1;
	cfg->queue_depth = d;
	return CONFIG_OK;
}

unsigned config__auto_shards(unsigned n_cpus, unsigned frequency)
{
	/* One worker comfortably aggregates well over 20k samples/s; the agent is
	 * a guest on the host, so it never takes more than half the CPUs. */
	unsigned long rate = (unsigned long)n_cpus * frequency;
	unsigned shards = (unsigned)((rate + 19999) / 20000);
	unsigned cap = n_cpus / 2 ? n_cpus / 2 : 1;
	if (shards < 1)
		shards = 1;
	if (shards > cap)
		shards = cap;
	return shards;
}
