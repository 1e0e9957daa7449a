// SPDX-License-Identifier: BSD-2-Clause
/*
 * proc_storm_nolibc: proc_storm without a C library, for the short-lived
 * process storm of tests/integration_symbols.sh. Started a few hundred times a
 * second on a 2-CPU machine, each process gets about 10 ms of CPU in its
 * 30 ms; glibc's start-up (the dynamic loader, and CPUID, which traps to the
 * hypervisor in a VM) would take 5-10 % of that in functions that are
 * rightly not storm_work(). Without it a process is exec, storm_work(),
 * exit: the samples measure the symbolizer, not start-up costs.
 * x86-64 Linux only; built static, freestanding, with frame pointers.
 *
 * Usage: proc_storm_nolibc MILLISECONDS
 */
#include <stdint.h>

#define SYS_CLOCK_GETTIME 228
#define SYS_EXIT_GROUP	  231
#define CLOCK_MONOTONIC	  1

struct kernel_timespec {
	int64_t tv_sec, tv_nsec;
};

static volatile uint64_t sink;

static long syscall2(long nr, long a, long b)
{
	long ret;

	__asm__ volatile("syscall" : "=a"(ret) : "a"(nr), "D"(a), "S"(b) : "rcx", "r11", "memory");
	return ret;
}

static uint64_t now_ns(void)
{
	struct kernel_timespec ts = {0};

	syscall2(SYS_CLOCK_GETTIME, CLOCK_MONOTONIC, (long)&ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The function every sample must name (the clock syscalls are made from it). */
__attribute__((noinline)) static void storm_work(uint64_t ns)
{
	uint64_t end = now_ns() + ns, x = 1;

	while (now_ns() < end) {
		for (int i = 0; i < 20000; i++)
			x = x * 6364136223846793005u + 1442695040888963407u;
		sink = x;
	}
}

__attribute__((noinline, noreturn)) void storm_main(long argc, char **argv)
{
	uint64_t ms = 0;
	int bad = argc != 2;

	for (const char *p = bad ? "" : argv[1]; *p; p++) {
		if (*p < '0' || *p > '9' || ms > 600000)
			bad = 1;
		ms = ms * 10 + (uint64_t)(*p - '0');
	}
	if (!bad && ms <= 600000)
		storm_work(ms * 1000000u);
	syscall2(SYS_EXIT_GROUP, bad || ms > 600000 ? 2 : 0, 0);
	__builtin_unreachable();
}

/* The process entry: argc at (%rsp), argv after it; a zero frame pointer
 * ends the stack walk here. */
__asm__(".globl _start\n"
	"_start:\n"
	"	xor %ebp, %ebp\n"
	"	mov (%rsp), %rdi\n"
	"	lea 8(%rsp), %rsi\n"
	"	and $-16, %rsp\n"
	"	call storm_main\n"
	"	ud2\n");
