#!/usr/bin/env bash
# Hostile options and files through the real binary (issue 12): every numeric option is finite and in range
# at parse time (exit 2, one line naming the option), special files are never replaced, a 1 Hz WAV cannot
# make hours of audio, SIGTERM stops like SIGINT, names that are not UTF-8 still give JSON. Cases that need
# the ffmpeg CLI to build their input run only where it exists.
source "$(dirname "$0")/lib.sh"
cd "$WORK"

# ---- numeric options: exit 2 and the option's name in the one error line ------------------------------
bad_option() {  # OPTION VALUE -- command prefix...
    local opt=$1 value=$2
    shift 3
    expect_rc 2 "$opt" -- "$@" "$opt" "$value"
}
# One process start costs ~0.4 s (LibTorch), so each option gets its telling values only: NaN / infinity
# (CLI::Range let them through), negative, absurdly large.
SYNTH=("$BIN" debug synth out.mp4)
for v in inf nan -1; do bad_option --seconds "$v" -- "${SYNTH[@]}"; done
for v in nan -5 1e9; do bad_option --fps "$v" -- "${SYNTH[@]}"; done
for v in 40000x40000 -16x16 1e3x100; do bad_option --size "$v" -- "${SYNTH[@]}"; done
bad_option --audio-rate 1 -- "${SYNTH[@]}"
PASS=("$BIN" debug passthrough a.mp4 b.wav -o out.mp4)
for v in nan 1e9; do bad_option --fps "$v" -- "${PASS[@]}"; done
bad_option --max-frames -1 -- "${PASS[@]}"
bad_option --preset turbo -- "${PASS[@]}"
RENDER=("$BIN" render a.mp4 b.wav -o out.mp4)
for v in nan -5 1e9 25/0; do bad_option --fps "$v" -- "${RENDER[@]}"; done
bad_option --crf 52 -- "${RENDER[@]}"
bad_option --steps 0 -- "${RENDER[@]}"
for v in nan inf; do bad_option --guidance "$v" -- "${RENDER[@]}"; done
bad_option --lip-focus nan -- "${RENDER[@]}"
bad_option --batch-chunks 65 -- "${RENDER[@]}"
bad_option --seed -1 -- "${RENDER[@]}"
bad_option --min-score nan -- "${RENDER[@]}"
bad_option --preset turbo -- "${RENDER[@]}"
bad_option --max-frames -1 -- "$BIN" debug faces a.jpg
bad_option --batch 0 -- "$BIN" debug faces a.jpg
for v in 0 nan; do bad_option --threads "$v" -- "$BIN" probe a.mp4; done
bad_option --lip-focus nan -- "$BIN" debug forward unet --inputs a.safetensors -o b.safetensors
bad_option --fps nan -- "$BIN" bench audio-stream a.wav
bad_option --seconds nan -- "$BIN" bench whisper
bad_option --res -64 -- "$BIN" bench attention
bad_option --seed -5 -- "$BIN" debug random-weights unet -o w.safetensors

# ---- outputs: containers we do not write, special files --------------------------------------------------
"$BIN" -q debug synth good.mp4 --seconds 1 --size 160x120 || fail "synth video"
"$BIN" -q debug synth speech.wav --seconds 1 || fail "synth audio"
expect_rc 2 "not the wav container" -- "$BIN" debug passthrough good.mp4 speech.wav -o out.wav
# Containers FFmpeg can write but latentsync does not: refused before any work (an .avi output failed only at the
# final join, after the whole render, as "input corrupt").
for ext in avi ts flv; do
    expect_rc 2 "latentsync writes .mp4, .mov or .mkv" -- "$BIN" debug passthrough good.mp4 speech.wav -o "out.$ext"
done
mkfifo pipe.mp4
expect_rc 10 "FIFO" -- "$BIN" debug passthrough good.mp4 speech.wav -o pipe.mp4 --overwrite
[ -p pipe.mp4 ] || fail "the FIFO was replaced"
echo precious > target.mp4 && ln -s target.mp4 link.mp4
expect_rc 10 "symbolic link" -- "$BIN" debug passthrough good.mp4 speech.wav -o link.mp4 --overwrite
[ -L link.mp4 ] && [ "$(cat target.mp4)" = precious ] || fail "the symlink or its target was replaced"
expect_rc 10 "character device" -- "$BIN" debug synth /dev/null --no-audio --overwrite

# ---- a WAV whose header claims 1 Hz (12 hours from 1 s): an input error, not hours of audio -------------
python3 - <<'PY'
import struct
n = 44100  # one second of 44.1 kHz samples, declared as 1 Hz (12 hours)
data = b"".join(struct.pack("<h", (i * 37) % 2000 - 1000) for i in range(n))
hdr = b"RIFF" + struct.pack("<I", 36 + len(data)) + b"WAVEfmt " + struct.pack("<IHHIIHH", 16, 1, 1, 1, 2, 2, 16)
open("onehz.wav", "wb").write(hdr + b"data" + struct.pack("<I", len(data)) + data)
PY
expect_rc 7 "implausible format (1 Hz" -- timeout 60 "$BIN" debug passthrough good.mp4 onehz.wav -o onehz.mp4
# Audio longer than the video stops where the video stops.
"$BIN" -q debug synth long_speech.wav --seconds 6 || fail "synth long speech"
"$BIN" -q debug passthrough good.mp4 long_speech.wav -o cut.mp4 || fail "passthrough with longer audio"
"$BIN" probe --json cut.mp4 > cut.json || fail "probe cut.mp4"
python3 - cut.json <<'PY' || fail "audio ran on past the video"
import json, sys
a = json.load(open(sys.argv[1]))["audio"]
assert a["duration"] < 1.8, a   # 1 s of video (+ at most 0.5 s look-ahead and one AAC frame)
PY

# ---- SIGTERM behaves like SIGINT: exit 130, nothing left behind ----------------------------------------
"$BIN" -q debug synth long.mp4 --seconds 10 --size 320x240 --no-audio || fail "synth long"
rc=$(stop_when TERM "find . -name '*.partial-*' | grep -q ." \
    "$BIN" -q debug passthrough long.mp4 speech.wav -o term.mp4 --preset veryslow)
[ "$rc" = 130 ] || fail "SIGTERM exit code $rc (want 130)"
[ ! -e term.mp4 ] || fail "terminated run left an output"
find . -name '*.partial-*' | grep -q . && fail "terminated run left a partial file"

# ---- names that are not UTF-8 still give valid JSON ----------------------------------------------------
bad=$(printf 'clip\377.mp4')
cp good.mp4 "$bad"
"$BIN" probe --json "$bad" > probe.json || fail "probe --json with a non-UTF-8 name"
python3 -c 'import json,sys; json.load(open(sys.argv[1]))' probe.json || fail "probe --json is not JSON"
"$BIN" -q debug random-weights unet -o w.safetensors --config "$(dirname "$0")/../fixtures/golden/unet_tiny_config.json" \
    || fail "random weights"
badw=$(printf 'w\377.safetensors')
cp w.safetensors "$badw"
"$BIN" models inspect --json "$badw" > inspect.json || fail "models inspect --json with a non-UTF-8 name"
python3 -c 'import json,sys; json.load(open(sys.argv[1]))' inspect.json || fail "models inspect --json is not JSON"

# ---- media that needs the ffmpeg CLI to make -----------------------------------------------------------
if command -v ffmpeg >/dev/null; then
    # FLAC into mp4 with --audio-codec auto: re-encoded to AAC (FFmpeg muxes FLAC in mp4 only as experimental).
    ffmpeg -v error -y -f lavfi -i sine=d=1 -c:a flac tone.flac || fail "make flac"
    "$BIN" debug passthrough good.mp4 tone.flac -o flac.mp4 2> flac.log || fail "FLAC into mp4 (auto)"
    grep -q "encoded to AAC" flac.log || fail "FLAC was not re-encoded to AAC"
    expect_rc 2 "use --audio-codec aac" -- "$BIN" debug passthrough good.mp4 tone.flac -o flac2.mp4 --audio-codec copy
    # The resolution changes mid-stream: later frames are scaled to the first size (as FFmpeg's tools do).
    "$BIN" -q debug synth small.mp4 --seconds 1 --size 160x120 --no-audio || fail "synth small"
    "$BIN" -q debug synth big.mp4 --seconds 1 --size 320x240 --no-audio || fail "synth big"
    for f in small big; do ffmpeg -v error -y -i $f.mp4 -c copy -bsf:v h264_mp4toannexb -f mpegts $f.ts || fail "ts"; done
    cat small.ts big.ts > change.ts
    "$BIN" -q debug passthrough change.ts speech.wav -o change.mp4 || fail "resolution change mid-stream"
fi
# FFmpeg speaks only with --debug: a truncated JPEG gives our one line, not mjpeg's "No JPEG data found".
head -c 3000 "$(dirname "$0")/../fixtures/face-api/sample1.jpg" > cut.jpg
expect_rc 7 "no decodable picture" -- "$BIN" debug faces cut.jpg --model-dir "$(dirname "$0")/../fixtures/face-api"
"$BIN" debug faces cut.jpg --model-dir "$(dirname "$0")/../fixtures/face-api" 2> cut.log
[ "$(wc -l < cut.log)" = 1 ] || fail "FFmpeg's own lines leaked: $(cat cut.log)"
# A JPEG whose header claims 16000x16000: an input error (7), not "out of memory" (13).
python3 - "$(dirname "$0")/../fixtures/face-api/sample1.jpg" <<'PY'
import sys
d = bytearray(open(sys.argv[1], "rb").read())
i = d.find(b"\xff\xc0")
if i < 0: i = d.find(b"\xff\xc2")
d[i + 5:i + 9] = (16000).to_bytes(2, "big") * 2
open("huge.jpg", "wb").write(d)
PY
expect_rc 7 "huge.jpg" -- "$BIN" debug faces huge.jpg --model-dir "$(dirname "$0")/../fixtures/face-api"
# Impossible y4m frame sizes: an input error (7), not a backend failure. FFmpeg refuses the first header
# itself; the second passes FFmpeg's check and is refused by ours.
printf 'YUV4MPEG2 W100000 H100000 F25:1 Ip A1:1 C420jpeg\nFRAME\nabc' > huge.y4m
expect_rc 7 "header cannot be read" -- "$BIN" debug passthrough huge.y4m speech.wav -o y4m.mp4
printf 'YUV4MPEG2 W20000 H16 F25:1 Ip A1:1 C420jpeg\nFRAME\nabc' > wide.y4m
expect_rc 7 "impossible frame size" -- "$BIN" debug passthrough wide.y4m speech.wav -o y4m.mp4
expect_rc 7 "header cannot be read" -- "$BIN" debug faces huge.y4m --model-dir "$(dirname "$0")/../fixtures/face-api"
printf 'YUV4MPEG2 W0 H-5 F25:1 Ip A1:1 C420jpeg\nFRAME\nabc' > zero.y4m
"$BIN" debug passthrough zero.y4m speech.wav -o y4m.mp4 2> zero.log
rc=$?
case $rc in 6 | 7) ;; *) fail "y4m with zero size: exit $rc (want 6 or 7): $(cat zero.log)" ;; esac
finish
