// SPDX-License-Identifier: BSD-2-Clause
/* --clock tick's unseen CPU time (see tick_unseen.h). */
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <unistd.h>

#include "tick_unseen.h"

int tick_unseen__reckon(struct bpf_link *iter)
{
	char buf[256];
	ssize_t n;
	int fd = bpf_iter_create(bpf_link__fd(iter));

	if (fd < 0)
		return -errno;
	/* The program writes nothing: reading to the end runs it over every
	 * thread. A bounded loop all the same (read returns 0 at the end). */
	for (int i = 0; i < 1024; i++) {
		n = read(fd, buf, sizeof(buf));
		if (n <= 0)
			break;
	}
	int err = n < 0 ? -errno : 0;
	close(fd);
	return err;
}

int tick_unseen__drain(int unseen_fd, tick_unseen_fn fn, void *ctx, struct tick_unseen_stats *st)
{
	uint32_t key, next;
	struct cpu_sample_tick_unseen u;

	st->reckonings++;
	/* Entries are deleted as they are read, so the walk restarts from the
	 * first key each time; bounded by the map's size. */
	for (unsigned i = 0; i < CPU_SAMPLE_TICK_UNSEEN; i++) {
		if (bpf_map_get_next_key(unseen_fd, NULL, &next))
			return errno == ENOENT ? 0 : -errno;
		key = next;
		if (bpf_map_lookup_and_delete_elem(unseen_fd, &key, &u)) {
			if (errno == ENOENT)
				continue; /* gone meanwhile */
			return -errno;
		}
		st->ns += u.ns;
		st->threads++;
		fn(ctx, key, &u);
	}
	return 0;
}
