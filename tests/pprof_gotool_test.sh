#!/usr/bin/env bash
# pprof_gotool_test.sh HELPER: `go tool pprof` (an independent pprof reader,
# Debian golang-go) must accept what pprof__encode writes and report the flat
# counts, labels and types the hand-built profile in pprof_sample_main.c holds.
# Without go: fail when CI is set, skip (exit 77) otherwise.
set -euo pipefail

helper=${1:?usage: pprof_gotool_test.sh PPROF_SAMPLE_HELPER}
go=${GO:-}
[ -n "$go" ] || go=$(command -v go 2>/dev/null || true)
if [ -z "$go" ] || ! [ -x "$go" ]; then
	if [ -n "${CI:-}" ]; then
		echo "FAIL: go not found (Debian package golang-go)" >&2
		exit 1
	fi
	echo "SKIP: go not found (Debian package golang-go)"
	exit 77
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# go wants a writable HOME and build cache; keep it all in the scratch dir
export HOME=$tmp/home GOCACHE=$tmp/gocache GOPATH=$tmp/gopath GOFLAGS='' GOTELEMETRY=off
export PPROF_TMPDIR=$tmp/pprof PPROF_BINARY_PATH=$tmp/none
mkdir -p "$HOME"

"$helper" "$tmp/cpu.pb.gz"

fail=0
pprof() {
	"$go" tool pprof -symbolize=none "$@" "$tmp/cpu.pb.gz" 2>"$tmp/err.txt" || {
		echo "go tool pprof $* failed:" >&2
		cat "$tmp/err.txt" >&2
		exit 1
	}
}

# flat column of the row whose last field is $1 in the table of a -top report
flat_of() {
	awk -v fn="$1" '
		/^ *flat +flat%/ { table = 1; next }
		table && $NF == fn { print $1; found = 1 }
		END { if (!found) print "missing" }' "$2"
}

expect_flat() { # report function expected
	local got
	got=$(flat_of "$2" "$1")
	if [ "$got" != "$3" ]; then
		echo "FAIL: flat($2) = $got, want $3" >&2
		fail=1
	else
		echo "ok   flat($2) = $got"
	fi
}

expect_grep() { # file pattern what
	if grep -qE -- "$2" "$1"; then
		echo "ok   $3"
	else
		echo "FAIL: $3: no /$2/ in:" >&2
		cat "$1" >&2
		fail=1
	fi
}

pprof -top -nodecount=100 -sample_index=samples >"$tmp/top_samples.txt"
cat "$tmp/top_samples.txt"
expect_flat "$tmp/top_samples.txt" compute 38
expect_flat "$tmp/top_samples.txt" default_idle 20
expect_flat "$tmp/top_samples.txt" do_syscall_64 12
expect_flat "$tmp/top_samples.txt" app 5
expect_flat "$tmp/top_samples.txt" main 0
expect_grep "$tmp/top_samples.txt" 'Type: samples' "sample type samples"
expect_grep "$tmp/top_samples.txt" '^ +75 +100%|of 75 total' "total 75 samples"

# default sample type is cpu: 10 ms per sample
pprof -top -nodecount=100 -unit=ms >"$tmp/top_cpu.txt"
expect_grep "$tmp/top_cpu.txt" 'Type: cpu' "default sample type cpu"
expect_flat "$tmp/top_cpu.txt" compute 380ms
expect_flat "$tmp/top_cpu.txt" do_syscall_64 120ms

pprof -tags >"$tmp/tags.txt"
expect_grep "$tmp/tags.txt" '^ *pid:' "pid label"
expect_grep "$tmp/tags.txt" '^ *tid:' "tid label"
expect_grep "$tmp/tags.txt" 'thread_name:' "thread_name label"
expect_grep "$tmp/tags.txt" 'app-worker' "thread_name value"
expect_grep "$tmp/tags.txt" 'process_name:' "process_name label"
expect_grep "$tmp/tags.txt" '\[idle\]' "idle process name"

pprof -comments >"$tmp/comments.txt"
expect_grep "$tmp/comments.txt" 'kernel_ring_full=3' "drop counts in comments"

pprof -raw >"$tmp/raw.txt"
expect_grep "$tmp/raw.txt" 'app\.c' "source file name"
expect_grep "$tmp/raw.txt" '0123456789abcdef' "build id"

exit $fail
