/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Test ELF for tests/symbolizer_test.c, with functions of known names.
 *
 * Built three ways by tests/symbolizer.cmake: a PIE executable, a non-PIE
 * executable (ET_EXEC) and a shared library (SYMTEST_LIB, for dlopen + dlsym);
 * plus a stripped copy of the PIE. The executables print the run-time
 * addresses of their functions on one line, then wait for EOF on stdin, so
 * the test can resolve them while the process lives and after it exits.
 */
#include <stdio.h>
#include <unistd.h>

#define SYMTEST_FN(name, k)                                                                        \
	__attribute__((noinline, used)) int name(int x)                                            \
	{                                                                                          \
		volatile int v = x * (k);                                                          \
		return v + (k);                                                                    \
	}

SYMTEST_FN(symtest_alpha, 3)
SYMTEST_FN(symtest_beta, 5)
SYMTEST_FN(symtest_gamma, 7)

/* An assembly function without .type or .size: a NOTYPE, size-0 symbol,
 * which the symbolizer extends to the next symbol. */
#if defined(__x86_64__) || defined(__aarch64__)
__asm__(".pushsection .text\n"
	".globl symtest_nosize\n"
	".p2align 4\n"
	"symtest_nosize:\n"
	"\tnop\n\tnop\n\tnop\n\tnop\n\tret\n"
	".popsection\n");
#define HAVE_NOSIZE 1
#endif

#ifndef SYMTEST_LIB
#ifdef HAVE_NOSIZE
extern void symtest_nosize(void);
#define NOSIZE_ADDR ((void *)symtest_nosize)
#else
#define NOSIZE_ADDR ((void *)0)
#endif

int main(void)
{
	char c;

	printf("%p %p %p %p\n", (void *)symtest_alpha, (void *)symtest_beta, (void *)symtest_gamma,
	       NOSIZE_ADDR);
	fflush(stdout);
	while (read(0, &c, 1) > 0)
		;
	return symtest_alpha(1) + symtest_beta(2) + symtest_gamma(3) > 0 ? 0 : 1;
}
#endif
