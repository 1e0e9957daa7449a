/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * DWARF of one ELF image, through libdwfl: function names, source file and
 * line, and the chain of inlined calls at an address.
 *
 * Where the debug info comes from (libdwfl's standard search, rooted at the
 * symbolizer's debug_dirs instead of a fixed /usr/lib/debug):
 *   - the file itself, when it was built with -g;
 *   - DIR/.build-id/xx/yyyy.debug for each DIR of debug_dirs (Debian's
 *     -dbgsym packages), by the file's GNU build id;
 *   - .gnu_debuglink: the named file next to the binary, in its .debug/
 *     subdirectory, or under DIR/<binary's directory>/ (CRC checked);
 *   - MiniDebugInfo (.gnu_debugdata, xz; libdw is built with liblzma): a
 *     .symtab only, no lines, reached through dwfl_module_addrinfo().
 *
 * Cost: debuginfo__open() runs unlocked on the loading thread; it finds and
 * opens the debug file, reads the address ranges of every compile unit
 * (.debug_aranges). Lookups run on the slow path only (a frame being
 * named, under its image's name_lock, not symbolizer.lock; name_lock also
 * serializes every use of one Dwfl: libdw 0.188 is not thread-safe per
 * handle). The first lookup in a
 * unit parses its line table (libdw keeps it) and indexes its out-of-line
 * functions by address (kept here), so later lookups go straight to their
 * function and walk only the inlined scopes inside it. That first lookup is
 * the expensive one: about 20 us for a libc unit, 20-30 ms for a C++ unit of
 * 3 MB of .debug_info, held under the lock (indexing every unit at open
 * instead cost more memory and load time than it saved: the line table
 * dominates). Demangled names are cached per DWARF string, so a template
 * inlined in many places is demangled once.
 *
 * Memory: the Dwfl keeps the ELF and debug files mapped and open; an image
 * with neither DWARF nor MiniDebugInfo drops it at once (its .symtab/.dynsym
 * are in elf_image already). Names from libdw are interned into the
 * symbolizer's string pool before the frame is published.
 */
#include <dwarf.h>
#include <elfutils/libdw.h>
#include <elfutils/libdwfl.h>
#include <errno.h>
#include <gelf.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "symbolizer_internal.h"

/* Nesting followed by find_chain(): scopes and inlined calls. */
#define SCOPE_DEPTH_MAX 64

/* One address range of an out-of-line function of a compile unit. */
struct func_range {
	Dwarf_Addr lo, hi; /* [lo, hi), DWARF addresses */
	Dwarf_Off die;	   /* the DW_TAG_subprogram DIE */
};

/* A compile unit's functions by address, built on its first lookup: a
 * lookup then goes straight to its function instead of walking the unit's
 * top-level DIEs (tens of thousands in a C++ unit) each time. */
struct cu_index {
	Dwarf_Off cu; /* the unit DIE's offset */
	struct func_range *r;
	size_t n;
};

struct cu_range {
	Dwarf_Addr lo, hi; /* [lo, hi) in DWARF addresses */
	Dwarf_Off cu;	   /* offset of the unit's DIE */
};

struct debuginfo {
	Dwfl *dwfl;
	Dwfl_Module *mod;
	Dwfl_Callbacks cb; /* libdwfl keeps a pointer to it */
	char *search_path; /* cb.debuginfo_path points here */
	bool dwarf;	   /* DWARF found (in the file or a separate one) */
	/* Address ranges of every unit, sorted by lo, built at open: libdw
	 * 0.188 finds a unit by .debug_aranges only, which clang does not emit
	 * (nor does any LLVM compiler, Rust's included) by default. */
	struct cu_range *cu_ranges;
	size_t n_cu_ranges;
	Dwarf_Addr dw_bias;
	/* Built lazily under symbolizer.lock, sorted by cu: */
	struct cu_index *cus;
	size_t n_cus, cap_cus;
	/* Demangled names by the address of the DWARF string they come from
	 * (stable while dwfl lives): a C++ name is demangled once, not once per
	 * frame that inlines it. */
	struct htab names;
	size_t bytes;
};

struct name_node {
	struct hnode node;
	const char *key; /* DW_AT_linkage_name or DW_AT_name string, in the DWARF */
	const char *function, *system_name; /* interned */
};

static bool drop_name(struct hnode *n, void *arg)
{
	free(container_of(n, struct name_node, node));
	return true;
}

void debuginfo__free(struct debuginfo *di)
{
	if (!di)
		return;
	if (di->dwfl)
		dwfl_end(di->dwfl);
	free(di->cu_ranges);
	for (size_t i = 0; i < di->n_cus; i++)
		free(di->cus[i].r);
	if (di->names.buckets)
		htab__filter(&di->names, drop_name, NULL);
	htab__deinit(&di->names);
	free(di->cus);
	free(di->search_path);
	free(di);
}

size_t debuginfo__bytes(const struct debuginfo *di)
{
	return di ? di->bytes : 0;
}

/* Returns true if the module's ELF file has a .gnu_debugdata section. */
static bool has_minidebuginfo(Dwfl_Module *mod)
{
	GElf_Addr bias;
	Elf *elf = dwfl_module_getelf(mod, &bias);
	size_t shstrndx;
	Elf_Scn *scn = NULL;

	if (!elf || elf_getshdrstrndx(elf, &shstrndx))
		return false;
	while ((scn = elf_nextscn(elf, scn))) {
		GElf_Shdr sh;
		const char *name;

		if (!gelf_getshdr(scn, &sh))
			continue;
		name = elf_strptr(elf, shstrndx, sh.sh_name);
		if (name && strcmp(name, ".gnu_debugdata") == 0)
			return true;
	}
	return false;
}

static int cmp_cu_range(const void *a, const void *b)
{
	const struct cu_range *x = a, *y = b;
	return x->lo < y->lo ? -1 : x->lo > y->lo;
}

/* Collects every unit's address ranges (DW_AT_low_pc/high_pc or
 * DW_AT_ranges, DWARF 2-5) into di->cu_ranges. Returns 0 or -ENOMEM. */
static int index_cu_ranges(struct debuginfo *di, Dwarf *dw)
{
	Dwarf_Off off = 0, next;
	size_t hsize, cap = 0;

	while (dwarf_nextcu(dw, off, &next, &hsize, NULL, NULL, NULL) == 0) {
		Dwarf_Die cu;
		Dwarf_Addr base, lo, hi;
		ptrdiff_t it = 0;

		if (dwarf_offdie(dw, off + hsize, &cu)) {
			while ((it = dwarf_ranges(&cu, it, &base, &lo, &hi)) > 0) {
				if (lo >= hi)
					continue;
				if (di->n_cu_ranges == cap) {
					size_t ncap = cap ? cap * 2 : 64;
					struct cu_range *nr =
						realloc(di->cu_ranges, ncap * sizeof(*nr));
					if (!nr)
						return -ENOMEM;
					di->cu_ranges = nr;
					cap = ncap;
				}
				di->cu_ranges[di->n_cu_ranges++] =
					(struct cu_range){.lo = lo, .hi = hi, .cu = off + hsize};
			}
		}
		off = next;
	}
	qsort(di->cu_ranges, di->n_cu_ranges, sizeof(*di->cu_ranges), cmp_cu_range);
	di->bytes += cap * sizeof(*di->cu_ranges);
	return 0;
}

/* The unit holding DWARF address a, from di->cu_ranges; NULL if none. */
static Dwarf_Die *find_cu(struct debuginfo *di, Dwarf_Addr a, Dwarf_Die *out)
{
	size_t lo = 0, hi = di->n_cu_ranges;
	Dwarf_Addr bias;
	Dwarf *dw = dwfl_module_getdwarf(di->mod, &bias);

	while (lo < hi) { /* last range with lo <= a */
		size_t mid = lo + (hi - lo) / 2;
		if (di->cu_ranges[mid].lo <= a)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (!dw || !lo || a >= di->cu_ranges[lo - 1].hi)
		return NULL;
	return dwarf_offdie(dw, di->cu_ranges[lo - 1].cu, out);
}

int debuginfo__open(int fd, const char *path, const char *debug_dirs, struct debuginfo **out)
{
	struct debuginfo *di = calloc(1, sizeof(*di));
	Dwarf_Addr bias;
	Dwarf *dw;
	int dfd = -1, ret = -ENOMEM;
	size_t len;

	*out = NULL;
	if (!di)
		return -ENOMEM;
	/* "" (the binary's directory), ".debug" (its subdirectory), then the
	 * roots; no leading '-': debuglink CRCs are checked. */
	len = strlen(debug_dirs) + sizeof(":.debug:");
	di->search_path = malloc(len);
	if (!di->search_path)
		goto cleanup;
	snprintf(di->search_path, len, ":.debug:%s", debug_dirs);
	di->cb.find_elf = dwfl_build_id_find_elf;
	di->cb.find_debuginfo = dwfl_standard_find_debuginfo;
	di->cb.debuginfo_path = &di->search_path;
	if (htab__init(&di->names, 256))
		goto cleanup;
	di->bytes = htab__bytes(&di->names);
	di->dwfl = dwfl_begin(&di->cb);
	if (!di->dwfl)
		goto cleanup;
	/* libdwfl owns (and closes) the descriptor it is given. */
	dfd = dup(fd);
	if (dfd < 0) {
		ret = -errno;
		goto cleanup;
	}
	/* Base 0 without the first segment's address: module addresses are
	 * the ELF's own virtual addresses, for ET_DYN and ET_EXEC alike. */
	di->mod = dwfl_report_elf(di->dwfl, sym_basename(path), path, dfd, 0, false);
	if (!di->mod) {
		close(dfd);
		ret = -ENOEXEC;
		goto cleanup;
	}
	dwfl_report_end(di->dwfl, NULL, NULL);
	dw = dwfl_module_getdwarf(di->mod, &bias);
	if (dw) {
		Dwarf_Aranges *ar;
		size_t n;

		/* Read now, unlocked. */
		dwarf_getaranges(dw, &ar, &n);
		di->dw_bias = bias;
		ret = index_cu_ranges(di, dw);
		if (ret)
			goto cleanup;
		di->dwarf = true;
	}
	if (!di->dwarf && !has_minidebuginfo(di->mod)) {
		ret = -ENOENT; /* nothing beyond the ELF's own symbols */
		goto cleanup;
	}
	*out = di;
	return 0;
cleanup:
	debuginfo__free(di);
	return ret;
}

bool debuginfo__has_dwarf(const struct debuginfo *di)
{
	return di && di->dwarf;
}

static const char *attr_string(Dwarf_Die *die, unsigned int name)
{
	Dwarf_Attribute a;

	return dwarf_formstring(dwarf_attr_integrate(die, name, &a));
}

static uint32_t attr_udata(Dwarf_Die *die, unsigned int name)
{
	Dwarf_Attribute a;
	Dwarf_Word w;

	if (dwarf_formudata(dwarf_attr(die, name, &a), &w) || w > UINT32_MAX)
		return 0;
	return (uint32_t)w;
}

/* Interns the names of a subprogram or inlined subroutine (following
 * DW_AT_abstract_origin and DW_AT_specification). */
static int die_names(struct debuginfo *di, struct str_pool *sp, Dwarf_Die *die,
		     const char **function, const char **system_name)
{
	const char *linkage = attr_string(die, DW_AT_linkage_name);
	const char *name = attr_string(die, DW_AT_name);
	const char *key = linkage ? linkage : name;
	size_t before = htab__bytes(&di->names);
	uint64_t h = sym_hash_u64((uintptr_t)key);
	struct name_node *nn;
	struct hnode *n;
	int ret = 0;

	*function = *system_name = NULL;
	if (!key)
		return 0;
	for (n = htab__first(&di->names, h); n; n = htab__next(n, h)) {
		nn = container_of(n, struct name_node, node);
		if (nn->key == key) {
			*function = nn->function;
			*system_name = nn->system_name;
			return 0;
		}
	}
	if (!linkage)
		linkage = attr_string(die, DW_AT_MIPS_linkage_name);
	if (linkage)
		ret = sym_demangle(sp, linkage, function, system_name);
	/* No linkage name, or one that is not mangled: the plain name. */
	if (!ret && name && (!linkage || !*system_name))
		ret = sym_demangle(sp, name, function, system_name);
	nn = ret ? NULL : malloc(sizeof(*nn));
	if (nn) {
		*nn = (struct name_node){
			.key = key, .function = *function, .system_name = *system_name};
		htab__add(&di->names, &nn->node, h);
		di->bytes += sizeof(*nn) + htab__bytes(&di->names) - before;
	}
	return ret; /* a failed cache insert only costs a later demangle */
}

static const char *intern_or_null(struct str_pool *sp, const char *s, int *err)
{
	const char *r;

	if (!s)
		return NULL;
	r = str_pool__intern(sp, s, strlen(s));
	if (!r)
		*err = -ENOMEM;
	return r;
}

/* The source file of a DW_AT_call_file index in cu's file table. */
static const char *call_file(Dwarf_Die *cu, Dwarf_Die *die)
{
	Dwarf_Files *files;
	size_t nfiles;
	uint32_t idx = attr_udata(die, DW_AT_call_file);

	if (dwarf_getsrcfiles(cu, &files, &nfiles) || idx >= nfiles)
		return NULL;
	return dwarf_filesrc(files, idx, NULL, NULL);
}

int debuginfo__symbol(const struct debuginfo *di, uint64_t vaddr, struct str_pool *sp,
		      const char **function, const char **system_name)
{
	const char *name = di ? dwfl_module_addrname(di->mod, vaddr) : NULL;

	*function = *system_name = NULL;
	return name ? sym_demangle(sp, name, function, system_name) : 0;
}

/*
 * Appends to chain[] (outermost first) the inlined-subroutine DIEs under
 * parent that contain pc, descending only into scopes that contain it.
 */
static void find_inlined(Dwarf_Die *parent, Dwarf_Addr pc, Dwarf_Die *chain, int *n, int depth)
{
	Dwarf_Die child;

	if (depth >= SCOPE_DEPTH_MAX || dwarf_child(parent, &child) != 0)
		return;
	do {
		int tag = dwarf_tag(&child);

		if (tag != DW_TAG_inlined_subroutine && tag != DW_TAG_lexical_block &&
		    tag != DW_TAG_try_block && tag != DW_TAG_catch_block)
			continue;
		if (dwarf_haspc(&child, pc) != 1)
			continue;
		if (tag == DW_TAG_inlined_subroutine && *n < SCOPE_DEPTH_MAX)
			chain[(*n)++] = child;
		find_inlined(&child, pc, chain, n, depth + 1);
		return;
	} while (dwarf_siblingof(&child, &child) == 0);
}

struct range_vec {
	struct func_range *r;
	size_t n, cap;
};

/* Collects the ranges of the subprograms under parent (and in namespaces). */
static int collect_funcs(Dwarf_Die *parent, struct range_vec *v, int depth)
{
	Dwarf_Die child;

	if (depth >= SCOPE_DEPTH_MAX || dwarf_child(parent, &child) != 0)
		return 0;
	do {
		int tag = dwarf_tag(&child), ret = 0;
		Dwarf_Addr base, lo, hi;
		ptrdiff_t off = 0;

		if (tag == DW_TAG_namespace || tag == DW_TAG_module)
			ret = collect_funcs(&child, v, depth + 1);
		else if (tag != DW_TAG_subprogram)
			continue;
		while (tag == DW_TAG_subprogram &&
		       (off = dwarf_ranges(&child, off, &base, &lo, &hi)) > 0) {
			if (v->n == v->cap) {
				size_t nc = v->cap ? v->cap * 2 : 16;
				struct func_range *r = realloc(v->r, nc * sizeof(*r));

				if (!r)
					return -ENOMEM;
				v->r = r;
				v->cap = nc;
			}
			v->r[v->n++] = (struct func_range){
				.lo = lo, .hi = hi, .die = dwarf_dieoffset(&child)};
		}
		if (ret)
			return ret;
	} while (dwarf_siblingof(&child, &child) == 0);
	return 0;
}

static int range_cmp(const void *a, const void *b)
{
	const struct func_range *x = a, *y = b;

	return x->lo < y->lo ? -1 : x->lo > y->lo;
}

/* Returns the index of unit cu, building it on first use; NULL on ENOMEM. */
static struct cu_index *cu_index(struct debuginfo *di, Dwarf_Die *cu)
{
	Dwarf_Off off = dwarf_dieoffset(cu);
	size_t lo = 0, hi = di->n_cus;
	struct range_vec v = {0};
	struct cu_index *ci;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (di->cus[mid].cu < off)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < di->n_cus && di->cus[lo].cu == off)
		return &di->cus[lo];
	if (di->n_cus == di->cap_cus) {
		size_t nc = di->cap_cus ? di->cap_cus * 2 : 16;

		ci = realloc(di->cus, nc * sizeof(*ci));
		if (!ci)
			return NULL;
		di->cus = ci;
		di->cap_cus = nc;
		di->bytes += (nc - di->n_cus) * sizeof(*ci);
	}
	if (collect_funcs(cu, &v, 0)) {
		free(v.r);
		return NULL;
	}
	qsort(v.r, v.n, sizeof(*v.r), range_cmp);
	if (v.n < v.cap) { /* most units hold a few functions: keep no slack */
		struct func_range *r = realloc(v.r, (v.n ? v.n : 1) * sizeof(*r));

		if (r) {
			v.r = r;
			v.cap = v.n ? v.n : 1;
		}
	}
	memmove(&di->cus[lo + 1], &di->cus[lo], (di->n_cus - lo) * sizeof(*ci));
	di->n_cus++;
	di->cus[lo] = (struct cu_index){.cu = off, .r = v.r, .n = v.n};
	di->bytes += v.cap * sizeof(*v.r);
	return &di->cus[lo];
}

/* Finds the out-of-line function containing pc in unit cu. */
static bool find_func(struct debuginfo *di, Dwarf *dw, Dwarf_Die *cu, Dwarf_Addr pc, Dwarf_Die *out,
		      int *err)
{
	struct cu_index *ci = cu_index(di, cu);
	size_t lo = 0, hi;

	if (!ci) {
		*err = -ENOMEM;
		return false;
	}
	/* Last range starting at or before pc (ranges of distinct functions do
	 * not overlap). */
	hi = ci->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (ci->r[mid].lo <= pc)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo && pc < ci->r[lo - 1].hi && dwarf_offdie(dw, ci->r[lo - 1].die, out);
}

int debuginfo__lookup(struct debuginfo *di, uint64_t vaddr, struct str_pool *sp,
		      struct sym_src *out)
{
	Dwarf_Die chain[SCOPE_DEPTH_MAX + 1], *cudie, cu;
	Dwarf_Addr bias = 0, a;
	const char *file = NULL;
	uint32_t line = 0;
	int nchain = 0, err = 0;
	Dwarf_Line *ln;

	memset(out, 0, sizeof(*out));
	cudie = di && di->dwarf ? dwfl_module_addrdie(di->mod, vaddr, &bias) : NULL;
	if (!cudie && di && di->dwarf) {
		bias = di->dw_bias;
		cudie = find_cu(di, vaddr - bias, &cu);
	}
	if (!cudie)
		return 0;
	cu = *cudie;
	a = vaddr - bias;
	ln = dwarf_getsrc_die(&cu, a);
	if (ln) {
		int l = 0;

		file = dwarf_linesrc(ln, NULL, NULL);
		if (dwarf_lineno(ln, &l) == 0 && l > 0)
			line = (uint32_t)l;
	}
	if (find_func(di, dwarf_cu_getdwarf(cu.cu), &cu, a, &chain[0], &err)) {
		int n_inl = 0;

		find_inlined(&chain[0], a, chain + 1, &n_inl, 0);
		nchain = 1 + n_inl;
	}
	for (int i = nchain - 1; i >= 0 && !err; i--) {
		Dwarf_Die *d = &chain[i];
		int tag = dwarf_tag(d);
		const char *fn, *sn;

		if (tag != DW_TAG_inlined_subroutine && tag != DW_TAG_subprogram)
			continue;
		err = die_names(di, sp, d, &fn, &sn);
		if (err)
			break;
		if (tag == DW_TAG_subprogram) {
			out->function = fn;
			out->system_name = sn;
			out->file = intern_or_null(sp, file, &err);
			out->line = line;
			break;
		}
		if (out->n_inlined == SYM_MAX_INLINED) {
			/* Deeper than we keep: the outer ones are dropped. */
			memmove(out->inlined, out->inlined + 1,
				(SYM_MAX_INLINED - 1) * sizeof(out->inlined[0]));
			out->n_inlined--;
		}
		out->inlined[out->n_inlined++] = (struct sym_inline){
			.function = fn,
			.system_name = sn,
			.file = intern_or_null(sp, file, &err),
			.line = line,
		};
		/* The next outer function's position is this call's site. */
		file = call_file(&cu, d);
		line = attr_udata(d, DW_AT_call_line);
	}
	/* No enclosing subprogram: still give the outermost call's site. */
	if (!err && !out->function) {
		out->file = intern_or_null(sp, file, &err);
		out->line = line;
	}
	return err;
}
