#!/usr/bin/env bash
# The end-to-end parity check through the command line: `latentsync render` with the official golden's tiny
# weights, its faces as a --face-track file, its noise draws (test hook LSYNC_TEST_NOISE_FILE), the options that
# restore the official behaviour, and a lossless RGB output, against the official final frames
# (tests/fixtures/render_tiny, docs/parity.md). The library test test_render_parity compares every stage.
FX="$(cd "$(dirname "$0")/../fixtures" && pwd)"
source "$(dirname "$0")/lib.sh"
cd "$WORK"
T="$FX/render_tiny"

LSYNC_TEST_NOISE_FILE="$T/parity.safetensors" "$BIN" -q render "$T/input.mkv" "$T/input.wav" -o out.mkv --lossless \
    --model test-tiny --model-dir "$FX/assets" --unet "$FX/golden/unet_tiny_latentsync_unet.pt" \
    --vae "$FX/golden/vae_tiny" --whisper "$FX/golden/whisper_tiny_random.pt" --device cpu --dtype float32 \
    --face-track "$T/face_track.json" --smooth official --length official --audio-segmentation official \
    --on-missing-face fail --progress none || fail "render"

[ "$(ffprobe -v error -count_frames -select_streams v:0 -show_entries stream=nb_read_frames -of csv=p=0 out.mkv)" = 40 ] \
    || fail "frame count (want the official 40)"
[ "$(ffprobe -v error -select_streams v:0 -show_entries stream=codec_name -of csv=p=0 out.mkv)" = ffv1 ] || fail "not lossless"
ffmpeg -v error -i out.mkv -f rawvideo -pix_fmt rgb24 ours.rgb || fail "decode ours"
ffmpeg -v error -i "$T/restored.mkv" -f rawvideo -pix_fmt rgb24 official.rgb || fail "decode official"
python3 - ours.rgb official.rgb <<'PY' || fail "restored frames differ from the official ones beyond the bound"
import sys
a, b = open(sys.argv[1], "rb").read(), open(sys.argv[2], "rb").read()
assert len(a) == len(b) == 40 * 192 * 192 * 3, (len(a), len(b))
diffs = [abs(x - y) for x, y in zip(a, b)]
mean, worst = sum(diffs) / len(diffs), max(diffs)
print(f"[parity] restored frames through the CLI: mean abs {mean:.4f} levels, max {worst}")
assert mean <= 0.05 and worst <= 2, (mean, worst)
PY

# Option checks of the two options this comparison added.
expect_rc 2 "--length" -- "$BIN" -q render "$T/input.mkv" "$T/input.wav" -o x.mkv --length long
expect_rc 2 ".mkv" -- "$BIN" -q render "$T/input.mkv" "$T/input.wav" -o x.mp4 --lossless --model test-tiny \
    --weights random --device cpu --model-dir "$FX/assets" --face-track "$T/face_track.json"
finish
