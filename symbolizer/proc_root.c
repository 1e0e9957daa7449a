/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Files as a process sees them: its root (/proc/PID/root, another mount
 * namespace for a process in a container) and its pid inside its own pid
 * namespace (the NSpid line of /proc/PID/status).
 *
 * Paths under a process's root are resolved with openat2(RESOLVE_IN_ROOT |
 * RESOLVE_NO_MAGICLINKS): ".." and absolute symlinks stop at that root, and
 * no /proc magic link is followed, so a symlink planted inside a container
 * cannot make the agent open a file of the host.
 *
 * Pure functions, no shared state: called unlocked by the symbolizer.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "symbolizer_internal.h"

int proc_root__open(uint32_t tgid, const char *path, bool no_symlinks)
{
	struct open_how how = {
		.flags = O_RDONLY | O_CLOEXEC,
		.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS |
			   (no_symlinks ? RESOLVE_NO_SYMLINKS : 0),
	};
	char root[64];
	int dfd, fd, err;

	snprintf(root, sizeof(root), "/proc/%u/root", tgid);
	dfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return -errno;
	fd = (int)syscall(SYS_openat2, dfd, path, &how, sizeof(how));
	err = fd < 0 ? -errno : 0;
	close(dfd);
	return fd < 0 ? err : fd;
}

bool proc_root__same_mnt_ns(uint32_t tgid)
{
	char path[64];
	struct stat self, other;

	snprintf(path, sizeof(path), "/proc/%u/ns/mnt", tgid);
	if (stat(path, &other) || stat("/proc/self/ns/mnt", &self))
		return false;
	return self.st_dev == other.st_dev && self.st_ino == other.st_ino;
}

bool proc_root__exists(uint32_t tgid)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/%u", tgid);
	return access(path, F_OK) == 0;
}

bool proc_root__parse_nspid(const char *text, size_t len, uint32_t *nspid)
{
	static const char key[] = "\nNSpid:";
	const char *p = text, *end = text + len, *line = NULL;
	uint32_t last = 0;
	bool found = false;

	/* "NSpid:" at the start of a line, the first one included. */
	if (len >= sizeof(key) - 2 && memcmp(text, key + 1, sizeof(key) - 2) == 0)
		line = text + sizeof(key) - 2;
	for (; !line && p + sizeof(key) - 1 <= end; p++) {
		if (memcmp(p, key, sizeof(key) - 1) == 0)
			line = p + sizeof(key) - 1;
	}
	if (!line)
		return false;
	/* The last number of the line: the pid in the innermost namespace. */
	for (p = line;;) {
		const char *digits;
		uint64_t v = 0;

		while (p < end && (*p == ' ' || *p == '\t'))
			p++;
		if (p >= end || *p == '\n')
			break;
		for (digits = p; p < end && *p >= '0' && *p <= '9'; p++) {
			v = v * 10 + (uint64_t)(*p - '0');
			if (v > UINT32_MAX)
				return false;
		}
		if (p == digits)
			return false;
		last = (uint32_t)v;
		found = true;
	}
	if (found)
		*nspid = last;
	return found;
}

int proc_root__nspid(uint32_t tgid, uint32_t *nspid)
{
	char path[64], *buf = NULL;
	size_t len;
	int err;

	snprintf(path, sizeof(path), "/proc/%u/status", tgid);
	err = sym_read_file(path, &buf, &len);
	if (err)
		return err;
	if (!proc_root__parse_nspid(buf, len, nspid))
		*nspid = tgid; /* kernels without NSpid: no pid namespaces to cross */
	free(buf);
	return 0;
}
