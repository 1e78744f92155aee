#!/usr/bin/env bash
# Host memory of a render does not grow with the video: the peak resident size of a 60 s render is within 10 %
# of a 10 s one. A 2 s, 480x360 clip of a real face ping-pongs under the speech (so the decoder, its window and
# the backwards re-decodes run all the time) with the tiny model; 10 fps and one DDIM step keep it short (100
# and 600 frames). Both lengths are past what the bounded buffers hold (the encoder's queue, x264's lookahead,
# the frame window), so a difference is growth.
source "$(dirname "$0")/lib.sh"
FIX="$(cd "$(dirname "$0")/../fixtures/face-api" && pwd)"
cd "$WORK"

ffmpeg -v error -y -loop 1 -i "$FIX/sample2.jpg" -vf "scale=960:-2,crop=480:360:'480-20*sin(t)':0,format=yuv420p" \
    -t 2 -r 25 -c:v libx264 -crf 18 clip.mp4 || fail "make clip"
peak() {  # "peak_rss_bytes frames" of a render of $1 seconds of audio
    "$BIN" -q debug synth "speech$1.wav" --seconds "$1" --audio-rate 16000 --channels 1 || return 1
    "$BIN" render --model test-tiny --weights random --model-dir "$FIX" --device cpu --json-log --steps 1 \
        --fps 10 clip.mp4 "speech$1.wav" -o "out$1.mp4" 2> "events$1.jsonl" || return 1
    python3 -c 'import json,sys; f=json.loads(open(sys.argv[1]).read().splitlines()[-1]); assert f["event"]=="finish" and f["lipsynced"]==f["frames"]; print(f["peak_rss_bytes"], f["frames"])' "events$1.jsonl"
}
result=$(peak 10) || { fail "render of 10 s"; finish; }
read -r short frames_short <<<"$result"
result=$(peak 60) || { fail "render of 60 s"; finish; }
read -r long frames_long <<<"$result"
echo "peak RSS: 10 s ($frames_short frames) $((short / 1048576)) MiB, 60 s ($frames_long frames) $((long / 1048576)) MiB"
[ "$frames_short" = 100 ] && [ "$frames_long" = 600 ] || fail "frame counts $frames_short / $frames_long"
python3 -c "import sys; sys.exit(0 if $long <= 1.10 * $short else 1)" || fail "host memory grew with the video"
finish
