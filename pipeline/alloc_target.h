/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Which allocator a process really uses, and where to probe it.
 *
 * The dynamic linker resolves `malloc` to the first definition in its
 * search order: the executable, then LD_PRELOAD libraries, then the rest.
 * So the allocator is the executable when it defines malloc (jemalloc or
 * tcmalloc linked statically), else a mapped library other than libc that
 * defines it (libjemalloc, libtcmalloc, a preloaded one), else libc.
 * Every function of enum alloc_fn that file defines gets a probe point
 * (probe_point.h); the file is named for the attach by a path the kernel
 * can open from the agent's mount namespace (/proc/PID/map_files/...), so
 * deleted files and containers work too.
 */
#ifndef PIPELINE_ALLOC_TARGET_H
#define PIPELINE_ALLOC_TARGET_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#include "probe_point.h"

enum alloc_fn {
	ALLOC_FN_MALLOC,
	ALLOC_FN_CALLOC,
	ALLOC_FN_REALLOC,
	ALLOC_FN_REALLOCARRAY,
	ALLOC_FN_POSIX_MEMALIGN,
	ALLOC_FN_ALIGNED_ALLOC,
	ALLOC_FN_MEMALIGN,
	ALLOC_FN_VALLOC,
	ALLOC_FN_PVALLOC,
	ALLOC_FN_FREE,
	ALLOC_FN_COUNT,
};

/* The symbol name of fn ("malloc", ...). */
const char *alloc_fn__name(enum alloc_fn fn);

struct alloc_fn_site {
	bool present;			/* the allocator file defines it, and it is probed */
	const char *skipped;		/* defined but not probed: why (else NULL) */
	uint64_t file_offset;		/* of the function's entry, for uprobes and uretprobes */
	struct probe_point entry_point; /* where the entry uprobe goes */
};

struct alloc_target {
	uint32_t tgid;
	char path[PATH_MAX];		 /* the file as the process maps it */
	char attach_path[PATH_MAX + 32]; /* /proc/PID/map_files/START-END: what uprobes attach to */
	const char *kind;		 /* "glibc", "jemalloc", "tcmalloc", "other" */
	bool in_executable;		 /* statically linked into the executable */
	struct alloc_fn_site fn[ALLOC_FN_COUNT];
};

/* Finds process tgid's allocator and its probe points. Returns 0, -ESRCH
 * (no such process), -ENOENT (no mapped file defines malloc and free: a
 * message naming the files looked at is in err), or another -errno. */
int alloc_target__find(uint32_t tgid, struct alloc_target *out, char *err, size_t errlen);

/* The same for the C library that process tgid maps, whatever allocator it
 * really uses (--alloc-all probes that file for every process). */
int alloc_target__find_libc(uint32_t tgid, struct alloc_target *out, char *err, size_t errlen);

#endif /* PIPELINE_ALLOC_TARGET_H */
