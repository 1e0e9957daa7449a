/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Module table: one entry per mapped file identity, so a library mapped by
 * many processes is described, and its symbols loaded, once.
 *
 * Identity: a mapped file is keyed by device + inode as /proc/PID/maps shows
 * them (known without opening the file, and changed by a package upgrade that
 * replaces the file); pseudo modules ([vdso], [anon], [kernel.kallsyms],
 * [modname], [unknown]) by name. Loaded ELF images are further shared by
 * build id, so the same library seen through two container layers (two
 * inodes) holds its symbols once.
 *
 * Identity strings for consumers: pub.build_id (from the loaded image; the
 * kernel's is set by symbolizer.c from /sys/kernel/notes) and pub.htlhash
 * (computed by the load, from the same opened file). Both are "" when
 * unknown, never NULL; pseudo and kernel modules have no htlhash.
 *
 * Threads: every function runs under symbolizer.lock. Modules are never
 * freed before module_table__deinit(): frames point to them. Images can be
 * evicted (the symbolizer's memory bound, least recently used first): their
 * symbols are freed, the image itself is kept on the evicted list for its
 * strings (frames' names point into them), and its modules load the file
 * again when they next need a new frame. A module keeps its own copy of the
 * build id for the same reason.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "symbolizer_internal.h"

int module_table__init(struct module_table *mt)
{
	memset(mt, 0, sizeof(*mt));
	if (htab__init(&mt->by_devino, 256) || htab__init(&mt->by_path, 64) ||
	    htab__init(&mt->images, 256)) {
		module_table__deinit(mt);
		return -ENOMEM;
	}
	return 0;
}

static void module_free(struct module *m)
{
	free(m->path);
	free(m->name);
	free(m);
}

void module_table__deinit(struct module_table *mt)
{
	struct module *m, *mnext;
	struct elf_image *img, *inext;

	for (m = mt->all; m; m = mnext) {
		mnext = m->next;
		module_free(m);
	}
	for (img = mt->all_images; img; img = inext) {
		inext = img->next;
		elf_image__free(img);
	}
	for (img = mt->evicted; img; img = inext) {
		inext = img->next;
		elf_image__free(img);
	}
	elf_dropped__free(mt->dropped);
	htab__deinit(&mt->by_devino);
	htab__deinit(&mt->by_path);
	htab__deinit(&mt->images);
	memset(mt, 0, sizeof(*mt));
}

static uint64_t devino_hash(uint64_t dev, uint64_t inode)
{
	return sym_hash_u64(inode ^ sym_hash_u64(dev));
}

static uint64_t path_hash(const char *path)
{
	return sym_hash_mem(path, strlen(path));
}

/* Returns a new module for path (not yet linked anywhere), or NULL. */
static struct module *module_alloc(const char *path, enum module_kind kind)
{
	struct module *m = calloc(1, sizeof(*m));
	const char *base;
	size_t len;

	if (!m)
		return NULL;
	m->path = strdup(path);
	if (!m->path)
		goto fail;
	len = strlen(path);
	m->deleted = kind == MOD_FILE && len > SYM_DELETED_SUFFIX_LEN &&
		     strcmp(path + len - SYM_DELETED_SUFFIX_LEN, SYM_DELETED_SUFFIX) == 0;
	/* Pseudo names are their own basename: "[anon:a/b]" stays whole. */
	base = kind == MOD_FILE ? sym_basename(path) : path;
	len = strlen(base);
	if (m->deleted)
		len -= SYM_DELETED_SUFFIX_LEN;
	m->name = strndup(base, len);
	if (!m->name)
		goto fail;
	m->kind = (uint8_t)kind;
	/* Only files and the vdso have symbols to load; the kernel's come from kallsyms. */
	m->state = kind == MOD_FILE || kind == MOD_VDSO ? MOD_STATE_NEW : MOD_STATE_DONE;
	m->pub.path = m->path;
	m->pub.name = m->name;
	m->pub.build_id = "";
	m->pub.htlhash = m->htlhash; /* "" until a load hashes the file */
	m->pub.is_kernel = kind == MOD_KERNEL;
	return m;
fail:
	module_free(m);
	return NULL;
}

static void module_link(struct module_table *mt, struct module *m)
{
	m->next = mt->all;
	mt->all = m;
	mt->bytes += sizeof(*m) + strlen(m->path) + strlen(m->name) + 2;
}

struct module *module_table__findnew_file(struct module_table *mt, uint64_t dev, uint64_t inode,
					  const char *path, bool *created)
{
	uint64_t h = devino_hash(dev, inode);
	struct hnode *n;
	struct module *m;

	*created = false;
	for (n = htab__first(&mt->by_devino, h); n; n = htab__next(n, h)) {
		m = container_of(n, struct module, node);
		if (m->dev == dev && m->inode == inode)
			return m;
	}
	m = module_alloc(path, MOD_FILE);
	if (!m)
		return NULL;
	m->dev = dev;
	m->inode = inode;
	htab__add(&mt->by_devino, &m->node, h);
	module_link(mt, m);
	mt->n_files++;
	*created = true;
	return m;
}

struct module *module_table__findnew_pseudo(struct module_table *mt, const char *path,
					    enum module_kind kind, bool *created)
{
	uint64_t h = path_hash(path);
	struct hnode *n;
	struct module *m;

	*created = false;
	for (n = htab__first(&mt->by_path, h); n; n = htab__next(n, h)) {
		m = container_of(n, struct module, node);
		if (strcmp(m->path, path) == 0)
			return m;
	}
	m = module_alloc(path, kind);
	if (!m)
		return NULL;
	htab__add(&mt->by_path, &m->node, h);
	module_link(mt, m);
	*created = true;
	return m;
}

/* A file loaded again after its image was evicted takes over the old
 * image's strings, which its frames point into, so names are not interned
 * twice and the shell is freed. */
static void adopt_evicted_strings(struct module_table *mt, struct elf_image *img)
{
	struct elf_image **pp, *shell;

	for (pp = &mt->evicted; *pp; pp = &(*pp)->next) {
		if (strcmp((*pp)->build_id, img->build_id) == 0)
			break;
	}
	shell = *pp;
	if (!shell)
		return;
	*pp = shell->next;
	img->bytes -= img->strings_counted;
	str_pool__deinit(&img->strings);
	img->strings = shell->strings;
	img->strings_counted = shell->strings_counted;
	img->bytes += img->strings_counted;
	memset(&shell->strings, 0, sizeof(shell->strings));
	mt->bytes -= shell->bytes;
	elf_image__free(shell);
}

void module_table__set_image(struct module_table *mt, struct module *mod, struct elf_image *img)
{
	uint64_t h;
	struct hnode *n;

	if (img->build_id[0]) {
		h = path_hash(img->build_id);
		for (n = htab__first(&mt->images, h); n; n = htab__next(n, h)) {
			struct elf_image *old = container_of(n, struct elf_image, node);

			if (strcmp(old->build_id, img->build_id) == 0) {
				old->evictable = old->evictable && img->evictable;
				elf_image__free(img);
				img = old;
				goto done;
			}
		}
		htab__add(&mt->images, &img->node, h);
		adopt_evicted_strings(mt, img);
	}
	img->next = mt->all_images;
	mt->all_images = img;
	mt->bytes += img->bytes;
done:
	mod->elf = img;
	if (!mod->loaded_once) {
		/* Read by consumers without the lock: written once, before any
		 * frame of mod is handed out. */
		memcpy(mod->build_id, img->build_id, sizeof(mod->build_id));
		mod->pub.build_id = mod->build_id;
	}
}

struct elf_image *module_table__lru_image(const struct module_table *mt)
{
	struct elf_image *best = NULL;

	for (struct elf_image *img = mt->all_images; img; img = img->next) {
		if (img->evictable && !img->pins && (!best || img->used_ns < best->used_ns))
			best = img;
	}
	return best;
}

void module_table__evict_image(struct module_table *mt, struct elf_image *img)
{
	struct elf_image **pp;

	for (struct module *m = mt->all; m; m = m->next) {
		if (m->elf == img) {
			m->elf = NULL;
			m->state = MOD_STATE_NEW;
		}
	}
	if (img->build_id[0])
		htab__del(&mt->images, &img->node);
	for (pp = &mt->all_images; *pp; pp = &(*pp)->next) {
		if (*pp == img) {
			*pp = img->next;
			break;
		}
	}
	size_t freed;
	struct elf_dropped *d = elf_image__drop_symbols(img, &freed);

	mt->bytes -= freed;
	if (d) {
		d->next = mt->dropped;
		mt->dropped = d;
	}
	img->next = mt->evicted;
	mt->evicted = img;
	mt->n_evicted++;
}
