/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * exporter: moves bytes to where they go. Knows nothing of profiles or
 * symbols. This version has the local file sink; the OTLP/HTTP client over
 * io_uring joins it here.
 */
#ifndef PIPELINE_EXPORTER_H
#define PIPELINE_EXPORTER_H

#include <stddef.h>

/* Creates dir (one level) if missing and checks that a file can be created
 * in it. Returns 0 or -errno. */
int file_sink__check_dir(const char *dir);

/*
 * Replaces dir/name with data atomically: writes dir/.name.tmp, then renames
 * it over the old file, so a reader never sees a half-written file and a
 * failed write (a full disk) leaves the previous version in place.
 * Returns 0 or -errno.
 */
int file_sink__write(const char *dir, const char *name, const void *data, size_t len);

#endif /* PIPELINE_EXPORTER_H */
