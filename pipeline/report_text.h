/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * A growable text for the plain-text reports (leaks.txt, lock.txt), with a
 * sticky error: once an append fails, the others are no-ops and err says
 * why. The text owns buf (malloc'd).
 */
#ifndef PIPELINE_REPORT_TEXT_H
#define PIPELINE_REPORT_TEXT_H

#include <stddef.h>
#include <stdint.h>

#include "symbolizer.h"

struct report_text {
	char *buf;
	size_t len, cap;
	int err; /* 0 or -errno */
};

__attribute__((format(printf, 2, 3))) void report_text__printf(struct report_text *t,
							       const char *fmt, ...);

/* Writes a stack on one line, leaf first: "f <- g <- ...", inlined
 * functions each a frame, at most max_shown functions (then " <- ...");
 * "[no stack]" when n is 0. */
void report_text__stack(struct report_text *t, const struct sym_frame *const *frames, uint32_t n,
			unsigned max_shown);

#endif /* PIPELINE_REPORT_TEXT_H */
