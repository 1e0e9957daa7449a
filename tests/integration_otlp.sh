#!/usr/bin/env bash
# BPF + OTLP integration test (root): the agent exporting to a real HTTP
# receiver on 127.0.0.1 (tests/otlp_receiver.c).
#   1. a live run: every request decodes with protoc against the pinned
#      schemas (../shared/reference/decode.sh) and passes otlp-check (the
#      dictionary rules); the workload's functions, resource attributes and
#      OTEL_RESOURCE_ATTRIBUTES / OTEL_SERVICE_NAME are in it; --otlp-file
#      writes the same requests.
#   2. the collector down for the first 20 s of a 30 s run: the intervals
#      that pile up are batched into fewer requests (pipeline/flush.c), every
#      sample arrives exactly once, only the head request is retried, and the
#      queued requests go back to back on one keep-alive connection once the
#      collector answers (exporter/otlp_exporter.c, "Backlog").
#   3. a collector that accepts connections and never answers, and 4. one
#      that refuses them, for 20 s at 10 kHz on stack_spray with a 512 KiB
#      export queue: the agent's peak RSS stays within the RSS it had after
#      its first intervals plus the queue bound, one request in flight and
#      3 MiB; the export queue stays within its bound; every interval is
#      counted in --stats-json as dropped or failed, none sent; the agent
#      exits within --shutdown-timeout.
# Under CI=true it must run (root is required), never skip.
set -uo pipefail

bin=${PIPELINE_BINARY_DIR:?}/bin
src=${PIPELINE_SOURCE_DIR:?}
# shellcheck source=tests/bpf_test_lib.sh
. "$(dirname "$0")/bpf_test_lib.sh"
require_root
decode=$src/../shared/reference/decode.sh
if [ ! -x "$decode" ] && [ ! -f "$decode" ]; then
	[ -n "${CI:-}" ] && { echo "FAIL: $decode missing and CI is set" >&2; exit 1; }
	decode=
fi

test_scratch otlp
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}

# Starts a receiver; sets $port. Arguments go to otlp_receiver.
start_receiver() {
	local dir=$1
	shift
	mkdir -p "$dir"
	"$bin/otlp_receiver" --dir "$dir" --exit-after 120 "$@" >"$dir.out" 2>"$dir.err" &
	pids+=("$!")
	for _ in $(seq 50); do
		port=$(sed -n 's/^PORT //p' "$dir.out")
		[ -n "$port" ] && return 0
		sleep 0.1
	done
	fail "receiver did not start: $(cat "$dir.err")"
}
stat_of() { # err-file field-regex -> number
	sed -n "s/^  OTLP requests .* \([0-9]*\) $2.*/\1/p" "$1" | head -1
}

jget() { # json-file key -> number, from the "otlp" object of --stats-json
	sed -n 's/.*"otlp": {\(.*\)}.*/\1/p' "$1" | grep -o "\"$2\": [0-9]*" | head -1 |
		awk '{ print $2 }'
}

"$bin/workload" --duration 90 --threads 2 >/dev/null &
wl=$!
pids+=("$wl")

echo "== 1. live run to a receiver"
start_receiver "$tmp/r1"
OTEL_RESOURCE_ATTRIBUTES="deployment.environment=ci,team=perf%20eng" OTEL_SERVICE_NAME=ci-svc \
	"$bin/pipeline" --otlp-endpoint "http://127.0.0.1:$port" --interval 2 --duration 7 \
	--output "$tmp/files" --otlp-file 2>"$tmp/err1"
rc=$?
cat "$tmp/err1"
[ "$rc" -eq 0 ] || fail "pipeline exited $rc"
grep -q "LeakSanitizer" "$tmp/err1" && fail "AddressSanitizer reported leaks"
n=$(ls "$tmp/r1"/*.meta 2>/dev/null | wc -l)
sent=$(sed -n 's/^  OTLP requests .*, \([0-9]*\) sent,.*/\1/p' "$tmp/err1")
echo "receiver got $n requests; agent says $sent sent"
[ "$n" -ge 3 ] || fail "receiver got $n requests, want >= 3"
[ "$n" -eq "$sent" ] || fail "receiver got $n requests, the agent says $sent"
grep -q "^header content-encoding: gzip" "$tmp/r1/0001.meta" || fail "request not gzipped"
grep -q "^path /v1development/profiles" "$tmp/r1/0001.meta" || fail "wrong path"
grep -q "^header content-type: application/x-protobuf" "$tmp/r1/0001.meta" || fail "content-type"
"$bin/otlp-check" "$tmp/r1"/*.body || fail "otlp-check found violations"
if [ -n "$decode" ]; then
	for b in "$tmp/r1"/*.body; do
		bash "$decode" otlp "$b" >"$b.txt" || fail "protoc cannot decode $b"
	done
	all=$(cat "$tmp/r1"/*.body.txt)
	for want in '"work_alpha"' '"work_beta"' '"work_gamma"' '"process.executable.name"' \
		'"workload"' '"process.pid"' '"host.name"' '"deployment.environment"' '"perf eng"' \
		'"service.name"' '"ci-svc"' '"profile.frame.type"' '"thread.name"' \
		'"process.executable.build_id.htlhash"' 'timestamps_unix_nano'; do
		grep -qF -- "$want" <<<"$all" || fail "decoded requests lack $want"
	done
fi
nf=$(ls "$tmp/files/otlp"/*.binpb 2>/dev/null | wc -l)
[ "$nf" -eq "$n" ] || fail "--otlp-file wrote $nf files for $n requests"
cmp -s "$tmp/files/otlp/000001.binpb" "$tmp/r1/0001.body" ||
	fail "--otlp-file request differs from what the receiver got"
[ -s "$tmp/files/cpu.pb.gz" ] || fail "--output with an endpoint wrote no local files"

echo "== 2. collector down for the first 20 s of a 30 s run, then up"
# One process (--pid). The first interval's request is retried while the
# collector is down; the intervals behind it are held by the flusher and
# sent batched, up to 6 in one profile and request (pipeline/flush.c). Once
# the collector answers, the queued batches go back to back.
start_receiver "$tmp/r2" --refuse-until 20
"$bin/pipeline" --otlp-endpoint "http://127.0.0.1:$port" --pid "$wl" --interval 1 \
	--duration 30 --shutdown-timeout 30 --stats-json "$tmp/s2.json" 2>"$tmp/err2"
rc=$?
cat "$tmp/err2"
kill "$wl" 2>/dev/null
[ "$rc" -eq 0 ] || fail "pipeline exited $rc"
encoded=$(jget "$tmp/s2.json" encoded)
sent=$(jget "$tmp/s2.json" sent)
retried=$(jget "$tmp/s2.json" retried)
failed=$(jget "$tmp/s2.json" failed)
dropped=$(jget "$tmp/s2.json" dropped)
batched=$(jget "$tmp/s2.json" intervals_batched)
aggregated=$(grep -o '"samples_aggregated": [0-9]*' "$tmp/s2.json" | awk '{ print $2 }')
n=$(ls "$tmp/r2"/*.meta 2>/dev/null | wc -l)
echo "encoded $encoded, sent $sent, retried $retried, failed $failed, dropped $dropped," \
	"intervals batched $batched; receiver got $n"
[ "$retried" -gt 0 ] || fail "nothing was retried while the collector was down"
[ "$n" -eq "$encoded" ] || fail "receiver got $n requests, the agent encoded $encoded"
[ "$sent" -eq "$encoded" ] && [ "$failed" -eq 0 ] && [ "$dropped" -eq 0 ] ||
	fail "sent $sent, failed $failed, dropped $dropped of $encoded"
# Only the head request is retried while the collector is down: backoff from
# 1 s doubling to 30 s fits at most 7 attempts in 20 s; a retry cycle per
# piled-up interval would need some 20.
[ "$retried" -le 8 ] || fail "$retried retries for a 20 s outage: intervals retried one by one"
# The 19 or so intervals of the outage went in batches: fewer requests than
# intervals.
[ "$batched" -ge 12 ] || fail "only $batched intervals batched during a 20 s outage"
[ "$encoded" -le 20 ] || fail "$encoded requests for about 30 intervals: not batched"
# Every sample once: what the receiver got adds up to what the agent
# aggregated, and no two request bodies are alike.
"$bin/otlp-check" "$tmp/r2"/*.body >"$tmp/r2.check" || {
	cat "$tmp/r2.check"
	fail "otlp-check found violations in the batched requests"
}
events=$(sed -n 's/.* events \([0-9]*\),.*/\1/p' "$tmp/r2.check" | awk '{ s += $1 } END { print s }')
echo "receiver: $events samples; agent: $aggregated aggregated"
[ "$events" -eq "$aggregated" ] || fail "receiver got $events samples, the agent aggregated $aggregated"
dups=$(md5sum "$tmp/r2"/*.body | awk '{ print $1 }' | sort | uniq -d | wc -l)
[ "$dups" -eq 0 ] || fail "$dups requests arrived more than once"
if [ -n "$decode" ]; then
	for b in "$tmp/r2"/*.body; do
		bash "$decode" otlp "$b" >/dev/null || fail "protoc cannot decode $b"
	done
fi
# The backlog: once the collector answers, the requests queued behind the
# head follow back to back on its connection, each as soon as the previous
# answer is in (a per-request backoff would space them at least 500 ms apart).
meta() { sed -n "s/^$2 //p" "$tmp/r2/$(printf %04d "$1").meta"; }
t1=$(meta 1 time_ms)
c1=$(meta 1 conn)
burst=1
prev=$t1
for i in $(seq 2 "$n"); do
	t=$(meta "$i" time_ms)
	[ $((t - prev)) -lt 500 ] && [ "$(meta "$i" conn)" = "$c1" ] || break
	burst=$((burst + 1))
	prev=$t
done
echo "backlog: $burst requests back to back in $((prev - t1)) ms on connection $c1"
[ "$burst" -ge 3 ] || fail "only $burst requests went back to back after the outage"

# Memory while the collector never answers (3) or refuses connections (4).
# The agent samples stack_spray at 10 kHz with --max-stacks 4096: each
# interval is a request of about 400 KB (some 8 MB over the run, 16 times the
# 512 KiB queue: an unbounded queue shows as 7 MB more RSS), and the agent's
# working set is reached within its first intervals. VmHWM (the peak RSS) at 4 s is the baseline; at exit
# (and in --stats-json) it may exceed it by the queue bound, one request in
# flight (at most the queue bound: a bigger one is refused) and 3 MiB of
# allocator growth after the baseline (2.3 MiB seen once under ASan, with
# the queue at its bound: 2 MiB was too tight), which still leaves an
# unbounded queue's 7 MB well over the bound.
# Freed memory must leave the RSS: jemalloc (release build) returns it at
# once (MALLOC_CONF), ASan keeps no quarantine, so the RSS measures what the
# agent holds, not what its allocator caches.
queue=524288
mem_run() { # name (the receiver listens on $port)
	local name=$1 rc hwm t base=0 peak=0 polls=0
	"$bin/stack_spray" --duration 30 --threads 2 >/dev/null &
	local spray=$!
	pids+=("$spray")
	local start=$(date +%s%N)
	MALLOC_CONF=dirty_decay_ms:0,muzzy_decay_ms:0 \
		ASAN_OPTIONS="$ASAN_OPTIONS:quarantine_size_mb=0:thread_local_quarantine_size_kb=0" \
		"$bin/pipeline" --otlp-endpoint "http://127.0.0.1:$port" --pid "$spray" \
		--frequency 10000 --interval 1 --duration 20 --max-stacks 4096 \
		--export-queue-bytes "$queue" --shutdown-timeout 2 \
		--stats-json "$tmp/$name.json" 2>"$tmp/$name.err" &
	local agent=$!
	while kill -0 "$agent" 2>/dev/null && [ "$polls" -lt 240 ]; do
		hwm=$(awk '/^VmHWM/ { print $2 }' "/proc/$agent/status" 2>/dev/null)
		t=$((($(date +%s%N) - start) / 1000000))
		if [ -n "$hwm" ]; then
			[ "$t" -le 4000 ] && base=$hwm
			peak=$hwm
		fi
		polls=$((polls + 1))
		sleep 0.25
	done
	kill "$agent" 2>/dev/null
	wait "$agent"
	rc=$?
	local took=$((($(date +%s%N) - start) / 1000000))
	kill "$spray" 2>/dev/null
	cat "$tmp/$name.err"
	[ "$rc" -eq 0 ] || fail "$name: pipeline exited $rc"
	grep -q "LeakSanitizer" "$tmp/$name.err" && fail "$name: AddressSanitizer reported leaks"
	[ "$took" -le 26000 ] || fail "$name: run took $took ms with --duration 20 --shutdown-timeout 2"
	local maxrss=$(sed -n 's/.*"agent_max_rss_kib": \([0-9]*\).*/\1/p' "$tmp/$name.json")
	[ -n "$maxrss" ] && [ "$maxrss" -gt "$peak" ] && peak=$maxrss
	local bound=$((base + 2 * queue / 1024 + 3072))
	local enc=$(jget "$tmp/$name.json" encoded) snt=$(jget "$tmp/$name.json" sent)
	local fld=$(jget "$tmp/$name.json" failed) drp=$(jget "$tmp/$name.json" dropped)
	local qmax=$(jget "$tmp/$name.json" queue_bytes_max)
	echo "$name: RSS baseline $base KiB, peak $peak KiB, bound $bound KiB;" \
		"intervals encoded $enc, sent $snt, dropped $drp, failed at exit $fld;" \
		"queue high-water $qmax bytes (bound $queue); exited after $took ms"
	[ "$base" -gt 0 ] || fail "$name: no RSS sample in the first 4 s"
	[ "$peak" -le "$bound" ] || fail "$name: peak RSS $peak KiB over the bound $bound KiB"
	[ "$qmax" -le "$queue" ] || fail "$name: export queue reached $qmax bytes, bound $queue"
	[ "$enc" -ge 10 ] || fail "$name: only $enc intervals encoded"
	[ "$snt" -eq 0 ] || fail "$name: $snt requests counted as sent"
	[ "$drp" -gt 0 ] || fail "$name: no interval counted as dropped with a full queue"
	[ $((drp + fld)) -eq "$enc" ] ||
		fail "$name: $enc intervals encoded, $drp dropped + $fld failed: some not counted"
}

echo "== 3. a collector that accepts connections and never answers"
start_receiver "$tmp/r3" --hang
mem_run hang
n=$(ls "$tmp/r3"/*.meta 2>/dev/null | wc -l)
[ "$n" -ge 1 ] || fail "the never-answering receiver got no request"

echo "== 4. a collector that refuses connections"
start_receiver "$tmp/r4" --refuse-until 600
mem_run refuse
n=$(ls "$tmp/r4"/*.meta 2>/dev/null | wc -l)
[ "$n" -eq 0 ] || fail "the refusing receiver got $n requests"
echo PASS
