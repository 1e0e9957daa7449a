/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * symbolizer: turns raw stack addresses into interned, immutable frames.
 *
 * One `struct symbolizer` is shared by every shard worker. It owns the process
 * table (each process's mappings from /proc/PID/maps), the module table (one
 * entry per file identity: build id, or device+inode), loaded ELF symbol
 * tables (shared by every process that maps the file, so libc is loaded once),
 * JIT perf maps (/tmp/perf-PID.map in the process's own root), and kernel
 * symbols from /proc/kallsyms. Files are opened as the process maps them
 * (/proc/PID/map_files, or the path resolved inside /proc/PID/root), so
 * deleted binaries and files in containers are named.
 *
 * Process events (symbolizer__process_exec/exit, symbolizer__interval_flushed)
 * let it read a new process's maps at once and keep an exited one's until its
 * samples are flushed; without them, maps are read on a process's first
 * sample and kept a while after it is gone.
 *
 * Frames and modules are interned: the same (module, file offset) always
 * gives the same `const struct sym_frame *`, so callers may hash and compare
 * frames by pointer. Frames and modules stay valid and unchanged until
 * symbolizer__free().
 *
 * Threads: each worker thread resolves through its own `struct sym_reader`
 * (symbolizer__reader_new()), a private cache in front of the shared tables.
 * A warm lookup takes no lock; a miss (new process, cold ELF load) takes the
 * shared tables' writer lock. Knows nothing of rings, shards, formats or
 * sockets.
 */
#ifndef PIPELINE_SYMBOLIZER_H
#define PIPELINE_SYMBOLIZER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum sym_frame_kind {
	SYM_FRAME_USER = 0,
	SYM_FRAME_KERNEL = 1,
};

/* One mapped file (or pseudo file: "[kernel.kallsyms]", "[vdso]", "[anon]"). */
struct sym_module {
	const char *path;     /* path as the process mapped it; never NULL */
	const char *name;     /* basename of path; never NULL */
	const char *build_id; /* lower-case hex of .note.gnu.build-id; "" if none */
	const char *htlhash;  /* OTLP htlhash: hex of the first 16 bytes of SHA-256(first
			       * 4096 bytes, last 4096 bytes, file length as big-endian u64);
			       * "" if the file could not be read, and for pseudo and kernel
			       * modules; never NULL */
	bool is_kernel;
};

/* What the symbolizer learned of a process when it first read its mappings;
 * kept after the process exits, like its mappings. */
struct sym_process_info {
	uint32_t tgid;
	const char *exe_path;	  /* /proc/PID/exe target ("(deleted)" stripped), or NULL */
	const char *container_id; /* container id from /proc/PID/cgroup, or NULL */
};

/* One function inlined at a frame's address, with the source position in it:
 * for the innermost, the address's own line; for the others, the line of the
 * call to the next inner one. Owned by the symbolizer, like the frame. */
struct sym_inline {
	const char *function;	 /* demangled name, or NULL when none is known */
	const char *system_name; /* mangled (linkage) name, or NULL when not mangled */
	const char *file;	 /* source file, or NULL */
	uint32_t line;		 /* source line, or 0 */
};

/* One resolved code address. Immutable, owned by the symbolizer.
 *
 * function/file/line name the function the address is in (the symbol that
 * contains it); when other functions were inlined there, line is that of
 * the call of the outermost inlined one, and inlined[] lists the inlined
 * calls innermost first: the pprof/OTLP Line order is inlined[0..n-1], then
 * the frame's own function. */
struct sym_frame {
	const struct sym_module *module;  /* never NULL */
	uint64_t address;		  /* user: file offset (mapping-relative, pprof-normalized);
					   * kernel, "[unknown]", "[anon]": the virtual address;
					   * non-leaf frames: that of addr - 1 */
	const char *function;		  /* symbol name (demangled), or NULL when none is known */
	const char *system_name;	  /* mangled (linkage) name, or NULL when not mangled */
	const char *file;		  /* source file, or NULL */
	uint32_t line;			  /* source line, or 0 */
	uint8_t kind;			  /* enum sym_frame_kind */
	uint32_t n_inlined;		  /* entries of inlined */
	const struct sym_inline *inlined; /* innermost first; NULL when n_inlined is 0 */
	uint64_t id;			  /* unique, dense, nonzero: usable as a hash key */
};

struct symbolizer_opts {
	/* Bound on the shared tables (frames, symbol tables and DWARF indexes,
	 * process mappings); past it the least recently used files' symbols are
	 * evicted. 0 = default (256 MiB). */
	size_t max_cache_bytes;
	bool kernel; /* load /proc/kallsyms for kernel frames */
	/* Roots of separate debug files, colon-separated: DIR/.build-id/xx/yyyy.debug
	 * and DIR/<binary's directory>/<.gnu_debuglink name>; NULL or "" means
	 * "/usr/lib/debug". */
	const char *debug_dirs;
};

struct symbolizer_stats {
	uint64_t lookups;	  /* addresses resolved */
	uint64_t reader_hits;	  /* served by a sym_reader's private cache */
	uint64_t shared_hits;	  /* served by the shared tables */
	uint64_t lockfree_hits;	  /* of shared_hits, served without taking the lock */
	uint64_t misses;	  /* needed a cold load or a new intern */
	uint64_t unknown;	  /* frames with no symbol (module-level name only) */
	uint64_t processes;	  /* processes whose mappings were read */
	uint64_t maps_refreshes;  /* /proc/PID/maps re-reads after an address missed */
	uint64_t modules;	  /* distinct files */
	uint64_t elf_load_errors; /* files that could not be opened or parsed */
	uint64_t cache_bytes;	  /* memory held by the shared tables */
	uint64_t cache_full;	  /* frames degraded to module level because the bound was hit */
	uint64_t images_evicted;  /* ELF images whose symbols were dropped for the bound */
	uint64_t exec_reads;	  /* maps read at once on an exec event */
	uint64_t perf_map_reads;  /* JIT perf maps (re-)read */
};

struct symbolizer;
struct sym_reader;
struct sym_unwinder;

/* One sample's user registers and the top of its stack (--unwind dwarf). */
struct sym_stack_copy {
	uint64_t ip, sp, bp;
	const uint8_t *stack; /* len bytes copied from sp up */
	size_t len;
	bool short_copy; /* the stack's mapping ended before the bytes asked for */
};

/* Why an unwind stopped. */
enum sym_unwind_end {
	SYM_UNWIND_COMPLETE,   /* reached the outermost frame (undefined return address) */
	SYM_UNWIND_WINDOW,     /* the next frame lies above the copied window */
	SYM_UNWIND_NO_CFI,     /* code without CFI and without a frame pointer */
	SYM_UNWIND_BAD_REGS,   /* a rule needed a register or value not at hand */
	SYM_UNWIND_MAX_FRAMES, /* the frame limit */
};

enum sym_unwind_counter {
	SYM_UNWIND_STACKS,	 /* stacks unwound */
	SYM_UNWIND_FRAMES,	 /* frames they gave */
	SYM_UNWIND_RULE_HITS,	 /* steps served by the rule cache */
	SYM_UNWIND_RULE_MISSES,	 /* steps that asked libdw for the address's CFI */
	SYM_UNWIND_FP_STEPS,	 /* steps by frame pointer, for lack of CFI */
	SYM_UNWIND_END_WINDOW,	 /* stacks cut at the copy's end */
	SYM_UNWIND_END_NO_CFI,	 /* stacks ended in code with neither CFI nor frame pointer */
	SYM_UNWIND_END_BAD_REGS, /* stacks ended by a rule that could not be applied */
	SYM_UNWIND_OPEN_ERRORS,	 /* files whose CFI could not be read */
	SYM_UNWIND_RESETS,	 /* times the table of open files was emptied */
	SYM_UNWIND_LEAF_CALLERS, /* fp: callers of frameless functions put back */
	SYM_UNWIND_NS,		 /* time spent unwinding copies, ns */
	SYM_UNWIND_N_COUNTERS,
};

/* Returns a new symbolizer, or NULL with errno set. */
struct symbolizer *symbolizer__new(const struct symbolizer_opts *opts);
/* Frees everything, including every frame and module handed out. Accepts NULL.
 * Every sym_reader must have been freed first. */
void symbolizer__free(struct symbolizer *sym);

/* Returns a per-thread reader, or NULL with errno set. Not thread-safe itself:
 * one reader belongs to one thread. */
struct sym_reader *symbolizer__reader_new(struct symbolizer *sym);
void sym_reader__free(struct sym_reader *rd);

/*
 * Resolves n user-space addresses of process tgid, leaf first as
 * bpf_get_stack() returns them. addrs[0] is used as is; addrs[1..] are return
 * addresses and are looked up at addr - 1 (the call instruction). out[i] is
 * never NULL: an address with no symbol gets a module-level frame
 * (function NULL, module set), and one outside every known mapping a frame of
 * the "[unknown]" module. A process that has exited keeps the mappings seen
 * while it lived. Returns 0, or -errno on allocation failure.
 */
int sym_reader__resolve_user(struct sym_reader *rd, uint32_t tgid, const uint64_t *addrs, size_t n,
			     const struct sym_frame **out);

/* Same for kernel addresses (leaf first, non-leaf looked up at addr - 1).
 * With opts.kernel set but kptr_restrict hiding addresses (or /proc/kallsyms
 * unreadable), every address gets one frame: module "[kernel.kallsyms]",
 * function "[kernel]", address 0 (a warning says why, once). With opts.kernel
 * unset, frames are module-level: function NULL. Returns 0 or -errno. */
int sym_reader__resolve_kernel(struct sym_reader *rd, const uint64_t *addrs, size_t n,
			       const struct sym_frame **out);

/* Tells the symbolizer that process tgid exited or exec'd: its mappings are
 * re-read on the next miss. Thread-safe. */
/* Returns an unwinder for the thread that owns rd (it reads the process
 * mappings through rd), or NULL with errno set. */
struct sym_unwinder *sym_unwinder__new(struct sym_reader *rd);
void sym_unwinder__free(struct sym_unwinder *u);
/* Unwinds a stack copy of a thread of tgid into pcs, leaf first (the ip,
 * then return addresses, as bpf_get_stack gives them); at most max.
 * Returns how many, and why it stopped in *end; *used is how much of the
 * copy the walk needed (from sp to the outermost frame's CFA). Never
 * fails: a stack it cannot follow ends early, and the counters say why. */
size_t sym_unwinder__unwind(struct sym_unwinder *u, uint32_t tgid, const struct sym_stack_copy *c,
			    uint64_t *pcs, size_t max, enum sym_unwind_end *end, size_t *used);
/* For a frame-pointer stack: when the CFI of the sampled function says it
 * has no frame at c->ip (a leaf, or a prologue or epilogue), sets *caller
 * to the return address it holds on the stack (in the copy c, a few
 * hundred bytes from sp), which the frame-pointer walk skipped. */
bool sym_unwinder__leaf_caller(struct sym_unwinder *u, uint32_t tgid,
			       const struct sym_stack_copy *c, uint64_t *caller);
/* The call frame rule of tgid's code at pc, reduced to what a walk that
 * keeps rip, rsp and rbp applies (--unwind auto's BPF walk). */
struct sym_cfa_rule {
	bool cfa_on_bp; /* CFA = (cfa_on_bp ? rbp : rsp) + cfa_off */
	int32_t cfa_off;
	bool outermost; /* no caller: the return address is undefined */
	int32_t ra_off; /* the return address is at CFA + ra_off */
	bool bp_saved;	/* the caller's rbp is at CFA + bp_off; else rbp is unchanged */
	int32_t bp_off;
};
/* The rule at pc: a leaf's ip when exact, else a return address (looked up
 * at pc - 1, the call). Returns 0, -ENOENT when pc is in no mapped file
 * with CFI for it, -ENOTSUP when the rule needs more than those registers. */
int sym_unwinder__rule(struct sym_unwinder *u, uint32_t tgid, uint64_t pc, bool exact,
		       struct sym_cfa_rule *out);
/* Reads the counters (relaxed; any thread). Accepts NULL (all zero). */
void sym_unwinder__stats(const struct sym_unwinder *u, uint64_t out[SYM_UNWIND_N_COUNTERS]);
/* Time per unwind of a copy: buckets of SYM_UNWIND_HIST_SUB per power of
 * two of nanoseconds; bucket b holds times below sym_unwind_hist_upper(b). */
#define SYM_UNWIND_HIST_SUB 4
#define SYM_UNWIND_HIST_N   (32 * SYM_UNWIND_HIST_SUB)
void sym_unwinder__hist(const struct sym_unwinder *u, uint64_t out[SYM_UNWIND_HIST_N]);
/* The upper bound in ns of bucket b. */
double sym_unwind_hist_upper(unsigned b);

void symbolizer__invalidate_process(struct symbolizer *sym, uint32_t tgid);

/* Tells the symbolizer that process tgid has just exec'd (or was just
 * created): its mappings are read now, while it lives, so that samples
 * resolved after it exited are still named. Slow (reads /proc): call it off
 * the ring readers. Thread-safe. Returns 0, or -errno (-ENOENT: already gone). */
int symbolizer__process_exec(struct symbolizer *sym, uint32_t tgid);

/* Tells the symbolizer that process tgid exited: it keeps its mappings until
 * two symbolizer__interval_flushed() calls later (its last samples may still
 * be in queues at the first). Thread-safe and cheap. */
void symbolizer__process_exit(struct symbolizer *sym, uint32_t tgid);

/* Tells the symbolizer that an interval's samples have all been flushed.
 * Thread-safe and cheap. */
void symbolizer__interval_flushed(struct symbolizer *sym);

/*
 * Fills *out for process tgid; the strings stay valid until symbolizer__free().
 * Thread-safe; meant for flush time, not the per-sample path (it may take the
 * shared lock, and reads /proc for a process not seen before). A process that
 * exited stays known as long as its mappings do: until a few seconds after
 * symbolizer__invalidate_process(), or a minute in which neither a lookup
 * that missed the readers' caches nor this call used it. Returns 0, or
 * -ENOENT when the process is unknown and gone.
 */
int symbolizer__process_info(struct symbolizer *sym, uint32_t tgid, struct sym_process_info *out);

/* A frame that stands for no code but for what the profiler knows of a
 * stack it could not sample, named name (kept, not copied: a string that
 * lives as long as the symbolizer), in the pseudo module "[pipeline]"; the
 * same frame for the same name. Thread-safe. Returns NULL when out of
 * memory. */
const struct sym_frame *symbolizer__marker(struct symbolizer *sym, const char *name);

/* Copies current counters into *st. Thread-safe. */
void symbolizer__stats(struct symbolizer *sym, struct symbolizer_stats *st);

#endif /* PIPELINE_SYMBOLIZER_H */
