#!/usr/bin/env bash
# README command 1: installs dependencies, builds, and profiles the whole host
# for 10 s into ./profile/ (cpu.pb.gz, cpu.folded, cpu.svg). Run as root.
# Extra arguments go to pipeline, e.g. tools/run.sh --frequency 999.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j "$(nproc)" -- --no-print-directory
exec build/bin/pipeline --shards auto --duration 10 --output profile "$@"
