#!/usr/bin/env bash
# pprof_gotool_test.sh HELPER: `go tool pprof` (an independent pprof reader,
# Debian golang-go) must accept what pprof__encode writes and report the flat
# counts, labels and types the hand-built profile in pprof_sample_main.c holds,
# and show functions inlined at a frame (several Lines per Location) with
# their file:line, in -lines -top and in -traces.
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
expect_grep "$tmp/top_samples.txt" '^ +83 +100%|of 83 total' "total 83 samples"
# by function: hash is inlined at one location (flat 6) and not at another
expect_grep "$tmp/top_samples.txt" '^ +6 .* 8 .* app::hash<int>\(int\) \(partial-inline\)$' \
	"app::hash<int>(int) flat 6, cum 8, partly inlined"
expect_grep "$tmp/top_samples.txt" '^ +0 .* 8 .* app::Table::lookup\(int\) const \(inline\)$' \
	"app::Table::lookup(int) const always inlined, cum 8"
expect_flat "$tmp/top_samples.txt" ksys_read 2

# inlined functions, each at its own file:line; the containing function at the
# line of the call of the outermost inlined one
pprof -lines -top -nodecount=100 -sample_index=samples >"$tmp/lines.txt"
cat "$tmp/lines.txt"
expect_grep "$tmp/lines.txt" '^ +6 .* app::hash<int>\(int\) hash\.h:7 \(inline\)$' \
	"inlined leaf app::hash<int>(int) hash.h:7, flat 6"
expect_grep "$tmp/lines.txt" '^ +0 .* 6 .* app::Table::lookup\(int\) const table\.h:15 \(inline\)$' \
	"inlined caller app::Table::lookup(int) const table.h:15, cum 6"
expect_grep "$tmp/lines.txt" '^ +0 .* 6 .* app::Server::run\(\) server\.cc:42$' \
	"containing function app::Server::run() server.cc:42, cum 6"
expect_grep "$tmp/lines.txt" ' app::Table::lookup\(int\) const table\.h:16 \(inline\)$' \
	"inlined call under a kernel leaf, table.h:16"
expect_grep "$tmp/lines.txt" '^ +0 .* 2 .* app::hash<int>\(int\) hash\.h:9$' \
	"the plain (not inlined) function of the same name"

# -traces: one line per trace, frames leaf first, joined with ';' (no {n}
# interval in the regexes: mawk lacks them)
pprof -traces >"$tmp/traces.txt"
awk '/^-+\+-+$/ { if (t != "") print t; t = ""; next }
	/^ +[0-9.]+[a-z]*s +/ { sub(/^ +[0-9.]+[a-z]*s +/, ""); t = $0; next }
	t != "" && /^      +[^ ]/ { sub(/^ +/, ""); t = t ";" $0 }
	END { if (t != "") print t }' "$tmp/traces.txt" >"$tmp/traces_joined.txt"
expect_grep "$tmp/traces_joined.txt" \
	'^app::hash<int>\(int\) \(inline\);app::Table::lookup\(int\) const \(inline\);app::Server::run\(\);main$' \
	"trace: hash (inline), lookup (inline), run, main"
expect_grep "$tmp/traces_joined.txt" \
	'^ksys_read;app::Table::lookup\(int\) const \(inline\);app::Server::run\(\);app::hash<int>\(int\);main$' \
	"trace: ksys_read, lookup (inline), run, hash, main"

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
