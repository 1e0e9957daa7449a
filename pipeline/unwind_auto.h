/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * --unwind auto: which processes need stack copies. A shard worker shows
 * each frame-pointer stack it symbolized to its judge; a process whose
 * stacks end short of a thread's start (the outermost frame is not _start,
 * __libc_start_call_main, start_thread, clone3 or the like) in at least
 * UNWIND_AUTO_SHORT_PCT % of its first UNWIND_AUTO_MIN_SAMPLES samples, or
 * of any later window, is added to the BPF program's copy_tgids map and
 * sampled with copies from then on. The process tracker removes it at exec
 * and exit, and the judge starts over when frame-pointer samples of a
 * process it switched come again.
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
#define UNWIND_SIZE_WINDOW	32

struct unwind_auto;

/* Returns a judge that adds processes to the hash map map_fd, or NULL.
 * max_copy: --stack-copy-bytes. */
struct unwind_auto *unwind_auto__new(int map_fd, uint32_t max_copy);
void unwind_auto__free(struct unwind_auto *ua);
/* Judges one frame-pointer stack of tgid taken at ts_ns (user frames,
 * leaf first, n of them; truncated: it hit the frame limit). */
void unwind_auto__judge(struct unwind_auto *ua, uint32_t tgid, uint64_t ts_ns,
			const struct sym_frame *const *user, uint32_t n, bool truncated);
/* Learns from one unwind of a copy of tgid: it used `used` bytes of the
 * `asked` it asked for; cut: it ended at the copy's end. */
void unwind_auto__sized(struct unwind_auto *ua, uint32_t tgid, size_t used, bool cut,
			uint32_t asked);
/* Processes switched to copies, and map updates refused (full). */
void unwind_auto__stats(const struct unwind_auto *ua, uint64_t *switched, uint64_t *failed);

#endif /* PIPELINE_UNWIND_AUTO_H */
