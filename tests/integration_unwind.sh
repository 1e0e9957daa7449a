#!/usr/bin/env bash
# BPF integration test (root) of --unwind dwarf, on tests/unwind_workload.c:
# GCC -O2 -fomit-frame-pointer, through libunwind_chain.so built the same
# way and through glibc's qsort, which has no frame pointers either.
#   1. --unwind dwarf --pid: at least 95 % of the workload's samples hold the
#      whole chain from main to where they were taken, through the library,
#      a leaf's caller included (compute_batch;spin_leaf, or
#      sort_batch;...qsort...;compare_items), and 95 % of the samples in the
#      vDSO's clock_gettime under tick_batch with the whole chain;
#      the self-stats count the unwinding and nothing is dropped.
#   2. --unwind fp on the same workload: the chain is in at most half of them
#      (the frame-pointer walk cannot cross the library or qsort), which is
#      what (1) is measured against.
#   3. --unwind dwarf over the whole host, both CPUs busy, 99 Hz: no drops,
#      the workload's chains still whole.
#   4. --unwind fp, then auto, on unwind_workload_fp (the same code with
#      frame pointers, GCC's leaves still without): the leaf's caller is
#      there in at least 95 % of spin_leaf samples (fp: put back from the
#      stack window by the leaf's CFI; auto: the same, through rule walks
#      or copies, which its qsort stacks make happen).
#   5. --unwind auto on unwind_workload: the process is switched to rule
#      walks, then (its frames all lack frame pointers) to stack copies,
#      and after the first interval 95 % of its samples are whole.
#   6. --unwind dwarf with a SIGPROF handler spinning: 95 % of the handler's
#      samples reach main through the signal frame.
#   7. --unwind auto on unwind_workload_fp calling recv on an empty socket
#      from a multi-threaded process (glibc's recv keeps its own data in
#      rbp there): fp mode loses the chain in most samples; auto switches
#      the process to rule walks, learns recv's rules, does not go on to
#      copies, and after the first interval 95 % of its samples are whole.
# Under CI=true it must run (root is required), never skip.
set -uo pipefail

bin=${PIPELINE_BINARY_DIR:?}/bin
# shellcheck source=tests/bpf_test_lib.sh
. "$(dirname "$0")/bpf_test_lib.sh"
require_root

test_scratch unwind
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}

chain='main;worker_loop;stage_one;lib_level1;lib_level2;lib_level3;stage_two;'
# Percent of the workload's samples whose stack is whole: rooted at main;
# below stage_two, the whole chain through the library; a leaf with its
# caller (compute_batch;spin_leaf, sort_batch;...qsort...;compare_items).
# Samples in qsort's own code or in memcpy count when their chain is whole.
whole_share() {
	awk -v c="$chain" '
		/^unwind_workload;/ {
			n = $NF; total += n
			s = $0; sub(/ [0-9]+$/, "", s)
			ok = index(s, ";main;worker_loop") > 0
			if (ok && s ~ /;(lib_level[123]|stage_two|sort_batch|compute_batch|spin_leaf|compare_items|tick_batch)(;|$)/)
				ok = index(s, c) > 0
			if (ok && s ~ /;spin_leaf$/)
				ok = index(s, c "compute_batch;spin_leaf") > 0
			if (ok && s ~ /;compare_items$/)
				ok = s ~ /;stage_two;sort_batch;.*qsort.*;compare_items$/
			if (ok) hit += n
		}
		END { if (total == 0) print "nan"; else printf "%.1f\n", 100 * hit / total }' "$1"
}
at_least() { awk -v v="$1" -v m="$2" 'BEGIN { exit !(v != "nan" && v >= m) }'; }
at_most() { awk -v v="$1" -v m="$2" 'BEGIN { exit !(v != "nan" && v <= m) }'; }

# profile_workload OUT WORKLOAD [ARG...] -- PIPELINE-ARG...: starts the
# workload, profiles it with pipeline --pid at 199 Hz into OUT (stderr in
# OUT.err, --stats-json OUT/stats.json), then stops it.
profile_workload() {
	local out=$1 workload=()
	shift
	while [ "$1" != -- ]; do
		workload+=("$1")
		shift
	done
	shift
	mkdir -p "$out"
	"${workload[@]}" >/dev/null &
	local wl=$!
	pids+=("$wl")
	sleep 0.3
	"$bin/pipeline" --pid "$wl" --frequency 199 --output "$out" \
		--stats-json "$out/stats.json" "$@" 2>"$out.err" ||
		fail "pipeline $* exited $?: $(tail -3 "$out.err")"
	kill "$wl" 2>/dev/null
	wait "$wl" 2>/dev/null
}

echo "== 1. --unwind dwarf --pid, 199 Hz"
profile_workload "$tmp/dwarf" "$bin/unwind_workload" 10 -- --unwind dwarf --duration 6
d=$(whole_share "$tmp/dwarf/cpu.folded")
echo "whole chains (dwarf): $d %"
v=$(awk -v c="$chain" '
	/^unwind_workload;.*;__vdso_clock_gettime [0-9]+$/ {
		n = $NF; total += n
		if (index($0, c "tick_batch;")) hit += n
	}
	END { if (total == 0) print "nan"; else printf "%.1f\n", 100 * hit / total }' "$tmp/dwarf/cpu.folded")
echo "vDSO samples with the whole chain above them (dwarf): $v %"
at_least "$v" 95 || fail "dwarf: only $v % of the vDSO's samples hold the chain (want >= 95 %)"
grep -m1 "CFI unwinding" "$tmp/dwarf.err"
at_least "$d" 95 || {
	sort -t' ' -k2 -n -r "$tmp/dwarf/cpu.folded" | grep '^unwind_workload' | head -5
	fail "dwarf: only $d % of samples hold the whole chain (want >= 95 %)"
}
grep -q '"unwind": {"stacks": [1-9]' "$tmp/dwarf/stats.json" || fail "dwarf: no unwinding counted"
dropped() { grep -o '"dropped_total": [0-9]*' "$1" | awk '{print $2}'; }
[ "$(dropped "$tmp/dwarf/stats.json")" = 0 ] || fail "dwarf: samples dropped: $(dropped "$tmp/dwarf/stats.json")"

echo "== 2. --unwind fp on the same workload"
profile_workload "$tmp/fp" "$bin/unwind_workload" 10 -- --unwind fp --duration 6
f=$(whole_share "$tmp/fp/cpu.folded")
echo "whole chains (fp): $f %"
at_most "$f" 50 || fail "fp: $f % whole chains: the workload no longer needs CFI (want <= 50 %)"

echo "== 3. --unwind dwarf, whole host, both CPUs busy, 99 Hz"
mkdir -p "$tmp/host"
"$bin/unwind_workload" 10 >/dev/null &
pids+=("$!")
"$bin/unwind_workload" 10 >/dev/null &
pids+=("$!")
sleep 0.3
"$bin/pipeline" --unwind dwarf --duration 6 --output "$tmp/host" \
	--stats-json "$tmp/host/stats.json" 2>"$tmp/host.err" ||
	fail "pipeline (host) exited $?: $(tail -3 "$tmp/host.err")"
h=$(whole_share "$tmp/host/cpu.folded")
echo "whole chains (host): $h %"
grep -m1 "CFI unwinding" "$tmp/host.err"
grep -m1 "agent + BPF" "$tmp/host.err"
at_least "$h" 95 || fail "host: only $h % whole chains"
[ "$(dropped "$tmp/host/stats.json")" = 0 ] || fail "host: samples dropped: $(dropped "$tmp/host/stats.json")"
# unwind_workload_fp: the same code at -O2 -fno-omit-frame-pointer, where
# GCC still leaves spin_leaf and compare_items without a frame: a plain
# frame-pointer walk reports stage_two;spin_leaf (compute_batch lost).
for mode in fp auto; do
	echo "== 4. --unwind $mode on a frame-pointer build: the GCC leaf's caller is there"
	profile_workload "$tmp/leaf-$mode" "$bin/unwind_workload_fp" 10 -- \
		--unwind "$mode" --duration 6
	l=$(awk -v c="$chain" '
		/^unwind_workload;.*;spin_leaf [0-9]+$/ {
			n = $NF; total += n
			if (index($0, c "compute_batch;spin_leaf ")) hit += n
		}
		END { if (total == 0) print "nan"; else printf "%.1f\n", 100 * hit / total }' \
		"$tmp/leaf-$mode/cpu.folded")
	echo "spin_leaf samples with compute_batch, the whole chain above it ($mode): $l %"
	grep -m1 "leaf callers put back\|unwind auto" "$tmp/leaf-$mode.err"
	[ "$mode" = auto ] || grep -q "leaf callers put back" "$tmp/leaf-$mode.err" ||
		fail "fp: no leaf caller put back"
	at_least "$l" 95 || {
		grep spin_leaf "$tmp/leaf-$mode/cpu.folded" | sort -t' ' -k2 -n -r | head -3
		fail "$mode: only $l % of spin_leaf samples have their caller (want >= 95 %)"
	}
done
echo "== 5. --unwind auto --pid: the process is switched to stack copies"
# auto decides from a process's first 20 frame-pointer samples, which reach
# the worker with the reader's first poll (about a second): judge the
# intervals after that one.
profile_workload "$tmp/auto" "$bin/unwind_workload" 12 -- \
	--unwind auto --duration 10 --interval 3 --per-interval
grep -m1 "unwind auto" "$tmp/auto.err" || fail "auto: no process switched to copies"
later=$(ls "$tmp/auto"/cpu-*.folded | sort | sed -n '2,3p')
[ -n "$later" ] || fail "auto: fewer than two interval files"
cat $later >"$tmp/auto-later.folded"
a=$(whole_share "$tmp/auto-later.folded")
echo "whole chains (auto, after the first interval): $a %"
at_least "$a" 95 || fail "auto: only $a % of samples hold the whole chain (want >= 95 %)"

echo "== 6. --unwind dwarf through signal frames"
# unwind_workload ... signals: a SIGPROF handler spins in in_handler_spin;
# its samples must reach main through glibc's __restore_rt (CFI expression
# rules over the saved context) and the interrupted chain.
profile_workload "$tmp/sig" "$bin/unwind_workload" 10 signals -- --unwind dwarf --duration 6
g=$(awk '
	/^unwind_workload;.*;in_handler_spin [0-9]+$/ {
		n = $NF; total += n
		if (index($0, ";main;worker_loop;") && index($0, ";__restore_rt;on_signal;in_handler_spin "))
			hit += n
	}
	END { if (total == 0) print "nan"; else printf "%.1f\n", 100 * hit / total }' "$tmp/sig/cpu.folded")
echo "handler samples unwound through the signal frame to main: $g %"
at_least "$g" 95 || {
	grep in_handler_spin "$tmp/sig/cpu.folded" | sort -t' ' -k2 -n -r | head -3
	fail "signals: only $g % of the handler's samples reach main (want >= 95 %)"
}

echo "== 7. --unwind auto: rule walks through glibc's recv"
# Percent of the workload's samples under recv_batch (all of them, but
# for the loop's edges) holding the whole chain from main.
recv_share() {
	awk -v c="$chain" '
		/^unwind_workload;/ {
			n = $NF; total += n
			if (index($0, ";" c "recv_batch")) hit += n
		}
		END { if (total == 0) print "nan"; else printf "%.1f\n", 100 * hit / total }' "$@"
}
profile_workload "$tmp/wfp" "$bin/unwind_workload_fp" 10 syscalls -- --unwind fp --duration 4
w=$(recv_share "$tmp/wfp/cpu.folded")
echo "whole chains through recv (fp): $w %"
at_most "$w" 50 || fail "fp: $w % whole chains through recv: the test no longer needs rules (want <= 50 %)"
profile_workload "$tmp/walk" "$bin/unwind_workload_fp" 12 syscalls -- \
	--unwind auto --duration 10 --interval 3 --per-interval
grep -m1 "unwind auto" "$tmp/walk.err"
json_num() { grep -o "\"$2\": [0-9]*" "$1" | head -1 | awk '{print $2}'; }
[ "$(json_num "$tmp/walk/stats.json" auto_rule_walks)" -ge 1 ] || fail "walk: no process switched to rule walks"
[ "$(json_num "$tmp/walk/stats.json" auto_rules)" -ge 1 ] || fail "walk: no rule learned"
[ "$(json_num "$tmp/walk/stats.json" rule_walks)" -ge 100 ] || fail "walk: fewer than 100 stacks walked with rules"
[ "$(json_num "$tmp/walk/stats.json" auto_switched)" = 0 ] ||
	fail "walk: the process went on to stack copies: rules did not make its stacks whole"
later=$(ls "$tmp/walk"/cpu-*.folded | sort | sed -n '2,3p')
[ -n "$later" ] || fail "walk: fewer than two interval files"
w=$(recv_share $later)
echo "whole chains through recv (auto, rule walks, after the first interval): $w %"
at_least "$w" 95 || {
	cat $later | grep '^unwind_workload' | sort -t' ' -k2 -n -r | head -5
	fail "walk: only $w % of samples hold the whole chain (want >= 95 %)"
}

echo "PASS"
