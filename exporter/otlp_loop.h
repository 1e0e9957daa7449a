/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The exporter's private state (the agent's I/O loop), shared by its parts:
 * otlp_exporter.c (API, request queue, event loop), otlp_send.c (delivering
 * one request: connection, TLS, HTTP, retries) and loop_files.c (file
 * writes: the atomic-replace steps, --otlp-file copies, the profile file
 * queue). Everything in struct loop belongs to the exporter thread; struct
 * otlp_exporter says which fields its lock guards.
 */
#ifndef PIPELINE_OTLP_LOOP_H
#define PIPELINE_OTLP_LOOP_H

#include <limits.h>
#include <liburing.h>
#include <netdb.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>

#include "exporter.h"
#include "exporter_internal.h"

#define NSEC_PER_MSEC	    1000000ull
#define NSEC_PER_SEC	    1000000000ull
#define RESP_MAX_BODY	    (4u << 20) /* OTLP: a client MUST cap the response it parses */
#define IO_BUF		    16384
#define TLS_CHUNK	    16384 /* plaintext per SSL_write: one TLS record */
#define RING_ENTRIES	    64
#define LOG_INTERVAL_NS	    (60 * NSEC_PER_SEC)
#define WHAT_MAX	    640 /* one log line's detail */
#define TEARDOWN_WAIT_NS    (2 * NSEC_PER_SEC)
#define DEFAULT_TIMEOUT_MS  10000u
#define DEFAULT_QUEUE_BYTES (64u << 20)
#define DEFAULT_BACKOFF_MS  1000u
#define DEFAULT_BACKOFF_MAX 30000u
/* At shutdown, queued profile file writes get this long, whatever the HTTP
 * deadline: a local write takes milliseconds; this only bounds a hung disk. */
#define FILE_DRAIN_NS (30 * NSEC_PER_SEC)

/* user_data of each SQE: kind in the low byte, connection generation above. */
enum ud_kind {
	UD_EVENTFD = 1,
	UD_CONNECT,
	UD_SEND,
	UD_RECV,
	UD_LINK_TIMEOUT,
	UD_FILE,  /* a step of the --otlp-file write */
	UD_PFILE, /* a step of the profile file write */
	UD_CANCEL,
};
#define UD(kind, gen) (((uint64_t)(gen) << 8) | (uint64_t)(kind))

/* One queued request. Fields other than next/body/len are guarded by
 * ex->lock while the request is in the FIFO. */
struct qreq {
	struct qreq *next;
	uint8_t *body; /* uncompressed ExportProfilesServiceRequest, malloc'ed */
	size_t len;
	bool file_done; /* its --otlp-file copy is written (or failed) */
	bool writing;	/* a file write of body is in flight: must not be freed */
	bool dropped;	/* dropped while writing: the loop frees it afterwards */
};

/* One profile file write queued by otlp_exporter__write_file(). In the
 * queue (ex->pf_head), guarded by ex->lock; once taken by the loop, the
 * loop's alone. */
struct pfile {
	struct pfile *next;
	uint8_t *data; /* malloc'ed, owned */
	size_t len;
	char *tmp;   /* dir/.name.tmp, inside path[] */
	char path[]; /* dir/name, then tmp */
};

/*
 * One atomic replace in progress: open tmp (O_CREAT | O_TRUNC), write at
 * increasing offsets until len bytes are in, close, rename over dst; after a
 * failure, close what is open and unlink tmp. One io_uring op in flight at a
 * time, each started from the completion of the one before. The buffers and
 * paths are borrowed and must stay until the op is done.
 */
enum fop_step {
	FOP_IDLE,
	FOP_OPEN,
	FOP_WRITE,
	FOP_CLOSE,
	FOP_RENAME,
	FOP_UNLINK,
};

struct file_op {
	enum fop_step step; /* the op in flight (FOP_IDLE: none) */
	enum ud_kind kind;  /* tag of its completions: UD_FILE or UD_PFILE */
	int fd;
	int err; /* first failure (-errno): the write failed, tmp is being removed */
	const uint8_t *data;
	size_t len, off;
	const char *tmp, *dst;
};

enum phase {
	P_NONE,	     /* no connection */
	P_CONNECT,   /* connect in flight */
	P_HANDSHAKE, /* TLS handshake */
	P_IDLE,	     /* connected, no request on it */
	P_SEND,	     /* sending the request */
	P_RECV,	     /* reading the response */
};

enum fail_kind {
	F_CONNECT,	/* resolve or connect failed */
	F_TLS,		/* TLS handshake failed */
	F_TIMEOUT,	/* timeout_ms passed */
	F_CLOSED,	/* connection closed or reset without a complete response */
	F_BAD_RESPONSE, /* malformed response */
	F_OVERSIZE,	/* response over 4 MiB: not retried */
};

enum log_kind {
	LOG_CONNECT,
	LOG_TLS,
	LOG_TIMEOUT,
	LOG_CLOSED,
	LOG_BAD_RESPONSE,
	LOG_OVERSIZE,
	LOG_RETRY_STATUS,
	LOG_FAIL_STATUS,
	LOG_PARTIAL,
	LOG_RECOVERED,
	LOG_DROPPED,
	LOG_FILE,
	LOG_PROFILE_FILE,
	LOG_INTERNAL,
	LOG_KINDS,
};

/* First event of a kind is logged, then at most one line a minute with the
 * number of events in between. */
struct ratelog {
	uint64_t last_ns;
	uint64_t suppressed;
	long last_key; /* a different key (an HTTP status) is logged at once */
};

/* State of the exporter thread. Nothing here is touched by other threads
 * (new() sets it up before the thread starts, free() after it is joined). */
struct loop {
	struct io_uring ring;
	bool ring_ok;
	bool exiting;
	bool http_stopped; /* the shutdown deadline passed: no more socket work */
	unsigned inflight; /* SQEs whose completion has not been reaped */
	uint64_t efd_val;

	/* --otlp-file: at most one write in flight */
	struct qreq *fw;
	struct file_op fw_op;
	uint64_t file_seq;
	char fw_tmp[PATH_MAX], fw_dst[PATH_MAX];

	/* profile files: at most one write in flight, independent of the above */
	struct pfile *pw;
	struct file_op pw_op;

	/* the request being delivered (popped from the FIFO) */
	struct qreq *cur;
	uint8_t *wire; /* body as sent: gzip'ed or raw */
	size_t wire_len, raw_len;
	bool wire_gzip;
	char *head;
	size_t head_len;
	size_t sent;  /* bytes of head + wire handed to the socket (or to TLS) */
	bool waiting; /* cur waits until next_attempt_ns to start an attempt */
	uint64_t next_attempt_ns;
	uint64_t deadline_ns;  /* of the attempt in progress */
	bool reused;	       /* the attempt runs on a connection that served before */
	bool stale_retry_done; /* the one free retry on a stale keep-alive connection */
	int send_err;	       /* send failed: reading what the server said before */
	unsigned failures;     /* consecutive failed attempts, for the recovery line */
	struct http_resp resp;
	struct backoff backoff;

	/* the connection */
	int fd;
	uint32_t gen; /* bumped at each close: tags the SQEs of one connection */
	enum phase phase;
	bool op_pending; /* a connect, send or recv is in flight (one at a time) */
	bool tls_on;
	struct tls_conn tls;
	struct addrinfo *ai, *ai_next;
	int last_connect_err;
	struct sockaddr_storage addr;
	socklen_t addrlen;
	struct msghdr msg;
	struct iovec iov[2];
	struct __kernel_timespec op_ts;
	uint8_t ibuf[IO_BUF]; /* bytes from the socket */
	uint8_t pbuf[IO_BUF]; /* plaintext out of TLS */
	uint8_t *obuf;	      /* ciphertext to the socket */
	size_t obuf_cap, obuf_len, obuf_off;

	struct ratelog logs[LOG_KINDS];
	uint64_t dropped_logged;
};

struct otlp_exporter {
	/* configuration: immutable once the thread runs */
	bool has_url;
	struct otlp_url url;
	char **headers;
	size_t n_headers;
	char *user_agent;
	char *file_dir;
	bool gzip;
	unsigned timeout_ms;
	size_t max_queue_bytes;
	size_t max_file_bytes; /* bound on the profile file queue */
	unsigned backoff_initial_ms, backoff_max_ms;
	SSL_CTX *ssl_ctx;
	int efd;
	pthread_t thread;
	bool started;
	bool joined; /* shutdown() joined the thread (caller side only) */

	/* Guards both FIFOs, the stop request and the counters. Taken by
	 * submit(), write_file(), stats(), shutdown() and briefly by the loop;
	 * never held across I/O. */
	pthread_mutex_t lock;
	struct qreq *head, *tail;
	struct qreq *file_cursor;	 /* first request whose file is not started */
	struct pfile *pf_head, *pf_tail; /* profile files waiting (not the one in flight) */
	bool stopping;
	uint64_t stop_deadline_ns;  /* for HTTP (and --otlp-file copies) */
	uint64_t files_deadline_ns; /* for profile files: FILE_DRAIN_NS after shutdown() */
	struct otlp_exporter_stats st;
	uint64_t rejected;	  /* of st.requests_dropped: refused by submit(), never queued */
	uint64_t files_only_done; /* requests done with no URL: their file written (or not) */

	struct loop l;
};

static inline uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * NSEC_PER_SEC + (uint64_t)ts.tv_nsec;
}

static inline const char *endpoint(const struct otlp_exporter *ex)
{
	return ex->url.host_header;
}

/* ---- otlp_exporter.c ---- */

/* Frees a request and its body. Accepts NULL. */
void otlp_qreq_free(struct qreq *q);
/* Logs "pipeline: otlp: ..." unless an event of kind k was logged less than
 * a minute ago (then it is counted, and the count shown with the next line). */
__attribute__((format(printf, 3, 4))) void otlp_rlog(struct loop *l, enum log_kind k,
						     const char *fmt, ...);
/* Same, but an event with another key than the last one logged (another
 * HTTP status) is logged at once. */
__attribute__((format(printf, 4, 5))) void otlp_rlogk(struct loop *l, enum log_kind k, long key,
						      const char *fmt, ...);
/* Returns an SQE with room for one more behind it (an op and its linked
 * timeout must be submitted together). */
struct io_uring_sqe *otlp_sqe_get(struct loop *l);
/* Increments one of ex->st under ex->lock. */
void otlp_stat_inc(struct otlp_exporter *ex, uint64_t *field);
/* Wakes the loop (pokes its eventfd). Any thread; never blocks. */
void otlp_wake(struct otlp_exporter *ex);

/* ---- loop_files.c ---- */

/* Starts the atomic replace of dst by data (through tmp); completions
 * tagged kind go to file_op__on_cqe(). */
void file_op__start(struct loop *l, struct file_op *op, enum ud_kind kind, const char *tmp,
		    const char *dst, const uint8_t *data, size_t len);
/* Handles the completion of op's step and starts the next. Returns true when
 * the write is over (op->err: 0 or the first -errno); once the loop is
 * exiting, the remaining steps run synchronously (close; rename if complete,
 * else unlink). */
bool file_op__on_cqe(struct loop *l, struct file_op *op, int res);
/* Starts the next --otlp-file write if none is in flight. */
void otlp_file__progress(struct otlp_exporter *ex);
void otlp_file__on_cqe(struct otlp_exporter *ex, int res);
/* Starts the next profile file write if none is in flight. */
void pfile__progress(struct otlp_exporter *ex);
void pfile__on_cqe(struct otlp_exporter *ex, int res);
/* True when no profile file is queued or being written. */
bool pfile__idle(struct otlp_exporter *ex);
/* At teardown, after the ring is drained (or given up on): counts what was
 * not written as failed and frees it (a write the kernel may still read
 * from is leaked). */
void pfile__teardown(struct otlp_exporter *ex);
/* Frees the queue after the thread is gone. */
void pfile__free_queue(struct otlp_exporter *ex);

/* ---- otlp_send.c ---- */

/* Takes the next request when none is in flight and starts an attempt when
 * one is due. Called by the loop at each turn. */
void otlp_send__progress(struct otlp_exporter *ex);
/* Handles the completion of a socket op (connect, send or recv) of the
 * current connection. */
void otlp_send__on_cqe(struct otlp_exporter *ex, enum ud_kind kind, int res);
/* Closes the connection; no socket op may be in flight. */
void otlp_send__close(struct loop *l);
/* Frees the request in flight. */
void otlp_send__request_done(struct loop *l);

#endif /* PIPELINE_OTLP_LOOP_H */
