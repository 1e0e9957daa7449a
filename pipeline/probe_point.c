/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * A minimal x86-64 decoder for probe_point__choose() (see probe_point.h):
 * it knows the instructions compilers put at the start of allocator
 * functions (endbr64, push, test, cmp, mov, lea, sub/add on the stack
 * pointer) and the emulated ones (push, jmp, jcc, call, nop), and gives up
 * on anything else.
 */
#include <stdio.h>
#include <string.h>

#include "probe_point.h"

#define MAX_INSNS 16

enum insn_class {
	INSN_UNKNOWN,
	INSN_EMULATED, /* the kernel emulates it: probe here */
	INSN_SKIP,     /* falls through, writes no argument register */
	INSN_CLOBBER,  /* falls through but writes an argument register */
	INSN_BRANCH,   /* other control flow (ret, indirect jump) */
};

struct insn {
	size_t len;
	enum insn_class cls;
	const char *name;
	bool writes_sp; /* moves the stack pointer: the return address leaves [rsp] */
};

/* The registers the probe reads; set per call of probe_point__choose(). */
struct decode_ctx {
	uint32_t live;
};

static bool is_live(const struct decode_ctx *cx, int r)
{
	return r >= 0 && (cx->live >> r) & 1;
}

/* The class of an instruction that falls through and writes register w
 * (-1: memory); notes a write of rsp. */
static enum insn_class dest_class(const struct decode_ctx *cx, struct insn *in, int w)
{
	if (w == 4)
		in->writes_sp = true;
	return is_live(cx, w) ? INSN_CLOBBER : INSN_SKIP;
}

/* Length of a ModRM operand (ModRM byte, SIB, displacement), or 0. */
static size_t modrm_len(const uint8_t *p, size_t avail)
{
	unsigned mod, rm;
	size_t len = 1;

	if (avail < 1)
		return 0;
	mod = p[0] >> 6;
	rm = p[0] & 7;
	if (mod != 3 && rm == 4) {
		if (avail < 2)
			return 0;
		len++;
		if (mod == 0 && (p[1] & 7) == 5)
			len += 4;
	}
	if (mod == 0 && rm == 5)
		len += 4; /* RIP-relative */
	else if (mod == 1)
		len += 1;
	else if (mod == 2)
		len += 4;
	return len <= avail ? len : 0;
}

/* The register a ModRM r/m operand writes when it is a register, else -1. */
static int rm_reg(uint8_t modrm, unsigned rex)
{
	return (modrm >> 6) == 3 ? (int)((modrm & 7) | ((rex & 1) << 3)) : -1;
}

static unsigned reg_field(uint8_t modrm, unsigned rex)
{
	return ((modrm >> 3) & 7) | ((rex & 4) << 1);
}

static void decode(const struct decode_ctx *cx, const uint8_t *p, size_t avail, struct insn *in)
{
	size_t i = 0, m;
	unsigned rex = 0;
	bool opsize16 = false;
	int w;

	memset(in, 0, sizeof(*in));
	in->name = "unknown";
	/* endbr64: a no-op landing pad for indirect branches. */
	if (avail >= 4 && p[0] == 0xf3 && p[1] == 0x0f && p[2] == 0x1e && p[3] == 0xfa) {
		*in = (struct insn){4, INSN_SKIP, "endbr64"};
		return;
	}
	/* operand size, segment overrides (fs/gs: thread-local data) */
	while (i < avail &&
	       (p[i] == 0x66 || p[i] == 0x2e || p[i] == 0x3e || p[i] == 0x64 || p[i] == 0x65)) {
		opsize16 |= p[i] == 0x66;
		i++;
	}
	if (i < avail && (p[i] & 0xf0) == 0x40)
		rex = p[i++] & 0xf;
	if (i >= avail)
		return;
	uint8_t op = p[i++];
	const uint8_t *mp = p + i;
	size_t mavail = avail - i;

	/* The kernel emulates branches and pushes only without prefixes (it
	 * refuses some, and a prefixed one is a rare sight here anyway). */
	bool prefixed = i - 1 > (rex ? 1u : 0u); /* i is past the opcode */

	if (prefixed && ((op >= 0x70 && op <= 0x7f) || op == 0xeb || op == 0xe8 || op == 0xe9 ||
			 op == 0x90 || op == 0x0f)) {
		return; /* unknown */
	} else if (op >= 0x50 && op <= 0x57) {
		*in = (struct insn){i, INSN_EMULATED, "push"};
	} else if (op == 0x90 && !rex) {
		*in = (struct insn){i, INSN_EMULATED, "nop"};
	} else if (op >= 0x70 && op <= 0x7f && mavail >= 1) {
		*in = (struct insn){i + 1, INSN_EMULATED, "jcc"};
	} else if (op == 0xeb && mavail >= 1) {
		*in = (struct insn){i + 1, INSN_EMULATED, "jmp"};
	} else if ((op == 0xe8 || op == 0xe9) && mavail >= 4) {
		*in = (struct insn){i + 4, INSN_EMULATED, op == 0xe8 ? "call" : "jmp"};
	} else if (op == 0x0f && mavail >= 1 && mp[0] >= 0x80 && mp[0] <= 0x8f && mavail >= 5) {
		*in = (struct insn){i + 5, INSN_EMULATED, "jcc"};
	} else if (op == 0xc3 || op == 0xc2 || op == 0xff || op == 0xcc) {
		*in = (struct insn){i + 1, INSN_BRANCH, "ret/indirect"};
	} else if ((op == 0x84 || op == 0x85 || (op >= 0x38 && op <= 0x3b)) &&
		   (m = modrm_len(mp, mavail))) {
		/* test, cmp: flags only */
		*in = (struct insn){i + m, INSN_SKIP, op <= 0x3b ? "cmp" : "test"};
	} else if ((op == 0x80 || op == 0x81 || op == 0x83) && (m = modrm_len(mp, mavail))) {
		size_t imm = op == 0x81 ? (opsize16 ? 2 : 4) : 1;
		unsigned sub = (mp[0] >> 3) & 7;

		if (i + m + imm > avail)
			return;
		w = sub == 7 ? -1 : rm_reg(mp[0], rex); /* /7 is cmp */
		/* byte operands without REX: 4-7 are ah, ch, dh, bh */
		if (op == 0x80 && !rex && w >= 4 && w <= 7)
			w -= 4;
		in->len = i + m + imm;
		in->name = sub == 7 ? "cmp" : "alu";
		in->cls = dest_class(cx, in, w);
	} else if ((op == 0xc1 || op == 0xd1 || op == 0xd3) && (m = modrm_len(mp, mavail))) {
		/* shifts and rotates of r/m (by imm8, 1, cl) */
		size_t imm = op == 0xc1 ? 1 : 0;

		if (i + m + imm > avail)
			return;
		in->len = i + m + imm;
		in->name = "shift";
		in->cls = dest_class(cx, in, rm_reg(mp[0], rex));
	} else if ((op == 0x05 || op == 0x0d || op == 0x25 || op == 0x2d || op == 0x35 ||
		    op == 0x3d || op == 0xa9) &&
		   i + (opsize16 ? 2 : 4) <= avail) {
		/* alu/cmp/test of rax with imm32: only cmp and test leave rax */
		in->len = i + (opsize16 ? 2 : 4);
		in->name = "alu rax";
		in->cls = op == 0x3d || op == 0xa9 || !is_live(cx, 0) ? INSN_SKIP : INSN_CLOBBER;
	} else if (op >= 0xb8 && op <= 0xbf && i + (rex & 8 ? 8 : opsize16 ? 2 : 4) <= avail) {
		/* mov imm to a register */
		in->len = i + (rex & 8 ? 8 : opsize16 ? 2 : 4);
		in->name = "mov imm";
		in->cls = dest_class(cx, in, (int)((op & 7) | ((rex & 1) << 3)));
	} else if (op == 0xf7 && (m = modrm_len(mp, mavail))) {
		unsigned sub = (mp[0] >> 3) & 7;
		/* /0 and /1: test with an immediate */
		size_t imm = sub <= 1 ? (opsize16 ? 2 : 4) : 0;

		if (i + m + imm > avail)
			return;
		in->len = i + m + imm;
		in->name = sub <= 1 ? "test" : "mul/div";
		/* mul/div write rdx:rax; not/neg write their operand */
		w = rm_reg(mp[0], rex);
		in->cls = sub <= 1   ? INSN_SKIP
			  : sub >= 4 ? (is_live(cx, 0) || is_live(cx, 2) ? INSN_CLOBBER : INSN_SKIP)
				     : dest_class(cx, in, w);
	} else if ((op == 0x89 || op == 0x01 || op == 0x09 || op == 0x21 || op == 0x29 ||
		    op == 0x31) &&
		   (m = modrm_len(mp, mavail))) {
		/* mov/add/or/and/sub/xor r/m, reg: writes the r/m operand */
		in->len = i + m;
		in->name = "mov/alu";
		in->cls = dest_class(cx, in, rm_reg(mp[0], rex));
	} else if ((op == 0x8b || op == 0x8d || op == 0x03 || op == 0x0b || op == 0x23 ||
		    op == 0x2b || op == 0x33) &&
		   (m = modrm_len(mp, mavail))) {
		/* mov/lea/add/or/and/sub/xor reg, r/m: writes the reg operand */
		in->len = i + m;
		in->name = op == 0x8d ? "lea" : "mov/alu";
		in->cls = dest_class(cx, in, (int)reg_field(mp[0], rex));
	}
}

void probe_point__choose(const uint8_t *code, size_t len, uint32_t live_regs,
			 struct probe_point *out)
{
	struct decode_ctx cx = {.live = live_regs};
	bool sp_moved = false;
	size_t off = 0;

	memset(out, 0, sizeof(*out));
	out->stack_intact = true; /* at the entry, trivially */
#if defined(__x86_64__)
	if (len > PROBE_POINT_SCAN_BYTES)
		len = PROBE_POINT_SCAN_BYTES;
	for (int n = 0; n < MAX_INSNS && off < len; n++) {
		struct insn in;

		decode(&cx, code + off, len - off, &in);
		if (in.cls == INSN_EMULATED) {
			out->offset = (uint32_t)off;
			out->emulated = true;
			out->stack_intact = !sp_moved;
			snprintf(out->why, sizeof(out->why), "+%zu: %s, emulated%s", off, in.name,
				 off ? " (after flag-only or non-argument instructions)" : "");
			return;
		}
		if (in.cls != INSN_SKIP || !in.len) {
			snprintf(out->why, sizeof(out->why),
				 "entry, single-stepped: %s at +%zu before any emulated "
				 "instruction",
				 in.cls == INSN_CLOBBER	 ? "an argument it reads is overwritten"
				 : in.cls == INSN_BRANCH ? "a branch"
							 : "an instruction not decoded",
				 off);
			return;
		}
		sp_moved |= in.writes_sp;
		off += in.len;
	}
	snprintf(out->why, sizeof(out->why),
		 "entry, single-stepped: no emulated instruction in %zu "
		 "bytes",
		 off);
#else
	(void)code;
	(void)len;
	snprintf(out->why, sizeof(out->why), "entry: no decoder for this architecture");
#endif
}
