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
 * through (no branch), writes none of the registers the probe reads
 * (live_regs: the function's arguments it uses) and is one this decoder
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

#define PROBE_POINT_SCAN_BYTES 64 /* bytes of the function the decoder looks at */

/* Register masks for live_regs (System V argument registers), bit = the
 * register's number in x86-64 encodings. */
#define PROBE_REG_RDI (1u << 7)
#define PROBE_REG_RSI (1u << 6)
#define PROBE_REG_RDX (1u << 2)
#define PROBE_REG_RCX (1u << 1)
#define PROBE_REG_R8  (1u << 8)
#define PROBE_REG_R9  (1u << 9)
#define PROBE_REG_ARGS                                                                             \
	(PROBE_REG_RDI | PROBE_REG_RSI | PROBE_REG_RDX | PROBE_REG_RCX | PROBE_REG_R8 |            \
	 PROBE_REG_R9)

struct probe_point {
	uint32_t offset; /* from the function's start */
	bool emulated;	 /* the instruction at offset is one the kernel emulates */
	/* No instruction before offset moved the stack pointer, so the return
	 * address is still at [rsp] there: a return probe can go there too (the
	 * kernel takes the return address from [rsp] where the probe hits). */
	bool stack_intact;
	char why[128]; /* what was chosen and why, for the self-stats */
};

/* Chooses the probe point in code (the function's first len bytes; at most
 * PROBE_POINT_SCAN_BYTES are looked at) for a probe reading live_regs
 * (PROBE_REG_*). Never fails: the worst answer is the entry, not emulated. */
void probe_point__choose(const uint8_t *code, size_t len, uint32_t live_regs,
			 struct probe_point *out);

#endif /* PIPELINE_PROBE_POINT_H */
