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
 * Extras: line_found (1 when the frame got a source line, i.e. DWARF was
 * used), and debug_info_mib of the C++ binary.
 */
#include <elf.h>
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

int tp_sym_large__run(const struct tp_cfg *cfg, struct bench_report *rep, uint64_t libc_addr)
{
	struct cxx_child c;
	struct bench_row *first, *other, *libc = NULL, *libc_elf = NULL;
	int err = cxx_start(&c), dbg;

	if (err)
		return err;
	first = bench_report__row(rep, "symbolizer", "user, cold large C++ binary, first lookup");
	other = bench_report__row(rep, "symbolizer", "user, cold large C++ binary, another unit");
	if (libc_addr) {
		libc = bench_report__row(rep, "symbolizer", "user, cold libc, first lookup");
		libc_elf = bench_report__row(rep, "symbolizer", "user, cold libc, ELF only");
	}
	if (!first || !other || (libc_addr && (!libc || !libc_elf))) {
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
	}
	for (unsigned k = 0; k < cfg->repeat && !err; k++) {
		err = cxx_once(&c, first, other);
		err = err || !libc ? err : libc_once(libc_addr, NULL, libc);
		err = err || !libc ? err : libc_once(libc_addr, NO_DEBUG_DIR, libc_elf);
	}
cleanup:
	cxx_stop(&c);
	return err;
}
