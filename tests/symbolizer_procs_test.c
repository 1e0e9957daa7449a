/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Unit tests of the symbolizer's process handling (label unit, no root
 * needed): JIT perf maps (parsing, and code in this process's own anonymous
 * executable memory named by a perf map it writes, re-read when it grows),
 * NSpid parsing, paths opened inside a process's root, and process events
 * (maps read at exec survive the process; the "exited and flushed" sweep),
 * kernel frames when kptr_restrict hides kernel addresses, kernel modules
 * loaded after kallsyms was read; and, run alone
 * as "exec_concurrent" under ThreadSanitizer (label concurrency), process
 * events racing lock-free readers.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "symbolizer.h"
#include "symbolizer_internal.h"
#include "test_helpers.h"

static const struct sym_frame *resolve1(struct sym_reader *rd, uint32_t tgid, uint64_t addr)
{
	const struct sym_frame *f = NULL;

	if (sym_reader__resolve_user(rd, tgid, &addr, 1, &f))
		return NULL;
	return f;
}

static const char *lookup_name(const struct perf_map *pm, uint64_t addr)
{
	const struct perf_map_sym *s = perf_map__lookup(pm, addr);

	return s ? pm->names + s->name : NULL;
}

static int test_perf_map_parse(void)
{
	static const char text[] = "1000 10 first\n"
				   "0x2000 0x20 Function: bar baz (file.js:1)\n"
				   "not a line\n"
				   "3000 0 empty_size\n"
				   "3000\n"
				   "ffffffffffffffff 10 wraps\n"
				   "1000 8 first_recompiled\n"
				   "4000 10 crlf\r\n"
				   "5000 10 no_newline";
	struct perf_map *pm = NULL;

	CHECK(perf_map__parse(text, sizeof(text) - 1, &pm) == 0);
	CHECK_EQ_U64(pm->n_syms, 4);
	/* The later line for the same start wins, with its own size. */
	CHECK_STR(lookup_name(pm, 0x1000), "first_recompiled");
	CHECK_STR(lookup_name(pm, 0x1007), "first_recompiled");
	CHECK(lookup_name(pm, 0x1008) == NULL);
	CHECK(lookup_name(pm, 0xfff) == NULL);
	CHECK_STR(lookup_name(pm, 0x201f), "Function: bar baz (file.js:1)");
	CHECK(lookup_name(pm, 0x2020) == NULL);
	CHECK(lookup_name(pm, 0x3000) == NULL);
	CHECK_STR(lookup_name(pm, 0x4000), "crlf");
	CHECK_STR(lookup_name(pm, 0x500f), "no_newline");
	perf_map__free(pm);

	pm = NULL;
	CHECK(perf_map__parse("", 0, &pm) == 0);
	CHECK_EQ_U64(pm->n_syms, 0);
	CHECK(lookup_name(pm, 0x1000) == NULL);
	perf_map__free(pm);
	return 0;
}

static int test_nspid_parse(void)
{
	uint32_t v = 0;

	CHECK(proc_root__parse_nspid("Name:\tx\nNSpid:\t1234\t7\nNgid:\t0\n", 30, &v));
	CHECK_EQ_U64(v, 7);
	CHECK(proc_root__parse_nspid("NSpid:\t42\n", 10, &v));
	CHECK_EQ_U64(v, 42);
	CHECK(proc_root__parse_nspid("Name:\tx\nNSpid:\t99", 17, &v));
	CHECK_EQ_U64(v, 99);
	CHECK(!proc_root__parse_nspid("Name:\tx\nPid:\t5\n", 15, &v));
	CHECK(!proc_root__parse_nspid("Name:\tx\nNSpid:\tabc\n", 19, &v));
	CHECK(!proc_root__parse_nspid("Name:\tx\nNSpid:\t99999999999\n", 27, &v));
	CHECK(!proc_root__parse_nspid("XNSpid:\t5\n", 10, &v));
	/* This process: its own pid (the test does not run in a pid namespace
	 * of its own) or, if it does, a pid that exists. */
	CHECK(proc_root__nspid((uint32_t)getpid(), &v) == 0);
	CHECK(v > 0);
	return 0;
}

static int test_proc_root_open(void)
{
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	int fd;

	CHECK(n > 0);
	exe[n] = '\0';
	fd = proc_root__open((uint32_t)getpid(), exe, false);
	CHECK(fd >= 0);
	close(fd);
	/* A /proc magic link is not followed: it could lead anywhere. */
	CHECK_EQ_U64(proc_root__open((uint32_t)getpid(), "/proc/self/exe", false),
		     (uint64_t)-ELOOP);
	CHECK(proc_root__open((uint32_t)getpid(), "/no/such/file", false) == -ENOENT);
	/* /proc/self is a symlink: refused when no symlink may be followed. */
	fd = proc_root__open((uint32_t)getpid(), "/proc/self/status", false);
	CHECK(fd >= 0);
	close(fd);
	CHECK_EQ_U64(proc_root__open((uint32_t)getpid(), "/proc/self/status", true),
		     (uint64_t)-ELOOP);
	CHECK(proc_root__same_mnt_ns((uint32_t)getpid()));
	CHECK(proc_root__exists((uint32_t)getpid()));
	return 0;
}

/* mov $1, %eax; ret */
static const unsigned char tiny_code[] = {0xb8, 0x01, 0x00, 0x00, 0x00, 0xc3};

static int append_line(const char *path, uint64_t start, size_t size, const char *name)
{
	FILE *f = fopen(path, "a");

	if (!f)
		return -1;
	fprintf(f, "%llx %zx %s\n", (unsigned long long)start, size, name);
	return fclose(f);
}

static int test_perf_map_resolve(void)
{
	struct symbolizer *sym = symbolizer__new(NULL);
	struct sym_reader *rd = sym ? symbolizer__reader_new(sym) : NULL;
	uint32_t pid = (uint32_t)getpid();
	const struct sym_frame *f;
	struct symbolizer_stats st;
	char path[64];
	unsigned char *mem;
	uint64_t a, b;
	int rc = 1;

	CHECK(sym && rd);
	mem = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(mem != MAP_FAILED);
	memcpy(mem, tiny_code, sizeof(tiny_code));
	memcpy(mem + 4096, tiny_code, sizeof(tiny_code));
	CHECK(mprotect(mem, 8192, PROT_READ | PROT_EXEC) == 0);
	a = (uint64_t)(uintptr_t)mem;
	b = a + 4096;
	snprintf(path, sizeof(path), "/tmp/perf-%u.map", pid);
	unlink(path);
	if (append_line(path, a, sizeof(tiny_code), "unit_jit_first"))
		goto out;

	f = resolve1(rd, pid, a + 2);
	if (!f || !f->function || strcmp(f->function, "unit_jit_first") != 0) {
		fprintf(stderr, "JIT address not named by the perf map: %s\n",
			f && f->function ? f->function : "(null)");
		goto out;
	}
	if (strcmp(f->module->path, path) != 0 || f->address != a + 2)
		goto out;
	/* Not in the map yet: unknown, and not cached by the reader. */
	f = resolve1(rd, pid, b);
	if (!f || f->function)
		goto out;
	/* The map grows; after the re-check delay the new entry is found. */
	if (append_line(path, b, sizeof(tiny_code), "unit_jit_second"))
		goto out;
	usleep((SYM_PERF_MAP_CHECK_NS / 1000) + 50 * 1000);
	f = resolve1(rd, pid, b + 1);
	if (!f || !f->function || strcmp(f->function, "unit_jit_second") != 0) {
		fprintf(stderr, "grown perf map not re-read: %s\n",
			f && f->function ? f->function : "(null)");
		goto out;
	}
	/* The first entry's frame, still cached or re-resolved, is the same. */
	f = resolve1(rd, pid, a + 2);
	if (!f || !f->function || strcmp(f->function, "unit_jit_first") != 0)
		goto out;
	symbolizer__stats(sym, &st);
	if (st.perf_map_reads != 2) {
		fprintf(stderr, "perf map reads %llu, want 2\n",
			(unsigned long long)st.perf_map_reads);
		goto out;
	}
	rc = 0;
out:
	unlink(path);
	munmap(mem, 8192);
	sym_reader__free(rd);
	symbolizer__free(sym);
	return rc;
}

__attribute__((noinline)) static int procs_test_marker(void)
{
	return 42;
}

/* Maps read at exec time name a process's addresses after it is gone; it is
 * dropped only once exited and flushed. */
static int test_exec_exit_flush(void)
{
	struct symbolizer *sym = symbolizer__new(NULL);
	struct sym_reader *rd = sym ? symbolizer__reader_new(sym) : NULL;
	uint64_t addr = (uint64_t)(uintptr_t)procs_test_marker;
	struct sym_process_info pi;
	const struct sym_frame *f;
	pid_t child;

	CHECK(sym && rd);
	fflush(NULL);
	child = fork();
	CHECK(child >= 0);
	if (child == 0) {
		pause();
		_exit(0);
	}
	CHECK(symbolizer__process_exec(sym, (uint32_t)child) == 0);
	kill(child, SIGKILL);
	CHECK(waitpid(child, NULL, 0) == child);
	symbolizer__process_exit(sym, (uint32_t)child);

	f = resolve1(rd, (uint32_t)child, addr);
	CHECK(f);
	CHECK_STR(f->function, "procs_test_marker");
	CHECK(symbolizer__process_exec(sym, (uint32_t)child) == -ENOENT);
	symbolizer__process_exit(sym, (uint32_t)child);

	/* One flush: its samples may still be queued. Two: dropped at the next
	 * sweep (at most one a second, on a slow-path call). */
	symbolizer__interval_flushed(sym);
	usleep((SYM_SWEEP_INTERVAL_NS / 1000) + 100 * 1000);
	CHECK(symbolizer__process_exec(sym, (uint32_t)getpid()) == 0);
	CHECK(symbolizer__process_info(sym, (uint32_t)child, &pi) == 0);
	symbolizer__interval_flushed(sym);
	usleep((SYM_SWEEP_INTERVAL_NS / 1000) + 100 * 1000);
	CHECK(symbolizer__process_exec(sym, (uint32_t)getpid()) == 0);
	CHECK(symbolizer__process_info(sym, (uint32_t)child, &pi) == -ENOENT);
	sym_reader__free(rd);
	symbolizer__free(sym);
	return 0;
}

/* The sweep rule itself, on the table: exited processes wait for two
 * flushes whatever their idle time; others follow the time rules. Also the
 * lock-free index: a process's mappings are published while it is not
 * stale, and a dropped or replaced snapshot is freed through the epoch only. */
static int test_sweep_rule(void)
{
	struct process_table pt;
	struct sym_epoch ep;
	struct sym_maps_snap *s1, *s2;
	struct process *a, *b;
	uint64_t later = SYM_PROCESS_IDLE_NS * 2;

	CHECK(sym_epoch__init(&ep) == 0);
	CHECK(process_table__init(&pt, &ep) == 0);
	a = process_table__add(&pt, 100, 0);
	b = process_table__add(&pt, 200, 0);
	CHECK(a && b);
	s1 = process_table__new_snap(&pt, 1);
	s2 = process_table__new_snap(&pt, 1);
	CHECK(s1 && s2);
	s1->maps[0] = (struct sym_mapping){.start = 0x1000, .end = 0x2000};
	s2->maps[0] = (struct sym_mapping){.start = 0x3000, .end = 0x4000};
	process_table__set_maps(&pt, a, s1);
	CHECK(process_table__lookup(&pt, 100) == s1);
	CHECK(process_table__lookup(&pt, 200) == NULL);
	CHECK(sym_maps_snap__find(process_table__lookup(&pt, 100), 0x1800) == &s1->maps[0]);
	CHECK(sym_maps_snap__find(s1, 0x2000) == NULL);
	a->stale = true;
	process_table__publish(&pt, a);
	CHECK(process_table__lookup(&pt, 100) == NULL); /* withdrawn while stale */
	a->stale = false;
	process_table__set_maps(&pt, a, s2); /* s1 retired, s2 published */
	CHECK(process_table__lookup(&pt, 100) == s2);
	CHECK_EQ_U64(ep.retired, 1);
	CHECK(ep.pending_bytes > 0);
	a->exited = true;
	a->exit_flush = 5;
	CHECK_EQ_U64(process_table__sweep(&pt, later, 6), 1); /* b: idle */
	CHECK(process_table__find(&pt, 100) == a);
	CHECK(process_table__find(&pt, 200) == NULL);
	CHECK_EQ_U64(process_table__sweep(&pt, later, 7), 1);
	CHECK(process_table__find(&pt, 100) == NULL);
	CHECK(process_table__lookup(&pt, 100) == NULL);
	CHECK_EQ_U64(ep.retired, 2);
	/* No reader section is open: two polls move the epoch past both. */
	for (int i = 0; i < 4 && ep.freed < 2; i++)
		sym_epoch__reclaim(&ep);
	CHECK_EQ_U64(ep.freed, 2);
	CHECK_EQ_U64(ep.pending_bytes, 0);
	process_table__deinit(&pt);
	sym_epoch__deinit(&ep);
	return 0;
}

/* In a child that is not root (kptr_restrict, or perf_event_paranoid >= 2,
 * hides kernel addresses from it): every kernel address is one "[kernel]"
 * frame. Where the host shows it addresses anyway, they must be named. */
static int kernel_child(void)
{
	const uint64_t a[2] = {0xffffffff81000100ull, 0xffffffff81234500ull};
	struct kallsyms *ks = NULL;
	struct symbolizer_opts o = {.kernel = true};
	struct symbolizer *sym;
	struct sym_reader *rd;
	const struct sym_frame *out[2];
	bool restricted;

	if (getuid() == 0 && (setgid(65534) || setuid(65534)))
		return 2;
	if (kallsyms__load("/proc/kallsyms", &ks))
		return 3;
	restricted = ks->restricted;
	kallsyms__free(ks);
	sym = symbolizer__new(&o);
	rd = sym ? symbolizer__reader_new(sym) : NULL;
	if (!rd || sym_reader__resolve_kernel(rd, a, 2, out))
		return 4;
	if (restricted) {
		CHECK(out[0] == out[1]);
		CHECK_STR(out[0]->function, "[kernel]");
		CHECK_EQ_U64(out[0]->address, 0);
		CHECK(out[0]->kind == SYM_FRAME_KERNEL);
	} else {
		CHECK(out[0] != out[1]);
		CHECK(out[0]->address == a[0]);
	}
	printf("kernel addresses %s to an unprivileged user\n", restricted ? "hidden" : "shown");
	fflush(stdout);
	sym_reader__free(rd);
	symbolizer__free(sym);
	return 0;
}

static int test_kernel_restricted(void)
{
	pid_t child;
	int status;

	fflush(NULL); /* the child must not print this process's buffered output */
	child = fork();
	CHECK(child >= 0);
	if (child == 0)
		_exit(kernel_child());
	CHECK(waitpid(child, &status, 0) == child);
	CHECK(WIFEXITED(status));
	CHECK_EQ_U64(WEXITSTATUS(status), 0);
	return 0;
}

/* ---- concurrency: process events against lock-free readers ---- */

#define CONC_CHILDREN 4
#define CONC_READERS  2
#define CONC_LOOKUPS  50000
#define CONC_EVENTS   300

struct conc {
	struct symbolizer *sym;
	pid_t children[CONC_CHILDREN];
	int failures;
};

static void *conc_reader(void *arg)
{
	struct conc *c = arg;
	struct sym_reader *rd = symbolizer__reader_new(c->sym);
	uint64_t addr = (uint64_t)(uintptr_t)procs_test_marker;

	if (!rd) {
		__atomic_add_fetch(&c->failures, 1, __ATOMIC_RELAXED);
		return NULL;
	}
	for (int i = 0; i < CONC_LOOKUPS; i++) {
		uint32_t pid = (uint32_t)c->children[i % CONC_CHILDREN];
		const struct sym_frame *f = resolve1(rd, pid, addr);

		/* Every child lives: whatever exec, exit and sweep did, its
		 * maps are (re-)read and the address is named. */
		if (!f || !f->function || strcmp(f->function, "procs_test_marker") != 0)
			__atomic_add_fetch(&c->failures, 1, __ATOMIC_RELAXED);
	}
	sym_reader__free(rd);
	return NULL;
}

static void *conc_events(void *arg)
{
	struct conc *c = arg;

	for (int i = 0; i < CONC_EVENTS; i++) {
		uint32_t pid = (uint32_t)c->children[i % CONC_CHILDREN];

		if (symbolizer__process_exec(c->sym, pid) != 0)
			__atomic_add_fetch(&c->failures, 1, __ATOMIC_RELAXED);
		if (i % 3 == 0)
			symbolizer__process_exit(c->sym, pid);
		if (i % 7 == 0)
			symbolizer__interval_flushed(c->sym);
	}
	return NULL;
}

static int test_exec_concurrent(void)
{
	struct conc c = {.sym = symbolizer__new(NULL)};
	pthread_t readers[CONC_READERS], events;
	int n = 0, rc = 1;

	CHECK(c.sym);
	fflush(NULL);
	for (; n < CONC_CHILDREN; n++) {
		c.children[n] = fork();
		if (c.children[n] < 0)
			goto out;
		if (c.children[n] == 0) {
			pause();
			_exit(0);
		}
	}
	for (int i = 0; i < CONC_READERS; i++)
		if (pthread_create(&readers[i], NULL, conc_reader, &c))
			goto out;
	if (pthread_create(&events, NULL, conc_events, &c))
		goto out;
	pthread_join(events, NULL);
	for (int i = 0; i < CONC_READERS; i++)
		pthread_join(readers[i], NULL);
	if (c.failures)
		fprintf(stderr, "%d failed lookups or events\n", c.failures);
	else
		rc = 0;
out:
	for (int i = 0; i < n; i++) {
		kill(c.children[i], SIGKILL);
		waitpid(c.children[i], NULL, 0);
	}
	symbolizer__free(c.sym);
	return rc;
}

static int write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	if (!f)
		return -1;
	fputs(text, f);
	return fclose(f);
}

/* A kernel module loaded after kallsyms was read: its addresses are named
 * after /proc/modules changes; frames of the old table stay valid. */
static int test_kernel_module_reload(void)
{
	static const char core[] = "ffffffff81000000 T _stext\n"
				   "ffffffff81000100 T schedule\n"
				   "ffffffff81000200 T other_fn\n";
	struct symbolizer_opts o = {.kernel = true};
	struct symbolizer *sym = symbolizer__new(&o);
	struct sym_reader *rd = sym ? symbolizer__reader_new(sym) : NULL;
	char ks_path[] = "/tmp/procs_test_kallsyms.XXXXXX", mod_path[64];
	const struct kallsyms *first;
	const struct sym_frame *sched, *f;
	uint64_t a;
	int fd, rc = 1;

	CHECK(sym && rd);
	fd = mkstemp(ks_path);
	CHECK(fd >= 0);
	close(fd);
	snprintf(mod_path, sizeof(mod_path), "%s.modules", ks_path);
	if (write_text(ks_path, core) || write_text(mod_path, "ext4 1000 1 - Live 0x0\n"))
		goto out;
	sym->kallsyms_path = ks_path; /* before any lookup: nothing reads them yet */
	sym->modules_path = mod_path;

	a = 0xffffffff81000104ull;
	if (sym_reader__resolve_kernel(rd, &a, 1, &sched) || !sched->function ||
	    strcmp(sched->function, "schedule") != 0)
		goto out;
	first = sym->ksyms;
	/* Not covered, modules unchanged: no reload. */
	a = 0xffffffffc0001010ull;
	if (sym_reader__resolve_kernel(rd, &a, 1, &f) || f->function || sym->ksyms != first)
		goto out;
	/* A module is loaded: the next uncovered address, once the check
	 * delay has passed, reloads the table. */
	if (write_text(ks_path, "ffffffff81000000 T _stext\n"
				"ffffffff81000100 T schedule\n"
				"ffffffff81000200 T other_fn\n"
				"ffffffffc0001000 t newmod_fn\t[newmod]\n"
				"ffffffffc0001100 t newmod_end\t[newmod]\n") ||
	    write_text(mod_path, "ext4 1000 1 - Live 0x0\nnewmod 16384 0 - Live 0x0\n"))
		goto out;
	pthread_mutex_lock(&sym->lock);
	sym->kmods_check_ns = 0; /* as if SYM_KMODS_CHECK_NS had passed */
	pthread_mutex_unlock(&sym->lock);
	a = 0xffffffffc0001020ull;
	if (sym_reader__resolve_kernel(rd, &a, 1, &f) || !f->function ||
	    strcmp(f->function, "newmod_fn") != 0 || strcmp(f->module->name, "[newmod]") != 0) {
		fprintf(stderr, "module loaded later not named\n");
		goto out;
	}
	if (sym->ksyms == first || sym->ksyms_retired != first)
		goto out;
	/* The old table's frames and names are still valid. */
	if (strcmp(sched->function, "schedule") != 0)
		goto out;
	rc = 0;
out:
	unlink(ks_path);
	unlink(mod_path);
	sym_reader__free(rd);
	symbolizer__free(sym);
	return rc;
}

static const struct test_case cases[] = {
	{"kernel_module_reload", test_kernel_module_reload},
	{"exec_concurrent", test_exec_concurrent},
	{"kernel_restricted", test_kernel_restricted},
	{"perf_map_parse", test_perf_map_parse},
	{"nspid_parse", test_nspid_parse},
	{"proc_root_open", test_proc_root_open},
	{"perf_map_resolve", test_perf_map_resolve},
	{"exec_exit_flush", test_exec_exit_flush},
	{"sweep_rule", test_sweep_rule},
};

TEST_MAIN(cases)
