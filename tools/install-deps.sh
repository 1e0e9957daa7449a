#!/usr/bin/env bash
# Installs every Debian package the project needs to build, test and benchmark.
# Idempotent: packages already present are left alone. Run as root.
set -euo pipefail

BUILD_PKGS=(
	cmake pkg-config clang llvm gcc make
	libbpf-dev bpftool
	liburing-dev libck-dev
	libprotobuf-c-dev protobuf-c-compiler protobuf-compiler
	libdw-dev libelf-dev libjemalloc-dev zlib1g-dev libdeflate-dev libssl-dev
	libiberty-dev
	g++ binutils xz-utils # the C++ DWARF test subject and its stripped variants
)
# Needed only by tests: pprof reader, headless browser, sanitizer runtime,
# and the peer profilers `pipeline-bench overhead --peers` and `--waits` run
# (perf, bpftrace, libbpf-tools' offcputime).
TEST_PKGS=(golang-go chromium chromium-driver clang-format libclang-rt-14-dev openssl
	linux-perf bpftrace libbpf-tools)

want=("${BUILD_PKGS[@]}")
if [ "${1:-}" = "--with-tests" ]; then
	want+=("${TEST_PKGS[@]}")
fi

missing=()
for p in "${want[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
	echo "install-deps: all ${#want[@]} packages present"
	exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
	echo "install-deps: missing packages (${missing[*]}); run as root to install them" >&2
	exit 1
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-deps: done"
