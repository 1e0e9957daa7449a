#!/usr/bin/env bash
# The whole agent's threads under load (root): 999 Hz on every CPU with both
# CPUs busy, a flush (shard aggregator swap + merge) every second, SIGUSR1
# stats from the main thread while workers run. Built with -DPIPELINE_TSAN=ON
# this is the ThreadSanitizer check of readers, workers, the swap handshake
# and the shared symbolizer; with ASan, a leak and memory-error check.
# The queue is tiny (16 records), so the reader keeps holding a record back
# and waiting for the worker: that path must lose nothing.
set -uo pipefail
bin=${PIPELINE_BINARY_DIR:?}/bin
if [ "$(id -u)" -ne 0 ]; then
	[ -n "${CI:-}" ] && { echo "FAIL: needs root and CI is set" >&2; exit 1; }
	echo "SKIP: needs root"
	exit 77
fi
tmp=$(mktemp -d /tmp/pipeline-thr.XXXXXX)
trap 'kill $wl 2>/dev/null; wait 2>/dev/null; rm -rf "$tmp"' EXIT
fail() {
	echo "FAIL: $*" >&2
	exit 1
}
"$bin/workload" --duration 20 --threads 2 >/dev/null &
wl=$!
"$bin/pipeline" --shards 2 --frequency 999 --interval 1 --duration 6 --queue-depth 16 --output "$tmp/out" \
	2>"$tmp/err" &
agent=$!
for i in 1 2 3; do
	sleep 1.2
	kill -USR1 "$agent" 2>/dev/null
done
wait "$agent"
rc=$?
grep -v '^  ' "$tmp/err"
grep -E '^  (samples received|dropped)' "$tmp/err"
[ "$rc" -eq 0 ] || fail "pipeline exited $rc"
grep -q "ThreadSanitizer" "$tmp/err" && fail "ThreadSanitizer reported a race"
grep -Eq "AddressSanitizer|LeakSanitizer|runtime error" "$tmp/err" && fail "sanitizer report"
grep -q '^workload;' "$tmp/out/cpu.folded" || fail "workload missing from the profile"
grep -Eq '^  dropped in queues +0$' "$tmp/err" || fail "records dropped with a full queue"
# (A sanitizer build's worker can be slow enough for the BPF ring to fill:
# that drop is the kernel's, counted, and allowed here.)
echo PASS
