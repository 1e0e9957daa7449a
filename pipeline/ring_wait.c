// SPDX-License-Identifier: BSD-2-Clause
/* A ring reader's sleep (see ring_wait.h). */
#include <errno.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <bpf/libbpf.h>

#include "ring_wait.h"

int ring_wait__init(struct ring_wait *w, struct ring_buffer *rb)
{
	struct epoll_event ev = {.events = EPOLLIN};
	int err;

	w->wake_fd = -1;
	w->epfd = epoll_create1(EPOLL_CLOEXEC);
	w->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (w->epfd < 0 || w->wake_fd < 0)
		goto fail;
	ev.data.fd = ring_buffer__epoll_fd(rb);
	if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, ev.data.fd, &ev))
		goto fail;
	ev.data.fd = w->wake_fd;
	if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->wake_fd, &ev))
		goto fail;
	return 0;
fail:
	err = -errno;
	ring_wait__destroy(w);
	return err;
}

void ring_wait__destroy(struct ring_wait *w)
{
	if (w->epfd >= 0)
		close(w->epfd);
	if (w->wake_fd >= 0)
		close(w->wake_fd);
	w->epfd = w->wake_fd = -1;
}

int ring_wait__sleep(struct ring_wait *w, int timeout_ms)
{
	struct epoll_event ev[2];
	int n = epoll_wait(w->epfd, ev, 2, timeout_ms);

	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	for (int i = 0; i < n; i++) {
		uint64_t v;

		/* Drained so the next sleep sleeps; the ring's fd is drained
		 * by consuming its records. */
		if (ev[i].data.fd == w->wake_fd && read(w->wake_fd, &v, sizeof(v)) < 0 &&
		    errno != EAGAIN)
			return -errno;
	}
	return 0;
}

void ring_wait__wake(struct ring_wait *w)
{
	uint64_t one = 1;

	if (w->wake_fd >= 0 && write(w->wake_fd, &one, sizeof(one)) < 0) {
		/* EAGAIN: the counter is saturated, the sleeper wakes anyway. */
	}
}
