#!/usr/bin/env bash
# Renders a clip with the full-size random models and prints each render's summary (time per stage, frames/s,
# host and GPU peaks): the numbers of docs/benchmarks.md "render". Usage:
#   bash scripts/bench-render.sh BIN VIDEO AUDIO [OUTDIR]
# LSYNC_RENDER_MODELS (default "1.5 1.6"), LSYNC_RENDER_ATTENTION (default "auto"), LSYNC_RENDER_BATCH (chunks
# per UNet call, default "0" = auto) and LSYNC_RENDER_SECONDS (synthetic audio of these lengths instead of AUDIO,
# default 0: AUDIO itself) choose the runs.
set -euo pipefail
BIN=${1:?usage: bench-render.sh BIN VIDEO AUDIO [OUTDIR]}
VIDEO=${2:?video}
AUDIO=${3:?audio}
OUTDIR=${4:-$(mktemp -d)}
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
mkdir -p "$OUTDIR"
failed=0
for model in ${LSYNC_RENDER_MODELS:-1.5 1.6}; do
    for attention in ${LSYNC_RENDER_ATTENTION:-auto}; do
        for seconds in ${LSYNC_RENDER_SECONDS:-0}; do
          for batch in ${LSYNC_RENDER_BATCH:-0}; do
            tag="render-$model-$attention-${seconds}s-b$batch"
            echo "== $tag ($(date +%T))"
            audio="$AUDIO"
            if [ "$seconds" != 0 ]; then
                # Synthetic tones of that length, made by our own writer (the GPU host has no ffmpeg CLI).
                audio="$OUTDIR/speech-${seconds}s.wav"
                [ -f "$audio" ] || "$BIN" -q debug synth "$audio" --seconds "$seconds" --audio-rate 16000 --channels 1
            fi
            "$BIN" render "$VIDEO" "$audio" -o "$OUTDIR/$tag.mp4" --overwrite --model "$model" --weights random \
                --model-dir "$ROOT/tests/fixtures/face-api" --attention "$attention" --batch-chunks "$batch" \
                --json-log 2> "$OUTDIR/$tag.jsonl" || { tail -3 "$OUTDIR/$tag.jsonl"; failed=1; continue; }
            tail -1 "$OUTDIR/$tag.jsonl"
          done
        done
    done
done
exit $failed
