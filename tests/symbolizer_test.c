/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Unit tests of the symbolizer (label unit, no root needed; a few checks are
 * stronger as root, where /proc/PID/map_files and kallsyms addresses are
 * readable).
 *
 * Test ELF files come from tests/data/symtest.c (see tests/symbolizer.cmake):
 * the executables are run as children that print their functions' addresses;
 * the shared library is dlopen'ed into this process. Broken files (garbage,
 * truncated ELF) are written to the build directory and mapped executable
 * here, so they show up in this process's own maps.
 *
 * Expected htlhash values are computed independently of the symbolizer's
 * code: by the sha256sum CLI over the byte stream that head -c, tail -c and
 * printf build in a shell.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include "symbolizer.h"
#include "symbolizer_internal.h"
#include "addr_child.h"
#include "test_helpers.h"

/* ---- helpers ---- */

static const struct sym_frame *resolve1(struct sym_reader *rd, uint32_t tgid, uint64_t addr)
{
	const struct sym_frame *f = NULL;

	if (sym_reader__resolve_user(rd, tgid, &addr, 1, &f))
		return NULL;
	return f;
}

static struct symbolizer *new_sym(bool kernel, size_t max_bytes)
{
	struct symbolizer_opts o = {.kernel = kernel, .max_cache_bytes = max_bytes};

	return symbolizer__new(&o);
}

static const char *scratch_path(char *buf, size_t len, const char *name)
{
	snprintf(buf, len, "%s/%s", SYMTEST_SCRATCH, name);
	return buf;
}

/* Maps a file executable into this process; returns the address or NULL. */
static void *map_exec(const char *path, size_t len)
{
	int fd = open(path, O_RDONLY);
	void *p;

	if (fd < 0)
		return NULL;
	p = mmap(NULL, len, PROT_READ | PROT_EXEC, MAP_PRIVATE, fd, 0);
	close(fd);
	return p == MAP_FAILED ? NULL : p;
}

static int write_file(const char *path, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	ssize_t w;

	if (fd < 0)
		return -1;
	w = write(fd, data, len);
	close(fd);
	return w == (ssize_t)len ? 0 : -1;
}

static int copy_file(const char *from, const char *to, size_t max)
{
	char *buf = NULL;
	size_t len;
	int ret;

	if (sym_read_file(from, &buf, &len))
		return -1;
	ret = write_file(to, buf, len < max ? len : max);
	free(buf);
	return ret;
}

/* Returns the file offset of one of our own addresses, from our maps. */
static uint64_t file_offset(uint64_t addr)
{
	struct proc_maps pm = {0};
	uint64_t off = UINT64_MAX;

	if (proc_maps__read(&pm, (uint32_t)getpid(), true))
		return off;
	for (size_t i = 0; i < pm.n; i++) {
		if (addr >= pm.maps[i].start && addr < pm.maps[i].end)
			off = addr - pm.maps[i].start + pm.maps[i].pgoff;
	}
	proc_maps__deinit(&pm);
	return off;
}

/*
 * Computes the expected htlhash of a file with a shell: head -c 4096, tail -c
 * 4096 and printf of the big-endian size, piped to sha256sum; keeps the first
 * 32 hex digits. Returns 0, or -1 if the shell or sha256sum is missing.
 */
static int shell_htlhash(const char *path, char *hex)
{
	char cmd[PATH_MAX * 2 + 256], be[64] = "", out[128] = "";
	struct stat st;
	size_t n = 0;
	FILE *f;

	if (stat(path, &st))
		return -1;
	for (int i = 0; i < 8; i++)
		n += (size_t)snprintf(be + n, sizeof(be) - n, "\\%03o",
				      (unsigned)(((uint64_t)st.st_size >> (56 - 8 * i)) & 0xff));
	snprintf(cmd, sizeof(cmd),
		 "{ head -c 4096 '%s'; tail -c 4096 '%s'; printf '%s'; } | sha256sum 2>/dev/null",
		 path, path, be);
	f = popen(cmd, "r");
	if (!f)
		return -1;
	if (!fgets(out, sizeof(out), f))
		out[0] = '\0';
	if (pclose(f) != 0 || strlen(out) < 64)
		return -1;
	memcpy(hex, out, 32);
	hex[32] = '\0';
	return 0;
}

/* ---- /proc/PID/maps parsing ---- */

static const char MAPS_TEXT[] =
	"55d0c0a00000-55d0c0a02000 r--p 00000000 08:01 1234                       /usr/bin/prog\n"
	"55d0c0a02000-55d0c0a05000 r-xp 00002000 08:01 1234                       /usr/bin/prog\n"
	"7f0000000000-7f0000001000 rwxp 00000000 00:00 0 \n"
	"7f0000100000-7f0000200000 r-xp 00010000 fd:02 99    /opt/my app/lib with space.so\n"
	"7f0000300000-7f0000301000 r-xp 00000000 00:05 77    /memfd:jit (deleted)\n"
	"this is not a maps line\n"
	"7f0000500000-7f0000400000 r-xp 00000000 00:00 0\n"
	"7ffd12345000-7ffd12347000 r-xp 00000000 00:00 0                          [vdso]\n"
	"ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]";

static int test_maps_parse(void)
{
	struct proc_maps pm = {0};
	const struct proc_map *m;

	CHECK(proc_maps__parse(&pm, MAPS_TEXT, strlen(MAPS_TEXT), true) == 0);
	CHECK_EQ_U64(pm.n, 6);
	m = &pm.maps[0];
	CHECK_EQ_U64(m->start, 0x55d0c0a02000);
	CHECK_EQ_U64(m->end, 0x55d0c0a05000);
	CHECK_EQ_U64(m->pgoff, 0x2000);
	CHECK_EQ_U64(m->dev, makedev(8, 1));
	CHECK_EQ_U64(m->inode, 1234);
	CHECK_STR(proc_maps__path(&pm, m), "/usr/bin/prog");
	CHECK(m->flags == PROC_MAP_EXEC);
	m = &pm.maps[1]; /* anonymous, trailing blank */
	CHECK_STR(proc_maps__path(&pm, m), "");
	CHECK_EQ_U64(m->inode, 0);
	m = &pm.maps[2];
	CHECK_STR(proc_maps__path(&pm, m), "/opt/my app/lib with space.so");
	CHECK_EQ_U64(m->dev, makedev(0xfd, 2));
	CHECK_EQ_U64(m->pgoff, 0x10000);
	m = &pm.maps[3];
	CHECK_STR(proc_maps__path(&pm, m), "/memfd:jit (deleted)");
	CHECK(m->flags & PROC_MAP_DELETED);
	CHECK_STR(proc_maps__path(&pm, &pm.maps[4]), "[vdso]");
	m = &pm.maps[5]; /* last line, no newline */
	CHECK_STR(proc_maps__path(&pm, m), "[vsyscall]");
	CHECK_EQ_U64(m->start, 0xffffffffff600000);
	proc_maps__deinit(&pm);

	/* Every mapping, not only executable ones. */
	CHECK(proc_maps__parse(&pm, MAPS_TEXT, strlen(MAPS_TEXT), false) == 0);
	CHECK_EQ_U64(pm.n, 7);
	CHECK(!(pm.maps[0].flags & PROC_MAP_EXEC));
	proc_maps__deinit(&pm);

	/* Our own maps read fine and hold at least one executable mapping. */
	CHECK(proc_maps__read(&pm, (uint32_t)getpid(), true) == 0);
	CHECK(pm.n > 0);
	proc_maps__deinit(&pm);
	CHECK(proc_maps__read(&pm, 0x7fffffff, true) == -ENOENT);
	proc_maps__deinit(&pm);
	return 0;
}

/* ---- kallsyms parsing ---- */

static const char KALLSYMS_TEXT[] = "ffffffff81000000 T _stext\n"
				    "ffffffff81000100 W weak_alias\n"
				    "ffffffff81000100 t local_fn\n"
				    "ffffffff81000200 D some_data\n"
				    "ffffffff81000300 T next_fn\n"
				    "ffffffffc0001000 t mod_fn\t[mymod]\n"
				    "ffffffffc0001100 T mod_fn2\t[mymod]\n"
				    "ffffffffc0002000 t other_fn\t[othermod]\n";

static int test_kallsyms_parse(void)
{
	struct kallsyms *ks = NULL;
	const struct ksym *k;
	static const char restricted[] = "0000000000000000 T _stext\n"
					 "0000000000000000 T schedule\n";

	CHECK(kallsyms__parse(KALLSYMS_TEXT, strlen(KALLSYMS_TEXT), &ks) == 0);
	CHECK(!ks->restricted);
	CHECK_EQ_U64(ks->n_syms, 6);
	CHECK_EQ_U64(ks->n_mods, 2);
	k = kallsyms__lookup(ks, 0xffffffff81000150);
	CHECK(k);
	CHECK_STR(ks->names + k->name, "local_fn"); /* t preferred over W */
	CHECK_EQ_U64(k->mod, 0);
	k = kallsyms__lookup(ks, 0xffffffff81000250); /* data symbols are skipped */
	CHECK(k);
	CHECK_STR(ks->names + k->name, "local_fn");
	k = kallsyms__lookup(ks, 0xffffffffc0001010);
	CHECK(k);
	CHECK_STR(ks->names + k->name, "mod_fn");
	CHECK(k->mod == 1);
	CHECK_STR(ks->names + ks->mod_names[k->mod - 1], "[mymod]");
	k = kallsyms__lookup(ks, 0xffffffffc0002001);
	CHECK(k);
	CHECK_STR(ks->names + ks->mod_names[k->mod - 1], "[othermod]");
	CHECK(!kallsyms__lookup(ks, 0xffffffff80000000));
	kallsyms__free(ks);

	ks = NULL;
	CHECK(kallsyms__parse(restricted, strlen(restricted), &ks) == 0);
	CHECK(ks->restricted);
	CHECK_EQ_U64(ks->n_syms, 0);
	CHECK(!kallsyms__lookup(ks, 0xffffffff81000000));
	kallsyms__free(ks);
	return 0;
}

/* ---- ELF images ---- */

static int test_elf_image(void)
{
	struct elf_image *img = NULL;
	char err[256] = "";
	int fd = open(SYMTEST_SO, O_RDONLY);

	CHECK(fd >= 0);
	CHECK(elf_image__load_fd(fd, &img, err, sizeof(err)) == 0);
	close(fd);
	CHECK(img->n_syms >= 4);
	CHECK(img->n_loads >= 1);
	CHECK(strlen(img->build_id) == 0 || strlen(img->build_id) % 2 == 0);
	for (const char *p = img->build_id; *p; p++)
		CHECK((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f'));
	/* Sorted and disjoint. */
	for (size_t i = 1; i < img->n_syms; i++)
		CHECK(img->syms[i - 1].start + img->syms[i - 1].len <= img->syms[i].start);
	elf_image__free(img);

	/* Garbage and truncated files fail with a reason. */
	img = NULL;
	CHECK(elf_image__load_mem("not an elf file at all", 22, &img, err, sizeof(err)) < 0);
	CHECK(!img);
	CHECK(strlen(err) > 0);
	return 0;
}

/* ---- user-space resolution ---- */

static int test_resolve_shared_lib(void)
{
	struct symbolizer *sym = new_sym(false, 0);
	struct sym_reader *rd = sym ? symbolizer__reader_new(sym) : NULL;
	void *h = dlopen(SYMTEST_SO, RTLD_NOW | RTLD_LOCAL);
	const struct sym_frame *out[4];
	struct symbolizer_stats st;
	uint64_t a[4];

	CHECK(sym && rd && h);
	a[0] = (uint64_t)(uintptr_t)dlsym(h, "symtest_alpha");
	a[1] = (uint64_t)(uintptr_t)dlsym(h, "symtest_beta") + 1; /* a return address */
	a[2] = (uint64_t)(uintptr_t)dlsym(h, "symtest_gamma") + 1;
	a[3] = (uint64_t)(uintptr_t)dlsym(h, "symtest_nosize") + 3;
	CHECK(a[0] && a[1] > 1 && a[2] > 1 && a[3] > 3);
	CHECK(sym_reader__resolve_user(rd, (uint32_t)getpid(), a, 4, out) == 0);
	CHECK_STR(out[0]->function, "symtest_alpha");
	CHECK_STR(out[1]->function, "symtest_beta");
	CHECK_STR(out[2]->function, "symtest_gamma");
	CHECK_STR(out[3]->function, "symtest_nosize");
	CHECK_STR(out[0]->module->name, "libsymtest.so");
	CHECK(strstr(out[0]->module->path, "libsymtest.so"));
	CHECK(!out[0]->module->is_kernel);
	CHECK(out[0]->kind == SYM_FRAME_USER);
	CHECK(out[0]->module == out[1]->module);
	CHECK(out[0]->id && out[1]->id && out[0]->id != out[1]->id);
	/* The address is the file offset: addr - mapping start + mapping offset. */
	CHECK_EQ_U64(out[0]->address, file_offset(a[0]));
	CHECK_EQ_U64(out[1]->address, file_offset(a[1] - 1));
	CHECK(out[1]->address != out[2]->address);

	/* Second time: all served by the reader cache, same pointers. */
	{
		const struct sym_frame *again[4];

		CHECK(sym_reader__resolve_user(rd, (uint32_t)getpid(), a, 4, again) == 0);
		for (int i = 0; i < 4; i++)
			CHECK(again[i] == out[i]);
	}
	symbolizer__stats(sym, &st);
	CHECK_EQ_U64(st.lookups, 8);
	CHECK_EQ_U64(st.reader_hits, 4);
	CHECK_EQ_U64(st.lookups, st.reader_hits + st.shared_hits + st.misses);
	CHECK_EQ_U64(st.processes, 1);
	CHECK(st.modules >= 2);
	CHECK(st.cache_bytes > 0);
	CHECK_EQ_U64(st.cache_full, 0);
	sym_reader__free(rd);
	symbolizer__free(sym);
	dlclose(h);
	return 0;
}

/* ---- CFI rules for --unwind auto's walks ---- */

static void *volatile rule_sink;

/* A function's first instruction: no frame yet. */
__attribute__((noinline)) static void *rule_probe_callee(void)
{
	return __builtin_return_address(0);
}

/* Built with frame pointers (the project's flags): at the return address of
 * its call, the CFA is rbp + 16 with rbp saved below it. */
__attribute__((noinline)) static void *rule_probe_caller(void)
{
	void *ra = rule_probe_callee();
	rule_sink = ra; /* after the call: not a tail call */
	return ra;
}

static int test_unwind_rule(void)
{
	struct symbolizer *sym = new_sym(false, 0);
	struct sym_reader *rd = sym ? symbolizer__reader_new(sym) : NULL;
	struct sym_unwinder *u = rd ? sym_unwinder__new(rd) : NULL;
	uint32_t self = (uint32_t)getpid();
	uint64_t entry = (uint64_t)(uintptr_t)rule_probe_callee;
	uint64_t ret = (uint64_t)(uintptr_t)rule_probe_caller();
	struct sym_cfa_rule r;

	CHECK(u);
	/* The maps are read on the first resolve. */
	CHECK(resolve1(rd, self, entry) != NULL);
	CHECK(sym_unwinder__rule(u, self, entry, true, &r) == 0);
	CHECK(!r.cfa_on_bp);
	CHECK(r.cfa_off == 8);
	CHECK(r.ra_off == -8);
	CHECK(!r.bp_saved);
	CHECK(!r.outermost);
	CHECK(sym_unwinder__rule(u, self, ret, false, &r) == 0);
	CHECK(r.cfa_on_bp);
	CHECK(r.cfa_off == 16);
	CHECK(r.ra_off == -8);
	CHECK(r.bp_saved);
	CHECK(r.bp_off == -16);
	/* Twice: the second from the rule cache, the same rule. */
	CHECK(sym_unwinder__rule(u, self, ret, false, &r) == 0 && r.cfa_off == 16);
	/* No mapping there. */
	CHECK(sym_unwinder__rule(u, self, 0x1000, true, &r) == -ENOENT);
	sym_unwinder__free(u);
	sym_reader__free(rd);
	symbolizer__free(sym);
	return 0;
}

static int check_executable(const char *path)
{
	struct symbolizer *sym = new_sym(false, 0);
	struct sym_reader *rd = sym ? symbolizer__reader_new(sym) : NULL;
	struct addr_child c = {.stdin_fd = -1};
	const struct sym_frame *out[4];
	uint64_t a[4];
	int n = 3;

	CHECK(sym && rd);
	CHECK(addr_child__start(&c, path, 3, 4) == 0);
	a[0] = c.addr[0];
	a[1] = c.addr[1] + 1;
	a[2] = c.addr[2] + 4;
	if (c.addr[3]) {
		a[3] = c.addr[3] + 2;
		n = 4;
	}
	CHECK(sym_reader__resolve_user(rd, (uint32_t)c.pid, a, (size_t)n, out) == 0);
	addr_child__stop(&c);
	CHECK_STR(out[0]->function, "symtest_alpha");
	CHECK_STR(out[1]->function, "symtest_beta");
	CHECK_STR(out[2]->function, "symtest_gamma");
	if (n == 4)
		CHECK_STR(out[3]->function, "symtest_nosize");
	CHECK_STR(out[0]->module->name, sym_basename(path));
	sym_reader__free(rd);
	symbolizer__free(sym);
	return 0;
}

static int test_resolve_pie(void)
{
	return check_executable(SYMTEST_PIE);
}

static int test_resolve_non_pie(void)
{
	return check_executable(SYMTEST_NOPIE);
}

static int test_process_exited_keeps_maps(void)
{
	struct symbolizer *sym = new_sym(false, 0);
	struct sym_reader *rd = sym ? symbolizer__reader_new(sym) : NULL, *rd2 = NULL;
	struct addr_child c = {.stdin_fd = -1};
	const struct sym_frame *f, *alpha;
	struct symbolizer_stats st;
	uint32_t pid;

	CHECK(sym && rd);
	CHECK(addr_child__start(&c, SYMTEST_PIE, 3, 4) == 0);
	pid = (uint32_t)c.pid;
	alpha = resolve1(rd, pid, c.addr[0]);
	CHECK(alpha);
	CHECK_STR(alpha->function, "symtest_alpha");
	kill(c.pid, SIGKILL);

	/* Dead but not reaped (a zombie's maps are empty): invalidated, and
	 * another address through a fresh reader still resolves. */
	usleep(20 * 1000);
	symbolizer__invalidate_process(sym, pid);
	rd2 = symbolizer__reader_new(sym);
	CHECK(rd2);
	f = resolve1(rd2, pid, c.addr[1]);
	CHECK(f);
	CHECK_STR(f->function, "symtest_beta");
	addr_child__stop(&c);

	/* Reaped and invalidated again: the re-read fails, the old maps stay. */
	symbolizer__invalidate_process(sym, pid);
	f = resolve1(rd, pid, c.addr[2]);
	CHECK(f);
	CHECK_STR(f->function, "symtest_gamma");
	f = resolve1(rd, pid, c.addr[0]);
	CHECK(f == alpha);
	symbolizer__stats(sym, &st);
	CHECK_EQ_U64(st.processes, 1);
	CHECK(st.maps_refreshes >= 2);
	sym_reader__free(rd2);
	sym_reader__free(rd);
	symbolizer__free(sym);
	return 0;
}

static int test_stripped(void)
{
	struct symbolizer *sym = new_sym(false, 0);
	struct sym_reader *rd = sym ? symbolizer__reader_new(sym) : NULL;
	struct addr_child c = {.stdin_fd = -1};
	const struct sym_frame *out[3];
	uint64_t a[3];

	CHECK(sym && rd);
	CHECK(addr_child__start(&c, SYMTEST_STRIPPED, 3, 4) == 0);
	a[0] = c.addr[0];
	a[1] = c.addr[1] + 1;
	a[2] = c.addr[0];
	CHECK(sym_reader__resolve_user(rd, (uint32_t)c.pid, a, 3, out) == 0);
	addr_child__stop(&c);
	for (int i = 0; i < 3; i++) {
		CHECK(out[i]->function == NULL || strncmp(out[i]->function, "symtest_", 8) != 0);
		CHECK_STR(out[i]->module->name, "symtest_pie.stripped");
	}
	CHECK(out[0] != out[1]);
	CHECK(out[0]->address != out[1]->address);
	sym_reader__free(rd);
	symbolizer__free(sym);
	return 0;
}

static int test_malformed(void)
{
	struct symbolizer *sym = new_sym(false, 0);
	struct sym_reader *rd = sym ? symbolizer__reader_new(sym) : NULL;
	char garbage_path[512], trunc_path[512], junk[8192];
	const struct sym_frame *f;
	struct symbolizer_stats st;
	void *g, *t;

	CHECK(sym && rd);
	for (size_t i = 0; i < sizeof(junk); i++)
		junk[i] = (char)(i * 131 + 7);
	scratch_path(garbage_path, sizeof(garbage_path), "symtest_garbage.bin");
	scratch_path(trunc_path, sizeof(trunc_path), "symtest_truncated.so");
	CHECK(write_file(garbage_path, junk, sizeof(junk)) == 0);
	CHECK(copy_file(SYMTEST_SO, trunc_path, 600) == 0);
	g = map_exec(garbage_path, sizeof(junk));
	t = map_exec(trunc_path, 4096);
	if (!g || !t) {
		fprintf(stderr, "cannot map files executable in %s: %s\n", SYMTEST_SCRATCH,
			strerror(errno));
		return TEST_SKIP;
	}
	f = resolve1(rd, (uint32_t)getpid(), (uint64_t)(uintptr_t)g + 100);
	CHECK(f && !f->function);
	CHECK_STR(f->module->name, "symtest_garbage.bin");
	CHECK_EQ_U64(f->address, 100);
	f = resolve1(rd, (uint32_t)getpid(), (uint64_t)(uintptr_t)t + 200);
	CHECK(f && !f->function);
	CHECK_STR(f->module->name, "symtest_truncated.so");
	/* Once per module: another address does not count again. */
	f = resolve1(rd, (uint32_t)getpid(), (uint64_t)(uintptr_t)g + 300);
	CHECK(f && !f->function);
	symbolizer__stats(sym, &st);
	CHECK_EQ_U64(st.elf_load_errors, 2);
	CHECK_EQ_U64(st.unknown, 3);
	CHECK_EQ_U64(st.lookups, 3);
	munmap(g, sizeof(junk));
	munmap(t, 4096);
	unlink(garbage_path);
	unlink(trunc_path);
	sym_reader__free(rd);
	symbolizer__free(sym);
	return 0;
}

static int test_deleted_file(void)
{
	struct symbolizer *sym = new_sym(false, 0);
	struct sym_reader *rd = sym ? symbolizer__reader_new(sym) : NULL;
	char path[512];
	const struct sym_frame *f;
	void *h, *fn;

	CHECK(sym && rd);
	scratch_path(path, sizeof(path), "libsymtest-deleted.so");
	CHECK(copy_file(SYMTEST_SO, path, SIZE_MAX) == 0);
	h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	CHECK(h);
	fn = dlsym(h, "symtest_gamma");
	CHECK(fn);
	CHECK(unlink(path) == 0);
	f = resolve1(rd, (uint32_t)getpid(), (uint64_t)(uintptr_t)fn);
	CHECK(f);
	CHECK_STR(f->module->name, "libsymtest-deleted.so");
	CHECK(strstr(f->module->path, "(deleted)"));
	/* Through /proc/PID/map_files, which needs CAP_SYS_ADMIN. */
	if (geteuid() == 0)
		CHECK_STR(f->function, "symtest_gamma");
	sym_reader__free(rd);
	symbolizer__free(sym);
	dlclose(h);
	return 0;
}

/* Finds a vdso function by parsing our own vdso; returns its address or 0. */
static uint64_t vdso_function(const char **name)
{
	static const char *const names[] = {"__vdso_clock_gettime", "__kernel_clock_gettime"};
	uintptr_t base = (uintptr_t)getauxval(AT_SYSINFO_EHDR);
	uint64_t addr = 0;
	Elf_Scn *scn = NULL;
	GElf_Phdr ph;
	Elf *e;

	if (!base || elf_version(EV_CURRENT) == EV_NONE)
		return 0;
	e = elf_memory((char *)base, 64 * 1024);
	if (!e)
		return 0;
	if (!gelf_getphdr(e, 0, &ph))
		goto out;
	while (!addr && (scn = elf_nextscn(e, scn))) {
		GElf_Shdr sh;
		Elf_Data *d;

		if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_DYNSYM || !sh.sh_entsize)
			continue;
		d = elf_getdata(scn, NULL);
		for (size_t i = 0; d && i < sh.sh_size / sh.sh_entsize; i++) {
			GElf_Sym s;
			const char *n;

			if (!gelf_getsym(d, (int)i, &s))
				break;
			n = elf_strptr(e, sh.sh_link, s.st_name);
			for (size_t j = 0; n && j < 2; j++) {
				if (strcmp(n, names[j]) == 0) {
					*name = names[j];
					addr = base + s.st_value - ph.p_vaddr + ph.p_offset;
				}
			}
		}
	}
out:
	elf_end(e);
	return addr;
}

static int test_pseudo_mappings(void)
{
	struct symbolizer *sym = new_sym(false, 0);
	struct sym_reader *rd = sym ? symbolizer__reader_new(sym) : NULL;
	void *anon = mmap(NULL, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	const char *vname = NULL;
	uint64_t vaddr = vdso_function(&vname);
	const struct sym_frame *f;

	CHECK(sym && rd && anon != MAP_FAILED);
	f = resolve1(rd, (uint32_t)getpid(), (uint64_t)(uintptr_t)anon + 16);
	CHECK(f && !f->function);
	CHECK_STR(f->module->name, "[anon]");
	CHECK_STR(f->module->path, "[anon]");
	CHECK_STR(f->module->htlhash, ""); /* no file to hash */
	CHECK_STR(f->module->build_id, "");
	CHECK_EQ_U64(f->address, (uint64_t)(uintptr_t)anon + 16); /* no file: the address */

	/* Outside every mapping. */
	f = resolve1(rd, (uint32_t)getpid(), 0x1000);
	CHECK(f && !f->function);
	CHECK_STR(f->module->name, "[unknown]");
	CHECK_STR(f->module->htlhash, "");
	CHECK_EQ_U64(f->address, 0x1000);
	CHECK(resolve1(rd, (uint32_t)getpid(), 0x1000) == f);

	/* No such process. */
	f = resolve1(rd, 0x7fffffff, 0x400000);
	CHECK(f && !f->function);
	CHECK_STR(f->module->name, "[unknown]");

	if (vaddr) {
		f = resolve1(rd, (uint32_t)getpid(), vaddr);
		CHECK(f);
		CHECK_STR(f->module->name, "[vdso]");
		CHECK(f->function && strstr(f->function, "clock_gettime"));
		CHECK_STR(f->module->htlhash, ""); /* identified by its build id */
	}
	munmap(anon, 4096);
	sym_reader__free(rd);
	symbolizer__free(sym);
	return 0;
}

/* ---- kernel ---- */

static uint64_t kallsyms_addr(const char *name)
{
	FILE *f = fopen("/proc/kallsyms", "r");
	char line[512], sym[256], type;
	unsigned long long addr;
	uint64_t found = 0;

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%llx %c %255s", &addr, &type, sym) == 3 &&
		    strcmp(sym, name) == 0 && (type == 'T' || type == 't')) {
			found = addr;
			break;
		}
	}
	fclose(f);
	return found;
}

static int test_kernel(void)
{
	struct symbolizer *sym = new_sym(true, 0);
	struct sym_reader *rd = sym ? symbolizer__reader_new(sym) : NULL;
	uint64_t sched = kallsyms_addr("schedule");
	const struct sym_frame *out[2];
	uint64_t a[2];

	CHECK(sym && rd);
	if (access("/proc/kallsyms", R_OK) != 0) {
		sym_reader__free(rd);
		symbolizer__free(sym);
		return TEST_SKIP;
	}
	a[0] = sched ? sched : 0xffffffff81000000ull;
	a[1] = a[0] + 1; /* a return address just past the start */
	CHECK(sym_reader__resolve_kernel(rd, a, 2, out) == 0);
	CHECK(out[0] == out[1]);
	CHECK(out[0]->kind == SYM_FRAME_KERNEL);
	CHECK(out[0]->module->is_kernel);
	CHECK_STR(out[0]->module->path, "[kernel.kallsyms]");
	if (sched) {
		CHECK_EQ_U64(out[0]->address, a[0]);
		CHECK_STR(out[0]->function, "schedule");
	} else { /* kptr_restrict: one frame for every address */
		CHECK_EQ_U64(out[0]->address, 0);
		CHECK_STR(out[0]->function, "[kernel]");
	}
	sym_reader__free(rd);
	symbolizer__free(sym);

	/* Kernel symbols disabled: module-level kernel frames. */
	sym = new_sym(false, 0);
	rd = sym ? symbolizer__reader_new(sym) : NULL;
	CHECK(sym && rd);
	CHECK(sym_reader__resolve_kernel(rd, a, 1, out) == 0);
	CHECK(!out[0]->function);
	CHECK_STR(out[0]->module->name, "[kernel.kallsyms]");
	sym_reader__free(rd);
	symbolizer__free(sym);
	return 0;
}

/* ---- interning, bounds ---- */

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static int test_interning(void)
{
	struct symbolizer *sym = new_sym(true, 0);
	struct sym_reader *r1 = sym ? symbolizer__reader_new(sym) : NULL;
	struct sym_reader *r2 = sym ? symbolizer__reader_new(sym) : NULL;
	void *h = dlopen(SYMTEST_SO, RTLD_NOW | RTLD_LOCAL);
	const struct sym_frame *o1[8], *o2[8], *k1[2], *k2[2];
	uint64_t a[8], ka[2] = {0xffffffff81000000ull, 0xffffffff81000010ull}, ids[10];

	CHECK(sym && r1 && r2 && h);
	a[0] = (uint64_t)(uintptr_t)dlsym(h, "symtest_alpha");
	a[1] = (uint64_t)(uintptr_t)dlsym(h, "symtest_beta") + 1;
	a[2] = (uint64_t)(uintptr_t)dlsym(h, "symtest_gamma") + 1;
	a[3] = (uint64_t)(uintptr_t)&printf + 1;
	a[4] = (uint64_t)(uintptr_t)&test_interning + 1;
	a[5] = 0x2000;
	a[6] = 0x3000;
	a[7] = (uint64_t)(uintptr_t)dlsym(h, "symtest_alpha") + 2; /* same function, other offset */
	CHECK(sym_reader__resolve_user(r1, (uint32_t)getpid(), a, 8, o1) == 0);
	CHECK(sym_reader__resolve_user(r2, (uint32_t)getpid(), a, 8, o2) == 0);
	CHECK(sym_reader__resolve_kernel(r1, ka, 2, k1) == 0);
	CHECK(sym_reader__resolve_kernel(r2, ka, 2, k2) == 0);
	for (int i = 0; i < 8; i++) {
		CHECK(o1[i] == o2[i]);
		ids[i] = o1[i]->id;
	}
	CHECK(k1[0] == k2[0] && k1[1] == k2[1]);
	ids[8] = k1[0]->id;
	ids[9] = k1[1]->id;
	CHECK_STR(o1[4]->function, "test_interning");
	CHECK(o1[0] != o1[7]); /* interned by address, not by name */
	CHECK_STR(o1[7]->function, "symtest_alpha");
	qsort(ids, 10, sizeof(ids[0]), cmp_u64);
	CHECK(ids[0] != 0);
	for (int i = 1; i < 10; i++)
		CHECK(ids[i] != ids[i - 1]);
	sym_reader__free(r1);
	sym_reader__free(r2);
	symbolizer__free(sym);
	dlclose(h);
	return 0;
}

/* Marker frames: one per name, named as asked, in "[pipeline]", never a
 * frame of real code. */
static int test_marker(void)
{
	struct symbolizer *sym = new_sym(false, 0);
	const struct sym_frame *a, *b, *c;

	CHECK(sym);
	a = symbolizer__marker(sym, "[unsampled: ran between ticks]");
	b = symbolizer__marker(sym, "[unsampled: ran between ticks]");
	c = symbolizer__marker(sym, "[another marker]");
	CHECK(a && b && c);
	CHECK(a == b && a != c && a->id != c->id);
	CHECK_STR(a->function, "[unsampled: ran between ticks]");
	CHECK_STR(c->function, "[another marker]");
	CHECK_STR(a->module->name, "[pipeline]");
	CHECK(!a->module->is_kernel && a->kind == SYM_FRAME_USER && !a->n_inlined);
	symbolizer__free(sym);
	return 0;
}

static int test_cache_full(void)
{
	struct symbolizer *sym = new_sym(false, 1); /* 1 byte: always over */
	struct sym_reader *rd = sym ? symbolizer__reader_new(sym) : NULL;
	void *h = dlopen(SYMTEST_SO, RTLD_NOW | RTLD_LOCAL);
	const struct sym_frame *out[2];
	struct symbolizer_stats st;
	uint64_t a[2];

	CHECK(sym && rd && h);
	a[0] = (uint64_t)(uintptr_t)dlsym(h, "symtest_alpha");
	a[1] = (uint64_t)(uintptr_t)dlsym(h, "symtest_beta") + 1;
	CHECK(sym_reader__resolve_user(rd, (uint32_t)getpid(), a, 2, out) == 0);
	CHECK(!out[0]->function && !out[1]->function);
	CHECK_STR(out[0]->module->name, "libsymtest.so");
	CHECK(out[0] == out[1]); /* the module's one coarse frame */
	symbolizer__stats(sym, &st);
	CHECK(st.cache_full >= 2);
	CHECK_EQ_U64(st.elf_load_errors, 0);
	sym_reader__free(rd);
	symbolizer__free(sym);
	dlclose(h);
	return 0;
}

/* Past the bound, the least recently used file's symbols are evicted and
 * loaded again when a new frame needs them; frames handed out stay valid. */
static int test_evict_lru(void)
{
	void *h = dlopen(SYMTEST_SO, RTLD_NOW | RTLD_LOCAL);
	struct symbolizer *sym0 = new_sym(false, 0), *sym = NULL;
	struct sym_reader *rd0 = sym0 ? symbolizer__reader_new(sym0) : NULL, *rd = NULL;
	const struct sym_frame *alpha, *libc_frame, *beta;
	struct sym_reader *rd2 = NULL;
	struct symbolizer_stats st;
	uint64_t a_alpha, a_beta, a_libc;
	char build_id[160];

	CHECK(h && sym0 && rd0);
	a_alpha = (uint64_t)(uintptr_t)dlsym(h, "symtest_alpha");
	a_beta = (uint64_t)(uintptr_t)dlsym(h, "symtest_beta");
	a_libc = (uint64_t)(uintptr_t)dlsym(RTLD_DEFAULT, "getpid");
	CHECK(a_alpha && a_beta && a_libc);
	/* What one file's symbols and this process's maps take. */
	alpha = resolve1(rd0, (uint32_t)getpid(), a_alpha);
	CHECK(alpha && alpha->module->build_id[0]);
	snprintf(build_id, sizeof(build_id), "%s", alpha->module->build_id);
	symbolizer__stats(sym0, &st);
	sym_reader__free(rd0);
	symbolizer__free(sym0);

	/* Room for that, not for libc's symbols too. */
	sym = new_sym(false, st.cache_bytes + 4096);
	rd = sym ? symbolizer__reader_new(sym) : NULL;
	CHECK(sym && rd);
	alpha = resolve1(rd, (uint32_t)getpid(), a_alpha);
	CHECK(alpha);
	CHECK_STR(alpha->function, "symtest_alpha");
	/* libc loads, evicts libsymtest's symbols, and is itself over: coarse. */
	libc_frame = resolve1(rd, (uint32_t)getpid(), a_libc);
	CHECK(libc_frame && libc_frame->module);
	CHECK(strstr(libc_frame->module->name, "libc"));
	CHECK(!libc_frame->function); /* module level */
	/* A new frame in libsymtest loads it again (evicting libc). */
	beta = resolve1(rd, (uint32_t)getpid(), a_beta);
	CHECK(beta);
	CHECK_STR(beta->function, "symtest_beta");
	CHECK(beta->module == alpha->module);
	CHECK_STR(beta->module->build_id, build_id);
	/* Handed out before the evictions, still whole, and still the one the
	 * shared table gives another reader. */
	CHECK_STR(alpha->function, "symtest_alpha");
	rd2 = symbolizer__reader_new(sym);
	CHECK(rd2 && resolve1(rd2, (uint32_t)getpid(), a_alpha) == alpha);
	sym_reader__free(rd2);
	symbolizer__stats(sym, &st);
	CHECK(st.images_evicted >= 2);
	CHECK(st.cache_full >= 1);
	CHECK_EQ_U64(st.elf_load_errors, 0);
	sym_reader__free(rd);
	symbolizer__free(sym);
	dlclose(h);
	return 0;
}

static int test_api_edges(void)
{
	struct symbolizer *sym = symbolizer__new(NULL);
	struct sym_reader *rd = sym ? symbolizer__reader_new(sym) : NULL;
	const struct sym_frame *out[1];

	CHECK(sym && rd);
	CHECK(sym_reader__resolve_user(rd, (uint32_t)getpid(), NULL, 0, out) == 0);
	CHECK(!symbolizer__reader_new(NULL) && errno == EINVAL);

	/* A deep stack: more misses than one batch (reader.c MISS_BATCH). */
	{
		enum { DEEP = 200 };
		const struct sym_frame *deep[DEEP];
		uint64_t a[DEEP];

		for (size_t i = 0; i < DEEP; i++)
			a[i] = 0x10000 + i * 16;
		CHECK(sym_reader__resolve_user(rd, (uint32_t)getpid(), a, DEEP, deep) == 0);
		for (size_t i = 0; i < DEEP; i++) {
			CHECK(deep[i]);
			CHECK_STR(deep[i]->module->name, "[unknown]");
			CHECK_EQ_U64(deep[i]->address, i ? a[i] - 1 : a[i]);
		}
	}
	symbolizer__invalidate_process(sym, 12345); /* unknown tgid: fine */
	sym_reader__free(NULL);
	sym_reader__free(rd);
	symbolizer__free(sym);
	symbolizer__free(NULL);
	return 0;
}

/* ---- htlhash ---- */

/* Writes a file of len bytes of a position-dependent pattern. */
static int write_pattern(const char *path, size_t len)
{
	unsigned char *b = malloc(len ? len : 1);
	int ret;

	if (!b)
		return -1;
	for (size_t i = 0; i < len; i++)
		b[i] = (unsigned char)(i * 7 + i / 251);
	ret = write_file(path, b, len);
	free(b);
	return ret;
}

static int test_htlhash(void)
{
	/* Empty, shorter than a page (hashed twice), overlapping pages, disjoint pages. */
	static const size_t sizes[] = {0, 100, 4096, 6000, 8192, 10000, 65537};
	char path[512], want[64], got[64];
	int fd;

	scratch_path(path, sizeof(path), "symtest_htlhash.bin");
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		CHECK(write_pattern(path, sizes[i]) == 0);
		if (shell_htlhash(path, want)) {
			fprintf(stderr, "no shell or sha256sum: htlhash not checked\n");
			unlink(path);
			return TEST_SKIP;
		}
		fd = open(path, O_RDONLY);
		CHECK(fd >= 0);
		CHECK(sym_htlhash_fd(fd, got) == 0);
		close(fd);
		if (strcmp(got, want) != 0)
			fprintf(stderr, "htlhash of %zu bytes\n", sizes[i]);
		CHECK_STR(got, want);
		CHECK_EQ_U64(strlen(got), SYM_HTLHASH_HEX);
	}
	unlink(path);

	/* Known vector: an empty file hashes its size only, eight zero bytes:
	 * SHA-256 = af5570f5a1810b7af78caf4bc70a660f0df51e42baf91d4de5b2328de0e83dfc. */
	CHECK(sym_htlhash_mem("", "", 0, got) == 0);
	CHECK_STR(got, "af5570f5a1810b7af78caf4bc70a660f");

	/* A directory or an unreadable fd gives "". */
	fd = open(SYMTEST_SCRATCH, O_RDONLY | O_DIRECTORY);
	CHECK(fd >= 0);
	CHECK(sym_htlhash_fd(fd, got) < 0);
	CHECK_STR(got, "");
	close(fd);
	return 0;
}

/* The module of a loaded library carries its file's htlhash. */
static int test_module_htlhash(void)
{
	struct symbolizer *sym = new_sym(false, 0);
	struct sym_reader *rd = sym ? symbolizer__reader_new(sym) : NULL;
	void *h = dlopen(SYMTEST_SO, RTLD_NOW | RTLD_LOCAL);
	const struct sym_frame *f;
	char want[64];

	CHECK(sym && rd && h);
	f = resolve1(rd, (uint32_t)getpid(), (uint64_t)(uintptr_t)dlsym(h, "symtest_alpha"));
	CHECK(f && f->module->htlhash);
	CHECK_STR(f->module->name, "libsymtest.so");
	if (shell_htlhash(SYMTEST_SO, want) == 0)
		CHECK_STR(f->module->htlhash, want);
	else
		CHECK_EQ_U64(strlen(f->module->htlhash), SYM_HTLHASH_HEX);
	sym_reader__free(rd);
	symbolizer__free(sym);

	/* Past the memory bound: no symbols, but the file is still identified. */
	sym = new_sym(false, 1);
	rd = sym ? symbolizer__reader_new(sym) : NULL;
	CHECK(sym && rd);
	f = resolve1(rd, (uint32_t)getpid(), (uint64_t)(uintptr_t)dlsym(h, "symtest_alpha"));
	CHECK(f && !f->function);
	CHECK_STR(f->module->name, "libsymtest.so");
	CHECK_EQ_U64(strlen(f->module->htlhash), SYM_HTLHASH_HEX);
	sym_reader__free(rd);
	symbolizer__free(sym);
	dlclose(h);
	return 0;
}

/* ---- kernel build id ---- */

static size_t put_note(unsigned char *b, uint32_t type, const char *name, uint32_t namesz,
		       const void *desc, uint32_t descsz)
{
	size_t n = 0;

	memcpy(b, &namesz, 4);
	memcpy(b + 4, &descsz, 4);
	memcpy(b + 8, &type, 4);
	n = 12;
	memset(b + n, 0, (namesz + 3) & ~3u);
	memcpy(b + n, name, namesz);
	n += (namesz + 3) & ~3u;
	memset(b + n, 0, (descsz + 3) & ~3u);
	memcpy(b + n, desc, descsz);
	n += (descsz + 3) & ~3u;
	return n;
}

/* An independent reading of /sys/kernel/notes: the descriptor that follows
 * "GNU\0" where the header before it says namesz 4, type 3. */
static int scan_kernel_build_id(char *hex)
{
	unsigned char *b = NULL;
	size_t len = 0;

	hex[0] = '\0';
	if (sym_read_file("/sys/kernel/notes", (char **)&b, &len))
		return -1;
	for (size_t i = 12; i + 4 <= len; i += 4) {
		uint32_t namesz, descsz, type;

		if (memcmp(b + i, "GNU", 4) != 0)
			continue;
		memcpy(&namesz, b + i - 12, 4);
		memcpy(&descsz, b + i - 8, 4);
		memcpy(&type, b + i - 4, 4);
		if (namesz != 4 || type != 3 || !descsz || i + 4 + descsz > len)
			continue;
		for (uint32_t j = 0; j < descsz; j++)
			sprintf(hex + 2 * j, "%02x", b[i + 4 + j]);
		break;
	}
	free(b);
	return 0;
}

static int test_kernel_build_id(void)
{
	static const unsigned char id[20] = {0x4a, 0x5a, 0x9b, 0x0a, 0xff, 0xb6, 0x6c,
					     0x43, 0x7a, 0xbc, 0xd4, 0x55, 0xd2, 0x73,
					     0x8a, 0xf8, 0x79, 0x98, 0x5f, 0xa9};
	static const char id_hex[] = "4a5a9b0affb66c437abcd455d2738af879985fa9";
	unsigned char notes[512];
	char hex[2 * SYM_BUILD_ID_MAX + 1], want[2 * SYM_BUILD_ID_MAX + 1];
	struct symbolizer *sym;
	struct sym_reader *rd;
	const struct sym_frame *f;
	uint64_t ka = 0xffffffff81000000ull;
	size_t n = 0;
	uint32_t big = 0xfffffff0u;

	/* Other notes first (odd name length, "GNU" with another type, Xen). */
	n += put_note(notes + n, 6, "Linux", 6, "\1\1\0\0", 4);
	n += put_note(notes + n, 1, "GNU", 4, "abcd", 4);
	n += put_note(notes + n, 3, "Xen", 4, "\0\0\0\0\0\0\0\1", 8);
	n += put_note(notes + n, 3, "GNU", 4, id, sizeof(id));
	CHECK(elf_notes__build_id(notes, n, hex));
	CHECK_STR(hex, id_hex);
	/* Truncated inside the build id's descriptor: not found, no overread. */
	CHECK(!elf_notes__build_id(notes, n - 4, hex));
	CHECK_STR(hex, "");
	CHECK(!elf_notes__build_id(notes, 11, hex));
	/* Absurd sizes stop the walk. */
	memcpy(notes, &big, 4);
	CHECK(!elf_notes__build_id(notes, n, hex));
	memcpy(notes + 4, &big, 4);
	memcpy(notes, "\6\0\0\0", 4);
	CHECK(!elf_notes__build_id(notes, n, hex));

	/* The kernel module carries the running kernel's build id. */
	sym = new_sym(false, 0);
	rd = sym ? symbolizer__reader_new(sym) : NULL;
	CHECK(sym && rd);
	CHECK(sym_reader__resolve_kernel(rd, &ka, 1, &f) == 0);
	CHECK_STR(f->module->path, "[kernel.kallsyms]");
	CHECK(f->module->build_id && f->module->htlhash);
	CHECK_STR(f->module->htlhash, "");
	if (scan_kernel_build_id(want) == 0) {
		CHECK(want[0]);
		CHECK_STR(f->module->build_id, want);
		printf("     kernel build id %s\n", f->module->build_id);
	} else {
		fprintf(stderr, "/sys/kernel/notes unreadable: kernel build id not checked\n");
		CHECK_STR(f->module->build_id, "");
	}
	sym_reader__free(rd);
	symbolizer__free(sym);
	return 0;
}

/* ---- process info ---- */

#define ID_A "3f4e5d6c7b8a99887766554433221100ffeeddccbbaa00112233445566778899"

static int test_cgroup_parse(void)
{
	static const struct {
		const char *text;
		const char *id; /* NULL: not a container */
	} cases[] = {
		/* docker, cgroupfs driver (v1 and v2) */
		{"12:pids:/docker/" ID_A "\n11:memory:/docker/" ID_A "\n", ID_A},
		{"0::/docker/" ID_A "\n", ID_A},
		/* docker, systemd driver */
		{"0::/system.slice/docker-" ID_A ".scope\n", ID_A},
		/* containerd (CRI), systemd driver */
		{"0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1234abcd_5678."
		 "slice/cri-containerd-" ID_A ".scope\n",
		 ID_A},
		/* kubernetes, cgroupfs driver */
		{"0::/kubepods/besteffort/pod0c3d5e7f-1111-2222-3333-444455556666/" ID_A "\n",
		 ID_A},
		{"4:cpu,cpuacct:/kubepods/burstable/podabc/" ID_A, ID_A}, /* no final newline */
		/* CRI-O */
		{"0::/kubepods.slice/kubepods-pod1.slice/crio-" ID_A ".scope\n", ID_A},
		/* podman / libpod, rootful and rootless (with a sub-cgroup) */
		{"0::/machine.slice/libpod-" ID_A ".scope\n", ID_A},
		{"0::/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-" ID_A
		 ".scope/container\n",
		 ID_A},
		/* hybrid v1/v2: the first line with an id */
		{"1:name=systemd:/user.slice/user-1000.slice/session-2.scope\n"
		 "0::/system.slice/docker-" ID_A ".scope\n",
		 ID_A},
		/* not containers */
		{"0::/init.scope\n", NULL},
		{"0::/\n", NULL},
		{"0::/user.slice/user-1000.slice/session-3.scope\n", NULL},
		{"0::/system.slice/foo.service\n", NULL},
		{"0::/system.slice/libpod-conmon-" ID_A ".scope\n", NULL},
		{"0::/machine.slice/crio-conmon-" ID_A ".scope\n", NULL},
		{"0::/docker/" ID_A "0\n", NULL}, /* 65 digits */
		{"0::/docker/3F4E5D6C7B8A99887766554433221100FFEEDDCCBBAA0011223344556677889\n",
		 NULL},						      /* upper case */
		{"0::/system.slice/docker-" ID_A ".service\n", NULL}, /* not a scope */
		{"9:name=systemd:/\n8:pids:/\n", NULL},
		{"garbage without colons " ID_A "\n", NULL},
		{"", NULL},
	};
	char id[SYM_CONTAINER_ID_MAX + 1];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		bool found = proc_info__parse_cgroup(cases[i].text, strlen(cases[i].text), id);

		if (found != (cases[i].id != NULL))
			fprintf(stderr, "cgroup case %zu: %s", i, cases[i].text);
		CHECK(found == (cases[i].id != NULL));
		CHECK_STR(id, cases[i].id ? cases[i].id : "");
	}
	return 0;
}

static int test_process_info(void)
{
	struct symbolizer *sym = new_sym(false, 0);
	struct sym_reader *rd = sym ? symbolizer__reader_new(sym) : NULL;
	struct addr_child c1 = {.stdin_fd = -1}, c2 = {.stdin_fd = -1}, c3 = {.stdin_fd = -1};
	char self[PATH_MAX], want[PATH_MAX], cg_id[SYM_CONTAINER_ID_MAX + 1], *cg = NULL;
	struct sym_process_info pi, pi2;
	uint32_t pid1, pid2, pid3;
	const char *exe1;
	size_t cg_len;
	ssize_t n;

	CHECK(sym && rd);
	CHECK(realpath(SYMTEST_PIE, want));

	/* A child whose maps a sample read: its executable is the test binary. */
	CHECK(addr_child__start(&c1, SYMTEST_PIE, 3, 4) == 0);
	CHECK(resolve1(rd, (uint32_t)c1.pid, c1.addr[0]));
	CHECK(symbolizer__process_info(sym, (uint32_t)c1.pid, &pi) == 0);
	CHECK_EQ_U64(pi.tgid, (uint32_t)c1.pid);
	CHECK_STR(pi.exe_path, want);
	exe1 = pi.exe_path;

	/* Another process of the same executable shares the interned string;
	 * this one is read on demand (no sample yet). */
	CHECK(addr_child__start(&c2, SYMTEST_PIE, 3, 4) == 0);
	CHECK(symbolizer__process_info(sym, (uint32_t)c2.pid, &pi2) == 0);
	CHECK(pi2.exe_path == exe1);
	CHECK(pi2.container_id == pi.container_id);

	/* Both exit (reaped): still known, same strings. */
	pid1 = (uint32_t)c1.pid;
	pid2 = (uint32_t)c2.pid;
	addr_child__stop(&c1);
	addr_child__stop(&c2);
	symbolizer__invalidate_process(sym, pid1);
	CHECK(resolve1(rd, pid1, c1.addr[1])); /* the re-read fails: maps and info kept */
	CHECK(symbolizer__process_info(sym, pid1, &pi) == 0);
	CHECK(pi.exe_path == exe1);
	CHECK(symbolizer__process_info(sym, pid2, &pi2) == 0);
	CHECK(pi2.exe_path == exe1);

	/* Never seen and gone. */
	CHECK(addr_child__start(&c3, SYMTEST_PIE, 3, 4) == 0);
	pid3 = (uint32_t)c3.pid;
	addr_child__stop(&c3);
	CHECK(symbolizer__process_info(sym, pid3, &pi) == -ENOENT);
	CHECK(pi.exe_path == NULL && pi.container_id == NULL);
	CHECK(symbolizer__process_info(sym, 0x7fffffff, &pi) == -ENOENT);

	/* Ourselves, on demand; the container id is whatever our cgroup names. */
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	CHECK(n > 0);
	self[n] = '\0';
	CHECK(symbolizer__process_info(sym, (uint32_t)getpid(), &pi) == 0);
	CHECK_STR(pi.exe_path, self);
	CHECK(sym_read_file("/proc/self/cgroup", &cg, &cg_len) == 0);
	if (proc_info__parse_cgroup(cg, cg_len, cg_id))
		CHECK_STR(pi.container_id, cg_id);
	else
		CHECK(pi.container_id == NULL);
	free(cg);
	sym_reader__free(rd);
	symbolizer__free(sym);
	return 0;
}

/* An executable deleted while it runs: " (deleted)" is stripped. */
static int test_process_info_deleted(void)
{
	struct symbolizer *sym = new_sym(false, 0);
	struct addr_child c = {.stdin_fd = -1};
	struct sym_process_info pi;
	char path[512], want[PATH_MAX];
	int ret;

	CHECK(sym);
	scratch_path(path, sizeof(path), "symtest-deleted-exe");
	CHECK(copy_file(SYMTEST_PIE, path, SIZE_MAX) == 0);
	CHECK(chmod(path, 0755) == 0);
	CHECK(realpath(path, want));
	ret = addr_child__start(&c, path, 3, 4);
	unlink(path);
	CHECK(ret == 0);
	ret = symbolizer__process_info(sym, (uint32_t)c.pid, &pi);
	addr_child__stop(&c);
	CHECK(ret == 0);
	CHECK(!strstr(pi.exe_path, "(deleted)"));
	CHECK_STR(pi.exe_path, want);
	symbolizer__free(sym);
	return 0;
}

/* A process that execs, with no invalidation: the maps re-read that the
 * first miss in the new image triggers reads the new executable too. */
static int test_process_info_exec(void)
{
	struct symbolizer *sym = new_sym(false, 0);
	struct sym_reader *rd = sym ? symbolizer__reader_new(sym) : NULL;
	char self[PATH_MAX], shell[PATH_MAX], want[PATH_MAX], line[256];
	struct addr_child c = {.stdin_fd = -1};
	struct sym_process_info pi;
	const struct sym_frame *f;
	int in[2], out[2];
	ssize_t n = 0;
	FILE *fo;

	CHECK(sym && rd);
	CHECK(realpath(SYMTEST_PIE, want));
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	CHECK(n > 0);
	self[n] = '\0';
	CHECK(pipe2(in, O_CLOEXEC) == 0 && pipe2(out, O_CLOEXEC) == 0);
	c.pid = fork();
	CHECK(c.pid >= 0);
	if (c.pid == 0) {
		dup2(in[0], 0);
		dup2(out[1], 1);
		execl("/bin/sh", "sh", "-c", "read x && exec \"$0\"", SYMTEST_PIE, (char *)NULL);
		_exit(127);
	}
	close(in[0]);
	close(out[1]);
	c.stdin_fd = in[1];
	fo = fdopen(out[0], "r");
	CHECK(fo);

	/* Wait for the shell to run, then let a sample read its maps and info. */
	for (int i = 0; i < 400; i++) {
		char link[64];

		snprintf(link, sizeof(link), "/proc/%d/exe", (int)c.pid);
		n = readlink(link, shell, sizeof(shell) - 1);
		if (n > 0) {
			shell[n] = '\0';
			if (strcmp(shell, self) != 0)
				break;
		}
		usleep(5000);
	}
	CHECK(n > 0 && strcmp(shell, self) != 0);
	f = resolve1(rd, (uint32_t)c.pid, 0x1000);
	CHECK(f);
	CHECK(symbolizer__process_info(sym, (uint32_t)c.pid, &pi) == 0);
	CHECK_STR(pi.exe_path, shell);

	/* exec: the shell becomes symtest_pie, which prints its addresses. */
	CHECK(write(c.stdin_fd, "go\n", 3) == 3);
	CHECK(fgets(line, sizeof(line), fo));
	CHECK(sscanf(line, "%lx", &c.addr[0]) == 1);
	fclose(fo);
	usleep((SYM_MAPS_REFRESH_MIN_NS / 1000) * 3 / 2); /* past the re-read rate limit */
	f = resolve1(rd, (uint32_t)c.pid, c.addr[0]);
	CHECK(f);
	CHECK_STR(f->function, "symtest_alpha");
	CHECK(symbolizer__process_info(sym, (uint32_t)c.pid, &pi) == 0);
	CHECK_STR(pi.exe_path, want);
	addr_child__stop(&c);
	sym_reader__free(rd);
	symbolizer__free(sym);
	return 0;
}

/* Resolves a libc and an executable address in each of n children: the
 * module count must not grow past the first child's, and every child's libc
 * frame must name the first child's module (one copy of libc's symbols). */
static int check_shared_libc(const pid_t *pids, size_t n)
{
	struct symbolizer *sym = new_sym(false, 0);
	struct sym_reader *rd = sym ? symbolizer__reader_new(sym) : NULL;
	/* The leaf, and a caller: a return address, resolved at addr - 1. */
	uint64_t a[2] = {(uint64_t)(uintptr_t)&getpid, (uint64_t)(uintptr_t)&check_shared_libc + 1};
	const struct sym_module *libc = NULL;
	struct symbolizer_stats st;
	uint64_t modules = 0;
	int rc = 1;

	if (!rd)
		goto cleanup;
	for (size_t i = 0; i < n; i++) {
		const struct sym_frame *out[2];

		if (sym_reader__resolve_user(rd, (uint32_t)pids[i], a, 2, out)) {
			fprintf(stderr, "child %zu (pid %d): resolve failed\n", i, (int)pids[i]);
			goto cleanup;
		}
		symbolizer__stats(sym, &st);
		if (i == 0) {
			libc = out[0]->module;
			modules = st.modules;
			if (strncmp(libc->name, "libc", 4) || !out[1]->function ||
			    strcmp(out[1]->function, "check_shared_libc")) {
				fprintf(stderr, "first child: libc frame in %s, exe frame %s\n",
					libc->name, out[1]->function ? out[1]->function : "(null)");
				goto cleanup;
			}
		} else if (out[0]->module != libc || st.modules != modules) {
			fprintf(stderr,
				"child %zu: libc module %p (first %p), %llu modules (first %llu)\n",
				i, (const void *)out[0]->module, (const void *)libc,
				(unsigned long long)st.modules, (unsigned long long)modules);
			goto cleanup;
		}
	}
	symbolizer__stats(sym, &st);
	rc = st.processes == n && modules > 1 ? 0 : 1;
	if (rc)
		fprintf(stderr, "%llu processes of %zu, %llu modules\n",
			(unsigned long long)st.processes, n, (unsigned long long)modules);
cleanup:
	sym_reader__free(rd);
	symbolizer__free(sym);
	return rc;
}

/* 50 forks of this process, each blocked on one pipe: closing its write end
 * ends them all, and each is reaped whatever the checks found. */
static int test_shared_libc_once(void)
{
	enum { N_CHILDREN = 50 };
	pid_t pids[N_CHILDREN];
	size_t n = 0;
	int fds[2], rc;

	CHECK(pipe2(fds, O_CLOEXEC) == 0);
	fflush(NULL);
	while (n < N_CHILDREN) {
		pid_t pid = fork();
		ssize_t got;
		char c;

		if (pid < 0)
			break;
		if (pid == 0) {
			close(fds[1]);
			while ((got = read(fds[0], &c, 1)) > 0 || (got < 0 && errno == EINTR))
				;
			_exit(0);
		}
		pids[n++] = pid;
	}
	close(fds[0]);
	rc = n == N_CHILDREN ? check_shared_libc(pids, n) : 1;
	close(fds[1]);
	for (size_t i = 0; i < n; i++) {
		int status;

		while (waitpid(pids[i], &status, 0) < 0 && errno == EINTR)
			;
	}
	CHECK(n == N_CHILDREN);
	return rc;
}

static const struct test_case cases[] = {
	{"maps_parse", test_maps_parse},
	{"kallsyms_parse", test_kallsyms_parse},
	{"elf_image", test_elf_image},
	{"resolve_shared_lib", test_resolve_shared_lib},
	{"unwind_rule", test_unwind_rule},
	{"resolve_pie", test_resolve_pie},
	{"resolve_non_pie", test_resolve_non_pie},
	{"process_exited", test_process_exited_keeps_maps},
	{"stripped", test_stripped},
	{"malformed", test_malformed},
	{"deleted_file", test_deleted_file},
	{"pseudo_mappings", test_pseudo_mappings},
	{"kernel", test_kernel},
	{"interning", test_interning},
	{"marker", test_marker},
	{"cache_full", test_cache_full},
	{"evict_lru", test_evict_lru},
	{"api_edges", test_api_edges},
	{"htlhash", test_htlhash},
	{"module_htlhash", test_module_htlhash},
	{"kernel_build_id", test_kernel_build_id},
	{"cgroup_parse", test_cgroup_parse},
	{"process_info", test_process_info},
	{"process_info_deleted", test_process_info_deleted},
	{"process_info_exec", test_process_info_exec},
	{"shared_libc_once", test_shared_libc_once},
};

TEST_MAIN(cases)
