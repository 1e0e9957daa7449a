/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Unit tests of the symbolizer's DWARF side (label unit, no root, no BPF):
 * source lines, inlined calls, demangling, and separate debug info.
 *
 * The subject is tests/data/sym_inline_prog.cpp, C++ built -g -O2, run as a
 * child that prints three code addresses: a call site inside two inlined
 * template members (Acc<long>::inner inlined into Acc<long>::outer inlined
 * into compute<long>), a call site directly in compute<long>, and the entry of
 * the extern "C" function record_site. The child stays alive until its stdin
 * closes, so the symbolizer reads its real mappings. Expected lines come from
 * the "@name" markers in the source file, expected names from the C++ and
 * Rust mangling rules (the strings are what c++filt prints).
 *
 * Variants made by tests/make_debug_variants.sh: fully stripped copies whose
 * names must come back from a debug file found by build id under a temporary
 * debug root, from a .gnu_debuglink file beside the binary, or from
 * MiniDebugInfo (.gnu_debugdata, function names only).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "symbolizer.h"
#include "symbolizer_internal.h"
#include "addr_child.h"
#include "test_helpers.h"

#define FN_COMPUTE    "long demo::compute<long>(long)"
#define SYS_COMPUTE   "_ZN4demo7computeIlEET_S1_"
#define FN_INNER      "demo::Acc<long>::inner(long)"
#define SYS_INNER     "_ZN4demo3AccIlE5innerEl"
#define FN_OUTER      "demo::Acc<long>::outer(long)"
#define SYS_OUTER     "_ZN4demo3AccIlE5outerEl"
#define SOURCE_BASE   "sym_inline_prog.cpp"
#define N_CHILD_ADDRS 3

/* Returns the 1-based line of SYMDW_SOURCE holding "// @name", or 0. */
static uint32_t marker_line(const char *name)
{
	char want[64], line[512];
	uint32_t n = 0, found = 0;
	FILE *f = fopen(SYMDW_SOURCE, "r");

	if (!f)
		return 0;
	snprintf(want, sizeof(want), "// @%s", name);
	while (fgets(line, sizeof(line), f) && n < 10000) {
		n++;
		if (strstr(line, want)) {
			found = n;
			break;
		}
	}
	fclose(f);
	return found;
}

/* Resolves the three addresses as one stack, as a stack walk gives it: leaf
 * record_site, then the two call sites as return addresses (looked up at
 * addr - 1). Resolves it again (warm: the reader's cache) and expects the
 * same frames. Fills out[] in the order of child.addr. */
static int resolve_child(struct symbolizer *sym, const struct addr_child *c,
			 const struct sym_frame **out)
{
	struct sym_reader *rd = symbolizer__reader_new(sym);
	const uint64_t stack[3] = {c->addr[2], c->addr[0], c->addr[1]};
	const struct sym_frame *cold[3], *warm[3];
	int err;

	if (!rd)
		return -ENOMEM;
	err = sym_reader__resolve_user(rd, (uint32_t)c->pid, stack, 3, cold);
	if (!err)
		err = sym_reader__resolve_user(rd, (uint32_t)c->pid, stack, 3, warm);
	sym_reader__free(rd);
	if (err)
		return err;
	if (memcmp(cold, warm, sizeof(cold)) != 0) {
		fprintf(stderr, "warm lookup gave other frames than the cold one\n");
		return -EINVAL;
	}
	out[0] = cold[1];
	out[1] = cold[2];
	out[2] = cold[0];
	return 0;
}

static bool is_source(const char *file)
{
	size_t n = file ? strlen(file) : 0, m = strlen(SOURCE_BASE);

	return n >= m && strcmp(file + n - m, SOURCE_BASE) == 0 &&
	       (n == m || file[n - m - 1] == '/');
}

static void print_frame(const char *what, const struct sym_frame *f)
{
	fprintf(stderr, "%s: %s [%s] %s:%u, %u inlined\n", what, f->function ? f->function : "-",
		f->system_name ? f->system_name : "-", f->file ? f->file : "-", f->line,
		f->n_inlined);
	for (uint32_t i = 0; i < f->n_inlined; i++)
		fprintf(stderr, "  inlined[%u]: %s [%s] %s:%u\n", i,
			f->inlined[i].function ? f->inlined[i].function : "-",
			f->inlined[i].system_name ? f->inlined[i].system_name : "-",
			f->inlined[i].file ? f->inlined[i].file : "-", f->inlined[i].line);
}

/* Everything DWARF gives: names, files, lines, the inline chain. */
static int check_full(const struct sym_frame **f)
{
	uint32_t l_inner = marker_line("inner"), l_outer = marker_line("outer");
	uint32_t l_compute = marker_line("compute"), l_direct = marker_line("direct");

	CHECK(l_inner && l_outer && l_compute && l_direct);
	print_frame("inlined site", f[0]);
	print_frame("direct site", f[1]);
	print_frame("record_site", f[2]);

	/* The frame names the containing function; its line is the call site
	 * of the outermost inlined call (outer() called from compute()). */
	CHECK_STR(f[0]->function, FN_COMPUTE);
	CHECK_STR(f[0]->system_name, SYS_COMPUTE);
	CHECK(is_source(f[0]->file));
	CHECK_EQ_U64(f[0]->line, l_compute);
	CHECK_EQ_U64(f[0]->n_inlined, 2);
	/* Innermost first: inner() at the address's own line... */
	CHECK_STR(f[0]->inlined[0].function, FN_INNER);
	CHECK_STR(f[0]->inlined[0].system_name, SYS_INNER);
	CHECK(is_source(f[0]->inlined[0].file));
	CHECK_EQ_U64(f[0]->inlined[0].line, l_inner);
	/* ...then outer() at its call of inner(). */
	CHECK_STR(f[0]->inlined[1].function, FN_OUTER);
	CHECK_STR(f[0]->inlined[1].system_name, SYS_OUTER);
	CHECK(is_source(f[0]->inlined[1].file));
	CHECK_EQ_U64(f[0]->inlined[1].line, l_outer);

	CHECK_STR(f[1]->function, FN_COMPUTE);
	CHECK_STR(f[1]->system_name, SYS_COMPUTE);
	CHECK(is_source(f[1]->file));
	CHECK_EQ_U64(f[1]->line, l_direct);
	CHECK_EQ_U64(f[1]->n_inlined, 0);
	CHECK(f[1]->inlined == NULL);

	/* extern "C": not mangled, so no system name. */
	CHECK_STR(f[2]->function, "record_site");
	CHECK(f[2]->system_name == NULL);
	CHECK(is_source(f[2]->file));
	/* Its entry: the line of its name, its brace or its first statement. */
	CHECK(f[2]->line >= marker_line("record") && f[2]->line <= marker_line("record_body"));
	CHECK_EQ_U64(f[2]->n_inlined, 0);
	return 0;
}

/* Runs path, resolves its addresses with a symbolizer rooted at debug_dirs. */
static int run_variant(const char *path, const char *debug_dirs, const struct sym_frame **f,
		       struct symbolizer **symp)
{
	struct symbolizer_opts o = {.debug_dirs = debug_dirs};
	struct addr_child c;
	int err = -1;

	*symp = symbolizer__new(&o);
	if (!*symp)
		return -1;
	if (addr_child__start(&c, path, N_CHILD_ADDRS, N_CHILD_ADDRS) == 0)
		err = resolve_child(*symp, &c, f);
	addr_child__stop(&c);
	return err;
}

/* A fresh empty directory under the build tree, as a debug root. */
static int make_root(char *root, size_t len)
{
	snprintf(root, len, "%s/debugroot.XXXXXX", SYMDW_SCRATCH);
	return mkdtemp(root) ? 0 : -1;
}

/* ---- tests ---- */

static int test_demangle(void)
{
	static const struct {
		const char *in, *function, *system_name;
	} cases[] = {
		{"_ZN4demo7computeIlEET_S1_", FN_COMPUTE, "_ZN4demo7computeIlEET_S1_"},
		{"_ZNSt6vectorIiSaIiEE9push_backERKi",
		 "std::vector<int, std::allocator<int> >::push_back(int const&)",
		 "_ZNSt6vectorIiSaIiEE9push_backERKi"},
		/* Rust legacy: the hash is dropped. */
		{"_ZN4core3fmt5write17h0123456789abcdefE", "core::fmt::write",
		 "_ZN4core3fmt5write17h0123456789abcdefE"},
		/* Rust v0. */
		{"_RNvNtCs1234_7mycrate3bar3baz", "mycrate::bar::baz",
		 "_RNvNtCs1234_7mycrate3bar3baz"},
		/* Not mangled: kept, no system name. */
		{"record_site", "record_site", NULL},
		{"_Znot_a_name", "_Znot_a_name", NULL},
	};
	struct str_pool sp;

	CHECK(str_pool__init(&sp) == 0);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *fn, *sn;

		CHECK(sym_demangle(&sp, cases[i].in, &fn, &sn) == 0);
		CHECK_STR(fn, cases[i].function);
		if (cases[i].system_name)
			CHECK_STR(sn, cases[i].system_name);
		else
			CHECK(sn == NULL);
	}
	str_pool__deinit(&sp);
	return 0;
}

static int test_inline_chain(void)
{
	const struct sym_frame *f[N_CHILD_ADDRS];
	struct symbolizer *sym;
	char root[PATH_MAX];
	int rc;

	CHECK(make_root(root, sizeof(root)) == 0);
	rc = run_variant(SYMDW_PROG, root, f, &sym);
	if (!rc)
		rc = check_full(f);
	symbolizer__free(sym);
	rmdir(root);
	return rc ? 1 : 0;
}

/* The same subject from clang++: DWARF 5 with DW_AT_ranges units and no
 * .debug_aranges, as every LLVM compiler writes by default. */
static int test_inline_chain_clang(void)
{
	const struct sym_frame *f[N_CHILD_ADDRS];
	struct symbolizer *sym;
	char root[PATH_MAX];
	int rc;

	CHECK(make_root(root, sizeof(root)) == 0);
	rc = run_variant(SYMDW_PROG_CLANG, root, f, &sym);
	if (!rc)
		rc = check_full(f);
	symbolizer__free(sym);
	rmdir(root);
	return rc ? 1 : 0;
}

static int test_build_id_dir(void)
{
	char root[PATH_MAX], dir[PATH_MAX + 64], link[PATH_MAX + 256], err[256];
	const struct sym_frame *f[N_CHILD_ADDRS];
	struct elf_image *img = NULL;
	struct symbolizer *sym = NULL;
	int fd, rc;

	/* The stripped copy's build id, as its note says. */
	fd = open(SYMDW_VARIANTS "/buildid/sym_inline_prog", O_RDONLY | O_CLOEXEC);
	CHECK(fd >= 0);
	rc = elf_image__load_fd(fd, &img, err, sizeof(err));
	close(fd);
	CHECK(rc == 0);
	CHECK(strlen(img->build_id) > 2);
	CHECK(img->n_syms == 0); /* really stripped: no .symtab, no defined .dynsym */

	/* Without the debug root, no names: the module-level frame. */
	CHECK(make_root(root, sizeof(root)) == 0);
	CHECK(run_variant(SYMDW_VARIANTS "/buildid/sym_inline_prog", root, f, &sym) == 0);
	CHECK(f[0]->function == NULL && f[1]->function == NULL);
	symbolizer__free(sym);

	/* With DIR/.build-id/xx/yyyy.debug: fully named. */
	snprintf(dir, sizeof(dir), "%s/.build-id", root);
	CHECK(mkdir(dir, 0755) == 0);
	snprintf(dir, sizeof(dir), "%s/.build-id/%.2s", root, img->build_id);
	CHECK(mkdir(dir, 0755) == 0);
	snprintf(link, sizeof(link), "%s/%s.debug", dir, img->build_id + 2);
	CHECK(symlink(SYMDW_VARIANTS "/sym_inline_prog.debug", link) == 0);
	rc = run_variant(SYMDW_VARIANTS "/buildid/sym_inline_prog", root, f, &sym);
	if (!rc)
		rc = check_full(f);
	symbolizer__free(sym);

	unlink(link);
	rmdir(dir);
	snprintf(dir, sizeof(dir), "%s/.build-id", root);
	rmdir(dir);
	rmdir(root);
	elf_image__free(img);
	return rc ? 1 : 0;
}

static int test_debuglink(void)
{
	const struct sym_frame *f[N_CHILD_ADDRS];
	struct symbolizer *sym;
	char root[PATH_MAX];
	int rc;

	/* An empty debug root: only the debug link beside the binary can help. */
	CHECK(make_root(root, sizeof(root)) == 0);
	rc = run_variant(SYMDW_VARIANTS "/debuglink/sym_inline_prog", root, f, &sym);
	if (!rc)
		rc = check_full(f);
	symbolizer__free(sym);
	rmdir(root);
	return rc ? 1 : 0;
}

static int test_minidebuginfo(void)
{
	const struct sym_frame *f[N_CHILD_ADDRS];
	struct symbolizer *sym;
	char root[PATH_MAX];
	int rc;

	CHECK(make_root(root, sizeof(root)) == 0);
	rc = run_variant(SYMDW_VARIANTS "/mini/sym_inline_prog", root, f, &sym);
	rmdir(root);
	if (rc) {
		symbolizer__free(sym);
		return 1;
	}
	print_frame("mini inlined site", f[0]);
	print_frame("mini record_site", f[2]);
	/* A .symtab only: functions named and demangled, no lines. */
	CHECK_STR(f[0]->function, FN_COMPUTE);
	CHECK_STR(f[0]->system_name, SYS_COMPUTE);
	CHECK_STR(f[1]->function, FN_COMPUTE);
	CHECK_STR(f[2]->function, "record_site");
	CHECK(f[0]->file == NULL && f[0]->line == 0 && f[0]->n_inlined == 0);
	symbolizer__free(sym);
	return 0;
}

static const struct test_case cases[] = {
	{"demangle", test_demangle},
	{"inline_chain", test_inline_chain},
	{"inline_chain_clang", test_inline_chain_clang},
	{"build_id_dir", test_build_id_dir},
	{"debuglink", test_debuglink},
	{"minidebuginfo", test_minidebuginfo},
};

TEST_MAIN(cases)
