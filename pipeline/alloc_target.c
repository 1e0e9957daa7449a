/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Finding a process's allocator (see alloc_target.h): its mapped files are
 * read through /proc/PID/map_files (the exact files it maps, even deleted or
 * in another mount namespace), their .dynsym and .symtab searched for the
 * allocator's functions with libelf, and each function's first bytes handed
 * to probe_point__choose().
 */
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <inttypes.h>
#include <libelf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "alloc_target.h"

#define MAX_FILES 4096

static const char *const fn_names[ALLOC_FN_COUNT] = {
	[ALLOC_FN_MALLOC] = "malloc",
	[ALLOC_FN_CALLOC] = "calloc",
	[ALLOC_FN_REALLOC] = "realloc",
	[ALLOC_FN_REALLOCARRAY] = "reallocarray",
	[ALLOC_FN_POSIX_MEMALIGN] = "posix_memalign",
	[ALLOC_FN_ALIGNED_ALLOC] = "aligned_alloc",
	[ALLOC_FN_MEMALIGN] = "memalign",
	[ALLOC_FN_VALLOC] = "valloc",
	[ALLOC_FN_PVALLOC] = "pvalloc",
	[ALLOC_FN_FREE] = "free",
};

/* The argument registers each entry program reads. */
static const uint32_t fn_args[ALLOC_FN_COUNT] = {
	[ALLOC_FN_MALLOC] = PROBE_REG_RDI,
	[ALLOC_FN_CALLOC] = PROBE_REG_RDI | PROBE_REG_RSI,
	[ALLOC_FN_REALLOC] = PROBE_REG_RDI | PROBE_REG_RSI,
	[ALLOC_FN_REALLOCARRAY] = PROBE_REG_RDI | PROBE_REG_RSI | PROBE_REG_RDX,
	[ALLOC_FN_POSIX_MEMALIGN] = PROBE_REG_RDI | PROBE_REG_RDX,
	[ALLOC_FN_ALIGNED_ALLOC] = PROBE_REG_RSI,
	[ALLOC_FN_MEMALIGN] = PROBE_REG_RSI,
	[ALLOC_FN_VALLOC] = PROBE_REG_RDI,
	[ALLOC_FN_PVALLOC] = PROBE_REG_RDI,
	[ALLOC_FN_FREE] = PROBE_REG_RDI,
};

static int find(uint32_t tgid, bool libc_only, struct alloc_target *out, char *err, size_t errlen);

int alloc_target__find(uint32_t tgid, struct alloc_target *out, char *err, size_t errlen)
{
	return find(tgid, false, out, err, errlen);
}

int alloc_target__find_libc(uint32_t tgid, struct alloc_target *out, char *err, size_t errlen)
{
	return find(tgid, true, out, err, errlen);
}

const char *alloc_fn__name(enum alloc_fn fn)
{
	return fn < ALLOC_FN_COUNT ? fn_names[fn] : "?";
}

/* One distinct mapped file. */
struct mapped_file {
	uint64_t start, end, dev, inode;
	char path[PATH_MAX];
};

/* What one ELF file defines: each function's virtual address, or 0. */
struct file_syms {
	uint64_t vaddr[ALLOC_FN_COUNT];
	bool jemalloc, tcmalloc; /* markers of those allocators */
};

static void scan_symtab(Elf *elf, Elf_Scn *scn, GElf_Shdr *sh, struct file_syms *fs)
{
	Elf_Data *data = elf_getdata(scn, NULL);
	size_t n = sh->sh_entsize ? sh->sh_size / sh->sh_entsize : 0;

	for (size_t i = 0; data && i < n; i++) {
		GElf_Sym sym;
		const char *name;

		/* Only what the dynamic linker can bind to: global or weak,
		 * default visibility (a library's local helpers named malloc
		 * are not its malloc). */
		if (!gelf_getsym(data, (int)i, &sym) || sym.st_shndx == SHN_UNDEF ||
		    GELF_ST_TYPE(sym.st_info) != STT_FUNC || !sym.st_value ||
		    GELF_ST_BIND(sym.st_info) == STB_LOCAL ||
		    GELF_ST_VISIBILITY(sym.st_other) != STV_DEFAULT)
			continue;
		name = elf_strptr(elf, sh->sh_link, sym.st_name);
		if (!name)
			continue;
		if (!strcmp(name, "mallctl") || !strncmp(name, "je_", 3))
			fs->jemalloc = true;
		if (!strncmp(name, "tc_malloc", 9))
			fs->tcmalloc = true;
		for (int f = 0; f < ALLOC_FN_COUNT; f++) {
			if (!fs->vaddr[f] && !strcmp(name, fn_names[f]))
				fs->vaddr[f] = sym.st_value;
		}
	}
}

/* Reads what elf defines; returns false if it is not an ELF file. A
 * library is read for its dynamic symbols alone (what other objects bind
 * to); an executable's .symtab counts too (malloc linked in statically
 * may be exported by neither). */
static bool read_syms(Elf *elf, bool is_exe, struct file_syms *fs)
{
	Elf_Scn *scn = NULL;

	memset(fs, 0, sizeof(*fs));
	if (elf_kind(elf) != ELF_K_ELF)
		return false;
	while ((scn = elf_nextscn(elf, scn))) {
		GElf_Shdr sh;

		if (gelf_getshdr(scn, &sh) &&
		    (sh.sh_type == SHT_DYNSYM || (is_exe && sh.sh_type == SHT_SYMTAB)))
			scan_symtab(elf, scn, &sh, fs);
	}
	return true;
}

/* ELF virtual address -> file offset through the executable PT_LOADs. */
static bool vaddr_to_offset(Elf *elf, uint64_t vaddr, uint64_t *off)
{
	size_t n;

	if (elf_getphdrnum(elf, &n))
		return false;
	for (size_t i = 0; i < n; i++) {
		GElf_Phdr ph;

		if (!gelf_getphdr(elf, (int)i, &ph) || ph.p_type != PT_LOAD || !(ph.p_flags & PF_X))
			continue;
		if (vaddr >= ph.p_vaddr && vaddr < ph.p_vaddr + ph.p_filesz) {
			*off = vaddr - ph.p_vaddr + ph.p_offset;
			return true;
		}
	}
	return false;
}

/* The distinct files process tgid maps, in maps order. */
static int read_mapped_files(uint32_t tgid, struct mapped_file **out, size_t *n_out)
{
	char path[64], line[PATH_MAX + 128];
	struct mapped_file *files;
	size_t n = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%u/maps", tgid);
	f = fopen(path, "re");
	if (!f)
		return errno == ENOENT ? -ESRCH : -errno;
	files = calloc(MAX_FILES, sizeof(*files));
	if (!files) {
		fclose(f);
		return -ENOMEM;
	}
	while (n < MAX_FILES && fgets(line, sizeof(line), f)) {
		unsigned long long start, end, pgoff, inode;
		unsigned major, minor;
		int pos = 0;
		bool seen = false;

		if (sscanf(line, "%llx-%llx %*s %llx %x:%x %llu %n", &start, &end, &pgoff, &major,
			   &minor, &inode, &pos) < 6 ||
		    !inode || line[pos] != '/')
			continue;
		for (size_t i = 0; i < n && !seen; i++)
			seen = files[i].inode == inode &&
			       files[i].dev == ((uint64_t)major << 32 | minor);
		if (seen)
			continue;
		files[n] = (struct mapped_file){.start = start,
						.end = end,
						.dev = (uint64_t)major << 32 | minor,
						.inode = inode};
		snprintf(files[n].path, sizeof(files[n].path), "%s", line + pos);
		files[n].path[strcspn(files[n].path, "\n")] = '\0';
		n++;
	}
	fclose(f);
	*out = files;
	*n_out = n;
	return 0;
}

static bool is_dynamic_linker(const char *path)
{
	const char *base = strrchr(path, '/');

	base = base ? base + 1 : path;
	return !strncmp(base, "ld-linux", 8) || !strncmp(base, "ld-", 3) ||
	       !strncmp(base, "ld64.so", 7);
}

static bool is_libc(const char *path)
{
	const char *base = strrchr(path, '/');

	base = base ? base + 1 : path;
	return !strncmp(base, "libc.so", 7) || !strncmp(base, "libc-", 5);
}

/* Opens a mapped file as the process sees it; attach gets a path to it that
 * the kernel resolves from the agent's mount namespace. map_files needs
 * CAP_SYS_ADMIN; without it, the path inside the process's root. */
static int open_mapped(uint32_t tgid, const struct mapped_file *mf, char *attach, size_t len)
{
	int fd;

	snprintf(attach, len, "/proc/%u/map_files/%" PRIx64 "-%" PRIx64, tgid, mf->start, mf->end);
	fd = open(attach, O_RDONLY | O_CLOEXEC);
	if (fd < 0 && (errno == EPERM || errno == EACCES)) {
		if ((size_t)snprintf(attach, len, "/proc/%u/root%s", tgid, mf->path) >= len)
			return -ENAMETOOLONG;
		fd = open(attach, O_RDONLY | O_CLOEXEC);
	}
	return fd < 0 ? -errno : fd;
}

/* Fills out's functions from the chosen file (open as fd). */
static int fill_sites(int fd, Elf *elf, const struct file_syms *fs, struct alloc_target *out)
{
	for (int f = 0; f < ALLOC_FN_COUNT; f++) {
		struct alloc_fn_site *site = &out->fn[f];
		uint8_t code[PROBE_POINT_SCAN_BYTES];
		ssize_t got;

		if (!fs->vaddr[f] || !vaddr_to_offset(elf, fs->vaddr[f], &site->file_offset))
			continue;
		/* Two names of one function (glibc: aligned_alloc is memalign):
		 * probe it once, or every call would count twice. */
		for (int g = 0; g < f && !site->skipped; g++) {
			if (out->fn[g].present && out->fn[g].file_offset == site->file_offset)
				site->skipped = fn_names[g];
		}
		/* glibc's reallocarray multiplies and jumps to realloc through the
		 * PLT: realloc's probe sees the call, with the product as size. */
		if (f == ALLOC_FN_REALLOCARRAY && !strcmp(out->kind, "glibc"))
			site->skipped = "calls realloc (probed)";
		if (site->skipped)
			continue;
		got = pread(fd, code, sizeof(code), (off_t)site->file_offset);
		if (got <= 0)
			return got < 0 ? -errno : -EIO;
		probe_point__choose(code, (size_t)got, fn_args[f], &site->entry_point);
		site->present = true;
	}
	return 0;
}

static int find(uint32_t tgid, bool libc_only, struct alloc_target *out, char *err, size_t errlen)
{
	struct mapped_file *files = NULL;
	size_t n = 0, chosen = SIZE_MAX;
	struct stat exe_st;
	char exe[64], attach[PATH_MAX + 32];
	bool exe_known;
	int ret, rank = 0;

	memset(out, 0, sizeof(*out));
	out->tgid = tgid;
	err[0] = '\0';
	elf_version(EV_CURRENT);
	ret = read_mapped_files(tgid, &files, &n);
	if (ret) {
		snprintf(err, errlen, "cannot read /proc/%u/maps: %s", tgid, strerror(-ret));
		return ret;
	}
	snprintf(exe, sizeof(exe), "/proc/%u/exe", tgid);
	exe_known = stat(exe, &exe_st) == 0;
	/* Rank: 3 the executable, 2 another library, 1 libc: the linker's order. */
	for (size_t i = 0; i < n; i++) {
		struct file_syms fs;
		bool is_exe = exe_known && (uint64_t)exe_st.st_ino == files[i].inode &&
			      files[i].dev ==
				      ((uint64_t)major(exe_st.st_dev) << 32 | minor(exe_st.st_dev));
		int fd = open_mapped(tgid, &files[i], attach, sizeof(attach)), r;
		Elf *elf;

		if (fd < 0)
			continue;
		elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
		/* The dynamic linker's own minimal malloc (older glibc exports
		 * it) serves its start-up only. */
		if (!is_dynamic_linker(files[i].path) && elf && read_syms(elf, is_exe, &fs) &&
		    fs.vaddr[ALLOC_FN_MALLOC] && fs.vaddr[ALLOC_FN_FREE]) {
			r = is_exe ? 3 : is_libc(files[i].path) ? 1 : 2;
			if (libc_only && r != 1)
				r = 0;
			if (r > rank) {
				rank = r;
				chosen = i;
				out->in_executable = is_exe;
				out->kind = fs.jemalloc	  ? "jemalloc"
					    : fs.tcmalloc ? "tcmalloc"
					    : r == 1	  ? "glibc"
							  : "other";
			}
		}
		elf_end(elf);
		close(fd);
	}
	if (chosen == SIZE_MAX) {
		char bin[PATH_MAX] = "?";
		ssize_t len = readlink(exe, bin, sizeof(bin) - 1);

		bin[len > 0 ? len : 1] = '\0';
		snprintf(err, errlen,
			 "process %u (%s): none of its %zu mapped files defines malloc and free: "
			 "no glibc, jemalloc or tcmalloc found (a static binary without symbols?)",
			 tgid, bin, n);
		free(files);
		return -ENOENT;
	}
	snprintf(out->path, sizeof(out->path), "%s", files[chosen].path);
	int fd = open_mapped(tgid, &files[chosen], out->attach_path, sizeof(out->attach_path));
	if (fd < 0) {
		snprintf(err, errlen, "cannot open %s: %s", out->attach_path, strerror(-fd));
		free(files);
		return fd;
	}
	Elf *elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
	struct file_syms fs;
	ret = elf && read_syms(elf, out->in_executable, &fs) ? fill_sites(fd, elf, &fs, out)
							     : -ENOEXEC;
	if (ret)
		snprintf(err, errlen, "cannot read %s: %s", out->path, strerror(-ret));
	elf_end(elf);
	close(fd);
	free(files);
	return ret;
}
