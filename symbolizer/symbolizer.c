/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * symbolizer: lifecycle, stats, invalidation, and the slow path that readers
 * take on a cache miss.
 *
 * Threads: any number of workers, each with its own sym_reader (reader.c),
 * whose warm lookups take no lock. A reader miss calls
 * symbolizer__resolve_slow(), which takes sym->lock once for the batch of
 * misses. Under the lock only table lookups and inserts run: reading
 * /proc/PID/maps, loading an ELF file or /proc/kallsyms happens unlocked, by
 * the thread that marked the object "loading" (process.loading,
 * MOD_STATE_LOADING, KERN_LOADING); a thread needing the same object waits on
 * sym->loaded and then retries from the top, since the tables may have
 * changed meanwhile. Modules are never freed, and a process being read is
 * never swept, so the loader's pointer stays valid while it is unlocked.
 *
 * Memory bound: opts.max_cache_bytes bounds what the shared tables hold
 * (frames, modules, ELF images with their DWARF indexes, kallsyms, process
 * mappings), roughly: the check is made before adding, and one load may
 * overshoot it. Past it, the least recently used ELF images are evicted
 * (symbols, DWARF; their modules load the file again when a new frame needs
 * it: make_room); frames are never evicted (they stay valid until
 * symbolizer__free()), so when frames and what cannot be evicted fill the
 * bound, new (module, address) keys get their module's coarse frame
 * (function NULL, address 0), counted in stats.cache_full. Process mappings
 * are reclaimed by their own rules (process_table.c).
 *
 * Error reporting: a file that cannot be opened or parsed, or has no symbols,
 * is counted in elf_load_errors and named on stderr (each module is loaded
 * once, and again only after its image was evicted; SYM_MAX_WARNINGS caps the
 * total).
 *
 * Identity for exporters: a module load also computes the file's htlhash from
 * the same open file (even past the memory bound, where symbols are skipped:
 * it costs two page reads and 33 bytes); the kernel module's build id is read
 * from /sys/kernel/notes by symbolizer__new(). Process info (executable path,
 * container id) is read with each read of a process's maps, unlocked like
 * them, and interned in sym->strings; symbolizer__process_info() serves it,
 * or reads it on demand for a process the table does not know.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <libelf.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/stat.h>
#include <unistd.h>

#include "symbolizer_internal.h"

#define KALLSYMS_PATH	  "/proc/kallsyms"
#define MODULES_PATH	  "/proc/modules"
#define KERNEL_NOTES_PATH "/sys/kernel/notes"

/* State of one symbolizer__resolve_slow() call. */
struct slow_ctx {
	uint32_t tgid;
	bool refreshed; /* at most one maps re-read per call */
	int err;
};

static size_t cache_bytes(const struct symbolizer *sym)
{
	size_t b = sym->procs.bytes + sym->mods.bytes + sym->frames.bytes + sym->strings.bytes +
		   sym->epoch.ht_bytes + sym->epoch.pending_bytes;

	if (sym->ksyms)
		b += sym->ksyms->bytes + sym->ksyms->n_mods * sizeof(*sym->ksym_mods);
	for (const struct kallsyms *ks = sym->ksyms_retired; ks; ks = ks->older)
		b += ks->bytes;
	return b;
}

static bool over_budget(const struct symbolizer *sym)
{
	return cache_bytes(sym) >= sym->max_bytes;
}

/*
 * Over the memory bound, evicts the least recently used ELF images (their
 * symbols and DWARF; see module_table__evict_image) down to 90 % of it, so
 * that a working set just over the bound does not reload a file per frame,
 * or until none is left that can be evicted. Returns true if under the
 * bound. Called with sym->lock held; what is evicted is freed by
 * elf_dropped__free after the lock is released.
 */
static bool make_room(struct symbolizer *sym)
{
	if (!over_budget(sym))
		return true;
	while (cache_bytes(sym) >= sym->max_bytes - sym->max_bytes / 10) {
		struct elf_image *victim = module_table__lru_image(&sym->mods);

		if (!victim)
			break;
		module_table__evict_image(&sym->mods, victim);
	}
	return !over_budget(sym);
}

/* Takes the evicted images' parts off the table, to free once sym->lock is
 * released (elf_dropped__free). Called with sym->lock held. */
static struct elf_dropped *take_dropped(struct symbolizer *sym)
{
	struct elf_dropped *d = sym->mods.dropped;

	sym->mods.dropped = NULL;
	return d;
}

/* Returns mod's module-level frame, creating it; never NULL. */
static const struct sym_frame *coarse_frame(struct symbolizer *sym, struct module *mod)
{
	if (!mod->coarse)
		mod->coarse = frame_table__new_unindexed(&sym->frames, &mod->pub,
							 mod->pub.is_kernel ? SYM_FRAME_KERNEL
									    : SYM_FRAME_USER);
	return mod->coarse ? mod->coarse : sym->unknown_mod->coarse;
}

static struct module *pseudo_module(struct symbolizer *sym, const char *path, enum module_kind kind)
{
	bool created;
	struct module *m = module_table__findnew_pseudo(&sym->mods, path, kind, &created);

	if (m && created)
		coarse_frame(sym, m);
	return m;
}

/* Returns the interned frame for (mod, address), interning it with function. */
static const struct sym_frame *intern(struct symbolizer *sym, struct slow_ctx *cx,
				      struct module *mod, uint64_t address, const char *function,
				      bool *cold)
{
	const struct sym_frame *f = frame_table__find(&sym->frames, &mod->pub, address);

	if (f)
		return f;
	*cold = true;
	if (!make_room(sym)) {
		sym->c.cache_full++;
		return coarse_frame(sym, mod);
	}
	f = frame_table__add(&sym->frames, &mod->pub, address, function,
			     mod->pub.is_kernel ? SYM_FRAME_KERNEL : SYM_FRAME_USER);
	if (!f) {
		cx->err = -ENOMEM;
		return coarse_frame(sym, mod);
	}
	return f;
}

/*
 * Names file offset off of img into *src: from DWARF (function, file:line,
 * inlined calls), else .symtab/.dynsym, else the debug file's or
 * MiniDebugInfo's symbols; names demangled and interned in the image's own
 * pool. Runs under the image's name_lock alone: a compile unit's first DWARF
 * lookup indexes the unit (tens of ms in a large C++ binary), and the other
 * shards must not wait for it. *grown_debug and *grown_strings get the
 * memory the image took on. Returns 0 or -ENOMEM.
 */
static int name_in_image(struct elf_image *img, uint64_t off, struct sym_src *src,
			 size_t *grown_debug, size_t *grown_strings)
{
	uint64_t vaddr;
	bool has_vaddr = elf_image__vaddr(img, off, &vaddr);
	const char *name;
	size_t debug_before, strings_before;
	int err = 0;

	memset(src, 0, sizeof(*src));
	pthread_mutex_lock(&img->name_lock);
	debug_before = debuginfo__bytes(img->debug);
	strings_before = img->strings.bytes;
	if (img->debug && has_vaddr)
		err = debuginfo__lookup(img->debug, vaddr, &img->strings, src);
	if (!err && !src->function) {
		name = elf_image__lookup(img, off);
		if (name)
			err = sym_demangle(&img->strings, name, &src->function, &src->system_name);
		else if (img->debug && has_vaddr)
			err = debuginfo__symbol(img->debug, vaddr, &img->strings, &src->function,
						&src->system_name);
	}
	*grown_debug = debuginfo__bytes(img->debug) - debug_before;
	*grown_strings = img->strings.bytes - strings_before;
	pthread_mutex_unlock(&img->name_lock);
	return err;
}

/*
 * Returns the interned frame of file offset off in mod, naming it on first
 * sight (name_in_image). Called with sym->lock held; drops it while naming,
 * which is safe because modules live until symbolizer__free, the image is
 * pinned against eviction meanwhile, and the caller looks nothing else up
 * before returning.
 */
static const struct sym_frame *intern_file(struct symbolizer *sym, struct slow_ctx *cx,
					   struct module *mod, uint64_t off, bool *cold)
{
	const struct sym_frame *f = frame_table__find(&sym->frames, &mod->pub, off);
	struct elf_image *img = mod->elf;
	size_t grown_debug = 0, grown_strings = 0;
	struct sym_src src;
	int err;

	if (f || !img)
		return f ? f : intern(sym, cx, mod, off, NULL, cold);
	*cold = true;
	img->pins++;
	bool room = make_room(sym);
	img->pins--;
	if (!room) {
		sym->c.cache_full++;
		return coarse_frame(sym, mod);
	}
	img->pins++;
	img->used_ns = sym_now_ns();
	struct elf_dropped *dropped = take_dropped(sym);
	pthread_mutex_unlock(&sym->lock);
	elf_dropped__free(dropped);
	err = name_in_image(img, off, &src, &grown_debug, &grown_strings);
	pthread_mutex_lock(&sym->lock);
	img->pins--;
	img->bytes += grown_debug + grown_strings;
	img->strings_counted += grown_strings;
	sym->mods.bytes += grown_debug + grown_strings;
	/* Another thread may have named the same offset meanwhile: one frame
	 * per key, so frames compare by pointer. */
	f = frame_table__find(&sym->frames, &mod->pub, off);
	if (f)
		return f;
	f = err ? NULL : frame_table__add_src(&sym->frames, &mod->pub, off, &src, SYM_FRAME_USER);
	if (!f) {
		cx->err = -ENOMEM;
		return coarse_frame(sym, mod);
	}
	return f;
}

/* ---- process mappings ---- */

static struct module *module_for_map(struct symbolizer *sym, const struct proc_maps *pm,
				     const struct proc_map *m)
{
	const char *path = proc_maps__path(pm, m);
	struct module *mod;
	bool created;

	if (!path[0])
		return sym->anon_mod;
	if (path[0] == '[')
		mod = pseudo_module(sym, path, strcmp(path, "[vdso]") == 0 ? MOD_VDSO : MOD_PSEUDO);
	else if (!m->inode)
		mod = pseudo_module(sym, path, MOD_PSEUDO);
	else {
		mod = module_table__findnew_file(&sym->mods, m->dev, m->inode, path, &created);
		if (mod && created)
			coarse_frame(sym, mod);
	}
	return mod ? mod : sym->unknown_mod;
}

static int install_maps(struct symbolizer *sym, struct process *p, const struct proc_maps *pm)
{
	struct sym_maps_snap *snap = process_table__new_snap(&sym->procs, pm->n);

	if (!snap)
		return -ENOMEM;
	for (size_t i = 0; i < pm->n; i++) {
		const struct proc_map *m = &pm->maps[i];

		snap->maps[i] = (struct sym_mapping){
			.start = m->start,
			.end = m->end,
			.pgoff = m->pgoff,
			.mod = module_for_map(sym, pm, m),
		};
	}
	if (!p->snap)
		sym->c.processes++;
	process_table__set_maps(&sym->procs, p, snap);
	return 0;
}

/*
 * Stores a process info read into p, unless p already has info and the read
 * saw no executable (a zombie: keep what the live process showed). Called
 * with sym->lock held. Returns 0 or -ENOMEM.
 */
static int set_info(struct symbolizer *sym, struct process *p, const struct proc_info *pi)
{
	const char *exe = NULL, *cid = NULL;

	if (p->info_read && !pi->has_exe)
		return 0;
	if (pi->has_exe)
		exe = str_pool__intern(&sym->strings, pi->exe, strlen(pi->exe));
	if (pi->has_container)
		cid = str_pool__intern(&sym->strings, pi->container_id, strlen(pi->container_id));
	if ((pi->has_exe && !exe) || (pi->has_container && !cid))
		return -ENOMEM;
	p->exe_path = exe;
	p->container_id = cid;
	p->info_read = true;
	return 0;
}

/*
 * Reads p's maps and process info unlocked (the info each time: an exec, or a
 * reused pid, may come with no invalidation, and reading it costs far less
 * than the maps). Called and returns with sym->lock held. A read that finds
 * nothing (the process exited, or is a zombie with empty maps) keeps the
 * mappings and info seen before.
 */
static void read_maps(struct symbolizer *sym, struct slow_ctx *cx, struct process *p)
{
	struct proc_maps pm = {0};
	struct proc_info pi;
	uint32_t seq = p->inval_seq, tgid = p->tgid;
	bool first = !p->read_once;
	int err, info_err;

	p->loading = true;
	p->read_once = true;
	p->read_seq = seq;
	p->read_ns = sym_now_ns();
	pthread_mutex_unlock(&sym->lock);
	err = proc_maps__read(&pm, tgid, true);
	info_err = proc_info__read(tgid, &pi);
	pthread_mutex_lock(&sym->lock);
	if (!first)
		sym->c.maps_refreshes++;
	if (!info_err && set_info(sym, p, &pi))
		cx->err = -ENOMEM;
	if (!err && pm.n) {
		err = install_maps(sym, p, &pm);
		if (!err && p->inval_seq == seq) {
			p->stale = false;
			process_table__publish(&sym->procs, p);
		}
	}
	if (err == -ENOMEM)
		cx->err = err;
	p->loading = false;
	pthread_cond_broadcast(&sym->loaded);
	proc_maps__deinit(&pm);
}

static bool need_read(const struct process *p, const struct slow_ctx *cx)
{
	if (!p->read_once)
		return true;
	/* First lookup after an invalidation: always re-read (exec). */
	return p->stale && p->read_seq != p->inval_seq && !cx->refreshed;
}

/* ---- ELF loads ---- */

/*
 * Opens the file behind mod as process tgid maps it, trying in turn:
 * /proc/PID/map_files/START-END (the exact mapped file, even deleted,
 * replaced, or in another mount namespace; needs CAP_SYS_ADMIN); the path
 * resolved inside the process's root with openat2(RESOLVE_IN_ROOT |
 * RESOLVE_NO_MAGICLINKS), so a symlink planted in a container cannot lead to
 * a host file; and the plain path, only for a process in the agent's own
 * mount namespace or that has exited (then only a file of the mapping's
 * device and inode is taken). A candidate whose inode differs from the mapping's is
 * skipped, except inside the root (overlay file systems may report other
 * inode numbers there), where it is the last resort. Returns an fd, or
 * -errno with err set.
 */
static int module_open(const struct module *mod, uint32_t tgid, uint64_t start, uint64_t end,
		       char *err, size_t errlen)
{
	enum { MAP_FILES, ROOT, PLAIN, N_WAYS };
	size_t plen = strlen(mod->path) - (mod->deleted ? SYM_DELETED_SUFFIX_LEN : 0);
	int fallback = -1, first_err = 0;
	char buf[PATH_MAX + 64];

	for (int way = 0; way < N_WAYS; way++) {
		struct stat st;
		int fd;

		if (way == MAP_FILES) {
			snprintf(buf, sizeof(buf), "/proc/%u/map_files/%" PRIx64 "-%" PRIx64, tgid,
				 start, end);
			fd = open(buf, O_RDONLY | O_CLOEXEC);
			fd = fd < 0 ? -errno : fd;
		} else {
			if (plen >= sizeof(buf)) {
				snprintf(err, errlen, "path too long");
				return -ENAMETOOLONG;
			}
			memcpy(buf, mod->path, plen);
			buf[plen] = '\0';
			if (way == ROOT) {
				fd = proc_root__open(tgid, buf, false);
			} else if (proc_root__same_mnt_ns(tgid) || !proc_root__exists(tgid)) {
				fd = open(buf, O_RDONLY | O_CLOEXEC);
				fd = fd < 0 ? -errno : fd;
			} else {
				continue; /* the host's file of that name is not the process's */
			}
		}
		/* The plain path may be any file: only the same device and inode
		 * (the process is gone, or shares our mount namespace) is it. */
		if (fd >= 0 && way == PLAIN &&
		    (fstat(fd, &st) || (uint64_t)st.st_dev != mod->dev)) {
			close(fd);
			fd = -ESTALE;
		}
		if (fd < 0) {
			if (!first_err)
				first_err = -fd;
			continue;
		}
		if (fstat(fd, &st) == 0 && (uint64_t)st.st_ino == mod->inode) {
			if (fallback >= 0)
				close(fallback);
			return fd;
		}
		if (way == ROOT && fallback < 0) {
			fallback = fd;
			continue;
		}
		if (!first_err)
			first_err = ESTALE;
		close(fd);
	}
	if (fallback >= 0)
		return fallback;
	if (!first_err)
		first_err = ENOENT;
	if (first_err == ESTALE)
		snprintf(err, errlen, "file replaced on disk (inode changed)");
	else
		snprintf(err, errlen, "cannot open: %s", strerror(first_err));
	return -first_err;
}

int symbolizer__open_module(const struct module *mod, uint32_t tgid, uint64_t start, uint64_t end,
			    char *err, size_t errlen)
{
	return module_open(mod, tgid, start, end, err, errlen);
}

/* The agent's own vdso is the one every (same-ABI) process maps. */
static int load_vdso(struct elf_image **img, char *err, size_t errlen)
{
	uintptr_t base = (uintptr_t)getauxval(AT_SYSINFO_EHDR);
	struct proc_maps pm = {0};
	size_t size = 0;
	int ret;

	if (!base) {
		snprintf(err, errlen, "no vdso in the agent");
		return -ENOENT;
	}
	ret = proc_maps__read(&pm, (uint32_t)getpid(), false);
	if (ret) {
		snprintf(err, errlen, "cannot read own maps: %s", strerror(-ret));
		return ret;
	}
	for (size_t i = 0; i < pm.n; i++) {
		if (pm.maps[i].start == base)
			size = pm.maps[i].end - pm.maps[i].start;
	}
	proc_maps__deinit(&pm);
	if (!size) {
		snprintf(err, errlen, "vdso mapping not found");
		return -ENOENT;
	}
	return elf_image__load_mem((const void *)base, size, img, err, errlen);
}

/*
 * Loads mod's symbols unlocked and hashes its file (htlhash). Called and
 * returns with sym->lock held; mod must be MOD_STATE_NEW and ends
 * MOD_STATE_DONE. Past the memory bound, on a first load, only the hash is
 * computed: the module gets module-level frames from then on. A load after
 * an eviction (the caller made room first) keeps the image only if the file
 * is still the one with the module's build id.
 */
static void load_module(struct symbolizer *sym, struct module *mod, uint32_t tgid,
			const struct sym_mapping *m)
{
	uint64_t start = m->start, end = m->end;
	bool symbols = make_room(sym), first = !mod->loaded_once;
	char err[256] = "", htl[SYM_HTLHASH_HEX + 1] = "";
	struct elf_image *img = NULL;
	struct elf_dropped *dropped;
	int ret = 0;

	if (mod->kind == MOD_VDSO && !symbols) {
		mod->loaded_once = true;
		mod->state = MOD_STATE_DONE; /* no file to hash */
		return;
	}
	mod->state = MOD_STATE_LOADING;
	dropped = take_dropped(sym);
	pthread_mutex_unlock(&sym->lock);
	elf_dropped__free(dropped);
	if (mod->kind == MOD_VDSO) {
		ret = load_vdso(&img, err, sizeof(err));
	} else {
		ret = module_open(mod, tgid, start, end, err, sizeof(err));
		if (ret >= 0) {
			int fd = ret;

			if (first)			 /* a load after an eviction knows it */
				sym_htlhash_fd(fd, htl); /* "" if the file cannot be read */
			ret = symbols ? elf_image__load_fd(fd, &img, err, sizeof(err)) : 0;
			if (img) /* -ENOENT: no DWARF, no MiniDebugInfo: symbols only */
				debuginfo__open(fd, mod->path, sym->debug_dirs, &img->debug);
			close(fd);
		}
	}
	/* mod->build_id is final after the first load: read unlocked. */
	if (img && !first && strcmp(img->build_id, mod->build_id) != 0) {
		snprintf(err, sizeof(err), "file changed since its symbols were evicted");
		elf_image__free(img);
		img = NULL;
		ret = -ESTALE;
	}
	if (img) {
		img->bytes += debuginfo__bytes(img->debug);
		img->evictable = mod->kind == MOD_VDSO || (img->build_id[0] && !mod->deleted &&
							   proc_root__same_mnt_ns(tgid));
	}
	pthread_mutex_lock(&sym->lock);
	/* Before the first MOD_STATE_DONE no frame of mod has been handed out:
	 * readers take htlhash and build_id without the lock after it. */
	if (first)
		memcpy(mod->htlhash, htl, sizeof(htl));
	if (img) {
		module_table__set_image(&sym->mods, mod, img);
		mod->elf->used_ns = sym_now_ns();
	}
	if (symbols && (ret || !mod->elf || (!mod->elf->n_syms && !mod->elf->debug))) {
		sym->c.elf_load_errors++;
		sym_warn(sym, "no symbols for %s%s: %s", mod->path,
			 first ? "" : " (loading again after eviction)",
			 ret ? err : "no symbol table");
	}
	mod->loaded_once = true;
	mod->state = MOD_STATE_DONE;
	pthread_cond_broadcast(&sym->loaded);
}

/* ---- kernel ---- */

/* Returns a hash of /proc/modules (loaded kernel modules), 0 if unreadable. */
static uint64_t kernel_modules_hash(const char *path)
{
	char *buf = NULL;
	size_t len;
	uint64_t h;

	if (sym_read_file(path, &buf, &len))
		return 0;
	h = sym_hash_mem(buf, len) | 1;
	free(buf);
	return h;
}

/*
 * Loads kallsyms unlocked: the first time, or again (reload) when
 * /proc/modules differs from what it was at the last load, for modules
 * loaded since. Called and returns with sym->lock held.
 */
static void load_kallsyms(struct symbolizer *sym, struct slow_ctx *cx, bool reload)
{
	const char *ks_path = sym->kallsyms_path, *mod_path = sym->modules_path;
	uint64_t old_hash = sym->kmods_hash, hash;
	struct module **mods = NULL;
	struct kallsyms *ks = NULL;
	int err = 0;

	sym->kern_state = KERN_LOADING;
	pthread_mutex_unlock(&sym->lock);
	hash = kernel_modules_hash(mod_path);
	if (!reload || hash != old_hash)
		err = kallsyms__load(ks_path, &ks);
	pthread_mutex_lock(&sym->lock);
	if (reload && !ks) { /* unchanged, or unreadable now: keep what we have */
		sym->kern_state = KERN_DONE;
		pthread_cond_broadcast(&sym->loaded);
		return;
	}
	if (!err) {
		mods = calloc(ks->n_mods ? ks->n_mods : 1, sizeof(*mods));
		if (!mods) {
			kallsyms__free(ks);
			ks = NULL;
			err = -ENOMEM;
			cx->err = err;
		}
	}
	if (ks && reload && ks->restricted) {
		kallsyms__free(ks); /* hidden since: the old table still holds */
		free(mods);
		ks = NULL;
	} else if (ks) {
		for (size_t i = 0; i < ks->n_mods; i++) {
			struct module *m =
				pseudo_module(sym, ks->names + ks->mod_names[i], MOD_KERNEL);

			mods[i] = m ? m : sym->kernel_mod;
		}
		if (sym->ksyms) { /* frames point into it: retire, do not free */
			sym->ksyms->older = sym->ksyms_retired;
			sym->ksyms_retired = sym->ksyms;
		}
		free(sym->ksym_mods);
		sym->ksym_mods = mods;
		sym->ksyms = ks;
		sym->kmods_hash = hash;
	}
	if (reload) {
		sym->kern_state = KERN_DONE;
		pthread_cond_broadcast(&sym->loaded);
		return;
	}
	if (ks) {
		if (ks->restricted)
			sym_warn(sym,
				 "kernel addresses hidden by kptr_restrict (/proc/kallsyms "
				 "shows zeros; the agent needs CAP_SYSLOG or kptr_restrict=0): "
				 "kernel frames are shown as [kernel]");
	} else {
		sym_warn(sym, "cannot load %s: %s: kernel frames are shown as [kernel]",
			 KALLSYMS_PATH, strerror(-err));
	}
	sym->kern_state = KERN_DONE;
	pthread_cond_broadcast(&sym->loaded);
}

static const struct sym_frame *resolve_kernel_locked(struct symbolizer *sym, struct slow_ctx *cx,
						     uint64_t addr, bool *cold)
{
	const struct ksym *k = NULL;
	struct module *mod;

	for (;;) {
		if (sym->kernel && sym->kern_state == KERN_NEW) {
			*cold = true;
			load_kallsyms(sym, cx, false);
		} else if (sym->kern_state == KERN_LOADING) {
			pthread_cond_wait(&sym->loaded, &sym->lock);
		} else {
			break;
		}
	}
	/* Kernel symbols wanted but hidden (kptr_restrict) or unreadable: every
	 * address is one "[kernel]" frame (address 0, which no kernel text
	 * has), so kernel stacks are not spread over one frame per address. */
	if (sym->kernel && (!sym->ksyms || sym->ksyms->restricted))
		return intern(sym, cx, sym->kernel_mod, 0, "[kernel]", cold);
	if (sym->ksyms)
		k = kallsyms__lookup(sym->ksyms, addr);
	if (!k && sym->ksyms && !frame_table__find(&sym->frames, &sym->kernel_mod->pub, addr)) {
		uint64_t now = sym_now_ns();

		if (now - sym->kmods_check_ns >= SYM_KMODS_CHECK_NS) {
			/* A module loaded since kallsyms was read? */
			sym->kmods_check_ns = now;
			*cold = true;
			load_kallsyms(sym, cx, true);
			k = kallsyms__lookup(sym->ksyms, addr);
		}
	}
	if (!k)
		return intern(sym, cx, sym->kernel_mod, addr, NULL, cold);
	mod = k->mod ? sym->ksym_mods[k->mod - 1] : sym->kernel_mod;
	return intern(sym, cx, mod, addr, sym->ksyms->names + k->name, cold);
}

/* ---- JIT perf maps ---- */

/* (Re-)reads p's perf map unlocked if the file changed size. Called and
 * returns with sym->lock held; p is marked loading meanwhile. */
static void read_perf_map(struct symbolizer *sym, struct slow_ctx *cx, struct process *p,
			  uint64_t now)
{
	uint64_t old_size = p->perf_size, size = 0;
	struct perf_map *pm = NULL;
	char path[128];
	int fd, err = 0;

	p->loading = true;
	p->perf_check_ns = now;
	pthread_mutex_unlock(&sym->lock);
	fd = perf_map__open(p->tgid, path, sizeof(path), &size);
	if (fd >= 0) {
		if (size != old_size)
			err = perf_map__read_fd(fd, size, &pm);
		close(fd);
	}
	pthread_mutex_lock(&sym->lock);
	if (pm && !p->perf_mod)
		p->perf_mod = pseudo_module(sym, path, MOD_PSEUDO);
	if (pm && p->perf_mod) {
		process_table__set_perf_map(&sym->procs, p, pm);
		p->perf_size = size;
		sym->c.perf_map_reads++;
		/* Readers may hold [anon] frames of this process: drop them. */
		atomic_fetch_add_explicit(&sym->proc_gen[sym_gen_slot(p->tgid)], 1,
					  memory_order_release);
	} else if (pm || err == -ENOMEM) {
		perf_map__free(pm);
		cx->err = -ENOMEM;
	}
	p->loading = false;
	pthread_cond_broadcast(&sym->loaded);
}

/*
 * Names an address in anonymous executable memory from p's perf map. Returns
 * true when the lock was dropped to (re-)read the map (the caller starts
 * over); else sets *f to the named frame, or NULL when the map has none.
 */
static bool perf_map_step(struct symbolizer *sym, struct slow_ctx *cx, struct process *p,
			  uint64_t addr, uint64_t now, const struct sym_frame **f, bool *cold)
{
	const struct perf_map_sym *ps = p->perf_map ? perf_map__lookup(p->perf_map, addr) : NULL;

	*f = NULL;
	if (ps) {
		const char *name = p->perf_map->names + ps->name;

		*f = frame_table__find(&sym->frames, &p->perf_mod->pub, addr);
		if (*f)
			return false;
		/* Frames outlive the process and its map: intern the name. */
		name = str_pool__intern(&sym->strings, name, strlen(name));
		if (!name) {
			cx->err = -ENOMEM;
			return false;
		}
		*f = intern(sym, cx, p->perf_mod, addr, name, cold);
		return false;
	}
	if (now - p->perf_check_ns >= SYM_PERF_MAP_CHECK_NS && make_room(sym)) {
		*cold = true;
		read_perf_map(sym, cx, p, now);
		return true;
	}
	/* JIT code the map does not name yet: an [unknown] frame, which readers
	 * never cache, so a later sample looks again once the map has grown. */
	if (p->perf_map)
		*f = intern(sym, cx, sym->unknown_mod, addr, NULL, cold);
	return false;
}

/* ---- user ---- */

static const struct sym_frame *resolve_user_locked(struct symbolizer *sym, struct slow_ctx *cx,
						   uint64_t addr, bool *cold)
{
	for (;;) {
		struct process *p = process_table__find(&sym->procs, cx->tgid);
		uint64_t now = sym_now_ns(), off;
		const struct sym_mapping *m;
		struct module *mod;

		if (!p) {
			p = process_table__add(&sym->procs, cx->tgid, now);
			if (!p) {
				cx->err = -ENOMEM;
				return sym->unknown_mod->coarse;
			}
		}
		if (p->loading) {
			pthread_cond_wait(&sym->loaded, &sym->lock);
			continue;
		}
		p->used_ns = now;
		if (need_read(p, cx)) {
			*cold = true;
			if (p->read_once)
				cx->refreshed = true;
			read_maps(sym, cx, p);
			continue;
		}
		m = process__find_map(p, addr);
		if (!m && !cx->refreshed && now - p->read_ns >= SYM_MAPS_REFRESH_MIN_NS) {
			/* New mapping (dlopen, JIT) since the last read? */
			*cold = true;
			cx->refreshed = true;
			read_maps(sym, cx, p);
			continue;
		}
		if (!m)
			return intern(sym, cx, sym->unknown_mod, addr, NULL, cold);
		mod = m->mod;
		if (mod == sym->anon_mod) {
			const struct sym_frame *f;

			if (perf_map_step(sym, cx, p, addr, now, &f, cold))
				continue;
			if (f)
				return f;
		}
		/* Files and the vdso: file offset. Anonymous and other pseudo
		 * memory has no file: the virtual address (as JIT maps use). */
		off = mod->kind == MOD_PSEUDO ? addr : addr - m->start + m->pgoff;
		if (mod->state == MOD_STATE_NEW && mod->loaded_once) {
			/* Its image was evicted: frames named before stay. */
			const struct sym_frame *f = frame_table__find(&sym->frames, &mod->pub, off);

			if (f)
				return f;
		}
		if (mod->state == MOD_STATE_NEW) {
			*cold = true;
			/* Evicted before: load again only with room, or this
			 * frame stays at module level (the module stays NEW). */
			if (mod->loaded_once && !make_room(sym)) {
				sym->c.cache_full++;
				return coarse_frame(sym, mod);
			}
			load_module(sym, mod, cx->tgid, m);
			continue;
		}
		if (mod->state == MOD_STATE_LOADING) {
			pthread_cond_wait(&sym->loaded, &sym->lock);
			continue;
		}
		return intern_file(sym, cx, mod, off, cold);
	}
}

/* Called with sym->lock held. */
static void maybe_sweep(struct symbolizer *sym, uint64_t now)
{
	if (now - sym->last_sweep_ns >= SYM_SWEEP_INTERVAL_NS) {
		process_table__sweep(&sym->procs, now, sym->flushes);
		sym_epoch__reclaim(&sym->epoch);
		sym->last_sweep_ns = now;
	}
}

int symbolizer__resolve_slow(struct symbolizer *sym, bool kernel, uint32_t tgid,
			     const uint64_t *addrs, size_t n, const struct sym_frame **out)
{
	struct slow_ctx cx = {.tgid = tgid};
	uint64_t now;

	pthread_mutex_lock(&sym->lock);
	now = sym_now_ns();
	maybe_sweep(sym, now);
	for (size_t i = 0; i < n; i++) {
		bool cold = false;

		out[i] = kernel ? resolve_kernel_locked(sym, &cx, addrs[i], &cold)
				: resolve_user_locked(sym, &cx, addrs[i], &cold);
		/* Named kernel frames become visible to lock-free readers by
		 * address (user frames are, by file offset, when interned). */
		if (kernel && out[i]->function && out[i]->address == addrs[i] &&
		    !frame_table__find_kernel(&sym->frames, addrs[i]))
			frame_table__alias_kernel(&sym->frames, addrs[i], out[i]);
		if (cold)
			sym->c.misses++;
		else
			sym->c.shared_hits++;
	}
	struct elf_dropped *dropped = take_dropped(sym);
	pthread_mutex_unlock(&sym->lock);
	elf_dropped__free(dropped);
	return cx.err;
}

/* ---- lifecycle ---- */

/* Writes the running kernel's GNU build id (hex) into dst, or "" if
 * /sys/kernel/notes cannot be read or has none. */
static void kernel_build_id(char *dst)
{
	char *notes = NULL;
	size_t len;

	dst[0] = '\0';
	if (sym_read_file(KERNEL_NOTES_PATH, &notes, &len))
		return;
	elf_notes__build_id(notes, len, dst);
	free(notes);
}

struct symbolizer *symbolizer__new(const struct symbolizer_opts *opts)
{
	struct symbolizer *sym = calloc(1, sizeof(*sym));
	int err = -ENOMEM;

	if (!sym)
		return NULL;
	sym->lock = (pthread_mutex_t)PTHREAD_MUTEX_INITIALIZER;
	sym->loaded = (pthread_cond_t)PTHREAD_COND_INITIALIZER;
	sym->max_bytes =
		opts && opts->max_cache_bytes ? opts->max_cache_bytes : SYM_DEFAULT_MAX_CACHE_BYTES;
	sym->kernel = opts && opts->kernel;
	sym->kallsyms_path = KALLSYMS_PATH;
	sym->modules_path = MODULES_PATH;
	sym->debug_dirs =
		strdup(opts && opts->debug_dirs && opts->debug_dirs[0] ? opts->debug_dirs
								       : SYM_DEFAULT_DEBUG_DIRS);
	if (!sym->debug_dirs)
		goto fail;
	if (elf_version(EV_CURRENT) == EV_NONE) {
		err = -EINVAL;
		goto fail;
	}
	if (sym_epoch__init(&sym->epoch) || process_table__init(&sym->procs, &sym->epoch) ||
	    module_table__init(&sym->mods) || frame_table__init(&sym->frames, &sym->epoch) ||
	    str_pool__init(&sym->strings))
		goto fail;
	sym->unknown_mod = pseudo_module(sym, "[unknown]", MOD_UNKNOWN);
	sym->anon_mod = pseudo_module(sym, "[anon]", MOD_PSEUDO);
	sym->kernel_mod = pseudo_module(sym, "[kernel.kallsyms]", MOD_KERNEL);
	/* The unknown module's coarse frame is the last resort: it must exist. */
	if (!sym->unknown_mod || !sym->unknown_mod->coarse || !sym->anon_mod || !sym->kernel_mod)
		goto fail;
	/* Before any frame of it exists: readers take build_id without the lock. */
	kernel_build_id(sym->kernel_build_id);
	sym->kernel_mod->pub.build_id = sym->kernel_build_id;
	return sym;
fail:
	symbolizer__free(sym);
	errno = -err;
	return NULL;
}

void symbolizer__free(struct symbolizer *sym)
{
	if (!sym)
		return;
	process_table__deinit(&sym->procs);
	frame_table__deinit(&sym->frames);
	module_table__deinit(&sym->mods);
	str_pool__deinit(&sym->strings);
	kallsyms__free(sym->ksyms);
	while (sym->ksyms_retired) {
		struct kallsyms *older = sym->ksyms_retired->older;

		kallsyms__free(sym->ksyms_retired);
		sym->ksyms_retired = older;
	}
	sym_epoch__deinit(&sym->epoch); /* after the tables: frees what they retired */
	free(sym->debug_dirs);
	free(sym->ksym_mods);
	pthread_cond_destroy(&sym->loaded);
	pthread_mutex_destroy(&sym->lock);
	free(sym);
}

void symbolizer__invalidate_process(struct symbolizer *sym, uint32_t tgid)
{
	struct process *p;

	pthread_mutex_lock(&sym->lock);
	p = process_table__find(&sym->procs, tgid);
	if (p) {
		p->stale = true;
		p->stale_ns = sym_now_ns();
		p->inval_seq++;
		process_table__publish(&sym->procs, p); /* withdraws it */
	}
	pthread_mutex_unlock(&sym->lock);
	/* After the stale mark: pairs with the acquire load in reader.c resolve(). */
	atomic_fetch_add_explicit(&sym->proc_gen[sym_gen_slot(tgid)], 1, memory_order_release);
}

/*
 * Loads, while process tgid lives, the files it maps that no process loaded
 * before and that only it can lead to: deleted files, and all files of a
 * process in another mount namespace. Once it has exited, /proc/PID/map_files
 * and /proc/PID/root are gone, and with them the only way to such files.
 * Others are loaded on their first sample, through their path (same device
 * and inode), so a burst of execs does not wait behind cold ELF loads.
 * Called and returns with sym->lock held; each load drops it, so the scan
 * starts over after each (every load moves a never-loaded module out of
 * MOD_STATE_NEW for good: the loop ends).
 */
static void preload_modules(struct symbolizer *sym, uint32_t tgid, bool foreign)
{
	for (;;) {
		struct process *p = process_table__find(&sym->procs, tgid);
		struct sym_mapping m = {0};

		if (!p || p->loading)
			return;
		for (size_t i = 0; p->snap && i < p->snap->n && !m.mod; i++) {
			const struct module *mod = p->snap->maps[i].mod;

			/* Never-loaded ones only: a module whose image was
			 * evicted loads again on its next new frame, and
			 * reloading here could evict the one loaded before. */
			if (mod->state == MOD_STATE_NEW && !mod->loaded_once &&
			    mod->kind == MOD_FILE && (foreign || mod->deleted))
				m = p->snap->maps[i];
		}
		if (!m.mod)
			return;
		load_module(sym, m.mod, tgid, &m);
	}
}

int symbolizer__process_exec(struct symbolizer *sym, uint32_t tgid)
{
	struct slow_ctx cx = {.tgid = tgid};
	bool foreign = !proc_root__same_mnt_ns(tgid);
	struct process *p;
	uint64_t now;
	int err;

	pthread_mutex_lock(&sym->lock);
	now = sym_now_ns();
	maybe_sweep(sym, now);
	for (;;) {
		p = process_table__find(&sym->procs, tgid);
		if (!p)
			p = process_table__add(&sym->procs, tgid, now);
		if (!p) {
			pthread_mutex_unlock(&sym->lock);
			return -ENOMEM;
		}
		if (!p->loading)
			break;
		pthread_cond_wait(&sym->loaded, &sym->lock);
	}
	/* A new image (or a reused pid): nothing of the old one applies. */
	p->exited = false;
	p->stale = true;
	p->stale_ns = now;
	p->inval_seq++;
	p->used_ns = now;
	process_table__set_maps(&sym->procs, p, NULL);
	process_table__set_perf_map(&sym->procs, p, NULL);
	p->perf_size = 0;
	p->perf_check_ns = 0;
	sym->c.exec_reads++;
	read_maps(sym, &cx, p);
	err = cx.err ? cx.err : p->stale ? -ENOENT : 0;
	if (!err)
		preload_modules(sym, tgid, foreign);
	struct elf_dropped *dropped = take_dropped(sym);
	pthread_mutex_unlock(&sym->lock);
	elf_dropped__free(dropped);
	/* After the new maps: pairs with the acquire load in reader.c resolve(). */
	atomic_fetch_add_explicit(&sym->proc_gen[sym_gen_slot(tgid)], 1, memory_order_release);
	return err;
}

void symbolizer__process_exit(struct symbolizer *sym, uint32_t tgid)
{
	struct process *p;

	pthread_mutex_lock(&sym->lock);
	p = process_table__find(&sym->procs, tgid);
	if (p) {
		p->exited = true;
		p->exit_flush = sym->flushes;
	}
	pthread_mutex_unlock(&sym->lock);
}

void symbolizer__interval_flushed(struct symbolizer *sym)
{
	pthread_mutex_lock(&sym->lock);
	sym->flushes++;
	sym_epoch__reclaim(&sym->epoch);
	pthread_mutex_unlock(&sym->lock);
}

static void fill_info(struct sym_process_info *out, const struct process *p)
{
	out->tgid = p->tgid;
	out->exe_path = p->exe_path;
	out->container_id = p->container_id;
}

int symbolizer__process_info(struct symbolizer *sym, uint32_t tgid, struct sym_process_info *out)
{
	struct proc_info pi;
	struct process *p;
	int err;

	memset(out, 0, sizeof(*out));
	out->tgid = tgid;
	pthread_mutex_lock(&sym->lock);
	/* A first maps read in flight reads the info too: wait for it. */
	while ((p = process_table__find(&sym->procs, tgid)) && p->loading && !p->info_read)
		pthread_cond_wait(&sym->loaded, &sym->lock);
	if (p && p->info_read) {
		/* A use: an exited process the flush still reports stays known. */
		p->used_ns = sym_now_ns();
		fill_info(out, p);
		pthread_mutex_unlock(&sym->lock);
		return 0;
	}
	pthread_mutex_unlock(&sym->lock);

	/* Not known: read it now, unlocked, and keep it in a process entry so
	 * the next call (and the process's exit) finds it. */
	err = proc_info__read(tgid, &pi);
	if (err)
		return err;
	pthread_mutex_lock(&sym->lock);
	p = process_table__find(&sym->procs, tgid);
	if (!p)
		p = process_table__add(&sym->procs, tgid, sym_now_ns());
	if (!p) {
		err = -ENOMEM;
	} else {
		p->used_ns = sym_now_ns();
		if (!p->info_read) /* else a maps read stored a fresher one meanwhile */
			err = set_info(sym, p, &pi);
		if (!err)
			fill_info(out, p);
	}
	pthread_mutex_unlock(&sym->lock);
	return err;
}

const struct sym_frame *symbolizer__marker(struct symbolizer *sym, const char *name)
{
	struct slow_ctx cx = {0};
	const struct sym_frame *f = NULL;
	struct module *mod;
	uint64_t address = 1469598103934665603ULL; /* FNV-1a of the name: one frame per name */
	bool cold = false;

	for (const char *c = name; *c; c++)
		address = (address ^ (uint8_t)*c) * 1099511628211ULL;
	pthread_mutex_lock(&sym->lock);
	mod = pseudo_module(sym, "[pipeline]", MOD_PSEUDO);
	if (mod)
		f = intern(sym, &cx, mod, address, name, &cold);
	pthread_mutex_unlock(&sym->lock);
	return f;
}

void symbolizer__stats(struct symbolizer *sym, struct symbolizer_stats *st)
{
	const struct sym_reader *rd;
	uint64_t lookups, hits, unknown, lockfree;

	memset(st, 0, sizeof(*st));
	pthread_mutex_lock(&sym->lock);
	lookups = sym->retired.lookups;
	hits = sym->retired.hits;
	unknown = sym->retired.unknown;
	lockfree = sym->retired.lockfree;
	for (rd = sym->readers; rd; rd = rd->next) {
		lookups += atomic_load_explicit(&rd->cnt.lookups, memory_order_relaxed);
		hits += atomic_load_explicit(&rd->cnt.hits, memory_order_relaxed);
		unknown += atomic_load_explicit(&rd->cnt.unknown, memory_order_relaxed);
		lockfree += atomic_load_explicit(&rd->cnt.lockfree, memory_order_relaxed);
	}
	st->lookups = lookups;
	st->reader_hits = hits;
	st->unknown = unknown;
	st->lockfree_hits = lockfree;
	st->shared_hits = sym->c.shared_hits + lockfree;
	st->misses = sym->c.misses;
	st->processes = sym->c.processes;
	st->maps_refreshes = sym->c.maps_refreshes;
	st->modules = sym->mods.n_files;
	st->elf_load_errors = sym->c.elf_load_errors;
	st->cache_bytes = cache_bytes(sym);
	st->cache_full = sym->c.cache_full;
	st->images_evicted = sym->mods.n_evicted;
	st->exec_reads = sym->c.exec_reads;
	st->perf_map_reads = sym->c.perf_map_reads;
	pthread_mutex_unlock(&sym->lock);
}
