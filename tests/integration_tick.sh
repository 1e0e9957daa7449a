#!/usr/bin/env bash
# BPF integration test (root) of --clock tick: samples that ride the
# scheduler tick.
#   1. --clock tick picks 1 in N ticks of the kernel's HZ (measured, not
#      assumed), says which rate it runs at; --clock auto above HZ falls
#      back to cpu-clock and says why; --clock tick above HZ is refused.
#   2. The known-split workload (work_alpha/beta/gamma 50/30/20) profiled by
#      two agents at once, one on the tick (every tick) and one on cpu-clock
#      at the same rate: each function's share agrees within 2 points.
#   3. tests/tick_workload.c in step with the tick: waking at HZ/2, half a
#      tick after a tick, and busy for one tick period of two (so each burst
#      holds exactly one tick, in its middle), profiled at once by tick mode
#      at HZ/2 (1 tick in 2: without the random gaps between taken ticks it
#      would take the burst's tick always or never) and by cpu-clock at
#      99 Hz: both find its true CPU share (its exact runtime) within 5
#      points. Waking at HZ, a quarter tick after each tick, and busy 40 %
#      of the tick period: the burst holds no tick, so whatever ticks are
#      taken no sample sees it; tick mode reckons each thread's CPU time
#      (the kernel's exact count) against its samples and puts the time no
#      sample saw into the profile as "[unsampled: ran between ticks]": its
#      share is found within 5 points too, nearly all of it in that frame,
#      while the tasks of (2) and of HZ/2 have none of it; reckoned at each
#      flush (every 2 s) while the task lives, and at its exit
#      (docs/PERFORMANCE.md, "Sampling on the tick").
# Under CI=true it must run (root is required), never skip.
set -uo pipefail

bin=${PIPELINE_BINARY_DIR:?}/bin
# shellcheck source=tests/bpf_test_lib.sh
. "$(dirname "$0")/bpf_test_lib.sh"
require_root

test_scratch tick
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}

within() { # value expected tolerance
	awk -v v="$1" -v e="$2" -v t="$3" 'BEGIN { exit !(v != "nan" && v >= e - t && v <= e + t) }'
}
# Percent of comm's samples in FILE whose stacks hold ;f.
share() {
	awk -v c="$1" -v f="$2" '
		index($0, c ";") == 1 { n = $NF; total += n; if (index($0, ";" f)) hit += n }
		END { if (total == 0) print "nan"; else printf "%.1f\n", 100 * hit / total }' "$3"
}
# The CPU share (% of one CPU) of comm's samples in DIR over SECONDS, each
# sample worth the period the agent says (DIR/stats.json).
cpu_share() {
	local samples period
	samples=$(awk -v c="$1" 'index($0, c ";") == 1 { s += $NF } END { print s + 0 }' "$2/cpu.folded")
	period=$(node -e 'console.log(JSON.parse(require("fs").readFileSync(process.argv[1])).sample_period_ns)' "$2/stats.json")
	awk -v s="$samples" -v p="$period" -v t="$3" 'BEGIN { printf "%.1f\n", 100 * s * p / 1e9 / t }'
}

echo "== 1. the clock chosen"
"$bin/pipeline" --clock tick --duration 1 --output "$tmp/probe" 2>"$tmp/probe.err" ||
	fail "--clock tick failed: $(tail -3 "$tmp/probe.err")"
line=$(grep -m1 'clock: tick (1 in ' "$tmp/probe.err") || fail "no tick clock line: $(head -3 "$tmp/probe.err")"
echo "$line"
hz=$(echo "$line" | sed -n 's/.* of the \([0-9]*\) Hz scheduler tick.*/\1/p')
[ -n "$hz" ] && [ "$hz" -ge 100 ] && [ "$hz" -le 1000 ] || fail "HZ not read: '$hz'"
over=$((hz + 1))
"$bin/pipeline" --clock auto --frequency "$over" --duration 1 --output "$tmp/auto" 2>"$tmp/auto.err" ||
	fail "--clock auto failed"
grep -q "clock: cpu-clock (--clock auto: --frequency $over is above the tick's $hz Hz)" "$tmp/auto.err" ||
	fail "--clock auto at $over Hz: $(grep -m1 clock: "$tmp/auto.err")"
"$bin/pipeline" --clock tick --frequency "$over" --duration 1 --output "$tmp/over" 2>"$tmp/over.err"
rc=$?
[ "$rc" -eq 1 ] && grep -q -- "--clock tick: --frequency $over is above the tick's $hz Hz" "$tmp/over.err" ||
	fail "--clock tick at $over Hz: exit $rc, $(tail -1 "$tmp/over.err")"

# The tick agent's flush interval: the reckoning of unsampled time runs at
# each flush (a task iterator) and at each thread's exit.
tick_interval=10
# both_clocks NAME PID SECONDS TICK-HZ CPU-HZ [go]: profiles PID with both
# clocks at once (at those rates), into $tmp/NAME-tick and $tmp/NAME-cpu,
# for SECONDS at most (they end with PID); with go, sends PID SIGUSR1 once
# both are sampling.
both_clocks() {
	local name=$1 pid=$2 secs=$3 tick_hz=$4 cpu_hz=$5 t c
	mkdir -p "$tmp/$name-tick" "$tmp/$name-cpu"
	"$bin/pipeline" --pid "$pid" --clock tick --frequency "$tick_hz" --duration "$secs" \
		--interval "$tick_interval" \
		--output "$tmp/$name-tick" --stats-json "$tmp/$name-tick/stats.json" \
		2>"$tmp/$name-tick.err" &
	t=$!
	"$bin/pipeline" --pid "$pid" --clock cpu-clock --frequency "$cpu_hz" --duration "$secs" \
		--output "$tmp/$name-cpu" --stats-json "$tmp/$name-cpu/stats.json" \
		2>"$tmp/$name-cpu.err" &
	c=$!
	if [ "${6:-}" = go ]; then
		wait_for "$tmp/$name-tick.err" '^pipeline: sampling' 20 &&
			wait_for "$tmp/$name-cpu.err" '^pipeline: sampling' 20 ||
			fail "$name: the agents did not start"
		kill -USR1 "$pid"
	fi
	wait "$t" || fail "$name: pipeline --clock tick exited $?: $(tail -2 "$tmp/$name-tick.err")"
	wait "$c" || fail "$name: pipeline --clock cpu-clock exited $?: $(tail -2 "$tmp/$name-cpu.err")"
}

echo "== 2. the known split, tick against cpu-clock, $hz Hz, 20 s"
"$bin/workload" --duration 40 --threads 2 >/dev/null &
wl=$!
pids+=("$wl")
sleep 0.5
both_clocks split "$wl" 20 "$hz" "$hz"
kill "$wl" 2>/dev/null
for fw in work_alpha work_beta work_gamma; do
	t=$(share workload "$fw" "$tmp/split-tick/cpu.folded")
	c=$(share workload "$fw" "$tmp/split-cpu/cpu.folded")
	echo "$fw: tick $t %, cpu-clock $c %"
	d=$(awk -v a="$t" -v b="$c" 'BEGIN { printf "%.1f\n", a - b }')
	within "$d" 0 2 || fail "$fw: tick $t % against cpu-clock $c %"
done
grep -q 'bpf_prog_\|hrtimer_interrupt\|sysvec_apic_timer' "$tmp/split-tick/cpu.folded" &&
	fail "tick samples keep the tick's own interrupt frames"
grep -q 'unsampled: ran between ticks' "$tmp/split-tick/cpu.folded" &&
	fail "a busy workload was reckoned unsampled: $(grep unsampled "$tmp/split-tick/cpu.folded")"

echo "== 3. a task in step with the tick"
# Flushes every 2 s: the unsampled time of a live thread is reckoned at
# each, the rest at its exit.
tick_interval=2
tick_us=$((1000000 / hz))
for run in "$((hz / 2)) 0.5 $((tick_us / 2))" "$hz 0.4 $((tick_us / 4))"; do
	set -- $run
	rate=$1
	"$bin/tick_workload" "$rate" "$2" 5 "$3" >"$tmp/r$rate.wl" &
	wl=$!
	pids+=("$wl")
	wait_for "$tmp/r$rate.wl" '^ready' 10 || fail "tick_workload did not start"
	both_clocks "r$rate" "$wl" 30 $((hz / 2)) 99 go
	wait "$wl"
	truth=$(sed -n 's/^share_pct //p' "$tmp/r$rate.wl")
	wall=$(sed -n 's/^wall_s //p' "$tmp/r$rate.wl")
	t=$(cpu_share tick_workload "$tmp/r$rate-tick" "$wall")
	c=$(cpu_share tick_workload "$tmp/r$rate-cpu" "$wall")
	echo "wakes at $rate Hz, busy $2 of the period: true share $truth %, tick $t %, cpu-clock $c %"
	within "$c" "$truth" 5 || fail "$rate Hz: cpu-clock finds $c %, the truth is $truth %"
	within "$t" "$truth" 5 || fail "$rate Hz: tick finds $t %, the truth is $truth %"
	unseen=$(share tick_workload '[unsampled: ran between ticks]' "$tmp/r$rate-tick/cpu.folded")
	echo "  of tick's samples, $unseen % are the time no sample saw"
	if [ "$rate" -eq "$hz" ]; then
		within "$unseen" 100 10 || fail "$rate Hz: only $unseen % reckoned unsampled"
		# One 5 s thread, flushes every 2 s: found at two flushes at least.
		found=$(node -e 'console.log(JSON.parse(require("fs").readFileSync(process.argv[1])).tick_unseen.threads)' \
			"$tmp/r$rate-tick/stats.json")
		echo "  reckoned unsampled $found times"
		[ "$found" -ge 2 ] || fail "$rate Hz: the unsampled time was reckoned $found times, not at each flush"
	else
		within "$unseen" 0 0 || fail "$rate Hz: $unseen % reckoned unsampled, none expected"
	fi
done
echo "PASS"
