#!/usr/bin/env bash
# The build step of the one-call GPU benchmarks (scripts/bench.sh, scripts/bench-idle.sh): gpu-check.sh's FFmpeg
# and CMake steps with the latentsync target and a test filter that selects nothing (its GPU render check and
# doctor run too, well under a minute). Its own logs stay in the build folder; its output goes to LOG.
# Succeeds when the binary exists: gpu-check.sh also fails when only its render check does, and a benchmark
# needs just the binary.
#   BUILD_DIR=... bash scripts/gpu-build.sh LOG
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LOG=${1:?usage: gpu-build.sh LOG}
BUILD_DIR="${BUILD_DIR:-$ROOT/build-gpu}"
echo "== build ($(date +%T))"
if ! BUILD_DIR="$BUILD_DIR" OUT="$BUILD_DIR/logs" LSYNC_BUILD_TARGETS=latentsync LSYNC_TEST_REGEX='^$' \
        bash "$ROOT/scripts/gpu-check.sh" > "$LOG" 2>&1; then
    [ -x "$BUILD_DIR/bin/latentsync" ] || { tail -40 "$LOG"; exit 1; }
    echo "(gpu-check.sh reported a failure; see $(basename "$LOG"))"
fi
