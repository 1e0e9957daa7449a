/* SPDX-License-Identifier: BSD-2-Clause */
/* The kernel's run-time counters of a BPF object's programs (counted while
 * kernel.bpf_stats_enabled is on, or a bpf_enable_stats fd is held). */
#ifndef PIPELINE_BPF_RUN_STATS_H
#define PIPELINE_BPF_RUN_STATS_H

#include <bpf/libbpf.h>
#include <stdint.h>

/* Sums run time and run count over obj's loaded programs (those not
 * loaded, autoload off, are skipped). Returns 0 or -errno. */
int bpf_run_stats__sum(const struct bpf_object *obj, uint64_t *run_ns, uint64_t *run_cnt);

#endif /* PIPELINE_BPF_RUN_STATS_H */
