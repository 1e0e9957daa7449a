#!/usr/bin/env bash
# BPF integration test (root): frames the symbolizer can only name with the
# help of process events, perf maps, /proc/PID/map_files and /proc/PID/root.
#   1. storm: about 200 processes a second, each 30 ms in storm_work(),
#      profiled over the whole host at 999 Hz: storm_work is named in more
#      than 90 % of their samples (exec events read each process's maps
#      while it lives; exit events keep them until flushed).
#   2. JIT: code in an anonymous executable mapping, named only by the
#      process's /tmp/perf-PID.map; a second function appended to the map
#      a second later is named too (the grown map is re-read).
#   3. a binary deleted while it runs is still named.
#   4. a binary run in a private mount namespace, from a tmpfs mounted over
#      a directory where the host has a different file of the same name, is
#      still named (and not by the host's file).
#   5. JIT code of a process in its own pid and mount namespaces, named by
#      the perf map in its /tmp, under its namespace pid.
#   6. C++ (tests/data/cpp_workload.cpp): `go tool pprof -lines -top` shows
#      demangled names with the right file:line and the inlined template
#      members; cpu.folded marks them _[i].
# Under CI=true it must run (root is required), never skip.
set -uo pipefail

bin=${PIPELINE_BINARY_DIR:?}/bin
# shellcheck source=tests/bpf_test_lib.sh
. "$(dirname "$0")/bpf_test_lib.sh"
require_root
if [ "$(uname -m)" != x86_64 ]; then
	echo "FAIL: the test programs (proc_storm_nolibc, jit_perfmap) are x86-64 only" >&2
	exit 1
fi

test_scratch sym
test_cleanup_extra() {
	umount "$tmp/nsdir" 2>/dev/null
}
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}

# Percent of the samples of processes named $1 (comm) whose stack has $2.
share() {
	awk -v c="$1;" -v f=";$2" '
		index($0, c) == 1 { n = $NF; total += n; if (index($0, f)) hit += n }
		END { if (total == 0) print "nan"; else printf "%.1f\n", 100 * hit / total }' "$3"
}
samples_of() {
	awk -v c="$1;" 'index($0, c) == 1 { s += $NF } END { print s + 0 }' "$2"
}
above() { # value threshold
	awk -v v="$1" -v t="$2" 'BEGIN { exit !(v != "nan" && v > t) }'
}
# Profiles process $2 (a proc_storm, command $3) for 2 s into $tmp/out$1 and
# checks that storm_work is named in more than 90 % of its samples; $4 names
# the case in messages.
storm_named() { # n pid comm what
	local rc pct
	"$bin/pipeline" --pid "$2" --frequency 999 --duration 2 --interval 1 \
		--output "$tmp/out$1" 2>"$tmp/err$1"
	rc=$?
	check_run "$rc" "$tmp/err$1"
	pct=$(share "$3" storm_work "$tmp/out$1/cpu.folded")
	echo "$4: storm_work named in $pct % of its samples"
	above "$pct" 90 || fail "$4: storm_work named in $pct %, want > 90"
}
check_run() { # rc errfile
	cat "$2" | grep -v '^symbolizer: no symbols for'
	[ "$1" -eq 0 ] || fail "pipeline exited $1"
	grep -q "LeakSanitizer" "$2" && fail "AddressSanitizer reported leaks"
	grep -q "runtime error" "$2" && fail "UndefinedBehaviorSanitizer reported an error"
	return 0
}

echo "== 1. process storm: ~200 processes/s, 30 ms each, whole host at 999 Hz"
"$bin/pipeline" --frequency 999 --interval 1 --duration 7 --output "$tmp/out1" \
	2>"$tmp/err1" &
agent=$!
pids+=("$agent")
# Started when the agent says it samples (its BPF programs are attached).
for _ in $(seq 100); do
	grep -q "sampling" "$tmp/err1" && break
	sleep 0.1
done
grep -q "sampling" "$tmp/err1" || fail "pipeline did not start"
# A sleep that forks nothing: read with a timeout from a FIFO nobody writes.
mkfifo "$tmp/fifo"
exec 9<>"$tmp/fifo"
# Paced on the clock: process i starts at i * 5 ms (200 a second).
storm_start=${EPOCHREALTIME/./}
for ((i = 0; i < 600; i++)); do
	"$bin/proc_storm_nolibc" 30 &
	ahead=$((storm_start + (i + 1) * 5000 - ${EPOCHREALTIME/./}))
	[ "$ahead" -gt 0 ] && read -r -t "$(printf '0.%06d' "$ahead")" -u 9
done
wait_storm=$(((${EPOCHREALTIME/./} - storm_start) * 1000))
exec 9>&-
wait "$agent"
rc=$?
check_run "$rc" "$tmp/err1"
rate=$((600 * 1000000000 / wait_storm))
n=$(samples_of proc_storm_noli "$tmp/out1/cpu.folded")
pct=$(share proc_storm_noli storm_work "$tmp/out1/cpu.folded")
echo "storm: 600 processes at $rate/s; $n samples, storm_work named in $pct %"
[ "$n" -ge 500 ] || fail "too few storm samples ($n)"
above "$pct" 90 || {
	grep '^proc_storm_noli;' "$tmp/out1/cpu.folded" | grep -v storm_work |
		sort -t' ' -k2 -nr | head -10
	fail "storm_work named in $pct % of the storm's samples, want > 90"
}
grep -Eq '^  process events +[0-9]+ execs' "$tmp/err1" || fail "no process-event stats"

echo "== 2. JIT code named by its perf map, re-read when it grows"
"$bin/jit_perfmap" 4 &
jit=$!
pids+=("$jit")
"$bin/pipeline" --pid "$jit" --frequency 999 --duration 30 --interval 1 --output "$tmp/out2" \
	2>"$tmp/err2"
rc=$?
check_run "$rc" "$tmp/err2"
n=$(samples_of jit_perfmap "$tmp/out2/cpu.folded")
first=$(share jit_perfmap jit_hot_loop "$tmp/out2/cpu.folded")
second=$(share jit_perfmap jit_second_fn "$tmp/out2/cpu.folded")
echo "jit: $n samples; jit_hot_loop $first %, jit_second_fn $second %"
[ "$n" -ge 1000 ] || fail "too few samples of jit_perfmap ($n)"
# About 1 s of jit_hot_loop alone, then 3 s of both in turn: about 60/40.
above "$first" 40 || fail "jit_hot_loop named in $first % of the samples, want > 40"
above "$second" 25 || fail "jit_second_fn (appended to the map) named in $second %, want > 25"
grep -q "perf-$jit.map" "$tmp/out2/cpu.folded" &&
	fail "perf map frames shown as module offsets"
[ -e "/tmp/perf-$jit.map" ] && fail "jit_perfmap left its perf map behind"

echo "== 3. a binary deleted while it runs"
mkdir "$tmp/del"
cp "$bin/proc_storm" "$tmp/del/deleted_storm"
"$tmp/del/deleted_storm" 5000 &
del=$!
pids+=("$del")
sleep 0.3
rm "$tmp/del/deleted_storm"
grep -q "deleted_storm (deleted)" "/proc/$del/maps" || fail "the binary is not shown deleted"
storm_named 3 "$del" deleted_storm "deleted binary"

echo "== 4. a binary in a private mount namespace"
mkdir "$tmp/nsdir"
# The host's file of that name is another program: naming through it would fail.
cp "$bin/jit_perfmap" "$tmp/nsdir/ns_storm"
unshare -m --propagation private sh -c \
	"mount -t tmpfs none '$tmp/nsdir' && cp '$bin/proc_storm' '$tmp/nsdir/ns_storm' &&
	 exec '$tmp/nsdir/ns_storm' 5000" &
ns=$!
pids+=("$ns")
for _ in $(seq 50); do
	grep -q "ns_storm" "/proc/$ns/maps" 2>/dev/null && break
	sleep 0.1
done
grep -q "ns_storm" "/proc/$ns/maps" || fail "the namespaced program did not start"
cmp -s "/proc/$ns/exe" "$tmp/nsdir/ns_storm" && fail "the host path holds the same file"
storm_named 4 "$ns" ns_storm "mount namespace"

echo "== 5. JIT perf map of a process in its own pid and mount namespaces"
# Inside, the program is pid 1 and writes /tmp/perf-1.map on a tmpfs that the
# host cannot see: the agent must read it as /proc/PID/root/tmp/perf-1.map.
unshare -p -f -m --propagation private sh -c \
	"mount -t tmpfs none /tmp && exec '$bin/jit_perfmap' 3" &
outer=$!
pids+=("$outer")
inner=
for _ in $(seq 50); do
	inner=$(pgrep -P "$outer" jit_perfmap)
	[ -n "$inner" ] && grep -q "^NSpid:.*[[:space:]]1$" "/proc/$inner/status" && break
	inner=
	sleep 0.1
done
[ -n "$inner" ] || fail "the namespaced jit_perfmap did not start as pid 1 of its namespace"
[ -e /tmp/perf-1.map ] && fail "/tmp/perf-1.map exists on the host: the test would prove nothing"
"$bin/pipeline" --pid "$inner" --frequency 999 --duration 30 --interval 1 --output "$tmp/out5" \
	2>"$tmp/err5"
rc=$?
check_run "$rc" "$tmp/err5"
first=$(share jit_perfmap jit_hot_loop "$tmp/out5/cpu.folded")
echo "namespaced JIT: jit_hot_loop $first %"
above "$first" 40 || fail "namespaced JIT: jit_hot_loop named in $first %, want > 40"

echo "== 6. C++: demangled names, file:line and inlined frames"
src=${PIPELINE_SOURCE_DIR:?}/tests/data/cpp_workload.cpp
line_of() { grep -n "// @$1\$" "$src" | cut -d: -f1; }
"$bin/cpp_workload" 6 &
cpp=$!
pids+=("$cpp")
"$bin/pipeline" --pid "$cpp" --frequency 999 --duration 3 --output "$tmp/out6" 2>"$tmp/err6"
rc=$?
check_run "$rc" "$tmp/err6"
# Folded: caller first, the inlined members after the function they are in.
grep -qF 'long shop::checkout<long>(long);shop::Pricer<long>::total(long)_[i];shop::Pricer<long>::discount(long)_[i]' \
	"$tmp/out6/cpu.folded" || {
	head -5 "$tmp/out6/cpu.folded"
	fail "cpu.folded lacks checkout -> total [i] -> discount [i]"
}
if command -v go >/dev/null; then
	export HOME=$tmp GOCACHE=$tmp/gocache GOFLAGS=
	go tool pprof -lines -top -symbolize=none "$tmp/out6/cpu.pb.gz" >"$tmp/top6" 2>"$tmp/top6.err" ||
		{ cat "$tmp/top6.err"; fail "go tool pprof cannot read the C++ profile"; }
	head -12 "$tmp/top6"
	for want in "shop::Pricer<long>::discount(long) .*cpp_workload.cpp:$(line_of discount) (inline)" \
		"shop::Pricer<long>::total(long) .*cpp_workload.cpp:$(line_of total) (inline)" \
		"long shop::checkout<long>(long) .*cpp_workload.cpp:$(line_of checkout)\$"; do
		grep -q -- "$want" "$tmp/top6" || fail "go tool pprof -lines -top lacks: $want"
	done
	# Most of the time is in the innermost inlined member.
	pct=$(grep -- "shop::Pricer<long>::discount(long) .*(inline)" "$tmp/top6" |
		awk '{ gsub("%", "", $5); s += $5 } END { print s + 0 }')
	echo "C++: discount (inline) holds $pct % cum"
	above "$pct" 50 || fail "C++: discount (inline) holds $pct % cum, want > 50"
elif [ -n "${CI:-}" ]; then
	fail "go (golang-go) is missing"
fi

echo "PASS"
