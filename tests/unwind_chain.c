// SPDX-License-Identifier: BSD-2-Clause
/*
 * The shared library of tests/unwind_workload.c, built like it with
 * -O2 -fomit-frame-pointer: three levels of calls between the program's
 * stage_one and its stage_two callback, none of them with a frame pointer,
 * so a frame-pointer walk cannot cross them and CFI must.
 */
#include <stdint.h>

/* Work after each call keeps it a call (not a jump) and the frame real. */
volatile uint64_t unwind_chain_sink;

__attribute__((noinline)) uint64_t lib_level3(uint64_t (*fn)(uint64_t), uint64_t x)
{
	uint64_t r = fn(x ^ 3);
	unwind_chain_sink += r;
	return r + 3;
}

__attribute__((noinline)) uint64_t lib_level2(uint64_t (*fn)(uint64_t), uint64_t x)
{
	uint64_t r = lib_level3(fn, x ^ 2);
	unwind_chain_sink += r;
	return r + 2;
}

__attribute__((noinline)) uint64_t lib_level1(uint64_t (*fn)(uint64_t), uint64_t x)
{
	uint64_t r = lib_level2(fn, x ^ 1);
	unwind_chain_sink += r;
	return r + 1;
}
