// SPDX-License-Identifier: BSD-2-Clause
/* A test subject run as a child (see addr_child.h). */
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "addr_child.h"

int addr_child__start(struct addr_child *c, const char *path, int min, int max)
{
	int in[2], out[2];
	char line[256];
	FILE *f;

	memset(c, 0, sizeof(*c));
	c->pid = -1;
	c->stdin_fd = -1;
	if (max > ADDR_CHILD_MAX)
		max = ADDR_CHILD_MAX;
	/* Close-on-exec: a second child must not hold the first one's stdin open. */
	if (pipe2(in, O_CLOEXEC))
		return -1;
	if (pipe2(out, O_CLOEXEC)) {
		close(in[0]);
		close(in[1]);
		return -1;
	}
	fflush(NULL);
	c->pid = fork();
	if (c->pid == 0) {
		dup2(in[0], 0);
		dup2(out[1], 1);
		execl(path, path, (char *)NULL);
		_exit(127);
	}
	close(in[0]);
	close(out[1]);
	c->stdin_fd = in[1];
	f = c->pid < 0 ? NULL : fdopen(out[0], "r");
	if (!f) {
		close(out[0]);
		return -1;
	}
	/* Line by line: the child prints its addresses, then blocks on stdin,
	 * so reading past the last line it prints would never return. */
	while (c->n < min && fgets(line, sizeof(line), f)) {
		char *p = line, *end;

		while (c->n < max) {
			uint64_t v = strtoull(p, &end, 16);

			if (end == p)
				break;
			c->addr[c->n++] = v;
			p = end;
		}
	}
	fclose(f);
	if (c->n < min)
		fprintf(stderr, "%s printed %d addresses, want %d\n", path, c->n, min);
	return c->n >= min ? 0 : -1;
}

void addr_child__stop(struct addr_child *c)
{
	int status;

	if (c->stdin_fd >= 0)
		close(c->stdin_fd);
	c->stdin_fd = -1;
	if (c->pid > 0)
		waitpid(c->pid, &status, 0);
	c->pid = -1;
}
