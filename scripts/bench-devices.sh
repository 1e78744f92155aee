#!/usr/bin/env bash
# Multi-GPU scaling of one render (docs/benchmarks.md "several GPUs"): renders VIDEO + AUDIO with the full-size
# random models on each device list of LSYNC_DEVICE_SETS (default "0 0,1"), checks that every output equals the
# first list's byte for byte (same frames, same encode), and samples each GPU's utilisation while it runs.
#   bash scripts/bench-devices.sh BIN [VIDEO AUDIO] [OUTDIR]
# Without VIDEO and AUDIO it makes `bench render`'s 500-frame 720p clip and its speech in OUTDIR/inputs
# (`bench render --inputs-only`), so one device call needs nothing but the binary.
# LSYNC_RENDER_MODELS (default "1.5 1.6") picks the models.
set -euo pipefail
BIN=${1:?usage: bench-devices.sh BIN [VIDEO AUDIO] [OUTDIR]}
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ $# -eq 2 ] && [ -f "$2" ]; then
    echo "bench-devices.sh: give both VIDEO and AUDIO, or neither (then OUTDIR only)" >&2
    exit 2
elif [ $# -ge 3 ]; then
    VIDEO=$2 AUDIO=$3 OUTDIR=${4:-$(mktemp -d)}
else
    OUTDIR=${2:-$(mktemp -d)}
    mkdir -p "$OUTDIR/inputs"
    "$BIN" bench render --inputs-only --frames 500 --work "$OUTDIR/inputs" --model-dir "$ROOT/tests/fixtures/face-api" >/dev/null
    VIDEO="$OUTDIR/inputs/face720p_500.mp4" AUDIO="$OUTDIR/inputs/speech_500.wav"
fi
mkdir -p "$OUTDIR"
failed=0
for model in ${LSYNC_RENDER_MODELS:-1.5 1.6}; do
    first=""
    for set in ${LSYNC_DEVICE_SETS:-0 0,1}; do
        tag="devices-$model-${set//,/_}"
        echo "== $tag ($(date +%T))"
        nvidia-smi --query-gpu=index,utilization.gpu --format=csv,noheader,nounits -lms 250 > "$OUTDIR/$tag.util" &
        smi=$!
        "$BIN" render "$VIDEO" "$AUDIO" -o "$OUTDIR/$tag.mp4" --overwrite --model "$model" --weights random \
            --model-dir "$ROOT/tests/fixtures/face-api" --devices "$set" --json-log 2> "$OUTDIR/$tag.jsonl" \
            || { tail -3 "$OUTDIR/$tag.jsonl"; failed=1; kill $smi; continue; }
        kill $smi || true
        tail -1 "$OUTDIR/$tag.jsonl"
        # Mean utilisation per GPU over the samples taken while the render stage ran (the busiest stretch:
        # samples above 0 after the first non-zero one).
        awk -F', ' '{ if ($2 > 0) seen[$1] = 1; if (seen[$1]) { sum[$1] += $2; n[$1]++ } }
            END { for (g in sum) printf "gpu %s: mean utilisation %.0f %% over %d samples\n", g, sum[g] / n[g], n[g] }' \
            "$OUTDIR/$tag.util"
        if [ -z "$first" ]; then
            first="$OUTDIR/$tag.mp4"
        elif cmp -s "$first" "$OUTDIR/$tag.mp4"; then
            echo "identical to $(basename "$first")"
        else
            echo "DIFFERS from $(basename "$first")"
            failed=1
        fi
    done
done
exit $failed
