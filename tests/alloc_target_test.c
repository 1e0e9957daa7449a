/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Probe placement (pipeline/probe_point.c) on hand-made instruction
 * sequences, and allocator discovery (pipeline/alloc_target.c) on this test
 * process itself: it finds this machine's libc, and every allocator function
 * it probes gets an emulated instruction, past the NULL test for free.
 */
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alloc_target.h"
#include "probe_point.h"
#include "test_helpers.h"

static int choose(const uint8_t *code, size_t len, uint32_t want_off, bool want_emulated)
{
	struct probe_point pp;

	probe_point__choose(code, len, PROBE_REG_ARGS, &pp);
	if (pp.offset != want_off || pp.emulated != want_emulated) {
		fprintf(stderr, "  got +%u emulated=%d (%s), want +%u emulated=%d\n", pp.offset,
			pp.emulated, pp.why, want_off, want_emulated);
		return 1;
	}
	return 0;
}

#define CHOOSE(want_off, want_emulated, ...)                                                       \
	do {                                                                                       \
		const uint8_t c_[] = {__VA_ARGS__};                                                \
		CHECK(choose(c_, sizeof(c_), want_off, want_emulated) == 0);                       \
	} while (0)

/* Only the registers the probe reads matter: free reads rdi alone. */
static int test_live_registers(void)
{
	/* jemalloc 5.3's free: mov %rdi,%rax; mov rip,%rdx; mov %rdi,%rcx;
	 * shr $26,%rax; and $imm,%rcx; and $0xf0,%eax; add %fs:0,%rax; je */
	const uint8_t jefree[] = {0x48, 0x89, 0xf8, 0x48, 0x8b, 0x15, 1,    2,	  3,	4,
				  0x48, 0x89, 0xf9, 0x48, 0xc1, 0xe8, 0x1a, 0x48, 0x81, 0xe1,
				  0,	0,    0,    0xc0, 0x25, 0xf0, 0,    0,	  0,	0x64,
				  0x48, 0x03, 0x04, 0x25, 0,	0,    0,    0,	  0x74, 0x10};
	struct probe_point pp;

	probe_point__choose(jefree, sizeof(jefree), PROBE_REG_RDI, &pp);
	CHECK(pp.emulated);
	CHECK_EQ_U64(pp.offset, 38);
	/* the same code for a probe that reads rdx too: entry */
	probe_point__choose(jefree, sizeof(jefree), PROBE_REG_RDI | PROBE_REG_RDX, &pp);
	CHECK(!pp.emulated && pp.offset == 0);
	return 0;
}

/* Whether the return address is still at [rsp] at the chosen point. */
static int test_stack_intact(void)
{
	const uint8_t cmp_push[] = {0x80, 0x3d, 1, 2, 3, 4, 0, 0x41, 0x54};
	const uint8_t sub_push[] = {0x48, 0x83, 0xec, 0x18, 0x53};
	const uint8_t mov_rsp[] = {0x48, 0x89, 0xec, 0x53}; /* mov %rbp,%rsp; push */
	struct probe_point pp;

	probe_point__choose(cmp_push, sizeof(cmp_push), PROBE_REG_ARGS, &pp);
	CHECK(pp.offset == 7 && pp.stack_intact);
	probe_point__choose(sub_push, sizeof(sub_push), PROBE_REG_ARGS, &pp);
	CHECK(pp.offset == 4 && !pp.stack_intact);
	probe_point__choose(mov_rsp, sizeof(mov_rsp), PROBE_REG_ARGS, &pp);
	CHECK(pp.offset == 3 && !pp.stack_intact);
	return 0;
}

static int test_decoder(void)
{
	CHOOSE(0, true, 0x41, 0x54);					 /* push %r12 */
	CHOOSE(3, true, 0x48, 0x85, 0xff, 0x0f, 0x84, 1, 2, 3, 4, 0x55); /* test; je rel32 */
	CHOOSE(3, true, 0x48, 0x85, 0xff, 0x74, 0x10);			 /* test; je rel8 */
	CHOOSE(7, true, 0x80, 0x3d, 1, 2, 3, 4, 0, 0x41, 0x54);		 /* cmpb $0,rip; push */
	CHOOSE(4, true, 0xf3, 0x0f, 0x1e, 0xfa, 0x55);			 /* endbr64; push */
	CHOOSE(4, true, 0x48, 0x83, 0xec, 0x18, 0x53);			 /* sub $0x18,%rsp; push */
	CHOOSE(3, true, 0x48, 0x89, 0xfb, 0x53);			 /* mov %rdi,%rbx; push */
	CHOOSE(0, false, 0x48, 0x89, 0xc7, 0x55);	/* mov %rax,%rdi: clobbers */
	CHOOSE(0, false, 0x48, 0x8d, 0x7f, 0x10, 0x55); /* lea 16(%rdi),%rdi */
	CHOOSE(0, false, 0x48, 0xf7, 0xe2, 0x55);	/* mul %rdx: clobbers rdx */
	CHOOSE(0, false, 0xc3);				/* ret */
	CHOOSE(0, false, 0x2e, 0x74, 0x10);		/* a prefixed jcc: not emulated */
	CHOOSE(0, false, 0x80, 0xe6, 0x01, 0x55);	/* and $1,%dh: writes rdx */
	CHOOSE(4, true, 0x66, 0xb8, 0x01, 0x00, 0x55);	/* mov $1,%ax (imm16); push */
	CHOOSE(7, true, 0x48, 0xf7, 0xc7, 1, 0, 0, 0, 0x74, 0x10); /* test $imm32,%rdi; je */
	CHOOSE(0, false, 0x0f, 0x0b);				   /* ud2: unknown */
	CHOOSE(0, false, 0x48, 0x85, 0xff);			   /* runs out of bytes */
	return 0;
}

/* This process's own allocator: the file the dynamic linker resolves malloc
 * to (libc, or the sanitizer runtime in an ASan build), and on glibc every
 * function's probe on an instruction the kernel emulates. */
static int test_own_allocator(void)
{
	void *sym = dlsym(RTLD_DEFAULT, "malloc");
	struct alloc_target t;
	Dl_info info;
	char err[512];

	CHECK(alloc_target__find((uint32_t)getpid(), &t, err, sizeof(err)) == 0);
	CHECK(sym && dladdr(sym, &info) && info.dli_fname);
	printf("  malloc resolves to %s; found %s (%s)\n", info.dli_fname, t.path, t.kind);
	struct stat a, b;
	CHECK(stat(t.path, &a) == 0 && stat(info.dli_fname, &b) == 0);
	CHECK(a.st_ino == b.st_ino && a.st_dev == b.st_dev); /* one file, maybe two names */
	CHECK(!t.in_executable);
	CHECK(t.fn[ALLOC_FN_MALLOC].present && t.fn[ALLOC_FN_FREE].present);
	CHECK(access(t.attach_path, R_OK) == 0);
	for (int f = 0; f < ALLOC_FN_COUNT; f++) {
		const struct alloc_fn_site *s = &t.fn[f];

		if (s->skipped)
			printf("  %-15s not probed: %s\n", alloc_fn__name((enum alloc_fn)f),
			       s->skipped);
		if (!s->present)
			continue;
		printf("  %-15s +0x%lx probe %s\n", alloc_fn__name((enum alloc_fn)f),
		       (unsigned long)s->file_offset, s->entry_point.why);
	}
	if (strcmp(t.kind, "glibc"))
		return 0;
	CHECK(t.fn[ALLOC_FN_CALLOC].present && t.fn[ALLOC_FN_REALLOC].present);
	CHECK(t.fn[ALLOC_FN_POSIX_MEMALIGN].present);
	/* glibc 2.36: memalign is aligned_alloc (one function), probed once. */
	CHECK(t.fn[ALLOC_FN_ALIGNED_ALLOC].present);
	CHECK(!t.fn[ALLOC_FN_MEMALIGN].present);
	CHECK_STR(t.fn[ALLOC_FN_MEMALIGN].skipped, "aligned_alloc");
#if defined(__x86_64__)
	/* Every allocator function of this libc starts with, or soon reaches,
	 * an instruction the kernel emulates; free's entry is the NULL test
	 * (single-stepped if probed there). */
	for (int f = 0; f < ALLOC_FN_COUNT; f++)
		CHECK(!t.fn[f].present || t.fn[f].entry_point.emulated);
	CHECK(t.fn[ALLOC_FN_FREE].entry_point.offset > 0);
#endif
	return 0;
}

static int test_no_process(void)
{
	struct alloc_target t;
	char err[512];

	CHECK(alloc_target__find(0x3fffffff, &t, err, sizeof(err)) == -ESRCH);
	CHECK(strstr(err, "/proc/1073741823/maps") != NULL);
	return 0;
}

static const struct test_case cases[] = {
	{"decoder", test_decoder},	     {"live_registers", test_live_registers},
	{"stack_intact", test_stack_intact}, {"own_allocator", test_own_allocator},
	{"no_process", test_no_process},
};

TEST_MAIN(cases)
