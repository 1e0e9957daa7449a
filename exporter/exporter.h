/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * exporter: moves bytes to where they go. Knows nothing of profiles or
 * symbols. Two parts:
 *   - the file sink: the output directory check, and a synchronous atomic
 *     file replace (the agent itself writes its files through the loop);
 *   - struct otlp_exporter, the agent's I/O loop: one thread running an
 *     io_uring event loop that owns every socket and file write of the
 *     agent: OTLP/HTTP requests fed through a bounded queue of
 *     already-encoded requests (and their --otlp-file copies), and the
 *     local profile files, fed through a second bounded queue of atomic
 *     replaces. The pipeline never blocks on it: submit() and write_file()
 *     only queue. Without an endpoint it runs for files alone.
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
 * failed write (a full disk) leaves the previous version in place. Blocks
 * the calling thread; otlp_exporter__write_file() does the same on the I/O
 * loop. Returns 0 or -errno.
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
	/* Added with the profile files on the loop (appended): */
	bool local_files;	     /* the caller writes files through write_file(): with it,
				      * url and file_dir may both be NULL (files only) */
	size_t max_file_queue_bytes; /* bound on queued profile file bytes (0: max_queue_bytes) */
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
	uint64_t file_errors;	   /* --otlp-file requests whose file could not be written */
	/* Added with the implementation (appended, so older initializers still compile): */
	uint64_t connects;	   /* connections established (TCP; TLS handshake may follow) */
	uint64_t connect_failures; /* resolve, connect or TLS handshake failures (each retried) */
	uint64_t timeouts;	   /* attempts that hit timeout_ms (each retried) */
	/* Profile files, otlp_exporter__write_file(): */
	uint64_t profile_files_queued;	   /* write_file() calls accepted */
	uint64_t profile_files_written;	   /* renamed into place */
	uint64_t profile_file_errors;	   /* failed (open, write, close or rename), or not done
					    * FILE_DRAIN_NS after shutdown: the previous version kept */
	uint64_t profile_files_dropped;	   /* refused: the file queue was over its bound (-ENOBUFS),
					    * or out of memory */
	uint64_t profile_files_superseded; /* replaced while waiting by a newer write of the same
					    * path (not an error: the newer one is written) */
	uint64_t file_queue_bytes;	   /* profile file bytes waiting or being written now */
	uint64_t file_queue_bytes_max;	   /* high-water mark of file_queue_bytes */
	/* Requests accepted and not yet answered, given up or dropped: queued,
	 * in flight, or waiting for a retry. The flusher holds intervals back
	 * while it is not zero, to batch them (pipeline/flush.c). */
	uint64_t requests_pending;
};

/* Parses and checks opts (URL scheme, host, port), starts the exporter thread
 * ("pl-io"). Returns the exporter, or NULL with errno set after printing what
 * is wrong. */
struct otlp_exporter *otlp_exporter__new(const struct otlp_exporter_opts *opts);

/*
 * Queues one encoded ExportProfilesServiceRequest (uncompressed protobuf).
 * Takes ownership of body (malloc'ed; freed by the exporter) whatever the
 * result. Never blocks. Returns 0, or -ENOSPC when the request alone exceeds
 * the queue bound (dropped and counted), -ESHUTDOWN after shutdown began, or
 * -EINVAL on a loop for local files only (no url, no file_dir).
 */
int otlp_exporter__submit(struct otlp_exporter *ex, void *body, size_t len);

/*
 * Queues an atomic replace of dir/name by data, done on the loop as
 * file_sink__write() does it (dir/.name.tmp opened, written, closed, renamed
 * over dir/name; on failure the tmp file is removed and the previous version
 * kept), with io_uring ops. Profile files have their own queue, written one
 * at a time in the order queued, never behind an HTTP request in flight or
 * in backoff. A write still waiting is replaced by a newer one of the same
 * dir/name (counted as superseded): the last one queued wins. A failure is
 * logged by the loop, naming the file and the error, and counted
 * (profile_file_errors). Takes ownership of data (malloc'ed; freed by the
 * exporter) whatever the result; never blocks beyond queueing. Returns 0,
 * or -ENOBUFS when the queue already holds files and this one would push it
 * over its bound (max_file_queue_bytes; dropped and counted, the caller
 * logs it), -ENOMEM (dropped and counted), -EINVAL (no dir or name, or a
 * name with a '/'), -ENAMETOOLONG, or -ESHUTDOWN after shutdown began.
 */
int otlp_exporter__write_file(struct otlp_exporter *ex, const char *dir, const char *name,
			      void *data, size_t len);

/*
 * Stops taking work and finishes what is queued, then stops the thread.
 * Profile files queued by write_file() are all written (or fail) first,
 * whatever timeout_ms says, bounded only by a fixed 30 s for a disk that
 * hangs (what is left then counts in profile_file_errors); requests are sent
 * until their queue is empty or timeout_ms has passed, and what is left is
 * counted as failed. Idempotent; call it (and free) from one thread, not
 * concurrently with itself. Blocks for at most the longer of timeout_ms and
 * the file writes, plus the I/O teardown (and a getaddrinfo in progress).
 * Read the stats after it to learn whether the last files were written.
 */
void otlp_exporter__shutdown(struct otlp_exporter *ex, unsigned timeout_ms);

/* Shuts down with a zero timeout if needed, then frees. Accepts NULL. */
void otlp_exporter__free(struct otlp_exporter *ex);

/* Copies the counters into *st. Thread-safe. */
void otlp_exporter__stats(const struct otlp_exporter *ex, struct otlp_exporter_stats *st);

/* ---- gzip (public so benchmarks measure what the exporter does) ------- */

/* The level request bodies are compressed at: 1 is about 3x faster than 6
 * for ~6 % more bytes (docs/BENCHMARKS.md). */
#define OTLP_EXPORTER_GZIP_LEVEL 1

/* Compresses in[0..n) into one gzip stream (libdeflate, level 1..12) in a
 * malloc'ed *out the caller frees. Returns 0 or -ENOMEM/-EIO. */
int gzip__compress(const void *in, size_t n, int level, uint8_t **out, size_t *out_len);

#endif /* PIPELINE_EXPORTER_H */
