// SPDX-License-Identifier: BSD-2-Clause
/*
 * User stack unwinding from a copy (--unwind dwarf): the sampled thread's
 * ip, sp and bp and the top of its stack, unwound with the call frame
 * information (.eh_frame, else .debug_frame) of the mapped files, read
 * through libdw. The approach of `perf record --call-graph dwarf`, with
 * two caches so that a warm unwind touches no ELF data:
 *
 *   - per module: the open file, its Dwarf_CFI and its PT_LOAD segments
 *     (file offset -> ELF address), opened on the first pc seen in it;
 *   - per (module, address): the rule of that address reduced to what
 *     x86-64 code needs (CFA = rsp or rbp + offset, return address and rbp
 *     saved at CFA + offset), in a direct-mapped table.
 *
 * Rules that do not reduce (the CFA expressions of PLT stubs, signal
 * frames' expression rules) are evaluated from libdw's ops on each use.
 * Code with no CFI (JIT code, a file without .eh_frame) is stepped by its
 * frame pointer. The unwinder belongs to one shard worker: libdw's CFI
 * caches are not thread-safe, so nothing here is shared.
 */
#include <dwarf.h>
#include <elfutils/libdw.h>
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <time.h>
#include <unistd.h>

#include "symbolizer_internal.h"

#define REG_RBP 6
#define REG_RSP 7
#define REG_RIP 16

#define UNW_MODULES   256   /* open files per unwinder; all closed when full */
#define UNW_RULES     16384 /* cached rules, direct-mapped */
#define UNW_MAX_LOADS 8	    /* PT_LOAD segments kept per file */
#define EVAL_STACK    16

struct unw_module {
	const struct module *mod; /* NULL: free slot */
	int fd;
	Elf *elf;
	Dwarf *dwarf;	/* only for .debug_frame; owns its CFI */
	Dwarf_CFI *cfi; /* NULL: no CFI (stepped by frame pointer) */
	bool eh;	/* cfi came from dwarf_getcfi_elf: end it ourselves */
	size_t n_loads;
	uint64_t load_off[UNW_MAX_LOADS], load_vaddr[UNW_MAX_LOADS], load_size[UNW_MAX_LOADS];
};

enum rule_kind {
	RULE_NONE,    /* empty cache entry */
	RULE_SIMPLE,  /* cfa, ra and bp below */
	RULE_COMPLEX, /* evaluate from libdw each time */
	RULE_NO_CFI,  /* no FDE covers the address */
};

enum reg_rule {
	REG_UNDEFINED,
	REG_SAME,
	REG_AT_CFA,  /* saved at CFA + off */
	REG_VAL_CFA, /* is CFA + off (the ABI's rule for rsp) */
};

struct unw_rule {
	const struct unw_module *um;
	uint64_t vaddr;
	uint8_t kind;	 /* enum rule_kind */
	uint8_t cfa_reg; /* REG_RSP or REG_RBP */
	uint8_t ra, bp;	 /* enum reg_rule */
	bool signal;	 /* a signal frame: its caller's pc is exact */
	int32_t cfa_off, ra_off, bp_off;
};

struct sym_unwinder {
	struct sym_reader *rd; /* borrowed: the same thread's reader */
	struct unw_module mods[UNW_MODULES];
	size_t n_mods;
	struct unw_rule *rules;
	_Atomic uint64_t cnt[SYM_UNWIND_N_COUNTERS];
	_Atomic uint64_t hist[SYM_UNWIND_HIST_N];
};

/* The state of one frame. */
struct unw_regs {
	uint64_t ip, sp, bp;
	bool bp_ok;
	bool exact;  /* ip is not a return address (leaf, or after a signal frame) */
	bool cfa_sp; /* the last step found the CFA from rsp: no frame pointer set up */
};

static void count(struct sym_unwinder *u, enum sym_unwind_counter c, uint64_t v)
{
	atomic_store_explicit(&u->cnt[c],
			      atomic_load_explicit(&u->cnt[c], memory_order_relaxed) + v,
			      memory_order_relaxed);
}

struct sym_unwinder *sym_unwinder__new(struct sym_reader *rd)
{
	struct sym_unwinder *u = calloc(1, sizeof(*u));
	if (!u)
		return NULL;
	u->rules = calloc(UNW_RULES, sizeof(*u->rules));
	if (!u->rules) {
		free(u);
		errno = ENOMEM;
		return NULL;
	}
	u->rd = rd;
	for (size_t i = 0; i < UNW_MODULES; i++)
		u->mods[i].fd = -1;
	return u;
}

static void unw_module__close(struct unw_module *um)
{
	if (um->cfi && um->eh)
		dwarf_cfi_end(um->cfi);
	if (um->dwarf)
		dwarf_end(um->dwarf);
	if (um->elf)
		elf_end(um->elf);
	if (um->fd >= 0)
		close(um->fd);
	memset(um, 0, sizeof(*um));
	um->fd = -1;
}

static void close_all(struct sym_unwinder *u)
{
	for (size_t i = 0; i < UNW_MODULES; i++)
		if (u->mods[i].mod)
			unw_module__close(&u->mods[i]);
	u->n_mods = 0;
	memset(u->rules, 0, UNW_RULES * sizeof(*u->rules));
}

void sym_unwinder__free(struct sym_unwinder *u)
{
	if (!u)
		return;
	close_all(u);
	free(u->rules);
	free(u);
}

void sym_unwinder__stats(const struct sym_unwinder *u, uint64_t out[SYM_UNWIND_N_COUNTERS])
{
	for (int i = 0; i < SYM_UNWIND_N_COUNTERS; i++)
		out[i] = u ? atomic_load_explicit(&u->cnt[i], memory_order_relaxed) : 0;
}

/* The agent's own vdso, the one every same-ABI process maps, as an ELF in
 * memory: its .eh_frame describes the vdso functions of the sampled
 * process too. */
static Elf *vdso_elf(void)
{
	const unsigned char *base = (const unsigned char *)getauxval(AT_SYSINFO_EHDR);
	if (!base)
		return NULL;
	const Elf64_Ehdr *eh = (const Elf64_Ehdr *)base;
	if (memcmp(eh->e_ident, ELFMAG, SELFMAG) || eh->e_ident[EI_CLASS] != ELFCLASS64)
		return NULL;
	/* Its size: the section headers come last in the image. */
	size_t size = eh->e_shoff + (size_t)eh->e_shnum * eh->e_shentsize;
	return elf_memory((char *)base, size);
}

/* Reads the PT_LOAD segments that map file offsets to ELF addresses. */
static void read_loads(struct unw_module *um)
{
	size_t n = 0;
	if (elf_getphdrnum(um->elf, &n))
		return;
	for (size_t i = 0; i < n && um->n_loads < UNW_MAX_LOADS; i++) {
		GElf_Phdr ph;
		if (!gelf_getphdr(um->elf, (int)i, &ph) || ph.p_type != PT_LOAD)
			continue;
		um->load_off[um->n_loads] = ph.p_offset;
		um->load_vaddr[um->n_loads] = ph.p_vaddr;
		um->load_size[um->n_loads] = ph.p_filesz;
		um->n_loads++;
	}
}

static void open_cfi(struct sym_unwinder *u, struct unw_module *um, const struct module *mod,
		     uint32_t tgid, const struct sym_mapping *m)
{
	char err[128];

	if (mod->kind == MOD_VDSO) {
		um->elf = vdso_elf();
	} else {
		um->fd = symbolizer__open_module(mod, tgid, m->start, m->end, err, sizeof(err));
		if (um->fd < 0) {
			count(u, SYM_UNWIND_OPEN_ERRORS, 1);
			return;
		}
		um->elf = elf_begin(um->fd, ELF_C_READ_MMAP, NULL);
		/* Keep the mapping, not the descriptor: 256 open files per
		 * shard would eat the process's fd limit on a large host. */
		if (um->elf && elf_cntl(um->elf, ELF_C_FDREAD) == 0) {
			close(um->fd);
			um->fd = -1;
		}
	}
	if (!um->elf || elf_kind(um->elf) != ELF_K_ELF) {
		count(u, SYM_UNWIND_OPEN_ERRORS, 1);
		return;
	}
	read_loads(um);
	um->cfi = dwarf_getcfi_elf(um->elf);
	um->eh = um->cfi != NULL;
	if (!um->cfi) {
		/* No .eh_frame: a .debug_frame in the file itself. */
		um->dwarf = dwarf_begin_elf(um->elf, DWARF_C_READ, NULL);
		if (um->dwarf)
			um->cfi = dwarf_getcfi(um->dwarf);
	}
}

/* The unwinder's entry for mod, opened on first use; NULL if the table
 * cannot take it (then it is emptied for the next sample). */
static struct unw_module *module_cfi(struct sym_unwinder *u, const struct module *mod,
				     uint32_t tgid, const struct sym_mapping *m)
{
	size_t h = ((uintptr_t)mod >> 4) % UNW_MODULES;
	for (size_t i = 0; i < UNW_MODULES; i++) {
		struct unw_module *um = &u->mods[(h + i) % UNW_MODULES];
		if (um->mod == mod)
			return um;
		if (!um->mod) {
			if (u->n_mods >= UNW_MODULES * 3 / 4) {
				/* Bounded: start again rather than grow. */
				close_all(u);
				count(u, SYM_UNWIND_RESETS, 1);
				return module_cfi(u, mod, tgid, m);
			}
			um->mod = mod;
			u->n_mods++;
			open_cfi(u, um, mod, tgid, m);
			return um;
		}
	}
	return NULL;
}

/* The ELF address of a file offset, through the PT_LOAD that maps it. */
static bool elf_addr(const struct unw_module *um, uint64_t off, uint64_t *vaddr)
{
	for (size_t i = 0; i < um->n_loads; i++) {
		if (off >= um->load_off[i] && off - um->load_off[i] < um->load_size[i]) {
			*vaddr = off - um->load_off[i] + um->load_vaddr[i];
			return true;
		}
	}
	return false;
}

static bool read_word(const struct sym_stack_copy *c, uint64_t addr, uint64_t *out)
{
	if (addr < c->sp || addr - c->sp > c->len || c->len - (addr - c->sp) < 8)
		return false;
	memcpy(out, c->stack + (addr - c->sp), 8);
	return true;
}

/* Reduces a register rule to enum reg_rule; false if it does not reduce. */
static bool simple_reg(Dwarf_Frame *fr, int regno, uint8_t *rule, int32_t *off)
{
	Dwarf_Op mem[3], *ops;
	size_t nops;

	if (dwarf_frame_register(fr, regno, mem, &ops, &nops))
		return false;
	if (nops == 0) {
		*rule = ops ? REG_UNDEFINED : REG_SAME;
		return true;
	}
	if (ops[0].atom != DW_OP_call_frame_cfa)
		return false;
	/* [cfa], [cfa, plus_uconst N], either followed by stack_value for a
	 * value rather than a location. */
	bool value = ops[nops - 1].atom == DW_OP_stack_value;
	size_t n = nops - value;
	if (n == 1)
		*off = 0;
	else if (n == 2 && ops[1].atom == DW_OP_plus_uconst)
		*off = (int32_t)(int64_t)ops[1].number;
	else
		return false;
	*rule = value ? REG_VAL_CFA : REG_AT_CFA;
	return true;
}

static void make_rule(Dwarf_Frame *fr, struct unw_rule *r)
{
	Dwarf_Op *ops;
	size_t nops;
	bool signal = false;

	r->kind = RULE_COMPLEX;
	if (dwarf_frame_info(fr, NULL, NULL, &signal) != REG_RIP || signal)
		return;
	if (dwarf_frame_cfa(fr, &ops, &nops) || nops != 1)
		return;
	/* libdw gives a register + offset CFA as DW_OP_bregx (reg, off). */
	uint64_t reg =
		ops[0].atom == DW_OP_bregx ? ops[0].number : (uint64_t)(ops[0].atom - DW_OP_breg0);
	int64_t off = (int64_t)(ops[0].atom == DW_OP_bregx ? ops[0].number2 : ops[0].number);
	if (ops[0].atom != DW_OP_bregx && (ops[0].atom < DW_OP_breg0 || ops[0].atom > DW_OP_breg31))
		return;
	if (reg != REG_RSP && reg != REG_RBP)
		return;
	r->cfa_reg = (uint8_t)reg;
	r->cfa_off = (int32_t)off;
	/* The caller's rsp is the CFA unless the CFI says otherwise. */
	uint8_t sp_rule;
	int32_t sp_off;
	if (!simple_reg(fr, REG_RSP, &sp_rule, &sp_off) ||
	    !(sp_rule == REG_SAME || (sp_rule == REG_VAL_CFA && sp_off == 0)))
		return;
	if (!simple_reg(fr, REG_RIP, &r->ra, &r->ra_off) ||
	    (r->ra != REG_AT_CFA && r->ra != REG_UNDEFINED))
		return;
	if (!simple_reg(fr, REG_RBP, &r->bp, &r->bp_off) || r->bp == REG_VAL_CFA)
		return;
	r->kind = RULE_SIMPLE;
}

/* Evaluates a DWARF expression over the frame's registers and the stack
 * copy. cfa is pushed by DW_OP_call_frame_cfa. Returns false for what it
 * cannot evaluate (other registers, memory outside the copy). */
static bool eval_ops(const Dwarf_Op *ops, size_t nops, const struct unw_regs *r, uint64_t cfa,
		     const struct sym_stack_copy *c, uint64_t *out, bool *is_value)
{
	uint64_t st[EVAL_STACK];
	size_t sp = 0;

	*is_value = false;
	for (size_t i = 0; i < nops; i++) {
		uint8_t a = ops[i].atom;
		uint64_t v;

		if (sp >= EVAL_STACK)
			return false;
		if (a >= DW_OP_lit0 && a <= DW_OP_lit31) {
			st[sp++] = a - DW_OP_lit0;
			continue;
		}
		if ((a >= DW_OP_breg0 && a <= DW_OP_breg31) || a == DW_OP_bregx) {
			int reg = a == DW_OP_bregx ? (int)ops[i].number : a - DW_OP_breg0;
			int64_t off = (int64_t)(a == DW_OP_bregx ? ops[i].number2 : ops[i].number);
			if (reg == REG_RSP)
				v = r->sp;
			else if (reg == REG_RBP && r->bp_ok)
				v = r->bp;
			else if (reg == REG_RIP)
				v = r->ip;
			else
				return false;
			st[sp++] = v + (uint64_t)off;
			continue;
		}
		switch (a) {
		case DW_OP_call_frame_cfa:
			st[sp++] = cfa;
			break;
		case DW_OP_const1u:
		case DW_OP_const1s:
		case DW_OP_const2u:
		case DW_OP_const2s:
		case DW_OP_const4u:
		case DW_OP_const4s:
		case DW_OP_const8u:
		case DW_OP_const8s:
		case DW_OP_constu:
		case DW_OP_consts:
			st[sp++] = ops[i].number;
			break;
		case DW_OP_plus_uconst:
			if (!sp)
				return false;
			st[sp - 1] += ops[i].number;
			break;
		case DW_OP_deref:
			if (!sp || !read_word(c, st[sp - 1], &st[sp - 1]))
				return false;
			break;
		case DW_OP_plus:
		case DW_OP_minus:
		case DW_OP_and:
		case DW_OP_shl:
		case DW_OP_ge:
		case DW_OP_gt:
		case DW_OP_lt:
		case DW_OP_le:
			if (sp < 2)
				return false;
			v = st[--sp];
			if (a == DW_OP_plus)
				st[sp - 1] += v;
			else if (a == DW_OP_minus)
				st[sp - 1] -= v;
			else if (a == DW_OP_and)
				st[sp - 1] &= v;
			else if (a == DW_OP_shl)
				st[sp - 1] <<= (v & 63);
			else if (a == DW_OP_ge)
				st[sp - 1] = (int64_t)st[sp - 1] >= (int64_t)v;
			else if (a == DW_OP_gt)
				st[sp - 1] = (int64_t)st[sp - 1] > (int64_t)v;
			else if (a == DW_OP_lt)
				st[sp - 1] = (int64_t)st[sp - 1] < (int64_t)v;
			else
				st[sp - 1] = (int64_t)st[sp - 1] <= (int64_t)v;
			break;
		case DW_OP_stack_value:
			*is_value = true;
			break;
		default:
			return false;
		}
	}
	if (!sp)
		return false;
	*out = st[sp - 1];
	return true;
}

/* A register of the caller from its rule: *ok false when undefined. */
static bool eval_reg(Dwarf_Frame *fr, int regno, const struct unw_regs *r, uint64_t cfa,
		     const struct sym_stack_copy *c, uint64_t same, bool same_ok, uint64_t *out,
		     bool *ok)
{
	Dwarf_Op mem[3], *ops;
	size_t nops;
	bool is_value;
	uint64_t v;

	if (dwarf_frame_register(fr, regno, mem, &ops, &nops))
		return false;
	if (nops == 0) {
		*ok = !ops && same_ok;
		*out = same;
		return true;
	}
	if (!eval_ops(ops, nops, r, cfa, c, &v, &is_value))
		return false;
	if (!is_value && !read_word(c, v, &v))
		return false;
	*out = v;
	*ok = true;
	return true;
}

enum step_result {
	STEP_OK,
	STEP_END,      /* the outermost frame: the return address is undefined */
	STEP_WINDOW,   /* the caller's frame lies above the copied window */
	STEP_BAD_REGS, /* a rule needs a register or memory not at hand */
	STEP_NO_CFI,   /* no CFI, and no frame pointer to follow */
};

/* One step with a complex rule, straight from libdw. */
static enum step_result step_complex(Dwarf_Frame *fr, struct unw_regs *r,
				     const struct sym_stack_copy *c)
{
	Dwarf_Op *ops;
	size_t nops;
	bool is_value, ok, signal = false;
	uint64_t cfa, ra, sp, bp;

	dwarf_frame_info(fr, NULL, NULL, &signal);
	if (dwarf_frame_cfa(fr, &ops, &nops) || !nops ||
	    !eval_ops(ops, nops, r, 0, c, &cfa, &is_value))
		return STEP_BAD_REGS;
	if (!eval_reg(fr, REG_RIP, r, cfa, c, 0, false, &ra, &ok))
		return STEP_WINDOW;
	if (!ok)
		return STEP_END;
	if (!eval_reg(fr, REG_RSP, r, cfa, c, cfa, true, &sp, &ok) || !ok)
		return STEP_BAD_REGS;
	if (!eval_reg(fr, REG_RBP, r, cfa, c, r->bp, r->bp_ok, &bp, &r->bp_ok))
		r->bp_ok = false;
	r->ip = ra;
	r->sp = sp;
	r->bp = bp;
	r->exact = signal;
	r->cfa_sp = false; /* not used for the leaf's caller: be safe */
	return STEP_OK;
}

static enum step_result step_simple(const struct unw_rule *rule, struct unw_regs *r,
				    const struct sym_stack_copy *c)
{
	uint64_t base, cfa, ra, bp = r->bp;

	if (rule->cfa_reg == REG_RBP) {
		if (!r->bp_ok)
			return STEP_BAD_REGS;
		base = r->bp;
	} else {
		base = r->sp;
	}
	cfa = base + (uint64_t)(int64_t)rule->cfa_off;
	r->cfa_sp = rule->cfa_reg == REG_RSP;
	if (rule->ra == REG_UNDEFINED)
		return STEP_END;
	if (!read_word(c, cfa + (uint64_t)(int64_t)rule->ra_off, &ra))
		return STEP_WINDOW;
	if (rule->bp == REG_AT_CFA) {
		if (!read_word(c, cfa + (uint64_t)(int64_t)rule->bp_off, &bp))
			return STEP_WINDOW;
		r->bp_ok = true;
	} else if (rule->bp == REG_UNDEFINED) {
		r->bp_ok = false;
	}
	r->ip = ra;
	r->sp = cfa;
	r->bp = bp;
	r->exact = false;
	return STEP_OK;
}

/* Code without CFI: the frame pointer chain, as the kernel walks it. */
static enum step_result step_fp(struct unw_regs *r, const struct sym_stack_copy *c)
{
	uint64_t ra, bp;

	if (!r->bp_ok || r->bp < r->sp)
		return STEP_NO_CFI;
	if (!read_word(c, r->bp + 8, &ra) || !read_word(c, r->bp, &bp))
		return STEP_WINDOW;
	r->sp = r->bp + 16;
	r->ip = ra;
	r->bp = bp;
	r->exact = false;
	r->cfa_sp = false;
	return STEP_OK;
}

struct pc_place {
	const struct module *mod;
	struct sym_mapping map;
};

/* Where pc is mapped in tgid, from the published mappings (lock-free). */
static bool find_place(struct sym_unwinder *u, uint32_t tgid, uint64_t pc, struct pc_place *pl)
{
	struct symbolizer *sym = u->rd->sym;
	bool found = false;

	sym_epoch__read_begin(u->rd->epoch_rec);
	const struct sym_maps_snap *snap = process_table__lookup(&sym->procs, tgid);
	const struct sym_mapping *m = sym_maps_snap__find(snap, pc);
	if (m) {
		pl->map = *m;
		pl->mod = m->mod;
		found = true;
	}
	sym_epoch__read_end(&sym->epoch, u->rd->epoch_rec);
	return found;
}

/* The module and ELF address of pc in tgid, for a CFI lookup; NULL when pc
 * is in no file (anonymous or JIT code) or the file has no CFI. */
static struct unw_module *cfi_place(struct sym_unwinder *u, uint32_t tgid, uint64_t pc,
				    uint64_t *vaddr)
{
	struct pc_place pl;

	if (!find_place(u, tgid, pc, &pl) || pl.mod == u->rd->sym->anon_mod ||
	    (pl.mod->kind != MOD_FILE && pl.mod->kind != MOD_VDSO))
		return NULL;
	struct unw_module *um = module_cfi(u, pl.mod, tgid, &pl.map);
	if (!um || !um->cfi || !elf_addr(um, pc - pl.map.start + pl.map.pgoff, vaddr))
		return NULL;
	return um;
}

/* The rule at vaddr of um, from the cache or libdw. For a RULE_COMPLEX
 * rule *fr is set to libdw's frame (the caller frees it). */
static struct unw_rule rule_at(struct sym_unwinder *u, struct unw_module *um, uint64_t vaddr,
			       Dwarf_Frame **fr)
{
	uint64_t h = (vaddr ^ ((uintptr_t)um >> 6)) * 0x9E3779B97F4A7C15ull;
	struct unw_rule *slot = &u->rules[(h >> 40) % UNW_RULES];

	*fr = NULL;
	if (slot->um == um && slot->vaddr == vaddr &&
	    (slot->kind == RULE_SIMPLE || slot->kind == RULE_NO_CFI)) {
		count(u, SYM_UNWIND_RULE_HITS, 1);
		return *slot;
	}
	count(u, SYM_UNWIND_RULE_MISSES, 1);
	if (dwarf_cfi_addrframe(um->cfi, vaddr, fr) || !*fr) {
		*fr = NULL;
		*slot = (struct unw_rule){.um = um, .vaddr = vaddr, .kind = RULE_NO_CFI};
		return *slot;
	}
	struct unw_rule fresh = {.um = um, .vaddr = vaddr};
	make_rule(*fr, &fresh);
	*slot = fresh;
	if (fresh.kind != RULE_COMPLEX) {
		free(*fr);
		*fr = NULL;
	}
	return fresh;
}

/* One step from r to its caller. */
static enum step_result step(struct sym_unwinder *u, uint32_t tgid, struct unw_regs *r,
			     const struct sym_stack_copy *c)
{
	uint64_t pc = r->exact ? r->ip : r->ip - 1, vaddr;
	struct unw_module *um = cfi_place(u, tgid, pc, &vaddr);
	Dwarf_Frame *fr;
	enum step_result res;

	if (!um) {
		count(u, SYM_UNWIND_FP_STEPS, 1);
		return step_fp(r, c);
	}
	struct unw_rule rule = rule_at(u, um, vaddr, &fr);
	if (rule.kind == RULE_SIMPLE) {
		res = step_simple(&rule, r, c);
	} else if (fr) {
		res = step_complex(fr, r, c);
	} else {
		count(u, SYM_UNWIND_FP_STEPS, 1);
		res = step_fp(r, c);
	}
	free(fr);
	return res;
}

int sym_unwinder__rule(struct sym_unwinder *u, uint32_t tgid, uint64_t pc, bool exact,
		       struct sym_cfa_rule *out)
{
	uint64_t vaddr;
	Dwarf_Frame *fr;
	struct unw_module *um = cfi_place(u, tgid, exact ? pc : pc - 1, &vaddr);

	if (!um)
		return -ENOENT;
	struct unw_rule rule = rule_at(u, um, vaddr, &fr);
	free(fr);
	if (rule.kind == RULE_NO_CFI)
		return -ENOENT;
	/* The BPF walk keeps rip, rsp and rbp only, as the copy's unwinder. */
	if (rule.kind != RULE_SIMPLE || rule.bp == REG_UNDEFINED ||
	    (rule.ra != REG_AT_CFA && rule.ra != REG_UNDEFINED))
		return -ENOTSUP;
	*out = (struct sym_cfa_rule){
		.cfa_on_bp = rule.cfa_reg == REG_RBP,
		.cfa_off = rule.cfa_off,
		.outermost = rule.ra == REG_UNDEFINED,
		.ra_off = rule.ra_off,
		.bp_saved = rule.bp == REG_AT_CFA,
		.bp_off = rule.bp_off,
	};
	return 0;
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

double sym_unwind_hist_upper(unsigned b)
{
	unsigned p = b / SYM_UNWIND_HIST_SUB, s = b % SYM_UNWIND_HIST_SUB;
	/* (1 + (s + 1) / SUB) * 2^p; p < 32 */
	return (double)((uint64_t)(SYM_UNWIND_HIST_SUB + s + 1) << p) / SYM_UNWIND_HIST_SUB;
}

static unsigned hist_bucket(uint64_t ns)
{
	if (ns < 1)
		return 0;
	unsigned p = 63 - (unsigned)__builtin_clzll(ns);
	unsigned s = p >= 2 ? (unsigned)((ns >> (p - 2)) & 3) : (unsigned)((ns << (2 - p)) & 3);
	unsigned b = p * SYM_UNWIND_HIST_SUB + s;
	return b < SYM_UNWIND_HIST_N ? b : SYM_UNWIND_HIST_N - 1;
}

void sym_unwinder__hist(const struct sym_unwinder *u, uint64_t out[SYM_UNWIND_HIST_N])
{
	for (unsigned i = 0; i < SYM_UNWIND_HIST_N; i++)
		out[i] = u ? atomic_load_explicit(&u->hist[i], memory_order_relaxed) : 0;
}

static size_t unwind_copy(struct sym_unwinder *u, uint32_t tgid, const struct sym_stack_copy *c,
			  uint64_t *pcs, size_t max, enum sym_unwind_end *end, size_t *used);

size_t sym_unwinder__unwind(struct sym_unwinder *u, uint32_t tgid, const struct sym_stack_copy *c,
			    uint64_t *pcs, size_t max, enum sym_unwind_end *end, size_t *used)
{
	uint64_t t0 = now_ns();
	size_t n = unwind_copy(u, tgid, c, pcs, max, end, used);
	uint64_t dt = now_ns() - t0;
	unsigned b = hist_bucket(dt);

	count(u, SYM_UNWIND_NS, dt);
	atomic_store_explicit(&u->hist[b],
			      atomic_load_explicit(&u->hist[b], memory_order_relaxed) + 1,
			      memory_order_relaxed);
	return n;
}

static size_t unwind_copy(struct sym_unwinder *u, uint32_t tgid, const struct sym_stack_copy *c,
			  uint64_t *pcs, size_t max, enum sym_unwind_end *end, size_t *used)
{
	struct unw_regs r = {.ip = c->ip, .sp = c->sp, .bp = c->bp, .bp_ok = true, .exact = true};
	size_t n = 0;

	*end = SYM_UNWIND_COMPLETE;
	*used = 0;
	if (!max || !c->ip)
		return 0;
	/* A process seen for the first time: have its mappings read (the slow
	 * path of the symbolizer) before looking up its pcs lock-free. */
	struct pc_place pl;
	if (!find_place(u, tgid, c->ip, &pl)) {
		const struct sym_frame *f;
		sym_reader__resolve_user(u->rd, tgid, &c->ip, 1, &f);
	}
	pcs[n++] = c->ip;
	while (n < max) {
		uint64_t prev_sp = r.sp;
		enum step_result res = step(u, tgid, &r, c);
		if (res == STEP_END || (res == STEP_OK && !r.ip))
			break;
		if (res == STEP_WINDOW) {
			/* Above a copy cut short by the end of the stack's
			 * mapping there is nothing: the walk is complete. */
			*end = c->short_copy ? SYM_UNWIND_COMPLETE : SYM_UNWIND_WINDOW;
			break;
		}
		if (res == STEP_NO_CFI) {
			*end = SYM_UNWIND_NO_CFI;
			break;
		}
		if (res == STEP_BAD_REGS || r.sp <= prev_sp) {
			/* A caller's frame is always above its callee's: anything
			 * else is a wrong rule or garbage, and would loop. */
			*end = SYM_UNWIND_BAD_REGS;
			break;
		}
		/* Callers name a return address by the call before it (pc - 1).
		 * A signal frame's pcs are exact: the trampoline's own address
		 * (glibc puts a nop before __restore_rt, so pc - 1 is outside
		 * it) and the interrupted instruction. Hand them over + 1. */
		if (r.exact) {
			if (n > 1) /* the leaf's pc is taken as it is */
				pcs[n - 1]++;
			pcs[n++] = r.ip + 1;
		} else {
			pcs[n++] = r.ip;
		}
	}
	if (n == max)
		*end = SYM_UNWIND_MAX_FRAMES;
	/* Every read of the walk was below the last CFA reached. */
	*used = r.sp > c->sp ? (r.sp - c->sp < c->len ? r.sp - c->sp : c->len) : 0;
	count(u, SYM_UNWIND_STACKS, 1);
	count(u, SYM_UNWIND_FRAMES, n);
	if (*end == SYM_UNWIND_WINDOW)
		count(u, SYM_UNWIND_END_WINDOW, 1);
	else if (*end == SYM_UNWIND_NO_CFI)
		count(u, SYM_UNWIND_END_NO_CFI, 1);
	else if (*end == SYM_UNWIND_BAD_REGS)
		count(u, SYM_UNWIND_END_BAD_REGS, 1);
	return n;
}

bool sym_unwinder__leaf_caller(struct sym_unwinder *u, uint32_t tgid,
			       const struct sym_stack_copy *c, uint64_t *caller)
{
	struct unw_regs r = {.ip = c->ip, .sp = c->sp, .bp = c->bp, .bp_ok = true, .exact = true};
	struct pc_place pl;

	if (!c->ip || !find_place(u, tgid, c->ip, &pl))
		return false;
	/* Only a CFI rule with the CFA on rsp says where the return address
	 * is without a frame pointer; a frame-pointer step would give back
	 * what the kernel's walk already has. */
	if (step(u, tgid, &r, c) != STEP_OK || !r.cfa_sp || !r.ip)
		return false;
	/* A return address points into code: a mapped file or the vdso. */
	if (!find_place(u, tgid, r.ip - 1, &pl) ||
	    (pl.mod->kind != MOD_FILE && pl.mod->kind != MOD_VDSO))
		return false;
	count(u, SYM_UNWIND_LEAF_CALLERS, 1);
	*caller = r.ip;
	return true;
}
