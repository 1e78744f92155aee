#!/usr/bin/env bash
# The binary's main paths as a user runs them: doctor (text and JSON), probe, synth + passthrough round trip.
source "$(dirname "$0")/lib.sh"
FX="$(cd "$(dirname "$0")/../fixtures/golden" && pwd)"
cd "$WORK"

json_get() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

"$BIN" doctor --model-dir "$WORK/models" > doctor.txt
rc=$?
[ "$rc" = 15 ] || fail "doctor without models should exit 15 (not ready), got $rc"
grep -q "Verdict: NOT READY" doctor.txt || fail "doctor text has no verdict"
grep -q "fix:" doctor.txt || fail "doctor gives no fixes"
"$BIN" doctor --json --model-dir "$WORK/models" > doctor.json
python3 - doctor.json <<'PY' || fail "doctor --json content"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["ready"] is False
assert {"torch", "devices", "attention", "ffmpeg", "models", "problems"} <= d.keys()
backends = {(a["backend"], a["device"]) for a in d["attention"]}
assert ("standard", "cpu") in backends and ("flash", "cpu") in backends and ("flex", "cpu") in backends
for a in d["attention"]:
    if a["backend"] == "flash" and not a["available"]:
        assert a["detail"], "flash unavailable without a reason"
    if "probe" in a:
        assert a["probe"]["ok"], a
assert not d["ffmpeg"]["missing"], d["ffmpeg"]["missing"]
assert all(p["fix"] for p in d["problems"])
PY
LATENTSYNC_MODEL_DIR="$WORK/envmodels" "$BIN" doctor --json --no-probe | json_get 'd["models"]["dir"]' | grep -q envmodels \
    || fail "LATENTSYNC_MODEL_DIR ignored"

"$BIN" -q debug synth in.mp4 --seconds 3 --fps 30 --size 321x181 --audio-rate 48000 --channels 2 || fail synth
"$BIN" probe --json in.mp4 > probe.json || fail probe
expect_rc 3 "media file not found: gone.wav" -- "$BIN" probe gone.wav
[ "$(json_get 'd["video"]["width"]' < probe.json)" = 322 ] || fail "odd width not padded to even"
[ "$(json_get 'd["audio"]["sample_rate"]' < probe.json)" = 48000 ] || fail "audio rate changed"
"$BIN" -q debug synth voice.m4a --seconds 2 --audio-rate 44100 || fail "synth m4a"
"$BIN" debug passthrough in.mp4 voice.m4a -o out.mp4 --fps 25 2> pass.log || fail "passthrough"
grep -q "audio copied" pass.log || fail "AAC audio was not stream-copied into mp4"
"$BIN" probe --json out.mp4 > out.json || fail "probe output"
python3 - out.json <<'PY' || fail "passthrough output"
import json, sys
d = json.load(open(sys.argv[1]))
v, a = d["video"], d["audio"]
assert abs(v["avg_fps"] - 25) < 1e-6, v
assert v["frame_count_estimate"] == 75, v   # 3 s at 25 fps
assert (v["width"], v["height"]) == (322, 182), v
assert a["sample_rate"] == 44100 and a["channels"] == 2, a
PY
# faststart: the moov atom precedes mdat, so players can start before the download ends.
python3 - out.mp4 <<'PY' || fail "output is not faststart"
import sys
data = open(sys.argv[1], "rb").read()
assert data.find(b"moov") < data.find(b"mdat"), "moov after mdat"
PY
"$BIN" --version | grep -q "0\." || fail "--version"

# bench unet at the render's batch (--chunks: CFG batch 2 x N), on the tiny config: the per-frame time counts
# every frame of the call (2 x 2 chunks x 4 frames = 16).
"$BIN" bench unet --config "$FX/unet_tiny_config.json" --device cpu --res 64 --attention standard --chunks 2 \
    --frames 4 --iters 1 > unet.md || fail "bench unet --chunks 2"
grep -q "batch 2 (CFG) x 2 chunk(s) x 4 frames" unet.md || fail "bench unet: the header lacks the call's shape"
python3 - unet.md <<'PY' || fail "bench unet: the row's per-frame time"
import sys
row = [l for l in open(sys.argv[1]) if l.startswith("| 64 | standard")][0].split("|")
call, per_frame = float(row[3]), float(row[4])
assert abs(call / 16 - per_frame) <= 0.01 * per_frame + 0.01, (call, per_frame)
PY
expect_rc 2 "--chunks" -- "$BIN" bench unet --chunks 0
finish
