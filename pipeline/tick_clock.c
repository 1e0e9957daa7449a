// SPDX-License-Identifier: BSD-2-Clause
/* The scheduler tick, as --clock tick needs it (see tick_clock.h). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tick_clock.h"

/* One reading of /proc/timer_list: its "now at N nsecs" and the first
 * "jiffies: N". Returns 0 or -errno. */
static int read_timer_list(uint64_t *now_ns, uint64_t *jiffies)
{
	FILE *f = fopen("/proc/timer_list", "re");
	char line[256];
	bool have_now = false, have_jiffies = false;

	if (!f)
		return -errno;
	while ((!have_now || !have_jiffies) && fgets(line, sizeof(line), f)) {
		if (!have_now && sscanf(line, "now at %" SCNu64 " nsecs", now_ns) == 1)
			have_now = true;
		else if (!have_jiffies && sscanf(line, "jiffies: %" SCNu64, jiffies) == 1)
			have_jiffies = true;
	}
	fclose(f);
	return have_now && have_jiffies ? 0 : -ENODATA;
}

/* HZ: jiffies over 100 ms of the kernel's clock, rounded to a whole rate
 * (a tick landing just inside or outside the window moves it by 10). */
static int measure_hz(unsigned *hz)
{
	uint64_t t0, j0, t1, j1;
	struct timespec nap = {0, 100 * 1000 * 1000};
	int err = read_timer_list(&t0, &j0);

	if (err)
		return err;
	nanosleep(&nap, NULL);
	err = read_timer_list(&t1, &j1);
	if (err)
		return err;
	if (t1 <= t0 || j1 <= j0)
		return -ENODATA;
	double rate = (double)(j1 - j0) * 1e9 / (double)(t1 - t0);
	static const unsigned known[] = {100, 250, 300, 1000};
	unsigned best = 0;
	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		if (!best ||
		    abs((int)known[i] - (int)(rate + 0.5)) < abs((int)best - (int)(rate + 0.5)))
			best = known[i];
	/* Not within 15 % of a kernel's choice: report what was measured. */
	*hz = abs((int)best - (int)(rate + 0.5)) * 100 <= (int)best * 15 ? best
									 : (unsigned)(rate + 0.5);
	return 0;
}

/*
 * The tick's hrtimer function in /proc/kallsyms. Its name moved: Linux up
 * to 6.6 calls it tick_sched_timer, 6.7 and 6.8 tick_nohz_highres_handler
 * (and tick_nohz_handler is then the low-resolution clock-event handler,
 * which no hrtimer runs), 6.9 on tick_nohz_handler. The first found in
 * that order wins. Returns 0, -ENOENT (none), or -EPERM (named, but the
 * addresses are hidden: kptr_restrict), or -errno.
 */
static int find_handler(struct tick_clock *tc)
{
	static const char *const names[] = {"tick_sched_timer", "tick_nohz_highres_handler",
					    "tick_nohz_handler"};
	enum { N = sizeof(names) / sizeof(names[0]) };
	uint64_t found[N] = {0};
	bool seen[N] = {false};
	char line[512], sym[256], type;
	unsigned long long addr;
	FILE *f = fopen("/proc/kallsyms", "re");

	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "%llx %c %255s", &addr, &type, sym) == 3)
			for (int i = 0; i < N; i++)
				if (!seen[i] && !strcmp(sym, names[i])) {
					seen[i] = true;
					found[i] = addr;
				}
	fclose(f);
	for (int i = 0; i < N; i++) {
		if (!seen[i])
			continue;
		if (!found[i])
			return -EPERM;
		tc->handler = found[i];
		tc->handler_name = names[i];
		return 0;
	}
	return -ENOENT;
}

int tick_clock__probe(struct tick_clock *tc, char *why, size_t why_len)
{
	int err;

	memset(tc, 0, sizeof(*tc));
	err = measure_hz(&tc->hz);
	if (err) {
		snprintf(why, why_len, "cannot read the kernel's HZ from /proc/timer_list: %s",
			 strerror(-err));
		return err;
	}
	err = find_handler(tc);
	if (err == -ENOENT)
		snprintf(why, why_len,
			 "no tick hrtimer function (tick_sched_timer, tick_nohz_highres_handler, "
			 "tick_nohz_handler) in /proc/kallsyms");
	else if (err == -EPERM)
		snprintf(why, why_len,
			 "/proc/kallsyms hides the tick function's address (kptr_restrict)");
	else if (err)
		snprintf(why, why_len, "cannot read /proc/kallsyms: %s", strerror(-err));
	return err;
}

unsigned tick_clock__every(unsigned hz, unsigned frequency)
{
	unsigned best = 1;
	double best_diff = -1;

	if (!hz || !frequency)
		return 1;
	for (unsigned n = 1; n <= hz; n++) {
		double diff = (double)hz / n - frequency;

		if (diff < 0)
			diff = -diff;
		if (best_diff < 0 || diff < best_diff) {
			best = n;
			best_diff = diff;
		}
		if ((double)hz / n < frequency)
			break; /* further N only go further away */
	}
	return best;
}

unsigned tick_clock__nohz_full(bool *full, unsigned n)
{
	FILE *f = fopen("/sys/devices/system/cpu/nohz_full", "re");
	char list[4096];
	unsigned count = 0;

	memset(full, 0, n * sizeof(*full));
	if (!f)
		return 0;
	if (!fgets(list, sizeof(list), f)) {
		fclose(f);
		return 0;
	}
	fclose(f);
	/* "(null)" when there are none; else a CPU list such as "2-5,8". */
	for (char *p = list; *p >= '0' && *p <= '9';) {
		char *end;
		unsigned long lo = strtoul(p, &end, 10), hi = lo;

		if (*end == '-')
			hi = strtoul(end + 1, &end, 10);
		for (unsigned long c = lo; c <= hi && c < n; c++)
			if (!full[c]) {
				full[c] = true;
				count++;
			}
		p = *end == ',' ? end + 1 : end;
		if (*end != ',')
			break;
	}
	return count;
}
