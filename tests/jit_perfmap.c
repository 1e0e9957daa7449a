// SPDX-License-Identifier: BSD-2-Clause
/*
 * jit_perfmap: a tiny "JIT" for tests/integration_symbols.sh. It writes a
 * counting loop as machine code into an anonymous executable mapping,
 * publishes it in /tmp/perf-PID.map as a runtime does ("START SIZE name",
 * hex), and runs it for the given time. A profiler must name the samples in
 * that code jit_hot_loop (the name exists nowhere but in the perf map). A
 * second function is appended to the map after a second, as a JIT compiles
 * more code: the profiler must re-read the grown file to name it.
 * x86-64 only. The perf map is removed at exit.
 *
 * Usage: jit_perfmap SECONDS
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

/* mov $0x100000, %ecx; 1: dec %ecx; jnz 1b; ret */
static const unsigned char loop_code[] = {0xb9, 0x00, 0x00, 0x10, 0x00,
					  0xff, 0xc9, 0x75, 0xfc, 0xc3};

typedef void (*jit_fn)(void);

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int publish(const char *path, const void *code, const char *name)
{
	FILE *f = fopen(path, "a");

	if (!f)
		return -1;
	fprintf(f, "%lx %zx %s\n", (unsigned long)(uintptr_t)code, sizeof(loop_code), name);
	return fclose(f);
}

int main(int argc, char **argv)
{
	char path[64], *end;
	double secs = argc == 2 ? strtod(argv[1], &end) : -1, t0;
	unsigned char *mem;
	jit_fn first, second;
	int rc = 1;

	if (argc != 2 || *end || secs <= 0 || secs > 600) {
		fprintf(stderr, "usage: jit_perfmap SECONDS (0..600)\n");
		return 2;
	}
	mem = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED) {
		perror("jit_perfmap: mmap");
		return 1;
	}
	memcpy(mem, loop_code, sizeof(loop_code));
	memcpy(mem + 4096, loop_code, sizeof(loop_code));
	if (mprotect(mem, 8192, PROT_READ | PROT_EXEC)) {
		perror("jit_perfmap: mprotect");
		return 1;
	}
	first = (jit_fn)(void *)mem;
	second = (jit_fn)(void *)(mem + 4096);
	snprintf(path, sizeof(path), "/tmp/perf-%d.map", (int)getpid());
	if (publish(path, mem, "jit_hot_loop")) {
		perror("jit_perfmap: perf map");
		goto out;
	}
	t0 = now_s();
	while (now_s() - t0 < 1.0 && now_s() - t0 < secs)
		first();
	if (publish(path, mem + 4096, "jit_second_fn")) {
		perror("jit_perfmap: perf map");
		goto out;
	}
	while (now_s() - t0 < secs) {
		first();
		second();
	}
	rc = 0;
out:
	unlink(path);
	return rc;
}
