// SPDX-License-Identifier: BSD-2-Clause
/*
 * Test subject of tests/symbolizer_dwarf_test.c (built -g -O2 by
 * tests/symbolizer_dwarf.cmake): C++ templates whose members are forced
 * inline. record_site() saves its return address, which is what a stack walk
 * sees in the caller's frame: one call sits inside two inlined template
 * members, one directly in the out-of-line template function. main prints
 * those two addresses and record_site's own, one per line, then waits for
 * its stdin to close so the test can read its mappings.
 *
 * The "@name" comments mark the lines the test expects; it finds them by
 * reading this file, so editing it keeps the test right.
 */
#include <cstdio>

static void *g_ret[2];

extern "C" __attribute__((noinline)) void record_site(int slot) // @record
{
	g_ret[slot] = __builtin_return_address(0); // @record_body
	asm volatile("" ::: "memory");
}

namespace demo
{
template <typename T> struct Acc {
	T k;

	__attribute__((always_inline)) inline T inner(T x)
	{
		record_site(0); // @inner
		return x * k;
	}

	__attribute__((always_inline)) inline T outer(T x)
	{
		return inner(x) + 1; // @outer
	}
};

template <typename T> __attribute__((noinline)) T compute(T x)
{
	Acc<T> a{3};
	T r = a.outer(x); // @compute
	record_site(1);	  // @direct
	return r;
}
} // namespace demo

int main(int argc, char **argv)
{
	volatile long sink = demo::compute<long>(argc);
	char buf[64];

	(void)argv;
	printf("%p\n%p\n%p\n", g_ret[0], g_ret[1], (void *)&record_site);
	fflush(stdout);
	while (fread(buf, 1, sizeof(buf), stdin) > 0) {
	}
	return (int)(sink & 0);
}
