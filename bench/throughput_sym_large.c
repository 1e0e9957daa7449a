// SPDX-License-Identifier: BSD-2-Clause
/*
 * Cold symbolization of big files: the first lookups in a large C++ binary
 * and in libc, each in a new symbolizer (outside the timer), so every
 * repetition pays the whole load: /proc/PID/maps read, ELF symbol table,
 * DWARF opened and the unit holding the address parsed.
 *
 *   - user, cold large C++ binary: pipeline-bench-cxx-large, generated at
 *     build time (cxx_large_gen.c: 3000 template instantiations with inlined
 *     helpers in 6 units, g++ -O2 -g), run as a child that prints each unit's
 *     entry address and waits for EOF on stdin. "first lookup" resolves the
 *     first unit's entry; "another unit" then resolves the last unit's in the
 *     same symbolizer (the files stay open, a new unit is parsed);
 *   - user, cold libc: one libc address of this process. With libc6-dbg
 *     installed the symbolizer finds libc's separate DWARF under
 *     /usr/lib/debug and pays for it here; the note says which case ran.
 *     "ELF only" repeats it with debug_dirs pointing nowhere (/nonexistent),
 *     the figure of a host without libc6-dbg.
 *
 *   - another shard's misses during that cold C++ lookup: a second thread
 *     with its own reader resolves new libc addresses (each a slow-path
 *     miss: a new frame named from libc's symbol table, debug_dirs pointing
 *     nowhere so each is quick) while the first thread makes the cold C++
 *     lookup in the same symbolizer. The row is the second thread's lookups
 *     during it; max_wait_us its longest. A cold DWARF unit is indexed under
 *     its file's own lock, not the symbolizer's, so this stays far below
 *     the C++ lookup's own time (cxx_lookup_us).
 *
 * Extras: line_found (1 when the frame got a source line, i.e. DWARF was
 * used), and debug_info_mib of the C++ binary.
 */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"
#include "self_text.h"
#include "symbolizer.h"
#include "throughput_sym.h"

#ifndef BENCH_CXX_LARGE_BIN
#error "BENCH_CXX_LARGE_BIN: the generated C++ binary's path (bench/CMakeLists.txt)"
#endif

/* A debug root with nothing under it: the symbolizer finds no separate
 * debug file, as on a host without libc6-dbg. */
#define NO_DEBUG_DIR "/nonexistent"

struct cxx_child {
	pid_t pid;
	int stdin_fd; /* closing it ends the child */
	uint64_t entry[BENCH_CXX_LARGE_UNITS];
};

static void cxx_stop(struct cxx_child *c)
{
	int status;

	if (c->stdin_fd >= 0)
		close(c->stdin_fd);
	c->stdin_fd = -1;
	if (c->pid > 0)
		while (waitpid(c->pid, &status, 0) < 0 && errno == EINTR)
			;
	c->pid = -1;
}

/* Runs the C++ binary and reads its units' entry addresses. Returns 0 or -errno. */
static int cxx_start(struct cxx_child *c)
{
	int in[2], out[2], err = 0;
	char line[64 * BENCH_CXX_LARGE_UNITS], *p = line;
	FILE *f;

	c->pid = -1;
	c->stdin_fd = -1;
	if (pipe2(in, O_CLOEXEC))
		return -errno;
	if (pipe2(out, O_CLOEXEC)) {
		err = -errno;
		close(in[0]);
		close(in[1]);
		return err;
	}
	fflush(NULL);
	c->pid = fork();
	if (c->pid == 0) {
		dup2(in[0], 0);
		dup2(out[1], 1);
		execl(BENCH_CXX_LARGE_BIN, BENCH_CXX_LARGE_BIN, (char *)NULL);
		_exit(127);
	}
	err = c->pid < 0 ? -errno : 0;
	close(in[0]);
	close(out[1]);
	c->stdin_fd = in[1];
	f = err ? NULL : fdopen(out[0], "r");
	if (!f) {
		err = err ? err : -errno;
		close(out[0]);
		cxx_stop(c);
		return err;
	}
	/* The child closes its stdout only by exiting: a failed exec gives EOF. */
	if (!fgets(line, sizeof(line), f))
		err = -ENOEXEC;
	for (int k = 0; k < BENCH_CXX_LARGE_UNITS && !err; k++) {
		char *end;

		c->entry[k] = strtoull(p, &end, 16);
		if (end == p || !c->entry[k])
			err = -EBADMSG;
		p = end;
	}
	fclose(f);
	if (err) {
		fprintf(stderr, "pipeline-bench: symbolizer: %s printed no unit addresses\n",
			BENCH_CXX_LARGE_BIN);
		cxx_stop(c);
	}
	return err;
}

/* Returns the size of path's .debug_info section in bytes, 0 if none or unreadable. */
static uint64_t debug_info_bytes(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	Elf64_Ehdr eh;
	Elf64_Shdr sh, strtab;
	uint64_t size = 0;

	if (fd < 0)
		return 0;
	if (pread(fd, &eh, sizeof(eh), 0) != sizeof(eh) || memcmp(eh.e_ident, ELFMAG, SELFMAG) ||
	    eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_shentsize != sizeof(sh) ||
	    pread(fd, &strtab, sizeof(strtab), (off_t)(eh.e_shoff + eh.e_shstrndx * sizeof(sh))) !=
		    sizeof(strtab))
		goto cleanup;
	for (unsigned i = 0; i < eh.e_shnum && !size; i++) {
		char name[16] = "";

		if (pread(fd, &sh, sizeof(sh), (off_t)(eh.e_shoff + i * sizeof(sh))) != sizeof(sh))
			break;
		if (pread(fd, name, sizeof(name) - 1, (off_t)(strtab.sh_offset + sh.sh_name)) > 0 &&
		    !strcmp(name, ".debug_info"))
			size = sh.sh_size;
	}
cleanup:
	close(fd);
	return size;
}

/* Returns whether dpkg reports libc6-dbg installed: 1, 0, or -1 if unknown. */
static int libc6_dbg_installed(void)
{
	FILE *p = popen("dpkg-query -W -f='${Status}' libc6-dbg 2>/dev/null", "r");
	char status[128] = "";
	int rc;

	if (!p)
		return -1;
	if (!fgets(status, sizeof(status), p))
		status[0] = 0;
	rc = pclose(p);
	if (rc == -1 || !WIFEXITED(rc) || WEXITSTATUS(rc) > 1)
		return -1;
	return strstr(status, "install ok installed") != NULL;
}

/* A new symbolizer and reader, both or neither; debug_dirs NULL for the
 * default. Returns 0 or -errno. */
static int open_sym(const char *debug_dirs, struct symbolizer **sym, struct sym_reader **rd)
{
	struct symbolizer_opts opts = {.debug_dirs = debug_dirs};

	*rd = NULL;
	*sym = symbolizer__new(&opts);
	*rd = *sym ? symbolizer__reader_new(*sym) : NULL;
	if (*rd)
		return 0;
	symbolizer__free(*sym);
	*sym = NULL;
	return -errno;
}

/* One repetition of both C++ rows. */
static int cxx_once(const struct cxx_child *c, struct bench_row *first, struct bench_row *other)
{
	const struct sym_frame *out;
	struct symbolizer *sym;
	struct sym_reader *rd;
	uint64_t t0, t1, t2;
	bool line0;
	int err = open_sym(NULL, &sym, &rd);

	if (err)
		return err;
	t0 = bench_now_ns();
	err = sym_reader__resolve_user(rd, (uint32_t)c->pid, &c->entry[0], 1, &out);
	t1 = bench_now_ns();
	line0 = !err && out->line;
	err = err ? err
		  : sym_reader__resolve_user(rd, (uint32_t)c->pid,
					     &c->entry[BENCH_CXX_LARGE_UNITS - 1], 1, &out);
	t2 = bench_now_ns();
	if (!err) {
		bench_row__rep(first, 1, t1 - t0);
		bench_row__rep(other, 1, t2 - t1);
		bench_row__extra(first, "line_found", line0);
		bench_row__extra(other, "line_found", out->line != 0);
	}
	sym_reader__free(rd);
	symbolizer__free(sym);
	return err;
}

/* One repetition of a libc row. */
static int libc_once(uint64_t addr, const char *debug_dirs, struct bench_row *row)
{
	const struct sym_frame *out;
	struct symbolizer *sym;
	struct sym_reader *rd;
	uint64_t t0, ns;
	int err = open_sym(debug_dirs, &sym, &rd);

	if (err)
		return err;
	t0 = bench_now_ns();
	err = sym_reader__resolve_user(rd, (uint32_t)getpid(), &addr, 1, &out);
	ns = bench_now_ns() - t0;
	if (!err) {
		bench_row__rep(row, 1, ns);
		bench_row__extra(row, "line_found", out->line != 0);
	}
	sym_reader__free(rd);
	symbolizer__free(sym);
	return err;
}

/* Libc text addresses this many bytes apart: each a frame not seen yet.
 * libc's 1.5 MB of text hold about 100k, some 50 ms of lookups: longer than
 * the cold C++ lookup they run beside. */
#define STALL_STRIDE 16

struct stall_probe {
	struct sym_reader *rd;
	struct bench_text_range libc;
	atomic_int phase; /* 0: warm up, 1: measure (set by the other thread), 2: stop */
	atomic_bool warm; /* libc's image is loaded */
	uint64_t n, max_ns, sum_ns;
	int err;
};

static void *stall_probe_main(void *arg)
{
	struct stall_probe *p = arg;
	uint64_t n = (p->libc.hi - p->libc.lo) / STALL_STRIDE;

	for (uint64_t k = 0; k < n && atomic_load(&p->phase) < 2; k++) {
		uint64_t addr = p->libc.lo + k * STALL_STRIDE, t0 = bench_now_ns(), ns;
		const struct sym_frame *out;
		int phase = atomic_load(&p->phase);

		p->err = sym_reader__resolve_user(p->rd, (uint32_t)getpid(), &addr, 1, &out);
		if (p->err)
			break;
		ns = bench_now_ns() - t0;
		atomic_store(&p->warm, true);
		/* Counted by when it started: a lookup that waited out the
		 * whole cold lookup ends after it. */
		if (phase == 1) {
			p->n++;
			p->sum_ns += ns;
			if (ns > p->max_ns)
				p->max_ns = ns;
		}
	}
	atomic_store(&p->warm, true);
	return NULL;
}

/* One repetition of the stall row. */
static int stall_once(const struct cxx_child *c, struct bench_row *row)
{
	struct stall_probe p = {0};
	struct bench_text_range exe;
	const struct sym_frame *out;
	struct symbolizer *sym;
	struct sym_reader *rd;
	pthread_t th;
	uint64_t t0, t1;
	int err = bench_self_text__find(&exe, &p.libc);

	if (err || !p.libc.lo)
		return err ? err : -ENOENT;
	err = open_sym(NO_DEBUG_DIR, &sym, &rd);
	if (err)
		return err;
	p.rd = symbolizer__reader_new(sym);
	err = p.rd ? -pthread_create(&th, NULL, stall_probe_main, &p) : -errno;
	if (err)
		goto out;
	for (int i = 0; i < 10000 && !atomic_load(&p.warm); i++)
		usleep(100);
	atomic_store(&p.phase, 1);
	t0 = bench_now_ns();
	err = sym_reader__resolve_user(rd, (uint32_t)c->pid, &c->entry[0], 1, &out);
	t1 = bench_now_ns();
	atomic_store(&p.phase, 2);
	pthread_join(th, NULL);
	err = err ? err : p.err;
	if (!err && p.n) {
		bench_row__rep(row, p.n, p.sum_ns);
		bench_row__extra(row, "max_wait_us", (double)p.max_ns / 1e3);
		bench_row__extra(row, "cxx_lookup_us", (double)(t1 - t0) / 1e3);
	}
out:
	sym_reader__free(p.rd);
	sym_reader__free(rd);
	symbolizer__free(sym);
	return err;
}

int tp_sym_large__run(const struct tp_cfg *cfg, struct bench_report *rep, uint64_t libc_addr)
{
	struct cxx_child c;
	struct bench_row *first, *other, *libc = NULL, *libc_elf = NULL, *stall = NULL;
	int err = cxx_start(&c), dbg;

	if (err)
		return err;
	first = bench_report__row(rep, "symbolizer", "user, cold large C++ binary, first lookup");
	other = bench_report__row(rep, "symbolizer", "user, cold large C++ binary, another unit");
	if (libc_addr) {
		libc = bench_report__row(rep, "symbolizer", "user, cold libc, first lookup");
		libc_elf = bench_report__row(rep, "symbolizer", "user, cold libc, ELF only");
		stall = bench_report__row(rep, "symbolizer",
					  "user, another shard's misses during a cold C++ lookup");
	}
	if (!first || !other || (libc_addr && (!libc || !libc_elf || !stall))) {
		err = -errno;
		goto cleanup;
	}
	bench_row__note(first, "ELF + DWARF open + first unit, %d units", BENCH_CXX_LARGE_UNITS);
	bench_row__note(other, "then a lookup in the last unit, files open");
	bench_row__extra(first, "debug_info_mib",
			 (double)debug_info_bytes(BENCH_CXX_LARGE_BIN) / (1024 * 1024));
	if (libc) {
		dbg = libc6_dbg_installed();
		bench_row__note(libc, "maps + libc ELF (+ DWARF); libc6-dbg %s",
				dbg < 0 ? "unknown (no dpkg)"
				: dbg	? "installed"
					: "not installed");
		bench_row__note(libc_elf, "same, debug_dirs=%s: no separate DWARF", NO_DEBUG_DIR);
		bench_row__note(stall, "new libc frame each, ELF only; max_wait_us: the longest");
	}
	for (unsigned k = 0; k < cfg->repeat && !err; k++) {
		err = cxx_once(&c, first, other);
		err = err || !libc ? err : libc_once(libc_addr, NULL, libc);
		err = err || !libc ? err : libc_once(libc_addr, NO_DEBUG_DIR, libc_elf);
		err = err || !stall ? err : stall_once(&c, stall);
	}
cleanup:
	cxx_stop(&c);
	return err;
}
