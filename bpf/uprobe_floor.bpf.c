// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Not loaded by the agent: `pipeline-bench alloc` attaches these programs,
 * which do nothing, where probes can go on malloc and free, to measure what
 * the uprobe traps alone cost on this kernel (the floor under any
 * allocation profiler).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

SEC("uprobe")
int floor_entry(void *ctx)
{
	return 0;
}

SEC("uretprobe")
int floor_return(void *ctx)
{
	return 0;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
