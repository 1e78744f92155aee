#!/usr/bin/env bash
# Installs what is missing, builds latentsync, checks this machine with `doctor`, then runs the media pipeline
# on a generated demo clip. Until `render` exists the demo stops at a decode -> encode pass-through with the
# speech muxed in; it will render once the model pipeline lands.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/scripts/install-deps.sh"
LSYNC_TESTS=OFF "$ROOT/scripts/build.sh" --target latentsync
BIN="${BUILD_DIR:-$ROOT/build}/bin/latentsync"
OUT="${DEMO_DIR:-$ROOT/demo-out}"
mkdir -p "$OUT"

echo "== latentsync doctor"
"$BIN" doctor || echo "(doctor: not ready to render here; see the fixes above)"

echo "== demo input"
"$BIN" debug synth "$OUT/input.mp4" --seconds 4 --fps 30 --size 640x360 --overwrite
"$BIN" debug synth "$OUT/speech.m4a" --seconds 4 --audio-rate 44100 --overwrite
"$BIN" probe "$OUT/input.mp4"

echo "== media pipeline (pass-through at 25 fps; the lip-sync render is not implemented yet)"
"$BIN" debug passthrough "$OUT/input.mp4" "$OUT/speech.m4a" -o "$OUT/output.mp4" --fps 25 --overwrite
"$BIN" probe "$OUT/output.mp4"
echo "demo output: $OUT/output.mp4"
