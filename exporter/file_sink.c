// SPDX-License-Identifier: BSD-2-Clause
/*
 * Local file sink: atomic replace through a temporary file and rename(2).
 * Output files are rewritten at every flush with everything collected so
 * far, so the newest complete profile is always on disk, even if the agent
 * is killed without a chance to flush.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "exporter.h"

int file_sink__check_dir(const char *dir)
{
	char probe[PATH_MAX];
	if (mkdir(dir, 0755) && errno != EEXIST)
		return -errno;
	struct stat st;
	if (stat(dir, &st))
		return -errno;
	if (!S_ISDIR(st.st_mode))
		return -ENOTDIR;
	if (snprintf(probe, sizeof(probe), "%s/.pipeline-probe.%d", dir, (int)getpid()) >=
	    (int)sizeof(probe))
		return -ENAMETOOLONG;
	int fd = open(probe, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	close(fd);
	unlink(probe);
	return 0;
}

int file_sink__write(const char *dir, const char *name, const void *data, size_t len)
{
	char tmp[PATH_MAX], dst[PATH_MAX];
	int err = 0;

	if (snprintf(tmp, sizeof(tmp), "%s/.%s.tmp", dir, name) >= (int)sizeof(tmp) ||
	    snprintf(dst, sizeof(dst), "%s/%s", dir, name) >= (int)sizeof(dst))
		return -ENAMETOOLONG;
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	const char *p = data;
	size_t left = len;
	while (left) {
		ssize_t n = write(fd, p, left);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			err = -errno;
			break;
		}
		p += n;
		left -= (size_t)n;
	}
	/* close() can report a deferred write error (NFS, quota). */
	if (close(fd) && !err)
		err = -errno;
	if (!err && rename(tmp, dst))
		err = -errno;
	if (err)
		unlink(tmp);
	return err;
}
