/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The --help text of pipeline-bench's subcommands and of
 * pipeline-bench-server: one option's description, wrapped to the terminal
 * width the usage texts are written for.
 */
#ifndef PIPELINE_BENCH_HELP_WRAP_H
#define PIPELINE_BENCH_HELP_WRAP_H

#include <stdio.h>

/* Prints text from column indent (the cursor is there already), wrapped at
 * word boundaries before column width, and a newline. */
void bench_help__print_wrapped(FILE *f, const char *text, int indent, int width);

#endif /* PIPELINE_BENCH_HELP_WRAP_H */
