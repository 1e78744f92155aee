#!/usr/bin/env bash
# One device call: where the 1.5 render's GPU peak is set, and what the VAE's images per call trade for it
# (issue 13's 4 GB; docs/performance-notes.md section 11). Builds latentsync (scripts/gpu-build.sh), then per
# value of LSYNC_VAE_IMAGES (default "8 4 2"; 4 is the 256 px default) one `bench render` of 1.5 (500 frames:
# render stage, GPU peak with and after the face pass) and one traced `render` of the same clip
# (LSYNC_TRACE_STAGE_MEMORY=1), printing the stages at which the allocator's peak rose. JSON and traces go to
# $OUT (or build-gpu/logs). Needs .deps/src as gpu-check.sh does.
#   LSYNC_MEMORY_VAE_IMAGES (default "8 4 2"), LSYNC_BENCH_FRAMES (default 500)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
LOGS="${OUT:-$ROOT/build-gpu/logs}"
mkdir -p "$LOGS"
BUILD_DIR="${BUILD_DIR:-$ROOT/build-gpu}"
BIN="$BUILD_DIR/bin/latentsync"
FRAMES="${LSYNC_BENCH_FRAMES:-500}"
FACES=tests/fixtures/face-api

BUILD_DIR="$BUILD_DIR" bash scripts/gpu-build.sh "$LOGS/gpu-check.log"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
"$BIN" bench render --inputs-only --frames "$FRAMES" --work "$WORK" --model-dir "$FACES" > /dev/null
for images in ${LSYNC_MEMORY_VAE_IMAGES:-8 4 2}; do
    echo "== LSYNC_VAE_IMAGES=$images ($(date +%T))"
    json="$LOGS/memory-vae$images.json"
    LSYNC_VAE_IMAGES=$images "$BIN" bench render --models 1.5 --attention flash --frames "$FRAMES" \
        --model-dir "$FACES" --work "$WORK" --json "$json" > /dev/null 2> "$LOGS/memory-vae$images.err" ||
        { tail -5 "$LOGS/memory-vae$images.err"; continue; }
    python3 - "$json" <<'PY'
import json, sys
row = json.load(open(sys.argv[1]))["rows"][0]
if not row.get("ok"):
    sys.exit("failed: " + row.get("error", "?"))
gib = 2 ** 30
print("render stage %.2f s (%.1f frames/s), VAE encode %.2f s, decode %.2f s; GPU peak %.3f GiB (%.3f GB), "
      "after the face pass %.3f GiB (%.3f GB)" % (
    row["stage_seconds"]["render"], row["render_fps"], row["chunk_stage_seconds"]["vae_encode"],
    row["chunk_stage_seconds"]["vae_decode"], row["gpu_peak_bytes"] / gib, row["gpu_peak_bytes"] / 1e9,
    row["gpu_peak_after_faces_bytes"] / gib, row["gpu_peak_after_faces_bytes"] / 1e9))
PY
    trace="$LOGS/memory-vae$images.trace"
    LSYNC_VAE_IMAGES=$images LSYNC_TRACE_STAGE_MEMORY=1 "$BIN" render "$WORK/face720p_$FRAMES.mp4" \
        "$WORK/speech_$FRAMES.wav" -o "$WORK/traced.mp4" --overwrite --weights random --model-dir "$FACES" \
        --model 1.5 > /dev/null 2> "$trace" || { tail -5 "$trace"; continue; }
    # The trace prints the peak so far after each stage (and around the first worker's pre-warm): the lines where
    # it rose say which stage set it. A group's lines start with "after start".
    python3 - "$trace" <<'PY'
import re, sys
peak, group = 0.0, -1
for line in open(sys.argv[1]):
    m = re.match(r"stage memory: (.+?),? +peak ([0-9.]+) GiB, held ([0-9.]+) GiB", line)
    if not m:
        continue
    where = m.group(1)
    if where == "after start":
        group += 1
    if float(m.group(2)) > peak + 0.005:
        peak = float(m.group(2))
        at = "pre-warm" if group < 0 else "call %d" % group
        print("   %s, %-36s peak %.2f GiB (held %s GiB)" % (at, where, peak, m.group(3)))
PY
done
