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
