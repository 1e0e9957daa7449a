/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * exporter: moves bytes to where they go. Knows nothing of profiles or
 * symbols. Two parts:
 *   - the file sink: atomic file replace, called from the flush thread;
 *   - the OTLP/HTTP exporter: one thread running an io_uring event loop that
 *     owns its sockets (and its file writes, with --otlp-file), fed through
 *     a bounded queue of already-encoded requests. The pipeline never
 *     blocks on it: submit() only queues, dropping the oldest request when
 *     the queue's byte bound is hit, and counts the drop.
 */
#ifndef PIPELINE_EXPORTER_H
#define PIPELINE_EXPORTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

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

/* ---- OTLP/HTTP exporter ---------------------------------------------- */

struct otlp_exporter;

struct otlp_exporter_opts {
	/* Full URL of the profiles endpoint, e.g.
	 * "http://127.0.0.1:4318/v1development/profiles" or "https://host:4318/...".
	 * The caller resolves OTEL_EXPORTER_OTLP_(PROFILES_)ENDPOINT into it.
	 * The port defaults to 4318, the path to /v1development/profiles. NULL:
	 * no network, requests only go to file_dir (which must then be set). */
	const char *url;
	const char *const *headers; /* extra "Key: Value" lines, n_headers of them */
	size_t n_headers;
	bool gzip;		     /* Content-Encoding: gzip (default on) */
	unsigned timeout_ms;	     /* per request, connect to response (default 10000) */
	size_t max_queue_bytes;	     /* bound on queued request bytes (default 64 MiB) */
	const char *user_agent;	     /* e.g. "pipeline/0.1.0" */
	const char *ca_file;	     /* https: extra CA bundle, or NULL for the system store */
	bool insecure_skip_verify;   /* https: do not verify the server certificate */
	const char *file_dir;	     /* also write each request to file_dir/NNNNNN.binpb; NULL: off.
				      * Created (one level) if missing; numbering continues after
				      * the highest NNNNNN already there. */
	unsigned backoff_initial_ms; /* first retry delay (default 1000) */
	unsigned backoff_max_ms;     /* cap on retry delay (default 30000) */
};

struct otlp_exporter_stats {
	uint64_t requests_queued;  /* submit() calls accepted */
	uint64_t requests_sent;	   /* answered 2xx */
	uint64_t requests_retried; /* retry attempts (429/502/503/504, closed, connect failed,
				    * TLS handshake failed, timeout) */
	uint64_t requests_failed;  /* given up: non-retryable status, response over 4 MiB, or
				    * left at the shutdown deadline */
	uint64_t requests_dropped; /* oldest dropped because the queue was full (or one alone
				    * over the bound: -ENOSPC) */
	uint64_t partial_success;  /* 2xx with partial_success set (logged, not retried) */
	uint64_t bytes_raw;	   /* request bytes before compression, of requests sent */
	uint64_t bytes_sent;	   /* body bytes on the wire (after compression) */
	uint64_t queue_bytes;	   /* bytes queued now (waiting; not the request in flight) */
	uint64_t queue_bytes_max;  /* high-water mark of queue_bytes */
	uint64_t files_written;	   /* --otlp-file requests written */
	uint64_t file_errors;
	/* Added with the implementation (appended, so older initializers still compile): */
	uint64_t connects;	   /* connections established (TCP; TLS handshake may follow) */
	uint64_t connect_failures; /* resolve, connect or TLS handshake failures (each retried) */
	uint64_t timeouts;	   /* attempts that hit timeout_ms (each retried) */
};

/* Parses and checks opts (URL scheme, host, port), starts the exporter thread.
 * Returns the exporter, or NULL with errno set after printing what is wrong. */
struct otlp_exporter *otlp_exporter__new(const struct otlp_exporter_opts *opts);

/*
 * Queues one encoded ExportProfilesServiceRequest (uncompressed protobuf).
 * Takes ownership of body (malloc'ed; freed by the exporter) whatever the
 * result. Never blocks. Returns 0, or -ENOSPC when the request alone exceeds
 * the queue bound (dropped and counted), or -ESHUTDOWN after shutdown began.
 */
int otlp_exporter__submit(struct otlp_exporter *ex, void *body, size_t len);

/* Sends what is queued until the queue is empty or timeout_ms has passed,
 * then stops the thread; what is left is counted as failed. Idempotent; call
 * it (and free) from one thread, not concurrently with itself. Blocks for at
 * most timeout_ms plus the I/O teardown (and a getaddrinfo in progress). */
void otlp_exporter__shutdown(struct otlp_exporter *ex, unsigned timeout_ms);

/* Shuts down with a zero timeout if needed, then frees. Accepts NULL. */
void otlp_exporter__free(struct otlp_exporter *ex);

/* Copies the counters into *st. Thread-safe. */
void otlp_exporter__stats(const struct otlp_exporter *ex, struct otlp_exporter_stats *st);

#endif /* PIPELINE_EXPORTER_H */
