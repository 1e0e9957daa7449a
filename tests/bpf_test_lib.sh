# Sourced by the BPF integration tests (bash).

# Exits unless running as root: under CI=true the test fails (BPF tests must
# run there, never skip); otherwise it is skipped (ctest's code 77).
require_root() {
	if [ "$(id -u)" -ne 0 ]; then
		if [ -n "${CI:-}" ]; then
			echo "FAIL: BPF integration tests need root and CI is set" >&2
			exit 1
		fi
		echo "SKIP: BPF integration tests need root"
		exit 77
	fi
}

# Sets up what every integration script needs: $tmp, a scratch directory
# named after $1 and removed at exit; $pids, processes killed at exit (add
# to it); fail MESSAGE. A script that must undo more at exit defines
# test_cleanup_extra.
test_scratch() {
	tmp=$(mktemp -d "/tmp/pipeline-$1.XXXXXX")
	pids=()
	trap test_cleanup EXIT
}

test_cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	wait 2>/dev/null
	if declare -F test_cleanup_extra >/dev/null; then test_cleanup_extra; fi
	rm -rf "$tmp"
}

fail() {
	echo "FAIL: $*" >&2
	exit 1
}

# wait_for FILE PATTERN SECONDS: until FILE has a line matching PATTERN.
wait_for() {
	for _ in $(seq 1 $(($3 * 10))); do
		grep -q "$2" "$1" 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}
