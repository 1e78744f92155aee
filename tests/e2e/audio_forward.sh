#!/usr/bin/env bash
# `latentsync debug forward mel|whisper` on the golden waveforms: the outputs must match the official tensors
# (golden README tolerances), read back with a small safetensors reader in plain Python.
source "$(dirname "$0")/lib.sh"
FIX="$(cd "$(dirname "$0")/../fixtures" && pwd)"
cd "$WORK"

"$BIN" -q debug forward mel --inputs "$FIX/golden/whisper_golden.safetensors" -o mel.safetensors || fail "forward mel"
"$BIN" -q debug forward whisper --weights "$FIX/golden/whisper_tiny_random.pt" \
    --inputs "$FIX/golden/whisper_golden.safetensors" -o whisper.safetensors || fail "forward whisper"
"$BIN" -q debug forward whisper --weights "$FIX/golden/whisper_tiny_random.pt" \
    --inputs "$FIX/golden/whisper_long_golden.safetensors" -o long.safetensors || fail "forward whisper (30.5 s)"

python3 - "$FIX/golden" <<'PY' || fail "forward outputs differ from the golden tensors"
import sys
from array import array
from safetensors_read import check, numbers as read

g = read(sys.argv[1] + "/whisper_golden.safetensors")
check(read("mel.safetensors"), g, ["log_mel", "encoder_input"], 1e-4, 1e-4, "mel")
w = read("whisper.safetensors")
check(w, g, ["log_mel", "encoder_input"], 1e-4, 1e-4, "whisper")
check(w, g, ["encoder_layer_states", "encoder_output_ln_post", "feature_array", "whisper_chunks"], 1e-4, 1e-3, "whisper")

gl = read(sys.argv[1] + "/whisper_long_golden.safetensors")
lo = read("long.safetensors")
check(lo, gl, ["feature_array"], 1e-4, 1e-3, "long")
shape, chunks = lo["whisper_chunks"]
assert shape == [764, 50, 64], shape
per = 50 * 64
idx = gl["chunk_indices"][1]
sel = array("f")
for i in idx:
    sel.extend(chunks[i * per:(i + 1) * per])
check({"sel": ([len(idx), 50, 64], sel)}, {"sel": gl["whisper_chunks_selected"]}, ["sel"], 1e-4, 1e-3, "long chunks")
PY

# Seamless segmentation on the 30.5 s clip: two overlapping windows instead of two segments; same frame count.
"$BIN" -q debug forward whisper --weights "$FIX/golden/whisper_tiny_random.pt" --audio-segmentation seamless \
    --inputs "$FIX/golden/whisper_long_golden.safetensors" -o seamless.safetensors || fail "forward whisper seamless"
python3 - <<'PY' || fail "seamless output"
from safetensors_read import numbers
a, b = numbers("long.safetensors"), numbers("seamless.safetensors")
(sa, fa), (sb, fb) = a["feature_array"], b["feature_array"]
assert sa == sb and a["whisper_chunks"][0] == b["whisper_chunks"][0], (sa, sb)
per = sa[1] * sa[2]
# Frames 0-1149 come from the first window alone in both modes; around 1500 the official second segment
# (50 mel frames, zero-padded) and the seamless second window (20-30.5 s) see different context.
assert max(abs(x - y) for x, y in zip(fa[:1150 * per], fb[:1150 * per])) < 1e-6
assert max(abs(x - y) for x, y in zip(fa[1500 * per:1525 * per], fb[1500 * per:1525 * per])) > 1e-3
PY
expect_rc 2 "audio-segmentation" -- "$BIN" debug forward whisper --weights "$FIX/golden/whisper_tiny_random.pt" \
    --audio-segmentation centre --inputs "$FIX/golden/whisper_golden.safetensors" -o o4.safetensors

# The two-pass streaming path over a 75 s file: a memory row every 20 s of audio and the summary line.
"$BIN" -q debug synth tone.wav --seconds 75 || fail "synth"
"$BIN" -q bench audio-stream tone.wav --weights "$FIX/golden/whisper_tiny_random.pt" --device cpu \
    --sample-every 20 > stream.txt || fail "bench audio-stream"
[ "$(grep -c '^| [0-9.]* min |' stream.txt)" -ge 4 ] || fail "bench audio-stream: expected >= 4 memory rows: $(cat stream.txt)"
grep -q "peak RSS" stream.txt || fail "bench audio-stream: no summary"
expect_rc 3 "not found" -- "$BIN" bench audio-stream missing.wav --device cpu

# Bad inputs: one clear error line each.
python3 - <<'PY'
import json, struct
def write(path, name, floats):
    data = struct.pack(f"<{len(floats)}f", *floats)
    h = json.dumps({name: {"dtype": "F32", "shape": [len(floats)], "data_offsets": [0, len(data)]}}).encode()
    h += b" " * (-len(h) % 8)
    open(path, "wb").write(struct.pack("<Q", len(h)) + h + data)
write("one.safetensors", "waveform", [0.5])
write("noname.safetensors", "audio", [0.0] * 1000)
PY
expect_rc 5 "too short" -- "$BIN" debug forward mel --inputs one.safetensors -o o1.safetensors
expect_rc 2 "no tensor 'waveform'" -- "$BIN" debug forward mel --inputs noname.safetensors -o o2.safetensors
expect_rc 2 "needs --weights" -- "$BIN" debug forward whisper --inputs "$FIX/golden/whisper_golden.safetensors" -o o3.safetensors
finish
