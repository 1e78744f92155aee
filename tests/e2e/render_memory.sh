#!/usr/bin/env bash
# Host memory of a render does not grow with the video: in a render of 60 s of speech, the resident size after
# the whole minute is within 10 % of what it was after the first 10 s (the --json-log progress events carry it).
# A 2 s, 480x360 clip of a real face ping-pongs under the speech (so the decoder, its window and the backwards
# re-decodes run all the time) with the tiny model; 10 fps and one DDIM step keep it short (600 frames). 10 s is
# past what the encoder's queue, x264's lookahead and the frame window hold, and the first segment's start-up
# memory stays above what later segments reach, so what comes after is growth. The whole peaks of a 30 s and the 60 s render must also be within 10 % (the issue's own
# measure; they varied by +-15 % from run to run until finished encoders and decoders handed their heap pages
# back, see diagnostics::release_free_host_memory). The shorter render must hold a whole work-folder segment
# (256 frames, 25.6 s here): the resident size grows within a segment and falls back when the segment's encoder
# finishes (one 60 s render: 800 -> 860 MiB over its first segment, 571 -> 712 over its second), so a 10 s render
# (100 frames) never reached the peak every longer render has (807-823 MiB against 825-904 MiB for 60 s; one CI
# run failed on it at 112 %).
source "$(dirname "$0")/lib.sh"
FIX="$(cd "$(dirname "$0")/../fixtures/face-api" && pwd)"
cd "$WORK"

ffmpeg -v error -y -loop 1 -i "$FIX/sample2.jpg" -vf "scale=960:-2,crop=480:360:'480-20*sin(t)':0,format=yuv420p" \
    -t 2 -r 25 -c:v libx264 -crf 18 clip.mp4 || fail "make clip"
peak() {  # "peak_rss_bytes frames rss_at_10s rss_at_end" of a render of $1 seconds of audio
    "$BIN" -q debug synth "speech$1.wav" --seconds "$1" --audio-rate 16000 --channels 1 || return 1
    "$BIN" render --model test-tiny --weights random --model-dir "$FIX" --device cpu --json-log --steps 1 \
        --detect-every 4 --fps 10 clip.mp4 "speech$1.wav" -o "out$1.mp4" 2> "events$1.jsonl" || return 1
    python3 - "events$1.jsonl" <<'PY'
import json, sys
events = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
f = events[-1]
assert f["event"] == "finish" and f["lipsynced"] == f["frames"], f
render = [e for e in events if e["event"] == "progress" and e["stage"] == "render"]
at_10s = max(e["rss_bytes"] for e in render if e["done"] <= 100)
print(f["peak_rss_bytes"], f["frames"], at_10s, render[-1]["rss_bytes"])
PY
}
result=$(peak 30) || { fail "render of 30 s"; finish; }
read -r short frames_short _ _ <<<"$result"
result=$(peak 60) || { fail "render of 60 s"; finish; }
read -r long frames_long at_10s at_end <<<"$result"
echo "RSS in the 60 s render: $((at_10s / 1048576)) MiB after 10 s, $((at_end / 1048576)) MiB after 60 s;" \
     "peaks: 30 s render $((short / 1048576)) MiB, 60 s render $((long / 1048576)) MiB"
[ "$frames_short" = 300 ] && [ "$frames_long" = 600 ] || fail "frame counts $frames_short / $frames_long"
python3 -c "import sys; sys.exit(0 if $at_end <= 1.10 * $at_10s else 1)" || fail "host memory grew with the video"
python3 -c "import sys; sys.exit(0 if $long <= 1.10 * $short else 1)" || fail "the 60 s render's peak is over 110 % of the 30 s one's"
finish
