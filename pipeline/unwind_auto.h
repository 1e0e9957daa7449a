/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * --unwind auto: how each process's user stacks are taken. A shard worker
 * shows each frame-pointer stack it symbolized to its judge; a process
 * whose stacks end short of a thread's start (the outermost frame is not
 * _start, __libc_start_call_main, start_thread, clone3 or the like) in at
 * least UNWIND_AUTO_SHORT_PCT % of its first UNWIND_AUTO_MIN_SAMPLES
 * samples, or of any later window, is switched in the BPF program's
 * copy_tgids map to rule walks (CPU_SAMPLE_COPY_WALK): the program walks
 * its stacks itself, stepping by frame pointer except at the addresses that
 * have a rule in unwind_rules. The judge learns those rules: for each rule
 * walk that still comes out short it puts in the rule of the first frame
 * whose CFI says it keeps no frame pointer there (one per stack; a C
 * library's system-call wrapper that holds its own data in rbp is the
 * usual one). A process whose rule walks are still short in
 * UNWIND_AUTO_SHORT_PCT % of a window of UNWIND_WALK_WINDOW, after the
 * first (the learning one), needs rules everywhere (code built without
 * frame pointers throughout) and is switched to stack copies, unwound by
 * the worker. The process tracker removes it from copy_tgids at exec and
 * exit, and the judge starts over when frame-pointer samples of a process
 * it switched come again.
 *
 * With --unwind dwarf or auto it also sizes each process's copies: the
 * map's value is the bytes to copy, set from what the process's unwinds
 * used over a window of UNWIND_SIZE_WINDOW stacks (the most, plus a quarter
 * and 512 bytes, in whole KiB, at least 1 KiB, at most --stack-copy-bytes),
 * and doubled at once when an unwind is cut at the copy's end, never to
 * shrink below that again (deep stacks can be rare: a signal handler's
 * frame holds the whole saved context). A thread
 * pool's 8 MiB stacks are copied as deep as their frames go, not 16 KiB.
 */
#ifndef PIPELINE_UNWIND_AUTO_H
#define PIPELINE_UNWIND_AUTO_H

#include <stdbool.h>
#include <stdint.h>

#include "symbolizer.h"

#define UNWIND_AUTO_MIN_SAMPLES 20
#define UNWIND_AUTO_SHORT_PCT	10
#define UNWIND_WALK_WINDOW	50
#define UNWIND_SIZE_WINDOW	32

struct unwind_auto;

/* Returns a judge that switches processes in the hash map map_fd and puts
 * learned rules in rules_fd (-1: switch straight to copies), reading CFI
 * through unwinder (the same worker's), or NULL. max_copy:
 * --stack-copy-bytes. */
struct unwind_auto *unwind_auto__new(int map_fd, int rules_fd, uint32_t max_copy,
				     struct sym_unwinder *unwinder);
void unwind_auto__free(struct unwind_auto *ua);
/* Judges one user stack of tgid taken at ts_ns without a copy: n frames,
 * leaf first, their addresses in pcs and symbols in user; truncated: it hit
 * the frame limit; rule_walk: walked by the program with rules. */
void unwind_auto__judge(struct unwind_auto *ua, uint32_t tgid, uint64_t ts_ns, const uint64_t *pcs,
			const struct sym_frame *const *user, uint32_t n, bool truncated,
			bool rule_walk);
/* Learns from one unwind of a copy of tgid: it used `used` bytes of the
 * `asked` it asked for; cut: it ended at the copy's end. */
void unwind_auto__sized(struct unwind_auto *ua, uint32_t tgid, size_t used, bool cut,
			uint32_t asked);

struct unwind_auto_stats {
	uint64_t walked; /* processes switched to rule walks */
	uint64_t copied; /* processes switched to stack copies */
	uint64_t rules;	 /* rules put in the BPF map */
	uint64_t failed; /* map updates refused (full) */
};
void unwind_auto__stats(const struct unwind_auto *ua, struct unwind_auto_stats *out);

#endif /* PIPELINE_UNWIND_AUTO_H */
