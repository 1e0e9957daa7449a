/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * CLOCK_MONOTONIC in nanoseconds: the clock of bpf_ktime_get_ns(), so the
 * times the BPF programs put in records and the agent's own compare.
 */
#ifndef PIPELINE_MONOTONIC_H
#define PIPELINE_MONOTONIC_H

#include <stdint.h>
#include <time.h>

static inline uint64_t monotonic_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

#endif /* PIPELINE_MONOTONIC_H */
