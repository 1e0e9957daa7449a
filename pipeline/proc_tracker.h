/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Process tracker: bpf/proc_events.bpf.c tells the symbolizer about every
 * exec (its maps are read at once, while the process lives) and exit (its
 * mappings are kept until its samples are flushed).
 */
#ifndef PIPELINE_PROC_TRACKER_H
#define PIPELINE_PROC_TRACKER_H

#include <stdint.h>
#include <stdio.h>

struct symbolizer;
struct proc_tracker;

struct proc_tracker_stats {
	uint64_t execs, exits; /* seen by the BPF program */
	uint64_t ring_full;    /* events dropped in the kernel: the ring had no room */
	uint64_t handled;      /* events handed to the symbolizer */
	uint64_t execs_handled;
	uint64_t gone; /* execs whose process exited before its maps were read */
	uint64_t exec_lag_ns_sum, exec_lag_ns_max; /* from exec to the start of its maps read */
};

/* Loads and attaches the program and starts the pl-procs thread. Returns the
 * tracker, or NULL with errno set and a message printed. */
struct proc_tracker *proc_tracker__start(struct symbolizer *sym);
/* From now on, deletes each process that execs or exits from the BPF hash
 * map map_fd (keyed by tgid): --unwind auto's copy_tgids. Accepts NULL. */
void proc_tracker__forget_at_exec_exit(struct proc_tracker *pe, int map_fd);
/* Detaches, stops the thread and frees everything. Accepts NULL. */
void proc_tracker__free(struct proc_tracker *pe);
/* Copies the counters into *st. Thread-safe. */
void proc_tracker__stats(struct proc_tracker *pe, struct proc_tracker_stats *st);
/* Prints the counters as one self-stats line. Accepts NULL (prints nothing). */
void proc_tracker__print(struct proc_tracker *pe, FILE *f);

#endif /* PIPELINE_PROC_TRACKER_H */
