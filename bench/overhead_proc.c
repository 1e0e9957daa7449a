// SPDX-License-Identifier: BSD-2-Clause
/*
 * Child processes and /proc readings (see overhead_proc.h). A child runs in
 * its own process group, so that stopping it also stops anything it
 * started; PR_SET_PDEATHSIG makes sure no profiler outlives a benchmark
 * that crashed. Waits poll waitpid(WNOHANG) every 10 ms up to their bound.
 */
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "bench.h"
#include "overhead_proc.h"

#define OVH_MAX_PROGS 256 /* BPF programs looked at per process */

int ovh_fmt(char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, size, fmt, ap);
	va_end(ap);
	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

long ovh_read_file(const char *path, char *buf, size_t size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	size_t len = 0;

	if (fd < 0)
		return -errno;
	while (len + 1 < size) {
		ssize_t n = read(fd, buf + len, size - 1 - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	buf[len] = 0;
	close(fd);
	return (long)len;
}

static void ovh_sleep_ms(unsigned ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

/* In the child, between fork and exec: only async-signal-safe calls. */
static void ovh_child_exec(char *const argv[], const cpu_set_t *cpus, const char *out,
			   const char *err)
{
	cpu_set_t all;
	int in = open("/dev/null", O_RDONLY);
	int o = open(out ? out : "/dev/null", O_WRONLY | O_CREAT | O_APPEND, 0644);
	int e = open(err ? err : "/dev/null", O_WRONLY | O_CREAT | O_APPEND, 0644);
	sigset_t none;

	setpgid(0, 0);
	prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
	if (!cpus) {
		CPU_ZERO(&all);
		for (int i = 0; i < CPU_SETSIZE; i++)
			CPU_SET(i, &all);
		cpus = &all;
	}
	sched_setaffinity(0, sizeof(*cpus), cpus);
	if (in < 0 || o < 0 || e < 0)
		_exit(127);
	dup2(in, 0);
	dup2(o, 1);
	dup2(e, 2);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	signal(SIGPIPE, SIG_DFL);
	execvp(argv[0], argv);
	_exit(127);
}

int ovh_child__spawn(struct ovh_child *c, char *const argv[], const cpu_set_t *cpus,
		     const char *out, const char *err)
{
	pid_t pid;

	memset(c, 0, sizeof(*c));
	if (out)
		snprintf(c->out, sizeof(c->out), "%s", out);
	if (err)
		snprintf(c->err, sizeof(c->err), "%s", err);
	fflush(NULL);
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0)
		ovh_child_exec(argv, cpus, out, err);
	setpgid(pid, pid); /* also here, so a signal to the group cannot race the child */
	c->pid = pid;
	c->start_ns = bench_now_ns();
	return 0;
}

static bool ovh_child_reap(struct ovh_child *c, int flags)
{
	int st;
	pid_t r;

	if (c->reaped || !c->pid)
		return true;
	do
		r = wait4(c->pid, &st, flags, &c->ru);
	while (r < 0 && errno == EINTR);
	if (r == 0)
		return false;
	c->reaped = true;
	c->status = r == c->pid ? st : 0;
	c->end_ns = bench_now_ns();
	return true;
}

bool ovh_child__alive(struct ovh_child *c)
{
	return !ovh_child_reap(c, WNOHANG);
}

int ovh_child__stop(struct ovh_child *c, int sig, unsigned timeout_ms)
{
	if (!c->pid || c->reaped)
		return 0;
	kill(c->pid, sig);
	for (unsigned ms = 0; ms <= timeout_ms; ms += 10) {
		if (ovh_child_reap(c, WNOHANG))
			return 0;
		ovh_sleep_ms(10);
	}
	kill(-c->pid, SIGKILL);
	kill(c->pid, SIGKILL);
	c->killed = true;
	ovh_child_reap(c, 0);
	return -ETIMEDOUT;
}

int ovh_child__exit_code(const struct ovh_child *c)
{
	if (!c->reaped)
		return -1;
	if (WIFEXITED(c->status))
		return WEXITSTATUS(c->status);
	if (WIFSIGNALED(c->status))
		return 128 + WTERMSIG(c->status);
	return -1;
}

int ovh_proc__cpu_ns(pid_t pid, uint64_t *ns)
{
	struct timespec ts;
	clockid_t clk;
	int err = clock_getcpuclockid(pid, &clk);

	if (err)
		return -err;
	if (clock_gettime(clk, &ts))
		return -errno;
	*ns = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
	return 0;
}

int ovh_proc__perf_event_fds(pid_t pid)
{
	char path[64], link[64];
	struct dirent *de;
	int n = 0;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	d = opendir(path);
	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		char p[96];
		ssize_t len;

		if (de->d_name[0] == '.')
			continue;
		snprintf(p, sizeof(p), "%s/%.16s", path, de->d_name);
		len = readlink(p, link, sizeof(link) - 1);
		if (len <= 0)
			continue;
		link[len] = 0;
		n += !strcmp(link, "anon_inode:[perf_event]");
	}
	closedir(d);
	return n;
}

int ovh_proc__bpf_run(pid_t pid, uint64_t *run_ns, uint64_t *run_cnt)
{
	uint32_t ids[OVH_MAX_PROGS];
	unsigned n_ids = 0;
	char path[64], buf[512];
	struct dirent *de;
	DIR *d;

	*run_ns = *run_cnt = 0;
	snprintf(path, sizeof(path), "/proc/%d/fdinfo", (int)pid);
	d = opendir(path);
	if (!d)
		return -errno;
	while ((de = readdir(d)) && n_ids < OVH_MAX_PROGS) {
		char p[96], *id;
		unsigned long v;
		unsigned i;

		if (de->d_name[0] == '.')
			continue;
		snprintf(p, sizeof(p), "%s/%.16s", path, de->d_name);
		if (ovh_read_file(p, buf, sizeof(buf)) <= 0)
			continue;
		id = strstr(buf, "prog_id:");
		if (!id)
			continue;
		v = strtoul(id + 8, NULL, 10);
		for (i = 0; i < n_ids && ids[i] != v; i++)
			;
		if (i == n_ids && v)
			ids[n_ids++] = (uint32_t)v;
	}
	closedir(d);
	for (unsigned i = 0; i < n_ids; i++) {
		struct bpf_prog_info info;
		uint32_t len = sizeof(info);
		int fd = bpf_prog_get_fd_by_id(ids[i]);

		if (fd < 0)
			continue;
		memset(&info, 0, sizeof(info));
		if (!bpf_obj_get_info_by_fd(fd, &info, &len)) {
			*run_ns += info.run_time_ns;
			*run_cnt += info.run_cnt;
		}
		close(fd);
	}
	return (int)n_ids;
}

int ovh_sysctl__get(const char *name, long *v)
{
	char path[128], buf[64];
	long len;

	snprintf(path, sizeof(path), "/proc/sys/%s", name);
	len = ovh_read_file(path, buf, sizeof(buf));
	if (len < 0)
		return (int)len;
	*v = strtol(buf, NULL, 10);
	return 0;
}

int ovh_sysctl__set(const char *name, long v)
{
	char path[128], buf[32];
	int fd, len, err = 0;

	snprintf(path, sizeof(path), "/proc/sys/%s", name);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	len = snprintf(buf, sizeof(buf), "%ld\n", v);
	if (write(fd, buf, (size_t)len) != len)
		err = -errno;
	close(fd);
	return err;
}

double ovh_proc__cpu_steal_s(int cpu)
{
	static char buf[16384];
	char key[16];
	unsigned long long f[8];
	char *p;

	if (ovh_read_file("/proc/stat", buf, sizeof(buf)) <= 0)
		return -1;
	snprintf(key, sizeof(key), "\ncpu%d ", cpu);
	p = strstr(buf, key);
	if (!p || sscanf(p + strlen(key), "%llu %llu %llu %llu %llu %llu %llu %llu", &f[0], &f[1],
			 &f[2], &f[3], &f[4], &f[5], &f[6], &f[7]) != 8)
		return -1;
	return (double)f[7] / (double)sysconf(_SC_CLK_TCK);
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	remove(path);
	return 0;
}

void ovh_tmp__remove(const char *dir)
{
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}
