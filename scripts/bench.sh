#!/usr/bin/env bash
# One device call on the GPU host: build latentsync (scripts/gpu-build.sh: gpu-check.sh's FFmpeg + CMake steps, no tests), then
# `latentsync bench render` with the full-size random models; the table, the JSON and a plot (SVG) go to $OUT (or
# build-gpu/logs). Run it as the device command, e.g. `bash scripts/bench.sh`. Needs .deps/src from
# scripts/fetch-gpu-host-sources.sh, as gpu-check.sh does.
#
# Narrow or widen the runs (the defaults keep the call under about 9 minutes of device time: the build takes
# about 4, the renders of 50 and 200 frames about 4 more; 500 frames of every mode needs a call of its own per
# model, e.g. LSYNC_BENCH_MODELS=1.6 LSYNC_BENCH_FRAMES=500):
#   LSYNC_BENCH_MODELS     default 1.5,1.6
#   LSYNC_BENCH_ATTENTION  default flash,flex,standard
#   LSYNC_BENCH_FRAMES     default 50,200
#   LSYNC_BENCH_ARGS       more `bench render` options (e.g. "--repeat 3", "--devices 0,1")
#   LSYNC_BENCH_TIMEOUT    seconds the benchmark may run (default 300): the JSON holds every row finished by then
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
LOGS="${OUT:-$ROOT/build-gpu/logs}"
mkdir -p "$LOGS"
BUILD_DIR="${BUILD_DIR:-$ROOT/build-gpu}"

BUILD_DIR="$BUILD_DIR" bash scripts/gpu-build.sh "$LOGS/gpu-check.log"

echo "== bench render ($(date +%T))"
# shellcheck disable=SC2086  # LSYNC_BENCH_ARGS is a list of options
set +e
timeout --signal=INT --kill-after=30 "${LSYNC_BENCH_TIMEOUT:-300}" "$BUILD_DIR/bin/latentsync" bench render \
    --models "${LSYNC_BENCH_MODELS:-1.5,1.6}" --attention "${LSYNC_BENCH_ATTENTION:-flash,flex,standard}" \
    --frames "${LSYNC_BENCH_FRAMES:-50,200}" --model-dir "$ROOT/tests/fixtures/face-api" \
    --json "$LOGS/bench-render.json" ${LSYNC_BENCH_ARGS:-} > "$LOGS/bench-render.md" 2> "$LOGS/bench-render.err"
rc=$?
set -e
cat "$LOGS/bench-render.md"
# Time and memory against the frames per mode (scripts/plot_bench.py): an SVG here; a PNG where an ffmpeg CLI is
# (not on the GPU host: `python3 scripts/plot_bench.py bench-render.json -o x.svg --png x.png` on the CPU machine).
png=()
command -v ffmpeg > /dev/null && png=(--png "$LOGS/bench-render.png")
python3 "$ROOT/scripts/plot_bench.py" "$LOGS/bench-render.json" -o "$LOGS/bench-render.svg" "${png[@]}" \
    || echo "plot_bench.py failed (its reason above); the table above stands"
[ $rc = 0 ] || { echo "bench render exited $rc (124 or 130: the time limit; the rows so far are kept)"; tail -5 "$LOGS/bench-render.err"; }
exit $rc
