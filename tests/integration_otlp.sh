#!/usr/bin/env bash
# BPF + OTLP integration test (root): the agent exporting to a real HTTP
# receiver on 127.0.0.1 (tests/otlp_receiver.c).
#   1. a live run: every request decodes with protoc against the pinned
#      schemas (../shared/reference/decode.sh) and passes otlp-check (the
#      dictionary rules); the workload's functions, resource attributes and
#      OTEL_RESOURCE_ATTRIBUTES / OTEL_SERVICE_NAME are in it; --otlp-file
#      writes the same requests.
#   2. the collector down for the first 6 s of a 12 s run: every interval
#      arrives, once.
#   3. a collector that never answers: the export queue stays within
#      --export-queue-bytes, drops are counted, the agent exits within
#      --shutdown-timeout.
# Under CI=true it must run (root is required), never skip.
set -uo pipefail

bin=${PIPELINE_BINARY_DIR:?}/bin
src=${PIPELINE_SOURCE_DIR:?}
if [ "$(id -u)" -ne 0 ]; then
	[ -n "${CI:-}" ] && { echo "FAIL: needs root and CI is set" >&2; exit 1; }
	echo "SKIP: needs root"
	exit 77
fi
decode=$src/../shared/reference/decode.sh
if [ ! -x "$decode" ] && [ ! -f "$decode" ]; then
	[ -n "${CI:-}" ] && { echo "FAIL: $decode missing and CI is set" >&2; exit 1; }
	decode=
fi

tmp=$(mktemp -d /tmp/pipeline-otlp.XXXXXX)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	wait 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
fail() {
	echo "FAIL: $*" >&2
	exit 1
}
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

"$bin/workload" --duration 60 --threads 2 >/dev/null &
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

echo "== 2. collector down for the first 6 s, then up"
start_receiver "$tmp/r2" --refuse-until 6
"$bin/pipeline" --otlp-endpoint "http://127.0.0.1:$port" --interval 1 --duration 12 \
	--shutdown-timeout 20 2>"$tmp/err2"
rc=$?
cat "$tmp/err2"
[ "$rc" -eq 0 ] || fail "pipeline exited $rc"
encoded=$(sed -n 's/^  OTLP requests *\([0-9]*\) encoded.*/\1/p' "$tmp/err2")
retried=$(sed -n 's/^  OTLP requests .*, \([0-9]*\) retried.*/\1/p' "$tmp/err2")
n=$(ls "$tmp/r2"/*.meta 2>/dev/null | wc -l)
echo "encoded $encoded, retried $retried, receiver got $n"
[ "$retried" -gt 0 ] || fail "nothing was retried while the collector was down"
[ "$n" -eq "$encoded" ] || fail "receiver got $n requests for $encoded intervals"
# Once each: no two request bodies alike.
dups=$(md5sum "$tmp/r2"/*.body | awk '{ print $1 }' | sort | uniq -d | wc -l)
[ "$dups" -eq 0 ] || fail "$dups intervals arrived more than once"

echo "== 3. a collector that never answers: bounded queue, bounded shutdown"
start_receiver "$tmp/r3" --script "$(printf 'delay=600000,%.0s' $(seq 40))"
start=$(date +%s)
"$bin/pipeline" --otlp-endpoint "http://127.0.0.1:$port" --frequency 999 --interval 1 \
	--duration 8 --export-queue-bytes 65536 --otlp-timeout-ms 600000 --shutdown-timeout 2 \
	2>"$tmp/err3" &
agent=$!
peak=0
while kill -0 "$agent" 2>/dev/null; do
	rss=$(awk '/^VmRSS/ { print $2 }' "/proc/$agent/status" 2>/dev/null)
	[ -n "$rss" ] && [ "$rss" -gt "$peak" ] && peak=$rss
	sleep 0.5
done
wait "$agent"
rc=$?
took=$(($(date +%s) - start))
cat "$tmp/err3"
[ "$rc" -eq 0 ] || fail "pipeline exited $rc"
[ "$took" -le 16 ] || fail "run took $took s with --duration 8 --shutdown-timeout 2"
qmax=$(sed -n 's/^  OTLP bytes .* \([0-9]*\) at most$/\1/p' "$tmp/err3")
dropped=$(sed -n 's/^  OTLP requests .*, \([0-9]*\) dropped.*/\1/p' "$tmp/err3")
echo "queue high-water $qmax bytes (bound 65536), dropped $dropped, peak RSS $peak KiB"
[ "$qmax" -le 65536 ] || fail "export queue reached $qmax bytes, bound 65536"
[ "$dropped" -gt 0 ] || fail "no request counted as dropped with a full queue"
echo PASS
