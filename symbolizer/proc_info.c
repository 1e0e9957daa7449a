/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * What a process is, beyond its mappings: its executable (the target of
 * /proc/PID/exe, " (deleted)" stripped) and the id of the container it runs
 * in, found in /proc/PID/cgroup.
 *
 * Container ids: the runtimes name a container's cgroup after its 64-hex id,
 * either as a bare directory (cgroupfs driver: docker "/docker/<id>",
 * kubernetes "/kubepods/<qos>/pod<uid>/<id>") or as a systemd scope
 * (systemd driver: "docker-<id>.scope", "cri-containerd-<id>.scope",
 * "crio-<id>.scope", "libpod-<id>.scope"). The last such component of a path
 * wins (nested containers: the innermost), and the first line with one
 * (cgroup v2 "0::/path", or any v1 hierarchy) gives it. Anything else
 * ("/init.scope", "/user.slice/...", "/system.slice/foo.service", and the
 * runtimes' helper scopes such as "libpod-conmon-<id>.scope") is not a
 * container. Paths are as seen from the agent's cgroup namespace, so the
 * agent must run in the host's.
 *
 * Pure functions over caller-owned storage: no locks, no shared state. The
 * symbolizer reads unlocked and interns the strings under its lock.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "symbolizer_internal.h"

static const char *const scope_prefixes[] = {
	"docker-",
	"cri-containerd-",
	"crio-",
	"libpod-",
};

static bool is_id(const char *s, size_t len)
{
	if (len != SYM_CONTAINER_ID_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	}
	return true;
}

/* Returns the id in one path component, or NULL. */
static const char *component_id(const char *s, size_t len)
{
	static const char scope[] = ".scope";
	const size_t scope_len = sizeof(scope) - 1;

	if (is_id(s, len))
		return s;
	if (len <= scope_len || memcmp(s + len - scope_len, scope, scope_len) != 0)
		return NULL;
	len -= scope_len;
	for (size_t i = 0; i < sizeof(scope_prefixes) / sizeof(scope_prefixes[0]); i++) {
		size_t plen = strlen(scope_prefixes[i]);

		if (len > plen && memcmp(s, scope_prefixes[i], plen) == 0 &&
		    is_id(s + plen, len - plen))
			return s + plen;
	}
	return NULL;
}

/* Returns the id of the last matching component of path[0..len), or NULL. */
static const char *path_id(const char *path, size_t len)
{
	const char *end = path + len, *found = NULL;

	while (path < end) {
		const char *slash = memchr(path, '/', (size_t)(end - path));
		const char *c_end = slash ? slash : end;
		const char *id = component_id(path, (size_t)(c_end - path));

		if (id)
			found = id;
		path = slash ? slash + 1 : end;
	}
	return found;
}

bool proc_info__parse_cgroup(const char *text, size_t len, char *id)
{
	const char *p = text, *end = text + len;

	id[0] = '\0';
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *line_end = nl ? nl : end;
		/* "hierarchy-id:controllers:path"; the path may itself hold ':'. */
		const char *c1 = memchr(p, ':', (size_t)(line_end - p));
		const char *c2 = c1 ? memchr(c1 + 1, ':', (size_t)(line_end - c1 - 1)) : NULL;
		const char *found = c2 ? path_id(c2 + 1, (size_t)(line_end - c2 - 1)) : NULL;

		if (found) {
			memcpy(id, found, SYM_CONTAINER_ID_MAX);
			id[SYM_CONTAINER_ID_MAX] = '\0';
			return true;
		}
		p = nl ? nl + 1 : end;
	}
	return false;
}

/* Returns 0 or -errno; out->has_exe tells whether exe is set. */
static int read_exe(uint32_t tgid, struct proc_info *out)
{
	char path[64];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%u/exe", tgid);
	n = readlink(path, out->exe, sizeof(out->exe));
	if (n < 0)
		return -errno;
	if ((size_t)n >= sizeof(out->exe))
		return -ENAMETOOLONG;
	out->exe[n] = '\0';
	if ((size_t)n > SYM_DELETED_SUFFIX_LEN &&
	    strcmp(out->exe + n - SYM_DELETED_SUFFIX_LEN, SYM_DELETED_SUFFIX) == 0)
		out->exe[n - SYM_DELETED_SUFFIX_LEN] = '\0';
	out->has_exe = true;
	return 0;
}

int proc_info__read(uint32_t tgid, struct proc_info *out)
{
	char path[64], *text = NULL;
	size_t len = 0;
	int exe_err, cg_err;

	out->has_exe = false;
	out->has_container = false;
	out->exe[0] = '\0';
	out->container_id[0] = '\0';
	exe_err = read_exe(tgid, out);
	snprintf(path, sizeof(path), "/proc/%u/cgroup", tgid);
	cg_err = sym_read_file(path, &text, &len);
	if (!cg_err) {
		out->has_container = proc_info__parse_cgroup(text, len, out->container_id);
		free(text);
	}
	if (!exe_err || !cg_err)
		return 0;
	/* Neither readable: gone (ESRCH: exiting while we looked), or another error. */
	return cg_err == -ENOENT || cg_err == -ESRCH ? -ENOENT : cg_err;
}
