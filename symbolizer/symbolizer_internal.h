/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * symbolizer internals, shared by the files of symbolizer/ and by its unit
 * tests. Nothing here is part of the public API (symbolizer.h).
 *
 * One idea per file:
 *   util.c           whole-file reads, monotonic clock, hashes, rate-limited warnings
 *   epoch.c          ck_epoch reclamation for the lock-free indexes; ck_ht's allocator
 *   htab.c           intrusive chained hash table behind every shared table
 *   str_pool.c       interned strings that live until symbolizer__free()
 *   htlhash.c        OTLP file identity: SHA-256 over a file's first and last pages
 *   proc_info.c      a process's executable (/proc/PID/exe) and container id (cgroup)
 *   proc_maps.c      parse /proc/PID/maps text into mappings
 *   proc_root.c      files inside a process's root (openat2), its namespace pid
 *   perf_map.c       JIT perf maps (/tmp/perf-PID.map)
 *   elf_symtab.c     one ELF file: PT_LOADs, build id, merged .symtab/.dynsym; raw
 *                    note streams (/sys/kernel/notes)
 *   debuginfo.c      DWARF through libdwfl: lines, inlined calls; separate debug
 *                    files (build id, .gnu_debuglink) and MiniDebugInfo
 *   demangle.c       C++ and Rust linkage names, through libiberty
 *   kallsyms.c       /proc/kallsyms text symbols
 *   module_table.c   one entry per file identity; ELF images shared by build id
 *   process_table.c  per-tgid mapping snapshots, refresh and eviction rules
 *   frame_table.c    interning: (module, address) -> frame with a dense id
 *   reader.c         per-thread cache in front of the shared tables (hot path)
 *   symbolizer.c     glue: the slow path under the shared lock, lifecycle, stats
 *
 * Threads and locking: every shared table below is written under
 * symbolizer.lock. Nothing slow runs under it: reading /proc/PID/maps, loading
 * an ELF file or /proc/kallsyms is done unlocked, by the one thread that marked
 * the object "loading"; others that need the same object wait on
 * symbolizer.loaded. Naming a new frame from a file (DWARF, whose first
 * lookup in a compile unit indexes it) runs under that file's image's
 * name_lock with symbolizer.lock released; the frame is interned after,
 * under symbolizer.lock, unless another thread interned the same one
 * meanwhile. Lookups mostly never reach the lock: warm ones are served by
 * the caller's sym_reader, whose entries are validated against per-tgid
 * invalidation generations read with one atomic load per call; its misses
 * read two ck_ht indexes lock-free (process_table.index: tgid -> published
 * mappings; frame_table.index: (module, offset) -> frame, and kernel address
 * -> frame) inside a ck_epoch read section (epoch.c).
 *
 * Ownership: the symbolizer owns every module, ELF image, frame, process and
 * the kallsyms table. Modules and frames live until symbolizer__free() (the
 * public contract); an ELF image's symbols and DWARF may be evicted for the
 * memory bound, its strings (which frames point to) stay until then too;
 * process mapping snapshots are replaced whole on refresh and retired through
 * the epoch (lock-free readers may hold one), as are the old arrays of a
 * grown index.
 */
#ifndef PIPELINE_SYMBOLIZER_INTERNAL_H
#define PIPELINE_SYMBOLIZER_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <ck_epoch.h>
#include <ck_ht.h>

#include "symbolizer.h"

/* ThreadSanitizer cannot see ck's inline-assembly atomics: the lock-free
 * indexes state their happens-before edges with these. */
#if defined(__SANITIZE_THREAD__)
#define SYM_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define SYM_TSAN 1
#endif
#endif
#ifdef SYM_TSAN
#include <sanitizer/tsan_interface.h>
#define sym_tsan_release(addr) __tsan_release((void *)(addr))
#define sym_tsan_acquire(addr) __tsan_acquire((void *)(addr))
#else
#define sym_tsan_release(addr) ((void)(addr))
#define sym_tsan_acquire(addr) ((void)(addr))
#endif

#ifndef container_of
#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))
#endif

#define SYM_DEFAULT_MAX_CACHE_BYTES (256u << 20)
/* A mapping miss re-reads /proc/PID/maps at most this often per process. */
#define SYM_MAPS_REFRESH_MIN_NS (100ull * 1000 * 1000)
/* An invalidated process whose maps cannot be re-read (it exited) keeps its
 * old mappings this long, for samples still in flight, then is dropped. */
#define SYM_PROCESS_GRACE_NS (10ull * 1000 * 1000 * 1000)
/* A process not seen on the slow path for this long is dropped (its maps are
 * simply re-read if it shows up again). Bounds the table without exit events. */
#define SYM_PROCESS_IDLE_NS   (60ull * 1000 * 1000 * 1000)
#define SYM_SWEEP_INTERVAL_NS (1000ull * 1000 * 1000)
/* A kernel address no symbol covers re-checks /proc/modules at most this often. */
#define SYM_KMODS_CHECK_NS (10ull * 1000 * 1000 * 1000)
/* Invalidation generations: tgid hashes into one of these slots. */
#define SYM_GEN_SLOTS 1024
/* At most this many load warnings are printed over a symbolizer's life. */
#define SYM_MAX_WARNINGS 64
#define SYM_BUILD_ID_MAX 64 /* bytes */
/* /proc/PID/maps marks a mapped file unlinked since with this suffix. */
#define SYM_DELETED_SUFFIX     " (deleted)"
#define SYM_DELETED_SUFFIX_LEN (sizeof(SYM_DELETED_SUFFIX) - 1)

/* ---- util.c ---- */

/* Reads a whole file (also /proc files whose size is 0) into a NUL-terminated
 * malloc'd buffer owned by the caller. Returns 0 or -errno. */
int sym_read_file(const char *path, char **buf, size_t *len);
/* Returns CLOCK_MONOTONIC in nanoseconds. */
uint64_t sym_now_ns(void);
uint64_t sym_hash_u64(uint64_t x);
uint64_t sym_hash_mem(const void *p, size_t n);
/* Returns the last path component of path (a pointer into it). */
const char *sym_basename(const char *path);
/* Prints a warning to stderr with the "symbolizer: " prefix; at most
 * SYM_MAX_WARNINGS per symbolizer. Call with sym->lock held. */
void sym_warn(struct symbolizer *sym, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- epoch.c: reclamation for the lock-free indexes ----
 * Writers hold symbolizer.lock; readers hold a record of their own. */
struct epoch_rec;

struct sym_epoch {
	ck_epoch_t ep;
	ck_epoch_record_t *writer; /* used under symbolizer.lock only */
	struct epoch_rec *recs;	   /* every record made, freed by deinit */
	size_t ht_bytes;	   /* ck_ht maps in use */
	size_t pending_bytes;	   /* retired, not yet freed */
	uint64_t retired, freed;
	char tsan_sync; /* ThreadSanitizer: end of read sections -> frees */
};

/* ck_ht allocator whose deferred frees wait for readers: pass it to
 * ck_ht_init, and call every ck_ht writer function (init included) between
 * sym_epoch__write_begin() and sym_epoch__write_end(). */
extern struct ck_malloc sym_epoch_ht_allocator;

/* Returns 0 or -ENOMEM. */
int sym_epoch__init(struct sym_epoch *e);
/* Frees everything retired; no reader may be left. Accepts a zeroed e. */
void sym_epoch__deinit(struct sym_epoch *e);
/* A record for one reader thread (recycled if one was put back), or NULL on
 * ENOMEM. Under symbolizer.lock. */
ck_epoch_record_t *sym_epoch__reader(struct sym_epoch *e);
/* Gives a reader's record back (outside any section). Under symbolizer.lock. */
void sym_epoch__reader_put(ck_epoch_record_t *rec);
/* Frees entry's object through free_cb once no reader section that may have
 * seen it is open; free_cb must call sym_epoch__freed(e, bytes). Under
 * symbolizer.lock. */
void sym_epoch__retire(struct sym_epoch *e, ck_epoch_entry_t *entry, size_t bytes,
		       ck_epoch_cb_t *free_cb);
void sym_epoch__freed(struct sym_epoch *e, size_t bytes);
/* Frees what has become unreachable. Under symbolizer.lock. */
void sym_epoch__reclaim(struct sym_epoch *e);
void sym_epoch__write_begin(struct sym_epoch *e);
void sym_epoch__write_end(void);

static inline void sym_epoch__read_begin(ck_epoch_record_t *rec)
{
	ck_epoch_begin(rec, NULL);
}

static inline void sym_epoch__read_end(struct sym_epoch *e, ck_epoch_record_t *rec)
{
	sym_tsan_release(&e->tsan_sync); /* before the end: a free may follow at once */
	ck_epoch_end(rec, NULL);
}

/* ---- htab.c: intrusive chained hash table ----
 * Not thread-safe: callers hold the lock of the structure that embeds it. The
 * table never owns nodes; it grows by itself and insertion never fails (if a
 * grow cannot allocate, chains just get longer). */
struct hnode {
	struct hnode *next;
	uint64_t hash;
};

struct htab {
	struct hnode **buckets;
	size_t mask; /* number of buckets - 1, a power of two minus one */
	size_t count;
};

/* Returns 0 or -ENOMEM. */
int htab__init(struct htab *t, size_t hint);
/* Frees the bucket array only; nodes belong to the caller. Accepts zeroed t. */
void htab__deinit(struct htab *t);
void htab__add(struct htab *t, struct hnode *n, uint64_t hash);
void htab__del(struct htab *t, struct hnode *n);
/* Unlinks every node for which fn returns true; fn may free the node then. */
void htab__filter(struct htab *t, bool (*fn)(struct hnode *n, void *arg), void *arg);
size_t htab__bytes(const struct htab *t);

static inline struct hnode *htab__first(const struct htab *t, uint64_t hash)
{
	struct hnode *n = t->buckets[hash & t->mask];
	while (n && n->hash != hash)
		n = n->next;
	return n;
}

static inline struct hnode *htab__next(const struct hnode *n, uint64_t hash)
{
	struct hnode *p = n->next;
	while (p && p->hash != hash)
		p = p->next;
	return p;
}

/* ---- str_pool.c: interned strings ----
 * Not thread-safe: callers hold symbolizer.lock. Strings are never freed
 * before str_pool__deinit(), so pointers handed out stay valid. */
struct str_pool {
	struct htab ht;
	size_t bytes;
};

/* Returns 0 or -ENOMEM. */
int str_pool__init(struct str_pool *sp);
/* Frees every string. Accepts a zeroed pool. */
void str_pool__deinit(struct str_pool *sp);
/* Returns the interned copy of s[0..len) (NUL-terminated), or NULL on ENOMEM. */
const char *str_pool__intern(struct str_pool *sp, const char *s, size_t len);

/* ---- htlhash.c: OTLP process.executable.build_id.htlhash ---- */
#define SYM_HTLHASH_PAGE 4096
#define SYM_HTLHASH_HEX	 32 /* hex digits: the first 16 bytes of the SHA-256 */

/* Writes into hex (SYM_HTLHASH_HEX + 1 bytes) the htlhash of a file of size
 * bytes whose first min(size, 4096) bytes are head and last min(size, 4096)
 * bytes are tail. Returns 0 or -EIO (hashing failed; hex is then ""). */
int sym_htlhash_mem(const void *head, const void *tail, uint64_t size, char *hex);
/* Same for an open regular file, read with pread (the offset is unchanged).
 * Returns 0 or -errno (hex is then ""). */
int sym_htlhash_fd(int fd, char *hex);

/* ---- proc_info.c: executable path and container id ---- */
#define SYM_CONTAINER_ID_MAX 64 /* hex digits */

/* About 4 KiB: fine on a thread's stack. */
struct proc_info {
	bool has_exe, has_container;
	char exe[4096]; /* /proc/PID/exe target, " (deleted)" stripped */
	char container_id[SYM_CONTAINER_ID_MAX + 1];
};

/* Finds the container id in /proc/PID/cgroup text (len bytes, need not be
 * NUL-terminated): the last path component, in the first line that has one,
 * of the forms <64 hex>, docker-<64 hex>.scope, cri-containerd-<64 hex>.scope,
 * crio-<64 hex>.scope, libpod-<64 hex>.scope. Writes it into id (65 bytes).
 * Returns true if found. */
bool proc_info__parse_cgroup(const char *text, size_t len, char *id);
/* Reads /proc/<tgid>/exe and /proc/<tgid>/cgroup (either may be missing: a
 * kernel thread has no exe, a zombie neither exe nor maps). Returns 0 if the
 * process exists, -ENOENT if it does not, or another -errno. */
int proc_info__read(uint32_t tgid, struct proc_info *out);

/* ---- proc_maps.c: /proc/PID/maps ---- */
#define PROC_MAP_EXEC	 0x1u
#define PROC_MAP_DELETED 0x2u /* path ends in " (deleted)" */

struct proc_map {
	uint64_t start, end, pgoff;
	uint64_t dev; /* makedev(major, minor) */
	uint64_t inode;
	uint32_t path; /* offset in proc_maps.pool; "" for anonymous memory */
	uint32_t flags;
};

/* Parsed mappings in file order (sorted by start). Caller-owned storage. */
struct proc_maps {
	struct proc_map *maps;
	size_t n, cap;
	char *pool; /* NUL-terminated paths, as shown (" (deleted)" kept) */
	size_t pool_len, pool_cap;
};

/* Parses maps text (len bytes, need not be NUL-terminated), appending to pm;
 * exec_only keeps executable mappings only; malformed lines are skipped.
 * Returns 0 or -ENOMEM. */
int proc_maps__parse(struct proc_maps *pm, const char *text, size_t len, bool exec_only);
/* Reads /proc/<tgid>/maps. Returns 0 or -errno (-ENOENT/-ESRCH: no process). */
int proc_maps__read(struct proc_maps *pm, uint32_t tgid, bool exec_only);
void proc_maps__deinit(struct proc_maps *pm);

static inline const char *proc_maps__path(const struct proc_maps *pm, const struct proc_map *m)
{
	return pm->pool + m->path;
}

/* ---- proc_root.c: a process's root and pid namespace ---- */

/* Opens path (absolute) read-only as process tgid sees it: resolved with
 * openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS) under /proc/PID/root, so
 * no symlink leads out of that root; no_symlinks refuses every symlink.
 * Returns an fd or -errno. */
int proc_root__open(uint32_t tgid, const char *path, bool no_symlinks);
/* Returns true if process tgid is in the agent's own mount namespace. */
bool proc_root__same_mnt_ns(uint32_t tgid);
/* Returns true if /proc/<tgid> exists. */
bool proc_root__exists(uint32_t tgid);
/* Finds the last pid of the NSpid line in /proc/PID/status text. Returns true
 * and sets *nspid if found. */
bool proc_root__parse_nspid(const char *text, size_t len, uint32_t *nspid);
/* Reads tgid's pid in its own pid namespace (tgid itself when the kernel
 * shows no NSpid). Returns 0 or -errno. */
int proc_root__nspid(uint32_t tgid, uint32_t *nspid);

/* ---- perf_map.c: JIT perf maps (/tmp/perf-PID.map) ---- */
#define SYM_PERF_MAP_MAX_BYTES (16u << 20) /* read of one file, at most */
/* A lookup that missed the perf map checks the file's size at most this often. */
#define SYM_PERF_MAP_CHECK_NS (200ull * 1000 * 1000)

struct perf_map_sym {
	uint64_t start, end; /* virtual addresses [start, end) */
	uint32_t name;	     /* offset in perf_map.names */
};

struct perf_map {
	struct perf_map_sym *syms; /* sorted by start; one per start */
	size_t n_syms;
	char *names;
	bool truncated; /* the file was larger than SYM_PERF_MAP_MAX_BYTES */
	size_t bytes;
};

/* Parses perf map text; malformed lines are skipped. Returns 0 or -errno. */
int perf_map__parse(const char *text, size_t len, struct perf_map **out);
/* Opens process tgid's perf map in its root, under its namespace pid; writes
 * the path as the process sees it into path. Returns an fd (and the file's
 * size in *size) or -errno (-ENOENT: the process publishes none). */
int perf_map__open(uint32_t tgid, char *path, size_t pathlen, uint64_t *size);
/* Reads and parses the first min(size, SYM_PERF_MAP_MAX_BYTES) bytes of an
 * open perf map, up to its last complete line. Returns 0 or -errno. */
int perf_map__read_fd(int fd, uint64_t size, struct perf_map **out);
void perf_map__free(struct perf_map *pm);
/* Returns the entry covering addr, or NULL. */
const struct perf_map_sym *perf_map__lookup(const struct perf_map *pm, uint64_t addr);

/* ---- demangle.c ---- */

/* Interns name demangled into *function and, when it was mangled (C++ or
 * Rust), name itself into *system_name (else NULL). A NULL or empty name gives
 * two NULLs. Call with the lock that guards sp held. Returns 0 or -ENOMEM. */
int sym_demangle(struct str_pool *sp, const char *name, const char **function,
		 const char **system_name);

/* ---- debuginfo.c: DWARF and separate debug files ---- */
#define SYM_DEFAULT_DEBUG_DIRS "/usr/lib/debug"
/* Inlined calls kept per frame (innermost first); deeper ones are dropped. */
#define SYM_MAX_INLINED 32

/* What DWARF says of one address; strings interned in the symbolizer's pool.
 * The fields mean what struct sym_frame's do. About 1 KiB: fine on a stack. */
struct sym_src {
	const char *function, *system_name, *file;
	uint32_t line;
	uint32_t n_inlined;
	struct sym_inline inlined[SYM_MAX_INLINED];
};

struct debuginfo;

/* Opens the DWARF of the ELF file open as fd (dup'ed; the caller keeps fd)
 * and mapped as path, searching separate debug files under debug_dirs
 * (colon-separated roots). Returns 0, or -ENOENT when the file has neither
 * DWARF nor MiniDebugInfo, or another -errno. Thread-safe (no shared state). */
int debuginfo__open(int fd, const char *path, const char *debug_dirs, struct debuginfo **out);
void debuginfo__free(struct debuginfo *di);
/* Returns true if di has DWARF (not only MiniDebugInfo). Accepts NULL. */
bool debuginfo__has_dwarf(const struct debuginfo *di);
/* Fills *out for ELF virtual address vaddr (all NULL/0 when DWARF does not
 * cover it). The first lookup in a compile unit indexes the unit's functions
 * (kept in di). Call with the owning image's name_lock held (it also guards
 * sp). Returns 0 or -ENOMEM. */
int debuginfo__lookup(struct debuginfo *di, uint64_t vaddr, struct str_pool *sp,
		      struct sym_src *out);
/* Memory held by the per-unit function indexes lookups build. Accepts NULL. */
size_t debuginfo__bytes(const struct debuginfo *di);
/* The symbol covering vaddr in the symbol tables libdwfl found: the debug
 * file's .symtab or MiniDebugInfo's. Call with the image's name_lock held.
 * Returns 0 or -ENOMEM (names NULL when none). */
int debuginfo__symbol(const struct debuginfo *di, uint64_t vaddr, struct str_pool *sp,
		      const char **function, const char **system_name);

/* ---- elf_symtab.c: one ELF file ---- */
struct elf_load {
	uint64_t offset, filesz, vaddr; /* one PT_LOAD */
};

struct elf_sym {
	uint64_t start; /* ELF virtual address */
	uint32_t len;	/* [start, start + len) */
	uint32_t name;	/* offset in elf_image.names */
};

/* Immutable once loaded: safe to read from any thread that got it through the
 * symbolizer's lock, but debug (whose lookups fill caches) and strings are
 * used under name_lock only, and without the symbolizer's lock, so naming a
 * frame in one file never stalls lookups in others. Owned by the module
 * table. */
struct elf_image {
	struct hnode node;			 /* module_table.images (by build id) */
	struct elf_image *next;			 /* module_table.all_images */
	char build_id[2 * SYM_BUILD_ID_MAX + 1]; /* lower-case hex, "" if none */
	uint16_t e_type;
	struct elf_load *loads;
	size_t n_loads;
	struct elf_sym *syms; /* sorted by start, disjoint */
	size_t n_syms;
	char *names;
	struct debuginfo *debug;   /* DWARF / separate debug info; NULL if none; owned */
	size_t bytes;		   /* memory held, for the cache bound */
	pthread_mutex_t name_lock; /* guards debug lookups and strings */
	struct str_pool strings;   /* names of this file's frames (function, file) */
	/* Under symbolizer.lock: */
	size_t strings_counted; /* the part of bytes that is strings */
	uint64_t used_ns;	/* last time it named a frame, or was loaded */
	unsigned pins;		/* threads naming with it, unlocked: not evictable */
	/* Its file can be opened again and checked to be the same: it has a
	 * build id, is not deleted, and is in the agent's mount namespace (a
	 * container's files may be gone with the container). */
	bool evictable;
};

/* What eviction takes off an image, freed after symbolizer.lock is
 * released (dwfl_end can take milliseconds). */
struct elf_dropped {
	struct elf_dropped *next;
	struct elf_load *loads;
	struct elf_sym *syms;
	char *names;
	struct debuginfo *debug;
};

/* Parses an ELF file (PT_LOADs, build id, FUNC/IFUNC/NOTYPE symbols of
 * executable sections from .symtab then .dynsym). A file with no symbols
 * loads fine (n_syms == 0). Returns 0, or -errno with a reason in err. */
int elf_image__load_fd(int fd, struct elf_image **out, char *err, size_t errlen);
/* Same from memory (the bytes are read, not kept). */
int elf_image__load_mem(const void *data, size_t size, struct elf_image **out, char *err,
			size_t errlen);
void elf_image__free(struct elf_image *img);
/* Detaches what only naming new frames needs (symbols, loads, DWARF),
 * keeping the build id and strings, which frames already handed out point
 * to. Returns them for elf_dropped__free, or NULL if they were freed at once
 * (no memory for the list node); *freed gets the bytes they held. */
struct elf_dropped *elf_image__drop_symbols(struct elf_image *img, size_t *freed);
/* Frees a list of dropped parts. Accepts NULL. */
void elf_dropped__free(struct elf_dropped *d);
/* Returns the symbol name covering a file offset, or NULL. */
const char *elf_image__lookup(const struct elf_image *img, uint64_t file_offset);
/* Turns a file offset into an ELF virtual address. Returns false if no
 * PT_LOAD holds it. */
bool elf_image__vaddr(const struct elf_image *img, uint64_t file_offset, uint64_t *vaddr);
/* Finds the GNU build id (name "GNU", type NT_GNU_BUILD_ID) in a raw ELF note
 * stream (Elf_Nhdr records, 4-byte aligned, host byte order), as in
 * /sys/kernel/notes, and writes its lower-case hex into dst
 * (2 * SYM_BUILD_ID_MAX + 1 bytes). Returns true if found; dst is "" if not. */
bool elf_notes__build_id(const void *notes, size_t len, char *dst);

/* ---- kallsyms.c: kernel text symbols ---- */
struct ksym {
	uint64_t addr;
	uint32_t len;  /* extends to the next symbol, capped */
	uint32_t name; /* offset in kallsyms.names */
	uint32_t mod;  /* 0: core kernel; i > 0: kallsyms.mod_names[i - 1] */
};

struct kallsyms {
	struct ksym *syms; /* sorted by addr, disjoint */
	size_t n_syms;
	char *names;	     /* symbol names and module names ("[mod]") */
	uint32_t *mod_names; /* offsets in names */
	size_t n_mods;
	bool restricted; /* every address read as 0 (kptr_restrict) */
	size_t bytes;
	struct kallsyms *older; /* retired tables, owned by the symbolizer */
};

/* Parses kallsyms text (t/T/w/W symbols). Returns 0 or -errno. */
int kallsyms__parse(const char *text, size_t len, struct kallsyms **out);
/* Reads and parses a kallsyms file. Returns 0 or -errno. */
int kallsyms__load(const char *path, struct kallsyms **out);
void kallsyms__free(struct kallsyms *ks);
/* Returns the symbol covering addr, or NULL. */
const struct ksym *kallsyms__lookup(const struct kallsyms *ks, uint64_t addr);

/* ---- module_table.c: one entry per file identity ---- */
enum module_kind {
	MOD_FILE,    /* a mapped file, keyed by device + inode */
	MOD_VDSO,    /* [vdso]: symbols from the agent's own vdso image */
	MOD_PSEUDO,  /* [anon], [vsyscall], other bracketed names: no symbols */
	MOD_KERNEL,  /* [kernel.kallsyms] and [modname]: symbols from kallsyms */
	MOD_UNKNOWN, /* [unknown]: outside every mapping */
};

enum module_state {
	MOD_STATE_NEW,	   /* symbols not loaded yet */
	MOD_STATE_LOADING, /* a thread is loading them, unlocked; wait on sym->loaded */
	MOD_STATE_DONE,	   /* loaded (elf set) or given up (elf NULL); back to NEW
			    * only when its image is evicted */
};

struct module {
	struct sym_module pub; /* what frames point to */
	struct hnode node;     /* by_devino or by_path */
	struct module *next;   /* module_table.all */
	uint64_t dev, inode;
	char *path;				 /* owned; pub.path */
	char *name;				 /* owned; pub.name */
	struct elf_image *elf;			 /* borrowed from the table; NULL: no symbols */
	const struct sym_frame *coarse;		 /* module-level frame for a full cache */
	uint8_t kind;				 /* enum module_kind */
	uint8_t state;				 /* enum module_state */
	bool deleted;				 /* mapped path ended in " (deleted)" */
	bool loaded_once;			 /* htlhash and build_id are final */
	char build_id[2 * SYM_BUILD_ID_MAX + 1]; /* pub.build_id; set by the first load */
	/* pub.htlhash; "" until set, under the lock, by the load that ends
	 * MOD_STATE_LOADING (frames are only handed out after that). */
	char htlhash[SYM_HTLHASH_HEX + 1];
};

struct module_table {
	struct htab by_devino, by_path, images;
	struct module *all;
	struct elf_image *all_images;
	struct elf_image *evicted;   /* symbols dropped; kept for their strings */
	struct elf_dropped *dropped; /* to free once symbolizer.lock is released */
	uint64_t n_evicted;
	size_t n_files; /* MOD_FILE entries */
	size_t bytes;
};

/* Returns 0 or -ENOMEM. */
int module_table__init(struct module_table *mt);
/* Frees every module and image. Accepts a zeroed table. */
void module_table__deinit(struct module_table *mt);
/* Returns the module of a mapped file, creating it (*created = true); NULL on ENOMEM. */
struct module *module_table__findnew_file(struct module_table *mt, uint64_t dev, uint64_t inode,
					  const char *path, bool *created);
/* Returns the pseudo module named path (kind MOD_VDSO/PSEUDO/KERNEL/UNKNOWN),
 * creating it; NULL on ENOMEM. */
struct module *module_table__findnew_pseudo(struct module_table *mt, const char *path,
					    enum module_kind kind, bool *created);
/* Gives mod its loaded image (ownership passes to the table). An image with
 * the same build id already loaded is shared instead and img is freed; an
 * evicted one's strings are taken over (frames point into them). */
void module_table__set_image(struct module_table *mt, struct module *mod, struct elf_image *img);
/* Returns the least recently used evictable image that no thread is naming
 * with, or NULL. */
struct elf_image *module_table__lru_image(const struct module_table *mt);
/* Drops img's symbols (onto mt->dropped) and detaches it from every module
 * using it, which go back to MOD_STATE_NEW: their next new frame loads the
 * file again. Frames handed out stay valid. */
void module_table__evict_image(struct module_table *mt, struct elf_image *img);

/* ---- frame_table.c: interning ---- */
struct frame_chunk;
struct inline_block;

struct frame_table {
	struct sym_epoch *epoch; /* the symbolizer's; retires the index's old maps */
	ck_ht_t index;		 /* (module, address) -> frame */
	ck_ht_t kernel_index;	 /* kernel address -> named frame */
	bool indexed;		 /* both ck_ht are set up */
	struct frame_chunk *chunks;
	struct inline_block *inlines; /* frames' inlined[] arrays */
	size_t chunk_used;
	uint64_t next_id;
	size_t bytes; /* frames and inlined[] (the index's maps: epoch->ht_bytes) */
};

/* Returns 0 or -ENOMEM. */
int frame_table__init(struct frame_table *ft, struct sym_epoch *epoch);
/* Frees every frame. Accepts a zeroed table. */
void frame_table__deinit(struct frame_table *ft);
/* Returns the frame interned for (module, address), or NULL. Under
 * symbolizer.lock, or lock-free inside a sym_epoch read section. */
const struct sym_frame *frame_table__find(struct frame_table *ft, const struct sym_module *module,
					  uint64_t address);
/* Returns the named frame of kernel address (an alias set by
 * frame_table__alias_kernel()), or NULL. Same rules as frame_table__find(). */
const struct sym_frame *frame_table__find_kernel(struct frame_table *ft, uint64_t address);
/* Lets lock-free readers find f, a named kernel frame, by its address. */
void frame_table__alias_kernel(struct frame_table *ft, uint64_t address, const struct sym_frame *f);
/* Interns a new frame (the key must not be present). function is borrowed and
 * must outlive the table. Returns it, or NULL on ENOMEM. */
const struct sym_frame *frame_table__add(struct frame_table *ft, const struct sym_module *module,
					 uint64_t address, const char *function, uint8_t kind);
/* Interns a new frame with source information (the key must not be present):
 * the strings are borrowed and must outlive the table; the inlined entries
 * are copied. Returns it, or NULL on ENOMEM. */
const struct sym_frame *frame_table__add_src(struct frame_table *ft,
					     const struct sym_module *module, uint64_t address,
					     const struct sym_src *src, uint8_t kind);
/* Returns a new frame that is not indexed (a module's coarse frame), or NULL. */
const struct sym_frame *frame_table__new_unindexed(struct frame_table *ft,
						   const struct sym_module *module, uint8_t kind);

/* ---- process_table.c: per-tgid mappings ---- */
struct sym_mapping {
	uint64_t start, end, pgoff;
	struct module *mod;
};

/* One read of a process's mappings; immutable once made. Lock-free readers
 * find it through process_table.index, so it is freed through the epoch. */
struct sym_maps_snap {
	ck_epoch_entry_t retire;
	struct sym_epoch *epoch;
	size_t n;
	struct sym_mapping maps[]; /* sorted by start, disjoint */
};

struct process {
	struct hnode node;
	uint32_t tgid;
	bool loading;		    /* a thread is reading the maps or perf map, unlocked */
	bool stale;		    /* invalidated: re-read on the next miss */
	bool read_once;		    /* a read has been attempted */
	uint32_t inval_seq;	    /* bumped by each invalidation */
	uint32_t read_seq;	    /* inval_seq when the last read started */
	uint64_t read_ns;	    /* last read attempt */
	uint64_t stale_ns;	    /* last invalidation */
	uint64_t used_ns;	    /* last slow-path use */
	struct sym_maps_snap *snap; /* last mappings read, or NULL; owned */
	const struct sym_maps_snap *published; /* what process_table.index holds */
	bool info_read;			       /* exe_path and container_id are known */
	const char *exe_path;		       /* interned in symbolizer.strings, or NULL */
	const char *container_id;	       /* interned in symbolizer.strings, or NULL */
	bool exited;			       /* an exit event came: dropped once flushed */
	uint64_t exit_flush;		       /* symbolizer.flushes when it exited */
	struct perf_map *perf_map;	       /* JIT symbols of anonymous code; owned, or NULL */
	struct module *perf_mod;	       /* module of perf-map frames, or NULL */
	uint64_t perf_size;		       /* perf map bytes when last read */
	uint64_t perf_check_ns;		       /* last look at the perf map file */
};

struct process_table {
	struct htab ht;
	struct sym_epoch *epoch;
	ck_ht_t index; /* tgid + 1 -> the published struct sym_maps_snap */
	bool indexed;
	size_t bytes;
};

/* Returns 0 or -ENOMEM. */
int process_table__init(struct process_table *pt, struct sym_epoch *epoch);
/* Frees every process. Accepts a zeroed table. */
void process_table__deinit(struct process_table *pt);
struct process *process_table__find(const struct process_table *pt, uint32_t tgid);
/* Returns a new, never-read entry for tgid (must be absent), or NULL on ENOMEM. */
struct process *process_table__add(struct process_table *pt, uint32_t tgid, uint64_t now);
/* Returns an empty snapshot with room for n mappings (n set), or NULL. */
struct sym_maps_snap *process_table__new_snap(struct process_table *pt, size_t n);
/* Replaces p's mappings (takes ownership of snap, which may be NULL; the old
 * one is retired) and publishes them if p is not stale. */
void process_table__set_maps(struct process_table *pt, struct process *p,
			     struct sym_maps_snap *snap);
/* Publishes p's mappings to lock-free readers, or withdraws them when p is
 * stale: call after changing p->stale. */
void process_table__publish(struct process_table *pt, struct process *p);
/* Replaces p's perf map (takes ownership, frees the old one). */
void process_table__set_perf_map(struct process_table *pt, struct process *p, struct perf_map *pm);
/* Drops processes past their grace or idle time, and exited ones whose
 * samples have been flushed (two flushes after the exit: samples still
 * queued at the first one land in the interval after it). flushes is the
 * count of flushes so far. Returns how many. */
size_t process_table__sweep(struct process_table *pt, uint64_t now, uint64_t flushes);
/* Returns the published mappings of tgid, or NULL: lock-free, inside a
 * sym_epoch read section (the snapshot stays valid until it ends). */
const struct sym_maps_snap *process_table__lookup(struct process_table *pt, uint32_t tgid);
/* Returns the mapping of snap containing addr, or NULL. Accepts NULL snap. */
const struct sym_mapping *sym_maps_snap__find(const struct sym_maps_snap *snap, uint64_t addr);

static inline const struct sym_mapping *process__find_map(const struct process *p, uint64_t addr)
{
	return sym_maps_snap__find(p->snap, addr);
}

/* Opens the file behind a mapping of tgid (symbolizer.c, the rules of
 * module_open): an fd, or -errno with err set. */
int symbolizer__open_module(const struct module *mod, uint32_t tgid, uint64_t start, uint64_t end,
			    char *err, size_t errlen);

/* ---- reader.c / symbolizer.c ---- */

/* Reader cache key of kernel addresses (no user tgid is this large). */
#define SYM_KERNEL_TGID UINT32_MAX
/* Reader cache geometry: RCACHE_SETS sets of RCACHE_WAYS entries (24 bytes
 * each): 32768 entries, 768 KiB per reader. */
#define RCACHE_WAYS 4
#define RCACHE_SETS 8192

struct rcache_entry {
	uint64_t addr;		       /* adjusted address */
	uint32_t tgid;		       /* SYM_KERNEL_TGID for kernel addresses */
	uint32_t gen;		       /* invalidation generation of tgid's slot when cached */
	const struct sym_frame *frame; /* NULL: empty */
};

struct rcache_set {
	struct rcache_entry e[RCACHE_WAYS];
};

/* Counters owned by one reader: written by its thread only (relaxed stores),
 * read by symbolizer__stats() (relaxed loads). */
struct reader_counters {
	_Atomic uint64_t lookups, hits, unknown, lockfree;
};

/* One worker thread's private cache. Everything but 'next' (linked under
 * sym->lock) and the counters (atomics) is touched by the owner thread only. */
struct sym_reader {
	struct symbolizer *sym;
	struct sym_reader *next; /* sym->readers */
	struct reader_counters cnt;
	const struct sym_module *unknown; /* frames of [unknown] are never cached */
	ck_epoch_record_t *epoch_rec;	  /* its read sections on the shared indexes */
	struct rcache_set *sets;
	unsigned victim;
};

enum kern_state {
	KERN_NEW,
	KERN_LOADING,
	KERN_DONE,
};

struct symbolizer {
	pthread_mutex_t lock;	/* guards every field up to 'proc_gen' (writers of the indexes) */
	pthread_cond_t loaded;	/* broadcast when a maps read or a load finishes */
	struct sym_epoch epoch; /* reclamation for the indexes of procs and frames */
	struct process_table procs;
	struct module_table mods;
	struct frame_table frames;
	struct str_pool strings; /* exe paths, container ids, frame names and files */
	struct module *unknown_mod, *anon_mod, *kernel_mod;
	char kernel_build_id[2 * SYM_BUILD_ID_MAX + 1]; /* kernel_mod's, from /sys/kernel/notes */
	struct kallsyms *ksyms;	   /* NULL until loaded, or if loading failed */
	struct module **ksym_mods; /* ksyms->n_mods modules "[modname]" */
	/* Kernel modules loaded since: a kernel address no symbol covers makes
	 * the symbolizer compare /proc/modules (at most every
	 * SYM_KMODS_CHECK_NS) and reload kallsyms if it changed. Replaced
	 * tables stay (frames point to their names) until symbolizer__free(). */
	struct kallsyms *ksyms_retired; /* chained by kallsyms.older */
	uint64_t kmods_hash;		/* of /proc/modules when ksyms was read */
	uint64_t kmods_check_ns;	/* last comparison */
	const char *kallsyms_path;	/* "/proc/kallsyms"; tests point it elsewhere */
	const char *modules_path;	/* "/proc/modules"; likewise */
	uint8_t kern_state;		/* enum kern_state */
	bool kernel;			/* opts.kernel */
	char *debug_dirs;		/* opts.debug_dirs, owned; never NULL */
	size_t max_bytes;
	uint64_t last_sweep_ns;
	uint64_t flushes; /* symbolizer__interval_flushed() calls */
	unsigned warnings;
	struct {
		uint64_t shared_hits, misses, processes, maps_refreshes, elf_load_errors,
			cache_full, exec_reads, perf_map_reads;
	} c;
	struct sym_reader *readers; /* live readers, for stats */
	struct {
		uint64_t lookups, hits, unknown, lockfree;
	} retired; /* counters of freed readers */

	/* Lock-free: bumped (release) by symbolizer__invalidate_process() after it
	 * marked the process stale under the lock; loaded (acquire) once per
	 * sym_reader__resolve_user() call to validate cached entries. */
	_Atomic uint32_t proc_gen[SYM_GEN_SLOTS];
};

static inline uint32_t sym_gen_slot(uint32_t tgid)
{
	return (uint32_t)(sym_hash_u64(tgid) & (SYM_GEN_SLOTS - 1));
}

/* The slow path, called by a reader on cache misses: resolves n addresses
 * (already adjusted: non-leaf ones minus 1) of process tgid, or kernel
 * addresses when kernel is set, taking the shared lock once. Fills every
 * out[i]. Returns 0 or -ENOMEM (then out[i] may be a coarse frame). */
int symbolizer__resolve_slow(struct symbolizer *sym, bool kernel, uint32_t tgid,
			     const uint64_t *addrs, size_t n, const struct sym_frame **out);

#endif /* PIPELINE_SYMBOLIZER_INTERNAL_H */
