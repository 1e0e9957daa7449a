#!/usr/bin/env bash
# Allocation profiling soak: runs tools/leaky.c (a site leaking RATE bytes a
# second, a cache that fills in 10 s then stays flat, a churn) under
# `pipeline --profiles alloc` for SECONDS, reads the agent's memory (VmRSS)
# every interval, and at the end checks:
#   - leak_site's growth rate in leaks.txt within +-10 % of RATE;
#   - cache_fill's growth rate under 10 % of RATE (it levelled off);
#   - the agent's VmRSS in the second half of the run no more than 10 %
#     above its level at half time (no growth with the run's length), and
#     under 512 MiB.
# Usage: sudo bash tools/alloc_soak.sh [--seconds N] [--rate B] [--interval S]
#        [--exact] [--keep DIR]
# Defaults: 600 s, 1048576 B/s, 10 s interval, default sampling (512 KiB).
# Needs build/bin/pipeline and build/bin/leaky (built by tools/test.sh or
# cmake --build build). Exit status 0 when every check holds.
set -uo pipefail

seconds=600 rate=1048576 interval=10 exact=0 keep=
bin=${PIPELINE_BINARY_DIR:-$(dirname "$0")/../build}/bin
while [ $# -gt 0 ]; do
	case $1 in
	--seconds) seconds=$2; shift 2 ;;
	--rate) rate=$2; shift 2 ;;
	--interval) interval=$2; shift 2 ;;
	--exact) exact=1; shift ;;
	--keep) keep=$2; shift 2 ;;
	*) echo "usage: $0 [--seconds N] [--rate B] [--interval S] [--exact] [--keep DIR]" >&2
	   exit 2 ;;
	esac
done
[ "$(id -u)" -eq 0 ] || { echo "alloc_soak: run as root" >&2; exit 2; }
tmp=${keep:-$(mktemp -d /tmp/pipeline-soak.XXXXXX)}
mkdir -p "$tmp"
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	wait 2>/dev/null
	[ -n "$keep" ] || rm -rf "$tmp"
}
trap cleanup EXIT
fail() {
	echo "alloc_soak: FAIL: $*" >&2
	exit 1
}

"$bin/leaky" --rate "$rate" >"$tmp/leaky.out" &
lp=$!
pids+=("$lp")
sleep 0.2
sampling=()
[ "$exact" -eq 1 ] && sampling=(--alloc-sample-bytes 1)
"$bin/pipeline" --profiles alloc --pid "$lp" --interval "$interval" --duration "$seconds" \
	--output "$tmp/out" "${sampling[@]}" 2>"$tmp/pipeline.err" &
pl=$!
pids+=("$pl")
: >"$tmp/rss"
start=$(date +%s)
while kill -0 "$pl" 2>/dev/null; do
	rss=$(awk '/^VmRSS/ { print $2 }' "/proc/$pl/status" 2>/dev/null)
	[ -n "$rss" ] && echo "$(($(date +%s) - start)) $rss" >>"$tmp/rss"
	sleep "$interval"
done
wait "$pl"
rc=$?
cat "$tmp/pipeline.err"
[ "$rc" -eq 0 ] || fail "pipeline exited $rc"
cat "$tmp/out/leaks.txt"

# growing N bytes/min of a site
growth() {
	awk -v f="$1" '
		found { for (i = 1; i < NF; i++) if ($i == "growing") { print $(i + 1); exit } }
		index($0, "  " f " <- ") { found = 1 }' "$tmp/out/leaks.txt"
}
want=$((rate * 60))
leak=$(growth leak_site)
cache=$(growth cache_fill)
echo "leak_site: growing ${leak:-?} bytes/min, designed $want"
echo "cache_fill: growing ${cache:-0} bytes/min (levelled off after 10 s)"
awk -v v="${leak:-0}" -v e="$want" 'BEGIN { exit !(v >= e * 0.9 && v <= e * 1.1) }' ||
	fail "leak_site's growth ${leak:-?} is not within 10 % of $want"
# The growth average has a 5-minute time constant: a cache filled in the
# first 10 s has faded from it only in runs of several minutes.
if [ "$seconds" -ge 300 ]; then
	awk -v v="${cache:-0}" -v e="$want" 'BEGIN { exit !(v < e * 0.1) }' ||
		fail "cache_fill still shows growth ${cache} bytes/min"
fi
half=$((seconds / 2))
read -r rss_half rss_max < <(awk -v h="$half" '
	$1 >= h && !mid { mid = $2 } $1 >= h && $2 > max { max = $2 }
	END { print mid + 0, max + 0 }' "$tmp/rss")
echo "agent VmRSS: $rss_half KiB at half time, $rss_max KiB at most after it"
[ "$rss_max" -gt 0 ] || fail "no VmRSS reading"
[ "$rss_max" -le $((rss_half + rss_half / 10)) ] ||
	fail "the agent's memory grew in the second half: $rss_half -> $rss_max KiB"
[ "$rss_max" -le $((512 * 1024)) ] || fail "the agent used $rss_max KiB"
echo "alloc_soak: PASS"
