#!/usr/bin/env bash
# Bad input to pipeline: each case gets a clear message and the documented
# exit status, before anything starts. Root cases run under CI=true.
set -uo pipefail
bin=${PIPELINE_BINARY_DIR:?}/bin/pipeline
tmp=$(mktemp -d /tmp/pipeline-cli.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
fail() {
	echo "FAIL: $*" >&2
	exit 1
}
expect() { # want_rc pattern args...
	local want=$1 pat=$2
	shift 2
	"$bin" "$@" >"$tmp/out" 2>"$tmp/err"
	local rc=$?
	[ "$rc" -eq "$want" ] || { cat "$tmp/err"; fail "pipeline $*: exit $rc, want $want"; }
	grep -Eq -- "$pat" "$tmp/out" "$tmp/err" || { cat "$tmp/err"; fail "pipeline $*: no '$pat'"; }
	echo "ok: pipeline $* -> $rc: $(head -1 "$tmp/err" "$tmp/out" | grep -v '^==>' | grep . | head -1)"
}

expect 2 "unknown option '--bogus'" --bogus
expect 2 "invalid value '0' for --frequency" --frequency 0
expect 2 "invalid value '20000' for --frequency" --frequency 20000
expect 2 "invalid value 'lots' for --shards" --shards lots
expect 2 "needs a value" --output
expect 2 "invalid value 'frames' for --unwind: expected fp, dwarf or auto" --unwind frames
expect 2 "invalid value '100' for --stack-copy-bytes" --stack-copy-bytes 100
expect 2 "invalid value 'jiffies' for --clock: expected cpu-clock, tick or auto" --clock jiffies
expect 2 "unknown signal 'offcpus' \\(expected cpu, alloc, offcpu, lock\\)" --profiles cpu,offcpus
expect 2 "invalid value '0' for --wait-max-rate" --wait-max-rate 0
expect 0 "--shards auto" --help
expect 0 "^pipeline [0-9]" --version

if [ "$(id -u)" -ne 0 ]; then
	[ -n "${CI:-}" ] && fail "the privileged cases need root and CI is set"
	expect 1 "CAP_BPF" --duration 1
	echo "SKIP: privileged cases need root"
	exit 77
fi
# Not root: drop to nobody with no capabilities.
if command -v setpriv >/dev/null; then
	setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all --bounding-set=-all \
		"$bin" --duration 1 --output "$tmp/np" >"$tmp/out" 2>"$tmp/err"
	rc=$?
	[ "$rc" -eq 1 ] || fail "unprivileged run: exit $rc, want 1"
	grep -q "CAP_BPF" "$tmp/err" && grep -q "CAP_PERFMON" "$tmp/err" &&
		grep -q "CAP_SYS_ADMIN" "$tmp/err" || fail "unprivileged run: message lacks capability names"
	echo "ok: unprivileged -> 1: $(cat "$tmp/err")"
fi
# An output directory that cannot be written: refused before sampling.
touch "$tmp/file"
expect 1 "output directory '$tmp/file/sub' cannot be written" --duration 1 --output "$tmp/file/sub"
# A read-only directory (immutable: even root cannot create files in it).
mkdir "$tmp/ro"
if chattr +i "$tmp/ro" 2>/dev/null; then
	expect 1 "output directory '$tmp/ro' cannot be written" --duration 1 --output "$tmp/ro"
	chattr -i "$tmp/ro"
fi
# A --pid that does not exist: said so, the run goes on and ends normally.
expect 0 "--pid 4194000: no such process" --pid 4194000 --duration 1 --output "$tmp/o"
[ -s "$tmp/o/cpu.pb.gz" ] || fail "no pprof written for the run with a missing pid"
echo PASS
