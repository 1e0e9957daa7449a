/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The symbolizer stage's rows kept in their own files, called by
 * tp_sym__run() (throughput_sym.c) with the addresses it found in this
 * process: memory per process sharing libc (throughput_sym_procs.c) and cold
 * loads of a large C++ binary and of libc (throughput_sym_large.c).
 */
#ifndef PIPELINE_BENCH_THROUGHPUT_SYM_H
#define PIPELINE_BENCH_THROUGHPUT_SYM_H

#include <stddef.h>
#include <stdint.h>

#include "report.h"
#include "throughput.h"

/* Forks 1000 children (100 with --quick) and resolves stack (depth frames, in
 * this executable and libc) for each with one symbolizer per repetition.
 * Returns 0 or -errno; every child is reaped whatever happens. */
int tp_sym_procs__run(const struct tp_cfg *cfg, struct bench_report *rep, const uint64_t *stack,
		      size_t depth);

/* Cold first lookups in the generated large C++ binary and, when libc_addr
 * is nonzero, at that libc address of this process. Returns 0 or -errno. */
int tp_sym_large__run(const struct tp_cfg *cfg, struct bench_report *rep, uint64_t libc_addr);

#endif /* PIPELINE_BENCH_THROUGHPUT_SYM_H */
