/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Where to place a uprobe inside a function so that it costs the least.
 *
 * A uprobe replaces one instruction with a breakpoint. The kernel emulates
 * a few instructions (push of a register, jmp, jcc, call, nop); every other
 * one is copied out of line and single-stepped, which a virtual machine
 * makes about 30 times dearer (on this project's KVM guest: 0.45 us for
 * glibc's malloc entry, `push %r12`, against 15 us for free's entry,
 * `test %rdi,%rdi`). So the probe goes on the first emulated instruction on
 * the path from the entry, provided every instruction before it falls
 * through (no branch), writes no argument register (rdi, rsi, rdx, rcx, r8,
 * r9: the probe reads the arguments from them) and is one this decoder
 * knows. Anything else, or no emulated instruction within the first few,
 * falls back to the entry, and the reason is reported.
 *
 * x86-64 only (the decoder); other architectures always get the entry.
 */
#ifndef PIPELINE_PROBE_POINT_H
#define PIPELINE_PROBE_POINT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PROBE_POINT_SCAN_BYTES 48 /* bytes of the function the decoder looks at */

struct probe_point {
	uint32_t offset; /* from the function's start */
	bool emulated;	 /* the instruction at offset is one the kernel emulates */
	char why[96];	 /* what was chosen and why, for the self-stats */
};

/* Chooses the probe point in code (the function's first len bytes; at most
 * PROBE_POINT_SCAN_BYTES are looked at). Never fails: the worst answer is
 * the entry, not emulated. */
void probe_point__choose(const uint8_t *code, size_t len, struct probe_point *out);

#endif /* PIPELINE_PROBE_POINT_H */
