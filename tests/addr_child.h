/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * A test subject run as a child: it prints the addresses of its functions
 * (hex) on stdout, then waits for EOF on stdin, so the test can symbolize a
 * live process and end it when done. Used by the symbolizer tests.
 */
#ifndef PIPELINE_TESTS_ADDR_CHILD_H
#define PIPELINE_TESTS_ADDR_CHILD_H

#include <stdint.h>
#include <sys/types.h>

#define ADDR_CHILD_MAX 8

struct addr_child {
	pid_t pid;    /* -1 when not running */
	int stdin_fd; /* closing it ends the child */
	uint64_t addr[ADDR_CHILD_MAX];
	int n; /* addresses read */
};

/* Runs path and reads hex addresses from its output, line by line, until at
 * least min have been read (at most max; the rest stay 0), or EOF. Returns
 * 0 if min were read, else -1 (the child is still reaped by stop). */
int addr_child__start(struct addr_child *c, const char *path, int min, int max);
/* Closes the child's stdin and reaps it. Safe to call twice. */
void addr_child__stop(struct addr_child *c);

#endif /* PIPELINE_TESTS_ADDR_CHILD_H */
