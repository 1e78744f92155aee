#!/usr/bin/env bash
# The binary's main paths as a user runs them: doctor (text and JSON), probe, synth + passthrough round trip.
source "$(dirname "$0")/lib.sh"
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
finish
