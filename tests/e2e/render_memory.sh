#!/usr/bin/env bash
# Host memory of a render does not grow with the video: the peak resident size of a 60 s render is within 10 %
# of a 10 s one. A talking head from a 480x360 still of a real face with the tiny model; 10 fps and one DDIM
# step keep it short (100 and 600 frames), and every frame still goes through every stage. Both lengths are
# past what the bounded buffers hold (the encoder's queue, x264's lookahead), so a difference is growth.
source "$(dirname "$0")/lib.sh"
FIX="$(cd "$(dirname "$0")/../fixtures/face-api" && pwd)"
cd "$WORK"

ffmpeg -v error -y -i "$FIX/sample2.jpg" -vf "scale=960:-2,crop=480:360:480:0" still.png || fail "make still"
peak() {  # "peak_rss_bytes frames" of a render of $1 seconds of audio
    "$BIN" -q debug synth "speech$1.wav" --seconds "$1" --audio-rate 16000 --channels 1 || fail "synth $1 s"
    "$BIN" render --model test-tiny --weights random --model-dir "$FIX" --device cpu --json-log --steps 1 \
        --fps 10 still.png "speech$1.wav" -o "out$1.mp4" 2> "events$1.jsonl" || fail "render $1 s"
    python3 -c 'import json,sys; f=json.loads(open(sys.argv[1]).read().splitlines()[-1]); assert f["event"]=="finish" and f["lipsynced"]==f["frames"]; print(f["peak_rss_bytes"], f["frames"])' "events$1.jsonl"
}
read -r short frames_short < <(peak 10)
read -r long frames_long < <(peak 60)
echo "peak RSS: 10 s ($frames_short frames) $((short / 1048576)) MiB, 60 s ($frames_long frames) $((long / 1048576)) MiB"
[ "$frames_short" = 100 ] && [ "$frames_long" = 600 ] || fail "frame counts $frames_short / $frames_long"
python3 -c "import sys; sys.exit(0 if $long <= 1.10 * $short else 1)" || fail "host memory grew with the video"
finish
