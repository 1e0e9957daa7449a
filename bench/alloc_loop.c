/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * pipeline-bench-alloc-loop: the workload of `pipeline-bench alloc`, a tight
 * malloc(64) + free loop on the C library's allocator (built without the
 * agent's jemalloc), driven over stdin/stdout so each measurement starts
 * only once a profiler is attached.
 *
 * Protocol: it prints "ready PID"; then for each line "run MS" it loops for
 * MS milliseconds of wall time and prints "PAIRS NS" (pairs done, ns taken);
 * "quit" or end of input ends it. Bounded: it exits after 600 s without a
 * command, and a run lasts at most 60 s.
 */
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Its own function, so a profile names it. */
__attribute__((noinline)) static uint64_t alloc_loop(uint64_t ms)
{
	uint64_t end = now_ns() + ms * 1000000ull, pairs = 0;

	do {
		for (int k = 0; k < 256; k++) {
			char *volatile p = malloc(64);

			free(p);
		}
		pairs += 256;
	} while (now_ns() < end);
	return pairs;
}

int main(void)
{
	char line[64];

	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("ready %d\n", (int)getpid());
	for (;;) {
		struct pollfd pfd = {.fd = 0, .events = POLLIN};
		unsigned long ms;

		if (poll(&pfd, 1, 600 * 1000) <= 0 || !fgets(line, sizeof(line), stdin))
			return 0;
		if (!strncmp(line, "quit", 4))
			return 0;
		if (sscanf(line, "run %lu", &ms) != 1 || !ms || ms > 60000) {
			fprintf(stderr, "alloc-loop: bad command: %s", line);
			return 2;
		}
		uint64_t t0 = now_ns(), pairs = alloc_loop(ms);
		printf("%llu %llu\n", (unsigned long long)pairs,
		       (unsigned long long)(now_ns() - t0));
	}
}
