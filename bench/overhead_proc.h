/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Child processes and /proc readings for `pipeline-bench overhead`: spawn a
 * program (a profiler, the workload server) with its output in files and
 * its own CPU affinity, stop it with a signal and a bounded wait, and read
 * what a process costs from outside it: its CPU time so far (its CPU-time
 * clock: nanoseconds, exited threads included), and the run time of the BPF programs whose file
 * descriptors it holds (fdinfo prog_id, then the kernel's per-program
 * run_time_ns, counted only while kernel.bpf_stats_enabled is on or
 * someone holds a BPF_ENABLE_STATS descriptor).
 *
 * Every wait is bounded. Single-threaded: one caller.
 */
#ifndef PIPELINE_BENCH_OVERHEAD_PROC_H
#define PIPELINE_BENCH_OVERHEAD_PROC_H

#include <limits.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/types.h>

struct ovh_child {
	pid_t pid;	   /* 0: not running */
	uint64_t start_ns; /* CLOCK_MONOTONIC at spawn */
	uint64_t end_ns;   /* ... at reaping */
	int status;	   /* wait status, once reaped */
	bool reaped;
	bool killed;	    /* needed SIGKILL */
	struct rusage ru;   /* of the reaped child */
	char out[PATH_MAX]; /* its stdout */
	char err[PATH_MAX]; /* its stderr */
};

/* Starts argv[0] (a path, or a name looked up in PATH) with stdout and
 * stderr appended to out and err (NULL: /dev/null), stdin from /dev/null,
 * allowed to run on cpus (NULL: every online CPU), in a process group of its
 * own, killed if this process dies. Returns 0 or -errno (exec failures are
 * seen as an early exit with status 127). */
int ovh_child__spawn(struct ovh_child *c, char *const argv[], const cpu_set_t *cpus,
		     const char *out, const char *err);
/* Returns true while the child has not exited (reaps it when it has). */
bool ovh_child__alive(struct ovh_child *c);
/* Sends sig, waits up to timeout_ms for the exit, then SIGKILLs the process
 * group and reaps. Returns 0 if it exited by itself, -ETIMEDOUT if it had to
 * be killed. Accepts a child that is not running. */
int ovh_child__stop(struct ovh_child *c, int sig, unsigned timeout_ms);
/* Returns the child's exit code, or 128 + signal, or -1 if not reaped. */
int ovh_child__exit_code(const struct ovh_child *c);

/* Removes a directory tree (a benchmark's scratch directory); best effort. */
void ovh_tmp__remove(const char *dir);

/* CPU time of process pid so far, every thread including exited ones, in
 * ns (its CPU-time clock, clock_getcpuclockid). Returns 0 or -errno. */
int ovh_proc__cpu_ns(pid_t pid, uint64_t *ns);
/* Number of perf_event file descriptors pid holds, or -errno. */
int ovh_proc__perf_event_fds(pid_t pid);
/* Run time and run count summed over the BPF programs pid holds descriptors
 * of (each program once). Returns the number of programs, or -errno. */
int ovh_proc__bpf_run(pid_t pid, uint64_t *run_ns, uint64_t *run_cnt);

/* Reads an integer sysctl by its /proc/sys path ("kernel/bpf_stats_enabled").
 * Returns 0 or -errno. */
int ovh_sysctl__get(const char *name, long *v);
/* Writes one. Returns 0 or -errno. */
int ovh_sysctl__set(const char *name, long v);

/* Steal time of cpu from /proc/stat (the host ran something else), in
 * seconds, or -1 when unknown. */
double ovh_proc__cpu_steal_s(int cpu);

/* snprintf that says when it truncated (paths, messages). Returns 0, or
 * -ENAMETOOLONG when buf was too small (it then holds what fitted). */
int ovh_fmt(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Reads up to size - 1 bytes of path into buf, NUL-terminated. Returns the
 * length or -errno. */
long ovh_read_file(const char *path, char *buf, size_t size);

#endif /* PIPELINE_BENCH_OVERHEAD_PROC_H */
