#!/usr/bin/env bash
# `latentsync render` end to end on a clip of a real face with the tiny model: length follows the audio, the
# audio is muxed unchanged, pixels away from the face are those of a plain re-encode, the same seed gives the
# same frames and another seed another mouth, --json-log events, and the output names its settings.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/render_lib.sh"
cd "$WORK"

make_face_clip clip.mp4 1.2 25 || fail "make clip"
make_speech speech.wav 1.5 || fail "make speech"

# Lossless output (x264 --crf 0 in .mkv) so that regions can be compared exactly. The first render runs the face
# detector on every frame (the default); a.mkv, which the later renders are compared with, tracks between
# detections as R does.
"${R_DETECT_ALL[@]}" clip.mp4 speech.wav -o all.mkv --crf 0 --steps 4 --json-log 2> events.jsonl || fail "render"
"${R[@]}" clip.mp4 speech.wav -o a.mkv --crf 0 --steps 4 || fail "render, detector every 4th frame"
[ -s all.mkv ] && [ -s a.mkv ] || fail "no output"
[ "$(probe all.mkv nb_read_frames v:0)" = 38 ] || fail "frame count $(probe all.mkv nb_read_frames v:0), want 38"
# 1.5 s at 25 fps: 38 frames (the last one holds the audio's end); the 30-frame clip continues ping-pong.
[ "$(probe a.mkv nb_read_frames v:0)" = 38 ] || fail "frame count $(probe a.mkv nb_read_frames v:0), want 38"
[ "$(probe a.mkv r_frame_rate v:0)" = 25/1 ] || fail "frame rate $(probe a.mkv r_frame_rate v:0)"
[ "$(probe a.mkv sample_rate a:0)" = 44100 ] || fail "audio rate changed: $(probe a.mkv sample_rate a:0)"
[ "$(probe a.mkv channels a:0)" = 2 ] || fail "audio channels changed"
ffprobe -v error -show_entries format_tags -of default "a.mkv" | grep -qi "seed 1247" || fail "settings not in metadata"
python3 - events.jsonl <<'PY' || fail "--json-log events"
import json, sys
events = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
kinds = [e["event"] for e in events]
assert kinds[-1] == "finish", kinds[-3:]
fin = events[-1]
assert fin["frames"] == 38 and fin["lipsynced"] == 38 and fin["passed_through"] == 0, fin
assert fin["source_frames"] == 30 and fin["chunks"] == 3, fin
assert any(e["event"] == "warning" and "random" in e["message"] for e in events)
assert any(e["event"] == "stage" and e["stage"] == "render" for e in events)
PY

# Away from the face the frames are the input's, exactly: compare a corner with a plain lossless re-encode
# (the same decode -> RGB -> encode path without the model).
"$BIN" -q debug passthrough clip.mp4 speech.wav -o plain.mkv --crf 0 || fail "passthrough"
corner="crop=96:64:0:296,trim=end_frame=30"
[ "$(frame_md5 a.mkv "$corner")" = "$(frame_md5 plain.mkv "$corner")" ] || fail "pixels far from the face changed"
[ "$(frame_md5 all.mkv "$corner")" = "$(frame_md5 plain.mkv "$corner")" ] || fail "pixels far from the face changed (every-frame detection)"
[ "$(frame_md5 a.mkv "crop=96:96:200:120,trim=end_frame=30")" != "$(frame_md5 plain.mkv "crop=96:96:200:120,trim=end_frame=30")" ] \
    || fail "the mouth region was not regenerated"

# Same seed: the same frames; another seed: another mouth.
"${R[@]}" clip.mp4 speech.wav -o b.mkv --crf 0 --steps 4 || fail "render again"
[ "$(frame_md5 a.mkv)" = "$(frame_md5 b.mkv)" ] || fail "same seed, different frames"
"${R[@]}" clip.mp4 speech.wav -o c.mkv --crf 0 --steps 4 --seed 7 || fail "render with another seed"
[ "$(frame_md5 a.mkv)" != "$(frame_md5 c.mkv)" ] || fail "another seed, same frames"

# Two workers (--devices cpu,cpu: the split and the in-order merge of a multi-GPU render, on the CPU): the same
# frames as one, since every chunk carries its own noise.
"${R[@]}" clip.mp4 speech.wav -o w2.mkv --crf 0 --steps 4 --devices cpu,cpu || fail "--devices cpu,cpu"
[ "$(frame_md5 w2.mkv)" = "$(frame_md5 a.mkv)" ] || fail "two workers: frames differ from one"
expect_rc 2 "--devices" -- "${R[@]}" clip.mp4 speech.wav -o x.mkv --devices cpu,,cpu
expect_rc 2 "--devices must be" -- "${R[@]}" clip.mp4 speech.wav -o x.mkv --devices tpu

# Several chunks per UNet call: the same frames up to the summation order of the batched kernels (a few
# pixels one level apart). An out-of-memory error (injected) on the first batched call (chunks 0 and 1: chunk 2
# holds 6 frames and runs alone) halves that group and retries the same chunks, here one at a time, so the
# frames are exactly those of the unbatched render.
"${R[@]}" clip.mp4 speech.wav -o b2.mkv --crf 0 --steps 4 --batch-chunks 2 || fail "--batch-chunks 2"
LSYNC_TEST_INJECT_OOM=1 "${R[@]}" clip.mp4 speech.wav -o oom.mkv --crf 0 --steps 4 --batch-chunks 4 --json-log \
    2> oom.jsonl || fail "render after an out-of-memory error"
grep -q '"oom_retries":1' oom.jsonl || fail "the out-of-memory error was not retried once"
grep -q 'retrying with 1 chunk(s) per UNet call (injected out-of-memory error' oom.jsonl ||
    fail "no warning about the smaller batch, with the allocator's words"
grep -q '"event":"warning".*standard attention' oom.jsonl || fail "a library warning did not become a JSON event"
[ "$(frame_md5 oom.mkv)" = "$(frame_md5 a.mkv)" ] || fail "the retried chunks differ from an unbatched render"
# With one chunk per call the chunk is run once more before the render fails (the UNet's CUDA graphs and the
# allocator's cache are given back first): the same frames.
LSYNC_TEST_INJECT_OOM=1 "${R[@]}" clip.mp4 speech.wav -o oom1.mkv --crf 0 --steps 4 --batch-chunks 1 --json-log \
    2> oom1.jsonl || fail "render after an out-of-memory error at one chunk per call"
grep -q 'with one chunk: trying it once more with the cache given back (injected out-of-memory error' oom1.jsonl ||
    fail "no warning about the chunk tried once more"
grep -q '"oom_retries":1' oom1.jsonl || fail "the one-chunk error was not retried once"
[ "$(frame_md5 oom1.mkv)" = "$(frame_md5 a.mkv)" ] || fail "the chunk tried once more differs from the render"
min_psnr=$(ffmpeg -i a.mkv -i b2.mkv -lavfi "[0][1]psnr" -f null - 2>&1 | sed -n 's/.*min:\([0-9.inf]*\).*/\1/p')
python3 -c "import sys; v='$min_psnr'; sys.exit(0 if v and (v == 'inf' or float(v) >= 60) else 1)" \
    || fail "batch 1 and batch 2 differ more than rounding (min PSNR $min_psnr dB)"

# An existing output is kept unless --overwrite.
expect_rc 10 "exists" -- "${R[@]}" clip.mp4 speech.wav -o a.mkv --steps 1
"${R[@]}" clip.mp4 speech.wav -o a.mkv --steps 1 --overwrite || fail "--overwrite"
finish
