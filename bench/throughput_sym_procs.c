// SPDX-License-Identifier: BSD-2-Clause
/*
 * The symbolizer's memory per process, for processes that share their files:
 * N forks of this very process (1000; 100 with --quick), each blocked on one
 * pipe until the stage closes it, so all map the same executable and libc at
 * the same addresses. Each repetition, a new symbolizer resolves the same
 * 20-frame stack (executable and libc frames) for every child, as the agent
 * does for the first sample of each process: /proc/PID/maps read, the files
 * found already loaded after the first child.
 *
 * The first child pays the files' loads (the "cold process" row); the
 * figures are for the others. Time per process after the first; the
 * symbolizer's bytes (symbolizer stats) after the first child (kib_first:
 * mostly the files' symbol tables) and after all N (kib_all), and the growth
 * per further process (bytes_per_proc); modules (distinct files the
 * symbolizer knows, by device and inode), which must stay the number of
 * distinct files in one child's maps, with every child's frames pointing at
 * the first child's modules: one copy of libc's symbols, not N. The note
 * also gives this process's VmRSS growth over the first repetition, file
 * loads included (later ones reuse memory the allocator kept). It is noisy:
 * the allocator reuses, or returns, pages that earlier rows freed.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"
#include "symbolizer.h"
#include "throughput_sym.h"

#define BASE_PROCS 1000 /* full run; --quick forks a tenth */
#define MAX_DEPTH  32

struct proc_set {
	pid_t *pids;
	size_t n;
	int release_fd; /* write end: closing it lets every child exit */
};

/* Reaps every child: closes the pipe (EOF ends them), then waits for each. */
static void procs_stop(struct proc_set *ps)
{
	if (ps->release_fd >= 0)
		close(ps->release_fd);
	ps->release_fd = -1;
	for (size_t i = 0; i < ps->n; i++) {
		int status;

		while (waitpid(ps->pids[i], &status, 0) < 0 && errno == EINTR)
			;
	}
	free(ps->pids);
	ps->pids = NULL;
	ps->n = 0;
}

/* Forks n children that wait on a pipe. Returns 0 or -errno (none left running). */
static int procs_start(struct proc_set *ps, size_t n)
{
	int fds[2], err = 0;

	ps->n = 0;
	ps->release_fd = -1;
	ps->pids = calloc(n, sizeof(*ps->pids));
	if (!ps->pids)
		return -ENOMEM;
	if (pipe2(fds, O_CLOEXEC)) {
		err = -errno;
		free(ps->pids);
		ps->pids = NULL;
		return err;
	}
	ps->release_fd = fds[1];
	fflush(NULL); /* no buffered output written twice */
	for (size_t i = 0; i < n; i++) {
		pid_t pid = fork();
		ssize_t got;
		char c;

		if (pid < 0) {
			err = -errno;
			break;
		}
		if (pid == 0) {
			/* read() returns 0 once the stage (or its exit) closes the write end. */
			close(fds[1]);
			while ((got = read(fds[0], &c, 1)) > 0 || (got < 0 && errno == EINTR))
				;
			_exit(0);
		}
		ps->pids[ps->n++] = pid;
	}
	close(fds[0]);
	if (err)
		procs_stop(ps);
	return err;
}

/* Returns this process's resident set in KiB, or 0 if unknown. */
static uint64_t vm_rss_kib(void)
{
	FILE *f = fopen("/proc/self/status", "re");
	char line[256];
	unsigned long long kib = 0;

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %llu kB", &kib) == 1)
			break;
	fclose(f);
	return kib;
}

/* Returns the number of distinct files (device and inode) pid maps, or 0 if
 * its maps cannot be read. */
static size_t mapped_files(pid_t pid)
{
	struct devino {
		char dev[16];
		unsigned long long inode;
	} seen[512];
	char path[64], line[4352];
	size_t n = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f) && n < sizeof(seen) / sizeof(seen[0])) {
		struct devino d;
		size_t i = 0;

		if (sscanf(line, "%*s %*s %*s %15s %llu", d.dev, &d.inode) != 2 || !d.inode)
			continue;
		while (i < n && (seen[i].inode != d.inode || strcmp(seen[i].dev, d.dev)))
			i++;
		if (i == n)
			seen[n++] = d;
	}
	fclose(f);
	return n;
}

struct procs_result {
	uint64_t done, ns; /* processes after the first, and their time */
	uint64_t bytes_first, bytes_after, modules_first, modules_after;
	int64_t rss_kib; /* growth from before the symbolizer's creation */
	size_t files;	 /* distinct files in a child's maps */
	bool shared;	 /* every child's frames point at the first child's modules */
};

/* One repetition: a new symbolizer, the stack resolved for every child. */
static int procs_once(const struct proc_set *ps, const uint64_t *stack, size_t depth,
		      uint64_t deadline, struct procs_result *r)
{
	const struct sym_frame *out[MAX_DEPTH];
	const struct sym_module *first[MAX_DEPTH];
	struct symbolizer_opts opts = {0};
	struct symbolizer_stats st;
	uint64_t rss0 = vm_rss_kib();
	struct symbolizer *sym = symbolizer__new(&opts);
	struct sym_reader *rd = sym ? symbolizer__reader_new(sym) : NULL;
	int err = 0;

	*r = (struct procs_result){.shared = true};
	if (!rd) {
		err = -errno;
		goto cleanup;
	}
	for (size_t i = 0; i < ps->n && bench_now_ns() < deadline; i++) {
		uint64_t t0 = bench_now_ns();

		err = sym_reader__resolve_user(rd, (uint32_t)ps->pids[i], stack, depth, out);
		if (i > 0)
			r->ns += bench_now_ns() - t0;
		if (err)
			goto cleanup;
		for (size_t d = 0; d < depth; d++) {
			if (i == 0)
				first[d] = out[d]->module;
			r->shared &= out[d]->module == first[d];
		}
		if (i == 0) {
			symbolizer__stats(sym, &st);
			r->modules_first = st.modules;
			r->bytes_first = st.cache_bytes;
			r->files = mapped_files(ps->pids[i]);
		} else {
			r->done++;
		}
	}
	symbolizer__stats(sym, &st);
	r->bytes_after = st.cache_bytes;
	r->modules_after = st.modules;
	r->rss_kib = (int64_t)vm_rss_kib() - (int64_t)rss0;
cleanup:
	sym_reader__free(rd);
	symbolizer__free(sym);
	return err;
}

int tp_sym_procs__run(const struct tp_cfg *cfg, struct bench_report *rep, const uint64_t *stack,
		      size_t depth)
{
	struct proc_set ps = {.release_fd = -1};
	size_t n = tp_ops(cfg, BASE_PROCS);
	struct bench_row *row;
	struct procs_result r = {0};
	bool once = true;
	int64_t rss_kib = 0;
	int err;

	if (depth > MAX_DEPTH || n < 2)
		return -EINVAL;
	row = bench_report__row(rep, "symbolizer", "user, memory per process sharing libc");
	if (!row)
		return -errno;
	err = procs_start(&ps, n);
	if (err) {
		fprintf(stderr, "pipeline-bench: symbolizer: cannot fork %zu children: %s\n", n,
			strerror(-err));
		return err;
	}
	for (unsigned k = 0; k < cfg->repeat && !err; k++) {
		err = procs_once(&ps, stack, depth, bench_now_ns() + cfg->budget_ns, &r);
		if (err || !r.done)
			break;
		bench_row__rep(row, r.done, r.ns);
		bench_row__extra(row, "modules", (double)r.modules_after);
		bench_row__extra(row, "kib_first", (double)r.bytes_first / 1024);
		bench_row__extra(row, "kib_all", (double)r.bytes_after / 1024);
		bench_row__extra(row, "bytes_per_proc",
				 (double)(r.bytes_after - r.bytes_first) / (double)r.done);
		if (k == 0)
			rss_kib = r.rss_kib;
		once &= r.shared && r.modules_after == r.modules_first &&
			r.modules_after == r.files;
	}
	procs_stop(&ps);
	if (err)
		fprintf(stderr, "pipeline-bench: symbolizer: resolving for %zu children: %s\n", n,
			strerror(-err));
	else
		bench_row__note(
			row, "after 1st of %llu; libc %s (%llu modules, %zu files); RSS %+lld KiB",
			(unsigned long long)r.done + 1, once ? "loaded once" : "NOT loaded once",
			(unsigned long long)r.modules_after, r.files, (long long)rss_kib);
	return err;
}
