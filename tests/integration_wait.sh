#!/usr/bin/env bash
# BPF integration test (root) of the off-CPU and lock profiles, on
# tests/wait_workload.c: a holder keeps a mutex for known periods while two
# waiters block on it, and a sleeper sleeps in a known function.
#   1. --pid, --profiles cpu,offcpu,lock, every event taken, files and OTLP
#      at once; every record taken in the kernel arrives:
#      - lock: the waits under contend_for_lock -> pthread_mutex_lock add
#        up to the designed delay within 10 %, with the call path whole
#        through the C library; lock.txt lists that path first, with its
#        120 waits;
#      - offcpu: sleep_in_known_function's time off the CPU is its designed
#        sleep within 10 %, hold_lock_asleep's too, with the kernel stack
#        of the sleep (do_nanosleep) and no frame of the BPF program;
#      - wall.svg holds on-CPU and off-CPU time, the latter marked;
#      - pprof (go tool pprof) reads the delay column; the OTLP requests
#        pass otlp-check and carry the off_cpu, contentions and delay types.
#   2. The whole host with a budget of 5 stacks a second per CPU: sampling
#      engages (1 in N > 1), nothing is dropped, the workload's waits still
#      show.
# Under CI=true it must run (root is required), never skip.
set -uo pipefail

bin=${PIPELINE_BINARY_DIR:?}/bin
src=${PIPELINE_SOURCE_DIR:?}
# shellcheck source=tests/bpf_test_lib.sh
. "$(dirname "$0")/bpf_test_lib.sh"
require_root

test_scratch wait
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}

# Sum of the folded lines of FILE that match the awk regex RE, in ms.
folded_ms() {
	awk -v re="$2" '$0 ~ re { n = $NF; sub(/ [0-9]+$/, ""); s += n } END { printf "%.1f\n", s / 1e6 }' "$1"
}
# within GOT WANT PCT: |GOT - WANT| <= PCT % of WANT.
within() { awk -v g="$1" -v w="$2" -v p="$3" 'BEGIN { d = g - w; if (d < 0) d = -d; exit !(d <= w * p / 100) }'; }

# run_workload NAME pid|host PIPELINE-ARG...: starts the workload, then
# pipeline (with --pid of the workload, or over the whole host; outputs in
# $tmp/NAME, stderr in $tmp/NAME.err), lets the workload go once the agent
# is attached, and waits for both (pid: the agent ends when its target does;
# host: it is stopped). The workload's figures are in $tmp/NAME.wl.
run_workload() {
	local name=$1 mode=$2 wl ag target=()
	shift 2
	mkdir -p "$tmp/$name"
	"$bin/wait_workload" >"$tmp/$name.wl" &
	wl=$!
	pids+=("$wl")
	wait_for "$tmp/$name.wl" '^ready' 10 || fail "$name: the workload did not start"
	[ "$mode" = pid ] && target=(--pid "$wl")
	"$bin/pipeline" "${target[@]}" --output "$tmp/$name" --stats-json "$tmp/$name/stats.json" \
		"$@" 2>"$tmp/$name.err" &
	ag=$!
	pids+=("$ag")
	wait_for "$tmp/$name.err" '^pipeline: profiling time off the CPU' 20 ||
		fail "$name: the agent did not start: $(tail -3 "$tmp/$name.err")"
	sleep 0.5 # the tracepoints are attached just before that line
	kill -USR1 "$wl"
	wait "$wl" || fail "$name: the workload failed"
	[ "$mode" = pid ] || kill -INT "$ag"
	wait "$ag" || fail "$name: pipeline exited $?: $(tail -3 "$tmp/$name.err")"
}
figure() { sed -n "s/^$2 //p" "$tmp/$1.wl"; }

echo "== 1. --pid: files and OTLP"
mkdir -p "$tmp/r1"
"$bin/otlp_receiver" --dir "$tmp/r1" --exit-after 120 >"$tmp/r1.out" 2>"$tmp/r1.err" &
pids+=("$!")
wait_for "$tmp/r1.out" '^PORT ' 5 || fail "the receiver did not start"
port=$(sed -n 's/^PORT //p' "$tmp/r1.out")
# Every event taken (no sampling): the waiters' and holder's 100 us polls
# switch thousands of times a second in bursts, past the default budget,
# and this section checks the attribution, not the sampling's variance.
run_workload one pid --profiles cpu,offcpu,lock --wait-max-rate 1000000 \
	--otlp-endpoint "http://127.0.0.1:$port"
d=$tmp/one
cat "$d/lock.txt"
grep -E "off-CPU|futex waits|wait drops|wait BPF" "$tmp/one.err"

# Every switch-out taken came back as a record (threads' last switch-outs,
# as they exit, are not taken), and every futex wait. About one switch-in
# in 500 is not reported by the tracepoint on this kernel; those records are
# sent at the thread's next switch-out (offcpu_unseen, printed for the log).
node -e '
	const w = JSON.parse(require("fs").readFileSync(process.argv[1])).wait;
	console.log("wait counters: " + JSON.stringify(w));
	const missing = w.offcpu_taken - (w.offcpu_sent + w.offcpu_short + w.offcpu_unfinished);
	if (missing !== 0 || w.offcpu_unseen > w.offcpu_taken / 50 || w.offcpu_lost ||
	    w.lock_taken !== w.lock_sent + w.lock_no_wait || w.no_task_state || w.ring_full)
		throw new Error("records missing: " + JSON.stringify(w));
' "$d/stats.json" || fail "one: wait records went missing"
lock_ms=$(folded_ms "$d/lock.folded" ';contend_for_lock;[^ ]*pthread_mutex_lock')
want=$(figure one lock_designed_ms)
echo "lock: contend_for_lock waited $lock_ms ms (designed $want, measured by the workload $(figure one lock_measured_ms))"
within "$lock_ms" "$want" 10 || fail "lock: $lock_ms ms under contend_for_lock, designed $want"
grep -q ';waiter_main;contend_for_lock;' "$d/lock.folded" ||
	fail "lock: the waiters' call path is not whole"
top=$(grep -m1 '^ 1\. ' -A1 "$d/lock.txt")
echo "$top" | grep -q 'pthread_mutex_lock <- contend_for_lock <- waiter_main' ||
	fail "lock.txt: the top path is not the waiters': $top"
echo "$top" | grep -q ' 120 waits, ' || fail "lock.txt: the top path does not have the 120 waits"

for f in sleep_in_known_function:sleep hold_lock_asleep:hold; do
	fn=${f%%:*}
	got=$(folded_ms "$d/offcpu.folded" ";$fn;")
	want=$(figure one "${f##*:}_designed_ms")
	echo "offcpu: $fn off the CPU $got ms (designed $want)"
	within "$got" "$want" 10 || fail "offcpu: $fn $got ms, designed $want"
done
grep ';sleep_in_known_function;' "$d/offcpu.folded" | grep -q 'do_nanosleep_\[k\]' ||
	fail "offcpu: the sleep has no kernel stack"
grep -q 'bpf_prog_\|bpf_trace_run' "$d/offcpu.folded" &&
	fail "offcpu: the BPF program's own frames are in the stacks"
grep -q '\[off-CPU\]' "$d/wall.svg" && grep -q 'fg-offcpu' "$d/wall.svg" ||
	fail "wall.svg has no off-CPU frames"
grep -q 'sleep_in_known_function' "$d/wall.svg" || fail "wall.svg lacks the sleeper"

if command -v go >/dev/null; then
	ms=$(HOME=$tmp GOCACHE=$tmp/gocache GOFLAGS='' go tool pprof -sample_index=delay -top \
		-unit=ms -nodefraction=0 -symbolize=none "$d/lock.pb.gz" 2>/dev/null |
		awk '$NF == "contend_for_lock" { v = $4; sub(/ms$/, "", v); print v; exit }')
	echo "pprof: contend_for_lock cumulative delay $ms ms"
	within "${ms:-0}" "$lock_ms" 2 || fail "pprof: delay of contend_for_lock is '$ms' ms"
elif [ -n "${CI:-}" ]; then
	fail "go is needed under CI to read lock.pb.gz"
fi
ls "$tmp/r1"/*.body >/dev/null 2>&1 || fail "otlp: the receiver got no request"
"$bin/otlp-check" "$tmp/r1"/*.body || fail "otlp: otlp-check found violations"
decode=$src/../shared/reference/decode.sh
if [ -f "$decode" ]; then
	cat "$tmp/r1"/*.body >/dev/null
	found=""
	for body in "$tmp/r1"/*.body; do
		bash "$decode" otlp "$body" >"$body.txt" || fail "otlp: protoc cannot decode $body"
		found="$found $(grep -o '"off_cpu"\|"contentions"\|"delay"\|"context_switch"' "$body.txt" | sort -u | tr '\n' ' ')"
	done
	for want in '"off_cpu"' '"contentions"' '"delay"' '"context_switch"'; do
		echo "$found" | grep -qF -- "$want" || fail "otlp: no request has $want"
	done
elif [ -n "${CI:-}" ]; then
	fail "$decode missing and CI is set"
fi

echo "== 2. the whole host, 5 stacks a second per CPU"
run_workload host host --profiles offcpu,lock --wait-max-rate 5
grep -E "off-CPU|futex waits|wait drops" "$tmp/host.err"
node -e '
	const w = JSON.parse(require("fs").readFileSync(process.argv[1])).wait;
	if (!w || w.ring_full || w.no_ring || w.offcpu_sent === 0 || w.lock_sent === 0)
		throw new Error("host: records missing or dropped: " + JSON.stringify(w));
	if (w.offcpu_taken * 2 > w.switches)
		throw new Error("host: sampling did not engage: " + JSON.stringify(w));
' "$tmp/host/stats.json" || fail "host: wait counters"
grep -q ';contend_for_lock;' "$tmp/host/lock.folded" || fail "host: the workload's lock waits are missing"
grep -q 'pipeline' "$tmp/host/offcpu.folded" && grep -q '^pipeline;' "$tmp/host/offcpu.folded" &&
	fail "host: the agent profiled its own threads"
echo "PASS"
