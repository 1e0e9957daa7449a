/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * One ELF file's symbols, through libelf: the PT_LOAD segments (to turn a file
 * offset into an ELF virtual address), the GNU build id, and one sorted array
 * of code symbols merged from .symtab and .dynsym.
 *
 * Which symbols: FUNC and GNU_IFUNC, plus NOTYPE (assembly without .type) when
 * they sit in an executable section. Symbols at the same address are merged,
 * keeping the best name (FUNC over NOTYPE, GLOBAL over WEAK over LOCAL, then
 * .symtab before .dynsym). A size-0 symbol extends to the next symbol (capped
 * at its section's end), except that a size-0 label inside a sized function
 * is dropped so it does not hide the function.
 *
 * The image is built once, unlocked, by the loading thread, then published
 * under the symbolizer's lock and never changed: lookups need no lock. Names
 * are copied into one pool so the file can be closed after the load.
 * DWARF lines and inlines, separate debug files and MiniDebugInfo hang off
 * this as img->debug (debuginfo.c), attached by the loader.
 */
#include <errno.h>
#include <gelf.h>
#include <libelf.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "symbolizer_internal.h"

#ifndef NT_GNU_BUILD_ID
#define NT_GNU_BUILD_ID 3
#endif

/* A symbol as collected, before merging. */
struct raw_sym {
	uint64_t start, size, sec_end;
	const char *name; /* in the ELF's string table: valid while the Elf is open */
	uint32_t order;
	uint8_t rank;
};

/* Per-section facts needed to filter symbols. */
struct sec_info {
	uint64_t addr, size;
	bool exec;
};

static void set_err(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

static void hex_build_id(char *dst, const unsigned char *id, size_t n)
{
	static const char hex[] = "0123456789abcdef";

	if (n > SYM_BUILD_ID_MAX)
		n = SYM_BUILD_ID_MAX;
	for (size_t i = 0; i < n; i++) {
		dst[2 * i] = hex[id[i] >> 4];
		dst[2 * i + 1] = hex[id[i] & 0xf];
	}
	dst[2 * n] = '\0';
}

/* Returns true if data (a note section or segment) holds a GNU build id. */
static bool find_build_id(Elf_Data *data, char *dst)
{
	GElf_Nhdr nh;
	size_t off = 0, name_off, desc_off, next;

	while ((next = gelf_getnote(data, off, &nh, &name_off, &desc_off)) > 0) {
		const char *name = (const char *)data->d_buf + name_off;

		if (nh.n_type == NT_GNU_BUILD_ID && nh.n_namesz == 4 &&
		    memcmp(name, "GNU", 4) == 0 && nh.n_descsz > 0) {
			hex_build_id(dst, (const unsigned char *)data->d_buf + desc_off,
				     nh.n_descsz);
			return true;
		}
		off = next;
	}
	return false;
}

static uint32_t note_word(const unsigned char *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

bool elf_notes__build_id(const void *notes, size_t len, char *dst)
{
	const unsigned char *p = notes;
	size_t off = 0;

	dst[0] = '\0';
	while (off + 12 <= len) { /* off <= len + 3: a last note may lack its padding */
		uint32_t namesz = note_word(p + off), descsz = note_word(p + off + 4);
		uint32_t type = note_word(p + off + 8);
		size_t name_off = off + 12, desc_off, name_pad, desc_pad;

		/* 32-bit sizes: these sums cannot overflow a 64-bit size_t. */
		name_pad = ((size_t)namesz + 3) & ~(size_t)3;
		desc_pad = ((size_t)descsz + 3) & ~(size_t)3;
		if (name_pad > len - name_off || descsz > len - name_off - name_pad)
			return false;
		desc_off = name_off + name_pad;
		if (type == NT_GNU_BUILD_ID && namesz == 4 && memcmp(p + name_off, "GNU", 4) == 0 &&
		    descsz > 0) {
			hex_build_id(dst, p + desc_off, descsz);
			return true;
		}
		off = desc_off + desc_pad;
	}
	return false;
}

static void read_build_id(Elf *elf, size_t phnum, char *dst)
{
	Elf_Scn *scn = NULL;

	while ((scn = elf_nextscn(elf, scn))) {
		GElf_Shdr sh;
		Elf_Data *d;

		if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_NOTE)
			continue;
		d = elf_getdata(scn, NULL);
		if (d && find_build_id(d, dst))
			return;
	}
	/* No section headers (or no note section): try PT_NOTE segments. */
	for (size_t i = 0; i < phnum; i++) {
		GElf_Phdr ph;
		Elf_Data *d;

		if (!gelf_getphdr(elf, (int)i, &ph) || ph.p_type != PT_NOTE)
			continue;
		d = elf_getdata_rawchunk(elf, (int64_t)ph.p_offset, ph.p_filesz, ELF_T_NHDR);
		if (d && find_build_id(d, dst))
			return;
	}
}

static int read_loads(Elf *elf, size_t phnum, struct elf_image *img)
{
	img->loads = calloc(phnum ? phnum : 1, sizeof(*img->loads));
	if (!img->loads)
		return -ENOMEM;
	for (size_t i = 0; i < phnum; i++) {
		GElf_Phdr ph;

		if (!gelf_getphdr(elf, (int)i, &ph) || ph.p_type != PT_LOAD)
			continue;
		img->loads[img->n_loads++] = (struct elf_load){
			.offset = ph.p_offset,
			.filesz = ph.p_filesz,
			.vaddr = ph.p_vaddr,
		};
	}
	img->bytes += phnum * sizeof(*img->loads);
	return 0;
}

static uint8_t sym_rank(const GElf_Sym *s)
{
	uint8_t r = GELF_ST_TYPE(s->st_info) == STT_NOTYPE ? 0 : 4;

	switch (GELF_ST_BIND(s->st_info)) {
	case STB_GLOBAL:
		return r + 2;
	case STB_WEAK:
		return r + 1;
	default:
		return r;
	}
}

/* Appends the code symbols of one symbol table section to *raw. */
static int collect_syms(Elf *elf, Elf_Scn *scn, const GElf_Shdr *sh, const struct sec_info *secs,
			size_t nsecs, struct raw_sym **raw, size_t *n, size_t *cap)
{
	Elf_Data *data = elf_getdata(scn, NULL);
	size_t count;

	if (!data || !sh->sh_entsize)
		return 0;
	count = sh->sh_size / sh->sh_entsize;
	for (size_t i = 1; i < count; i++) {
		GElf_Sym s;
		const char *name;
		int type;

		if (!gelf_getsym(data, (int)i, &s))
			break;
		type = GELF_ST_TYPE(s.st_info);
		if (type != STT_FUNC && type != STT_GNU_IFUNC && type != STT_NOTYPE)
			continue;
		if (s.st_shndx == SHN_UNDEF || s.st_shndx >= SHN_LORESERVE || s.st_shndx >= nsecs ||
		    !secs[s.st_shndx].exec || !s.st_value)
			continue;
		name = elf_strptr(elf, sh->sh_link, s.st_name);
		if (!name || !name[0] || name[0] == '$') /* ARM/AArch64 mapping symbols */
			continue;
		if (*n == *cap) {
			size_t nc = *cap ? *cap * 2 : 1024;
			struct raw_sym *r = realloc(*raw, nc * sizeof(*r));

			if (!r)
				return -ENOMEM;
			*raw = r;
			*cap = nc;
		}
		(*raw)[*n] = (struct raw_sym){
			.start = s.st_value,
			.size = s.st_size,
			.sec_end = secs[s.st_shndx].addr + secs[s.st_shndx].size,
			.name = name,
			.order = (uint32_t)*n,
			.rank = sym_rank(&s),
		};
		(*n)++;
	}
	return 0;
}

static int raw_cmp(const void *a, const void *b)
{
	const struct raw_sym *x = a, *y = b;

	if (x->start != y->start)
		return x->start < y->start ? -1 : 1;
	if (x->rank != y->rank)
		return x->rank > y->rank ? -1 : 1;
	return x->order < y->order ? -1 : x->order > y->order;
}

/* Sorts and merges raw symbols into img->syms and img->names. */
static int build_syms(struct elf_image *img, struct raw_sym *raw, size_t n)
{
	size_t kept = 0, names_len = 0, off = 0;
	uint64_t cover_end = 0;

	if (!n)
		return 0;
	qsort(raw, n, sizeof(*raw), raw_cmp);
	/* Keep the best symbol per address; drop size-0 labels inside a sized one. */
	for (size_t i = 0; i < n; i++) {
		if (kept && raw[kept - 1].start == raw[i].start)
			continue;
		if (!raw[i].size && raw[i].start < cover_end)
			continue;
		if (raw[i].size && raw[i].start + raw[i].size > cover_end)
			cover_end = raw[i].start + raw[i].size;
		raw[kept++] = raw[i];
		names_len += strlen(raw[i].name) + 1;
	}
	if (!kept)
		return 0;
	img->syms = malloc(kept * sizeof(*img->syms));
	img->names = malloc(names_len);
	if (!img->syms || !img->names)
		return -ENOMEM;
	for (size_t i = 0; i < kept; i++) {
		uint64_t end = raw[i].start + raw[i].size;
		size_t len = strlen(raw[i].name) + 1;

		if (!raw[i].size) {
			end = raw[i].sec_end;
			if (i + 1 < kept && raw[i + 1].start < end)
				end = raw[i + 1].start;
		}
		if (end <= raw[i].start)
			end = raw[i].start + 1;
		if (end - raw[i].start > UINT32_MAX)
			end = raw[i].start + UINT32_MAX;
		img->syms[i] = (struct elf_sym){
			.start = raw[i].start,
			.len = (uint32_t)(end - raw[i].start),
			.name = (uint32_t)off,
		};
		memcpy(img->names + off, raw[i].name, len);
		off += len;
	}
	img->n_syms = kept;
	img->bytes += kept * sizeof(*img->syms) + names_len;
	return 0;
}

static int read_syms(Elf *elf, struct elf_image *img, char *err, size_t errlen)
{
	struct sec_info *secs = NULL;
	struct raw_sym *raw = NULL;
	size_t nsecs = 0, n = 0, cap = 0;
	Elf_Scn *scn = NULL;
	int ret = 0;

	if (elf_getshdrnum(elf, &nsecs) || !nsecs)
		return 0; /* no section headers: no symbols, not an error here */
	secs = calloc(nsecs, sizeof(*secs));
	if (!secs)
		return -ENOMEM;
	while ((scn = elf_nextscn(elf, scn))) {
		size_t idx = elf_ndxscn(scn);
		GElf_Shdr sh;

		if (idx >= nsecs || !gelf_getshdr(scn, &sh))
			continue;
		secs[idx] = (struct sec_info){
			.addr = sh.sh_addr,
			.size = sh.sh_size,
			.exec = (sh.sh_flags & SHF_EXECINSTR) != 0,
		};
	}
	/* .symtab first so that its names win ties (order), then .dynsym. */
	for (int pass = 0; pass < 2 && !ret; pass++) {
		Elf64_Word want = pass == 0 ? SHT_SYMTAB : SHT_DYNSYM;

		scn = NULL;
		while ((scn = elf_nextscn(elf, scn)) && !ret) {
			GElf_Shdr sh;

			if (!gelf_getshdr(scn, &sh) || sh.sh_type != want)
				continue;
			ret = collect_syms(elf, scn, &sh, secs, nsecs, &raw, &n, &cap);
		}
	}
	if (!ret)
		ret = build_syms(img, raw, n);
	if (ret)
		set_err(err, errlen, "out of memory reading symbols");
	free(raw);
	free(secs);
	return ret;
}

static int load_elf(Elf *elf, struct elf_image **out, char *err, size_t errlen)
{
	struct elf_image *img = NULL;
	GElf_Ehdr eh;
	size_t phnum = 0;
	int ret;

	if (!elf) {
		set_err(err, errlen, "%s", elf_errmsg(-1));
		return -EINVAL;
	}
	if (elf_kind(elf) != ELF_K_ELF) {
		set_err(err, errlen, "not an ELF file");
		return -ENOEXEC;
	}
	if (!gelf_getehdr(elf, &eh)) {
		set_err(err, errlen, "bad ELF header: %s", elf_errmsg(-1));
		return -ENOEXEC;
	}
	if (eh.e_type != ET_EXEC && eh.e_type != ET_DYN) {
		set_err(err, errlen, "not an executable or shared object (e_type %u)", eh.e_type);
		return -ENOEXEC;
	}
	if (elf_getphdrnum(elf, &phnum)) {
		set_err(err, errlen, "bad program headers: %s", elf_errmsg(-1));
		return -ENOEXEC;
	}
	img = calloc(1, sizeof(*img));
	if (!img) {
		set_err(err, errlen, "out of memory");
		return -ENOMEM;
	}
	img->bytes = sizeof(*img);
	img->e_type = eh.e_type;
	img->name_lock = (pthread_mutex_t)PTHREAD_MUTEX_INITIALIZER;
	ret = str_pool__init(&img->strings);
	if (ret) {
		set_err(err, errlen, "out of memory");
		goto cleanup;
	}
	img->strings_counted = img->strings.bytes;
	img->bytes += img->strings.bytes;
	ret = read_loads(elf, phnum, img);
	if (ret) {
		set_err(err, errlen, "out of memory");
		goto cleanup;
	}
	if (!img->n_loads) {
		set_err(err, errlen, "no PT_LOAD segment");
		ret = -ENOEXEC;
		goto cleanup;
	}
	read_build_id(elf, phnum, img->build_id);
	ret = read_syms(elf, img, err, errlen);
	if (ret)
		goto cleanup;
	*out = img;
	img = NULL;
cleanup:
	elf_image__free(img);
	return ret;
}

int elf_image__load_fd(int fd, struct elf_image **out, char *err, size_t errlen)
{
	Elf *elf;
	int ret;

	if (elf_version(EV_CURRENT) == EV_NONE) {
		set_err(err, errlen, "libelf: %s", elf_errmsg(-1));
		return -EINVAL;
	}
	elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
	ret = load_elf(elf, out, err, errlen);
	elf_end(elf);
	return ret;
}

int elf_image__load_mem(const void *data, size_t size, struct elf_image **out, char *err,
			size_t errlen)
{
	char *copy;
	Elf *elf;
	int ret;

	if (elf_version(EV_CURRENT) == EV_NONE) {
		set_err(err, errlen, "libelf: %s", elf_errmsg(-1));
		return -EINVAL;
	}
	/* libelf wants a writable image; the source (e.g. the vdso) may not be. */
	copy = malloc(size ? size : 1);
	if (!copy) {
		set_err(err, errlen, "out of memory");
		return -ENOMEM;
	}
	memcpy(copy, data, size);
	elf = elf_memory(copy, size);
	ret = load_elf(elf, out, err, errlen);
	elf_end(elf);
	free(copy);
	return ret;
}

void elf_image__free(struct elf_image *img)
{
	if (!img)
		return;
	free(img->loads);
	free(img->syms);
	free(img->names);
	debuginfo__free(img->debug);
	str_pool__deinit(&img->strings);
	pthread_mutex_destroy(&img->name_lock);
	free(img);
}

struct elf_dropped *elf_image__drop_symbols(struct elf_image *img, size_t *freed)
{
	size_t kept = sizeof(*img) + img->strings_counted;
	struct elf_dropped *d = malloc(sizeof(*d));

	*freed = img->bytes > kept ? img->bytes - kept : 0;
	if (d) {
		*d = (struct elf_dropped){.loads = img->loads,
					  .syms = img->syms,
					  .names = img->names,
					  .debug = img->debug};
	} else {
		free(img->loads);
		free(img->syms);
		free(img->names);
		debuginfo__free(img->debug);
	}
	img->loads = NULL;
	img->syms = NULL;
	img->names = NULL;
	img->debug = NULL;
	img->n_loads = img->n_syms = 0;
	img->bytes -= *freed;
	return d;
}

void elf_dropped__free(struct elf_dropped *d)
{
	while (d) {
		struct elf_dropped *next = d->next;

		free(d->loads);
		free(d->syms);
		free(d->names);
		debuginfo__free(d->debug);
		free(d);
		d = next;
	}
}

bool elf_image__vaddr(const struct elf_image *img, uint64_t file_offset, uint64_t *vaddr)
{
	for (size_t i = 0; i < img->n_loads; i++) {
		const struct elf_load *l = &img->loads[i];

		if (file_offset >= l->offset && file_offset - l->offset < l->filesz) {
			*vaddr = file_offset - l->offset + l->vaddr;
			return true;
		}
	}
	return false;
}

const char *elf_image__lookup(const struct elf_image *img, uint64_t file_offset)
{
	size_t lo = 0, hi;
	uint64_t vaddr;

	if (!img->n_syms || !elf_image__vaddr(img, file_offset, &vaddr))
		return NULL;
	/* Last symbol with start <= vaddr. */
	hi = img->n_syms;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (img->syms[mid].start <= vaddr)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (!lo)
		return NULL;
	if (vaddr - img->syms[lo - 1].start >= img->syms[lo - 1].len)
		return NULL;
	return img->names + img->syms[lo - 1].name;
}
