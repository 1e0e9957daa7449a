// SPDX-License-Identifier: BSD-2-Clause
/*
 * A thread in lockstep with a timer, for the tick clock's bias test
 * (tests/integration_tick.sh): `tick_workload RATE DUTY SECONDS [PHASE_US]`
 * wakes RATE times a second on absolute deadlines, at PHASE_US past each
 * multiple of the period on CLOCK_MONOTONIC (clock_nanosleep, so the rhythm
 * does not drift), and spins in lockstep_spin() for DUTY (0-1) of each
 * period, then sleeps to the next deadline. The kernel's ticks fall on
 * multiples of 1/HZ of that clock (tick_init_jiffy_update aligns them), so
 * the phase places the bursts against the ticks. With RATE the kernel's HZ
 * or HZ/2 it runs in step with the scheduler tick, the worst case for a
 * sampler riding that tick. It prints `ready` and waits for SIGUSR1 before
 * it starts (so the profilers are sampling first); at the end it prints its
 * true CPU share (its thread's CPU time over the wall time, in % of one CPU)
 * as `share_pct X`, measured by the kernel's exact runtime accounting, and
 * the wall time of its run as `wall_s X`.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static long long ns_of(const struct timespec *ts)
{
	return ts->tv_sec * 1000000000LL + ts->tv_nsec;
}

static long long now_ns(clockid_t id)
{
	struct timespec ts;
	clock_gettime(id, &ts);
	return ns_of(&ts);
}

static volatile unsigned long sink;

__attribute__((noinline)) static void lockstep_spin(long long until)
{
	while (now_ns(CLOCK_MONOTONIC) < until)
		for (int i = 0; i < 200; i++)
			sink += (unsigned long)i * 2654435761u;
}

int main(int argc, char **argv)
{
	if (argc != 4 && argc != 5) {
		fprintf(stderr, "usage: tick_workload RATE DUTY SECONDS [PHASE_US]\n");
		return 2;
	}
	double rate = atof(argv[1]), duty = atof(argv[2]), secs = atof(argv[3]);
	long long phase = argc == 5 ? atoll(argv[4]) * 1000 : 0;
	if (rate <= 0 || rate > 10000 || duty <= 0 || duty >= 1 || secs <= 0 || secs > 600) {
		fprintf(stderr, "tick_workload: RATE 1-10000, DUTY in (0, 1), SECONDS 1-600\n");
		return 2;
	}
	sigset_t set;
	int sig;
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigprocmask(SIG_BLOCK, &set, NULL);
	printf("ready\n");
	fflush(stdout);
	sigwait(&set, &sig);

	long long period = (long long)(1e9 / rate), busy = (long long)(duty * 1e9 / rate);
	long long start = now_ns(CLOCK_MONOTONIC), cpu0 = now_ns(CLOCK_THREAD_CPUTIME_ID);
	long long end = start + (long long)(secs * 1e9);
	long long next = (start / period + 1) * period + phase % period;
	long long rounds = (long long)(secs * rate) + 1;

	for (long long r = 0; r < rounds && next < end; r++) {
		struct timespec ts = {.tv_sec = next / 1000000000LL,
				      .tv_nsec = next % 1000000000LL};
		while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL))
			;
		lockstep_spin(next + busy);
		next += period;
	}
	long long wall = now_ns(CLOCK_MONOTONIC) - start;
	long long cpu = now_ns(CLOCK_THREAD_CPUTIME_ID) - cpu0;
	printf("share_pct %.2f\nwall_s %.3f\ncpu_s %.3f\n", 100.0 * cpu / wall, wall / 1e9,
	       cpu / 1e9);
	return 0;
}
