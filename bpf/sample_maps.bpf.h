/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Maps every sampling program declares alike: the per-CPU rings (created
 * and resized by pipeline/sampler.c, which owns them; the other signals'
 * programs get the same map through bpf_map__reuse_fd) and the --pid
 * filter. Included by BPF code only, after vmlinux.h.
 */
#ifndef PIPELINE_BPF_SAMPLE_MAPS_BPF_H
#define PIPELINE_BPF_SAMPLE_MAPS_BPF_H

#include "cpu_sample.h"

struct ring {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024); /* resized by user space before load */
};

/* One ring per CPU, indexed by CPU: CPUs never contend on one ring. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, CPU_SAMPLE_MAX_CPUS); /* resized to the number of CPUs */
	__type(key, __u32);
	__array(values, struct ring);
} rings SEC(".maps");

#ifndef SAMPLE_MAPS_NO_PID_FILTER
/* Thread group ids to sample when the program's filter_pids is set; value
 * unused. (A program that filters otherwise defines SAMPLE_MAPS_NO_PID_FILTER.) */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u8);
} target_pids SEC(".maps");
#endif

#endif /* PIPELINE_BPF_SAMPLE_MAPS_BPF_H */
