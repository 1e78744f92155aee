#!/usr/bin/env bash
# One device call: build latentsync (scripts/gpu-build.sh), then `bench render --busy` per model on the
# GPUs of LSYNC_DEVICE_SETS (default "0"), and print for each run its GPU busy fraction, where the idle time went
# (the largest /gpu_idle/ shares: stage > host op, docs/performance-notes.md section 5), where the worker's host
# time went in its first group against a later one (/first_group_host/, section 37) and the GPU peak with and
# without the face pass. The JSON files go to $OUT (or build-gpu/logs). Needs .deps/src as gpu-check.sh does.
#   LSYNC_BENCH_MODELS (default "1.5 1.6"), LSYNC_BENCH_FRAMES (default 200)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
LOGS="${OUT:-$ROOT/build-gpu/logs}"
mkdir -p "$LOGS"
BUILD_DIR="${BUILD_DIR:-$ROOT/build-gpu}"
BIN="$BUILD_DIR/bin/latentsync"

BUILD_DIR="$BUILD_DIR" bash scripts/gpu-build.sh "$LOGS/gpu-check.log"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
for model in ${LSYNC_BENCH_MODELS:-1.5 1.6}; do
    for set in ${LSYNC_DEVICE_SETS:-0}; do
        json="$LOGS/idle-$model-${set//,/_}.json"
        echo "== $model on $set ($(date +%T))"
        "$BIN" bench render --models "$model" --attention flash --frames "${LSYNC_BENCH_FRAMES:-200}" \
            --devices "$set" --busy --model-dir tests/fixtures/face-api --work "$WORK" --json "$json" \
            > /dev/null 2> "$LOGS/idle-$model-${set//,/_}.err" || { tail -5 "$LOGS/idle-$model-${set//,/_}.err"; continue; }
        python3 - "$json" <<'PY'
import json, sys
row = json.load(open(sys.argv[1]))["rows"][0]
if not row.get("ok"):
    sys.exit("failed: " + row.get("error", "?"))
print("render stage %.2f s, GPU peak %.2f GiB, after the face pass %.2f GiB" % (
    row["stage_seconds"]["render"], row["gpu_peak_bytes"] / 2**30, row.get("gpu_peak_after_faces_bytes", 0) / 2**30))
for dev, b in sorted(row.get("gpu_busy", {}).items()):
    print("%s busy %.1f %% of %.2f s, %.1f %% of the %.2f s after the first frames" % (
        dev, 100 * b["fraction"], b["window_seconds"], 100 * b.get("after_first_fraction", 0),
        b.get("after_first_window_seconds", 0)))
    for where, seconds in sorted(row.get("gpu_idle", {}).get(dev, {}).items(), key=lambda kv: -kv[1]):
        print("   idle %7.3f s  %s" % (seconds, where))
    shares = row.get("first_group_host", {}).get(dev, {})
    if shares:
        print("   the worker's host time, first group against a later one's average (s, largest excess first):")
    for where, t in sorted(shares.items(), key=lambda kv: -(kv[1]["first_seconds"] - kv[1]["later_seconds"])):
        print("   %7.3f  %7.3f  %s" % (t["first_seconds"], t["later_seconds"], where))
PY
    done
done
