#!/usr/bin/env bash
# BPF integration test (root): profile the workload with known CPU split
# 50/30/20 and check every output against it.
#   1. pipeline --pid WORKLOAD: work_alpha/beta/gamma within +-5 points of
#      50/30/20 in cpu.folded, and the same in `go tool pprof -top`;
#      cpu.svg names them; no leaks under AddressSanitizer (when built with it).
#   2. --shards auto over the whole host at 1000 Hz with both CPUs busy:
#      zero samples dropped, the workload is in the profile.
#   3. a --pid that exits mid-run: the run ends on its own and keeps what it saw.
# Under CI=true it must run (root is required), never skip.
set -uo pipefail

bin=${PIPELINE_BINARY_DIR:?}/bin
src=${PIPELINE_SOURCE_DIR:?}
# shellcheck source=tests/bpf_test_lib.sh
. "$(dirname "$0")/bpf_test_lib.sh"
require_root

test_scratch it
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}

# utime + stime of a process, in clock ticks.
cpu_ticks() {
	awk '{ print $14 + $15 }' "/proc/$1/stat"
}

# Percent of the workload's samples whose leaf-side frames include $1.
share() {
	awk -v f="$1" '
		/^workload;/ { n = $NF; total += n; if (index($0, ";" f)) hit += n }
		END { if (total == 0) print "nan"; else printf "%.1f\n", 100 * hit / total }' "$2"
}
within() { # value expected tolerance
	awk -v v="$1" -v e="$2" -v t="$3" 'BEGIN { exit !(v != "nan" && v >= e - t && v <= e + t) }'
}

echo "== 1. --pid workload (2 threads), 99 Hz"
"$bin/workload" --duration 30 --threads 2 >/dev/null &
wl=$!
pids+=("$wl")
sleep 0.5
cpu0=$(cpu_ticks "$wl")
"$bin/pipeline" --pid "$wl" --shards auto --frequency 99 --duration 8 --interval 3 \
	--output "$tmp/out1" --stats-json "$tmp/stats1.json" 2>"$tmp/err1"
rc=$?
cpu1=$(cpu_ticks "$wl")
cat "$tmp/err1"
[ "$rc" -eq 0 ] || fail "pipeline exited $rc"
grep -q "LeakSanitizer" "$tmp/err1" && fail "AddressSanitizer reported leaks"
for f in cpu.pb.gz cpu.folded cpu.svg; do
	[ -s "$tmp/out1/$f" ] || fail "$f missing or empty"
done
a=$(share work_alpha "$tmp/out1/cpu.folded")
b=$(share work_beta "$tmp/out1/cpu.folded")
c=$(share work_gamma "$tmp/out1/cpu.folded")
total=$(awk '{ s += $NF } END { print s + 0 }' "$tmp/out1/cpu.folded")
echo "folded: $total samples; work_alpha $a %, work_beta $b %, work_gamma $c % (want 50/30/20 +-5)"
# At most 99 samples per second per thread; enough of them for the split to
# mean something. (cpu-clock counts wall time on a CPU, so on a VM whose
# vCPUs are stolen by the host it can exceed the workload's own utime: that
# is why the reference is the wall clock, not /proc/PID/stat.)
echo "workload used $((cpu1 - cpu0)) ticks of CPU (utime+stime) during the run"
[ "$total" -ge 150 ] || fail "too few samples ($total) to check the split"
[ "$total" -le $((99 * 9 * 2)) ] || fail "$total samples: more than 99 Hz x 2 threads x 9 s"
within "$a" 50 5 || fail "work_alpha $a % not within 50 +- 5"
within "$b" 30 5 || fail "work_beta $b % not within 30 +- 5"
within "$c" 20 5 || fail "work_gamma $c % not within 20 +- 5"
# work_alpha is the last real frame; what it inlines (burn) follows as _[i].
grep -Eq "^workload;.*run_rounds;path_alpha;work_alpha(;[^;]*_\[i\])* [0-9]+$" \
	"$tmp/out1/cpu.folded" || fail "full call path main..path_alpha;work_alpha not in cpu.folded"
grep -v '^workload;' "$tmp/out1/cpu.folded" | grep -q . &&
	fail "samples of other processes despite --pid"
# --stats-json agrees with the profile and the text report.
node -e '
	const s = JSON.parse(require("fs").readFileSync(process.argv[1]));
	const byCpu = s.samples_by_cpu.reduce((a, b) => a + b, 0);
	if (s.samples_aggregated !== +process.argv[2]) throw "aggregated " + s.samples_aggregated;
	if (byCpu !== s.samples_taken) throw "samples_by_cpu sums to " + byCpu;
	if (s.dropped_total !== 0 || s.cpus < 1 || !(s.agent_cpu_s > 0)) throw "bad stats";
	if (s.profile_files.written < 3) throw "profile files " + s.profile_files.written;
	const y = s.symbolizer;
	if (y.lookups !== y.reader_hits + y.shared_hits + y.misses || y.lockfree_hits > y.shared_hits)
		throw "symbolizer counters do not add up: " + JSON.stringify(y);
' "$tmp/stats1.json" "$total" || fail "--stats-json does not match the run"

if command -v go >/dev/null; then
	export HOME=$tmp GOCACHE=$tmp/gocache GOFLAGS=
	go tool pprof -top -symbolize=none "$tmp/out1/cpu.pb.gz" >"$tmp/top" 2>"$tmp/top.err" ||
		{ cat "$tmp/top.err"; fail "go tool pprof cannot read cpu.pb.gz"; }
	head -20 "$tmp/top"
	# cum% per function: every sample under it, whatever leaf (a kernel
	# frame on an interrupt, say) it was taken in.
	for fw in "work_alpha 50" "work_beta 30" "work_gamma 20"; do
		set -- $fw
		pct=$(awk -v f="$1" '$NF == f { gsub("%", "", $5); print $5 }' "$tmp/top")
		within "${pct:-nan}" "$2" 5 || fail "pprof cum% of $1 is '${pct}', want $2 +- 5"
	done
elif [ -n "${CI:-}" ]; then
	fail "go (golang-go) is missing"
fi

grep -q 'work_alpha' "$tmp/out1/cpu.svg" || fail "cpu.svg does not name work_alpha"

if [ -n "${PIPELINE_BROWSER_TEST:-}" ]; then
	node "$src/tests/browser/flamegraph.test.mjs" "$tmp/out1/cpu.svg" --zoom work_alpha \
		--search work_beta --expect-percent "$b" --tolerance 0.2 ||
		fail "browser test on the profiled cpu.svg"
fi

echo "== 2. whole host, --shards auto, 1000 Hz, both CPUs busy"
"$bin/workload" --duration 30 --threads 2 >/dev/null &
pids+=("$!")
"$bin/pipeline" --shards auto --frequency 1000 --duration 6 --output "$tmp/out2" 2>"$tmp/err2"
rc=$?
cat "$tmp/err2"
[ "$rc" -eq 0 ] || fail "pipeline exited $rc"
grep -q "LeakSanitizer" "$tmp/err2" && fail "AddressSanitizer reported leaks"
grep -Eq '^  dropped in kernel +0 ' "$tmp/err2" || fail "samples dropped in kernel at 1000 Hz"
grep -Eq '^  dropped in queues +0$' "$tmp/err2" || fail "samples dropped in queues at 1000 Hz"
grep -q '^workload;' "$tmp/out2/cpu.folded" || fail "workload missing from the host profile"
# The split holds in a whole-host profile too (shares among the workload's samples).
a=$(share work_alpha "$tmp/out2/cpu.folded")
b=$(share work_beta "$tmp/out2/cpu.folded")
c=$(share work_gamma "$tmp/out2/cpu.folded")
echo "whole host: work_alpha $a %, work_beta $b %, work_gamma $c % (want 50/30/20 +-5)"
within "$a" 50 5 && within "$b" 30 5 && within "$c" 20 5 || fail "split off in the whole-host profile"
grep -q '_\[k\]' "$tmp/out2/cpu.folded" || fail "no kernel frames in the whole-host profile"

echo "== 3. a --pid that exits during the run"
"$bin/workload" --duration 3 >/dev/null &
short=$!
pids+=("$short")
start=$(date +%s)
"$bin/pipeline" --pid "$short" --duration 30 --interval 1 --output "$tmp/out3" 2>"$tmp/err3"
rc=$?
took=$(($(date +%s) - start))
cat "$tmp/err3"
[ "$rc" -eq 0 ] || fail "pipeline exited $rc"
[ "$took" -lt 15 ] || fail "run did not end when its only --pid exited ($took s)"
grep -q "has exited" "$tmp/err3" || fail "no message about the exited process"
grep -q '^workload;.*work_alpha' "$tmp/out3/cpu.folded" ||
	fail "samples of the exited process were lost"

echo "== 4. SIGUSR1 prints self-stats; SIGTERM ends the run with a final flush"
"$bin/workload" --duration 30 >/dev/null &
wl4=$!
pids+=("$wl4")
"$bin/pipeline" --pid "$wl4" --interval 600 --output "$tmp/out4" 2>"$tmp/err4" &
agent=$!
pids+=("$agent")
sleep 3
kill -USR1 "$agent"
sleep 1
kill -TERM "$agent"
wait "$agent"
rc=$?
cat "$tmp/err4"
[ "$rc" -eq 0 ] || fail "pipeline exited $rc after SIGTERM"
[ "$(grep -c 'self-stats after' "$tmp/err4")" -eq 2 ] || fail "SIGUSR1 did not print self-stats"
grep -q "LeakSanitizer" "$tmp/err4" && fail "AddressSanitizer reported leaks"
# The flush interval was never reached: only the final flush can have written this.
grep -q '^workload;.*work_alpha' "$tmp/out4/cpu.folded" || fail "final flush on SIGTERM lost the run"

echo "== 5. --per-interval: one set of files per interval, nothing older kept"
"$bin/workload" --duration 30 >/dev/null &
wl5=$!
pids+=("$wl5")
"$bin/pipeline" --pid "$wl5" --per-interval --interval 1 --duration 4 --output "$tmp/out5" \
	2>"$tmp/err5" || { cat "$tmp/err5"; fail "pipeline --per-interval failed"; }
n=$(ls "$tmp/out5"/cpu-*Z.folded | wc -l)
# Intervals in which the workload got no CPU (a loaded machine) write nothing.
[ "$n" -ge 2 ] || fail "--per-interval wrote $n interval files in 4 s, want >= 2"
for f in "$tmp/out5"/cpu-*Z.folded; do
	[ -s "${f%.folded}.pb.gz" ] && [ -s "${f%.folded}.svg" ] || fail "incomplete set for $f"
done
sum=$(cat "$tmp/out5"/cpu-*Z.folded | awk '{ s += $NF } END { print s + 0 }')
inprof=$(sed -n 's/^  samples aggregated .*(in profile: \([0-9]*\)).*/\1/p' "$tmp/err5")
echo "per-interval: $n sets, $sum samples in files, $inprof aggregated"
[ "$sum" -gt 0 ] || fail "interval files are empty"
[ "$sum" -eq "$inprof" ] || fail "interval files hold $sum samples, the agent aggregated $inprof"

echo "PASS"
