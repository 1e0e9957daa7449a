// SPDX-License-Identifier: BSD-2-Clause
/* Text of the plain-text reports (see report_text.h). */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "report_text.h"

void report_text__printf(struct report_text *t, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (t->err)
		return;
	for (;;) {
		size_t room = t->cap - t->len;

		va_start(ap, fmt);
		n = vsnprintf(t->buf ? t->buf + t->len : NULL, room, fmt, ap);
		va_end(ap);
		if (n < 0) {
			t->err = -EINVAL;
			return;
		}
		if ((size_t)n < room) {
			t->len += (size_t)n;
			return;
		}
		size_t cap = t->cap ? t->cap * 2 : 4096;
		while (cap - t->len <= (size_t)n)
			cap *= 2;
		char *b = realloc(t->buf, cap);
		if (!b) {
			t->err = -ENOMEM;
			return;
		}
		t->buf = b;
		t->cap = cap;
	}
}

static void put_frame_names(struct report_text *t, const struct sym_frame *f, unsigned *shown,
			    unsigned max_shown)
{
	for (uint32_t k = 0; k < f->n_inlined && *shown < max_shown; k++, (*shown)++)
		report_text__printf(t, "%s%s", *shown ? " <- " : "",
				    f->inlined[k].function ? f->inlined[k].function : "?");
	if (*shown >= max_shown)
		return;
	if (f->function)
		report_text__printf(t, "%s%s", *shown ? " <- " : "", f->function);
	else
		report_text__printf(t, "%s[%s+0x%" PRIx64 "]", *shown ? " <- " : "",
				    f->module->name, f->address);
	(*shown)++;
}

void report_text__stack(struct report_text *t, const struct sym_frame *const *frames, uint32_t n,
			unsigned max_shown)
{
	unsigned shown = 0;

	for (uint32_t f = 0; f < n && shown < max_shown; f++)
		put_frame_names(t, frames[f], &shown, max_shown);
	if (!n)
		report_text__printf(t, "[no stack]");
	else if (shown >= max_shown)
		report_text__printf(t, " <- ...");
}
