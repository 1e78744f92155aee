#!/usr/bin/env bash
# The first thing to run on a new machine: installs what is missing, builds latentsync, checks the machine with
# `doctor`, makes a talking-head clip from one of face-api's sample photos (a slow pan) with synthesised speech
# (espeak-ng), and renders it: with the real LatentSync weights when `doctor` finds them, otherwise with the
# tiny test model and random weights (the whole pipeline runs; the mouth region is noise). Writes the video and
# a preview sheet (input crop | masked | generated | pasted) into demo-out/ (or $DEMO_DIR).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/scripts/install-deps.sh"
if ! command -v espeak-ng >/dev/null; then
    SUDO=""
    [ "$(id -u)" = 0 ] || SUDO=sudo
    echo "[demo] installing espeak-ng (speech synthesis for the demo)"
    $SUDO apt-get install -y -qq --no-install-recommends espeak-ng >/dev/null
fi
LSYNC_TESTS=OFF "$ROOT/scripts/build.sh" --target latentsync
BIN="${BUILD_DIR:-$ROOT/build}/bin/latentsync"
OUT="${DEMO_DIR:-$ROOT/demo-out}"
MODELS="${LATENTSYNC_MODEL_DIR:-$HOME/.cache/latentsync}"
mkdir -p "$OUT"

echo "== face models"
FACES="$MODELS"
if [ ! -f "$MODELS/face-api/ssd_mobilenetv1_model-weights_manifest.json" ]; then
    bash "$ROOT/scripts/fetch-face-models.sh" "$MODELS/face-api" ||
        { echo "[demo] could not fetch the face models; using the copy in tests/fixtures"; FACES="$ROOT/tests/fixtures/face-api"; }
fi

echo "== latentsync doctor"
"$BIN" doctor --model-dir "$MODELS" || echo "(doctor: see the fixes above)"
# Real weights: a UNet, the VAE and Whisper, as `models verify` finds them usable.
VERSION=""
if "$BIN" -q models verify --model-dir "$MODELS" --json > "$OUT/models.json" 2>/dev/null || [ -s "$OUT/models.json" ]; then
    VERSION=$(python3 - "$OUT/models.json" <<'PY'
import json, sys
try:
    files = {f["component"]: f["ok"] for f in json.load(open(sys.argv[1]))["files"]}
except Exception:
    sys.exit(0)
if files.get("vae") and files.get("whisper-tiny"):
    for v in ("1.6", "1.5"):
        if files.get("unet-" + v):
            print(v)
            break
PY
)
fi

echo "== demo input: speech and a slow pan over a photo"
espeak-ng -s 150 -w "$OUT/speech.wav" \
    "Hello. This video was lip synced by latentsync, a native renderer for the LatentSync model. The mouth you see follows this voice."
SECONDS_OF_SPEECH=$("$BIN" probe "$OUT/speech.wav" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["audio"]["duration"])')
ffmpeg -v error -y -loop 1 -i "$ROOT/tests/fixtures/face-api/sample1.jpg" \
    -vf "scale=1280:-2,crop=640:480:'330+40*sin(t*0.5)':'220+10*sin(t*0.7)',format=yuv420p" \
    -t "$SECONDS_OF_SPEECH" -r 25 -c:v libx264 -crf 18 "$OUT/input.mp4"

echo "== render"
if [ -n "$VERSION" ]; then
    MODEL=(--model "$VERSION" --model-dir "$MODELS")
else
    echo "[demo] the LatentSync weights are not here (see doctor above): rendering with the tiny test model and random"
    echo "[demo] weights. The mouth region will be noise; put the weights in $MODELS for a real result."
    MODEL=(--model test-tiny --weights random --model-dir "$FACES")
fi
"$BIN" render "$OUT/input.mp4" "$OUT/speech.wav" -o "$OUT/output.mp4" --overwrite "${MODEL[@]}" \
    --preview "$OUT/preview.png"
"$BIN" probe "$OUT/output.mp4"
echo "demo output: $OUT/output.mp4 (preview: $OUT/preview.png)"
