/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Open-loop HTTP/1.1 load generator (the client side of `pipeline-bench
 * overhead`, and `pipeline-bench load` on its own), or closed-loop with
 * opts.closed (see loadgen.c).
 *
 * Requests arrive at a constant rate whatever the server does: request i is
 * due at t0 + i / qps, and its latency runs from that due time to the last
 * byte of its response, so a server that stalls is charged for every request
 * that waited behind the stall (no coordinated omission). A due request goes
 * out on a free keep-alive connection; when none is free it waits, and its
 * latency keeps counting. Latencies go into a log-linear histogram
 * (histogram.h, 0.4 % relative error).
 *
 * The auto_scale probe fails when it achieves under 90 % of its rate, when
 * over 10 % of its sends go out more than 1 ms late (every connection busy:
 * a queue is growing), or when p99 exceeds both 5 ms and 50 x p50.
 *
 * loadgen__run blocks: with auto_scale, for up to 6 probes of probe_s each
 * (plus half that to drain each); then for warmup_s + seconds; then until
 * every request is answered, at most seconds / 4 (within 1-5 s) longer.
 * It creates `threads` threads, each owning connections / threads
 * connections and every threads-th request of the schedule, and joins them
 * before returning. Reentrant: no globals.
 */
#ifndef PIPELINE_BENCH_LOADGEN_H
#define PIPELINE_BENCH_LOADGEN_H

#include <stdbool.h>
#include <stdint.h>

struct histogram;

#define LOADGEN_DEFAULT_QPS	    10000
#define LOADGEN_DEFAULT_SECONDS	    10
#define LOADGEN_DEFAULT_CONNECTIONS 64
#define LOADGEN_LATE_NS		    1000000 /* a send this far behind schedule is "late" */

/* Zero in a field means its default. */
struct loadgen_opts {
	const char *host;	      /* IPv4 address; NULL: 127.0.0.1 */
	unsigned port;		      /* required */
	double qps;		      /* arrival rate; 0: 10000 */
	double seconds;		      /* measured window; 0: 10 */
	unsigned connections;	      /* keep-alive connections; 0: 64 */
	unsigned threads;	      /* sender threads, at most connections; 0: 1 */
	double warmup_s;	      /* the same schedule runs this long first, unrecorded */
	bool auto_scale;	      /* probe first; halve qps while the server cannot keep up */
	bool closed;		      /* closed loop: qps ignored, every connection keeps one
				       * request in flight; latency from each send */
	double probe_s;		      /* length of each auto_scale probe; 0: 1 s */
	struct histogram *latency_ns; /* optional: the measured latencies (ns) are
				       * also added to it (the caller owns it) */
};

struct loadgen_result {
	double qps_target;   /* opts.qps: the rate asked for */
	double qps_achieved; /* completed / (from the window's start to the last
			      * completion, or to its end if later) */
	uint64_t sent, completed, errors;
	uint64_t late; /* sent more than 1 ms after their due time */
	double p50_ms, p90_ms, p99_ms, p999_ms, max_ms; /* from the due time */
	bool scaled_down;
	double scaled_qps; /* the rate the measured run used (== qps_target
			    * unless scaled_down) */
	/* Past the fields above: */
	uint64_t scheduled; /* requests due in the measured window:
			     * completed + errors + timeouts */
	uint64_t timeouts;  /* not answered when the drain ended; each is in the
			     * histogram with its latency so far, a lower bound */
	double mean_ms;
	double seconds;	     /* the measured window */
	double client_cpu_s; /* CPU time of the sender threads over the measured
			      * run, warm-up and drain included (not the probes) */
};

/* Runs the load against o->host:o->port. Prints nothing, except one line on
 * stderr when auto_scale lowers the rate. Returns 0, -EINVAL for options out
 * of range, or -errno when the server cannot be reached (connection
 * refused, ...); errors during the run are counted in r, not returned. */
int loadgen__run(const struct loadgen_opts *o, struct loadgen_result *r);

/* Writes r as one JSON object to path (via path.tmp and rename). Returns 0
 * or -errno. */
int loadgen_result__write_json(const struct loadgen_result *r, const char *path);

/* `pipeline-bench load`: argv[0] is the subcommand name. Returns the process
 * exit code. */
int bench_load__main(int argc, char **argv);

#endif /* PIPELINE_BENCH_LOADGEN_H */
