/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * A ring reader's sleep: it waits on a libbpf ring_buffer's epoll fd and on
 * an eventfd of its own, so a reader that polls with a long timeout (records
 * may wait in the rings up to a second) still stops at once when asked.
 * libbpf's ring_buffer__poll cannot watch an extra fd: its epoll events name
 * ring indices. The rb's epoll fd is itself pollable, so this nests it.
 */
#ifndef PIPELINE_RING_WAIT_H
#define PIPELINE_RING_WAIT_H

struct ring_buffer;

struct ring_wait {
	int epfd;    /* ours: the rb's epoll fd and wake_fd */
	int wake_fd; /* eventfd, written by ring_wait__wake */
};

/* Returns 0 or -errno (both fds then -1). rb must outlive w. */
int ring_wait__init(struct ring_wait *w, struct ring_buffer *rb);
/* After ring_wait__init, failed or not; again is harmless. */
void ring_wait__destroy(struct ring_wait *w);
/* Sleeps until a ring has data, ring_wait__wake is called, or timeout_ms
 * passes. Returns 0 (then consume the rings: they may hold records below
 * their wake-up mark), or -errno other than -EINTR. */
int ring_wait__sleep(struct ring_wait *w, int timeout_ms);
/* Wakes the sleeper (any thread; async-signal-safe). */
void ring_wait__wake(struct ring_wait *w);

#endif /* PIPELINE_RING_WAIT_H */
