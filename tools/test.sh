#!/usr/bin/env bash
# Builds and runs every test, as CI does (README command 2). Run as root: the
# BPF tests need it, and under CI=true they must run, never skip.
#   build-asan: everything (unit, bpf, browser) under AddressSanitizer + UBSan
#   build-tsan: the concurrency tests under ThreadSanitizer
#   build:      the release build (jemalloc) and its BPF integration tests
#               but integration_otlp (the exporter's paths, covered by the
#               ASan run; 80 s of a CI budget of 20 minutes)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
jobs=$(nproc)

bash tools/install-deps.sh --with-tests
if [ ! -d tests/browser/node_modules/playwright-core ]; then
	(cd tests/browser && npm ci --no-audit --no-fund --loglevel=error)
fi

echo "== clang-format"
git ls-files '*.c' '*.h' | xargs clang-format --dry-run -Werror

build() { # dir cmake-args...
	local dir=$1
	shift
	cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
	cmake --build "$dir" -j "$jobs" -- --no-print-directory
}

echo "== build (release), build-asan, build-tsan"
build build
build build-asan -DPIPELINE_SANITIZE=ON
build build-tsan -DPIPELINE_TSAN=ON

echo "== tests under ASan + UBSan (unit, bpf, browser)"
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export ASAN_OPTIONS=detect_leaks=1
PIPELINE_BROWSER_TEST=1 ctest --test-dir build-asan --output-on-failure --timeout 600

echo "== concurrency tests under TSan"
TSAN_OPTIONS="halt_on_error=1 suppressions=$root/tests/tsan.supp" \
	ctest --test-dir build-tsan -L concurrency --output-on-failure

echo "== BPF integration on the release build"
ctest --test-dir build -L bpf -E integration_otlp --output-on-failure

echo "all tests passed"
