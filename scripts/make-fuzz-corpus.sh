#!/usr/bin/env bash
# scripts/make-fuzz-corpus.sh path/to/latentsync: rewrites the seed corpora in tests/fuzz/corpus/<target>/ from
# our own writers (the binary's convert and debug synth, the checkpoint fixtures of
# scripts/make_checkpoint_fixtures.py) plus hand-made regression inputs for every class of issue 12. Files
# named crash-* (inputs a fuzz run found, kept after the fix) are left alone. Keep the total under 200 KB.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN="$(realpath "${1:?usage: scripts/make-fuzz-corpus.sh path/to/latentsync}")"
C="$ROOT/tests/fuzz/corpus"
FIX="$ROOT/tests/fixtures/checkpoints"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
for t in safetensors torch_zip tfjs media_probe batch_manifest; do
    mkdir -p "$C/$t"
    find "$C/$t" -type f ! -name 'crash-*' -delete
done

# ---- torch_zip: the checkpoint fixtures (good ones and each malformed kind) --------------------------------
for f in state_dict_dtypes untyped_v3 cuda_zip64_unaligned deflated big_endian cyclic_metadata short_storage \
    missing_storage negative_shape overflow_shape stride0_huge nul_global bad_global bad_stack_global bad_opcode \
    not_a_dict truncated legacy; do
    cp "$FIX/$f.pt" "$C/torch_zip/$f.pt"
done

# ---- safetensors: our writer (convert), then hand-made regressions ------------------------------------------
"$BIN" -q convert "$FIX/state_dict_dtypes.pt" "$C/safetensors/dtypes.safetensors"
"$BIN" -q convert "$FIX/untyped_v3.pt" "$C/safetensors/untyped.safetensors"
"$BIN" -q convert "$FIX/cuda_zip64_unaligned.pt" "$C/safetensors/whisper_meta.safetensors"
python3 - "$C/safetensors" <<'PY'
import struct, sys, os
out = sys.argv[1]
def st(name, header, data=b""):
    h = header.encode("utf-8", "surrogateescape") if isinstance(header, str) else header
    open(os.path.join(out, name), "wb").write(struct.pack("<Q", len(h)) + h + data)
deep = "[" * 10000 + "]" * 10000          # issue 12: nesting (a million levels crashed dump())
st("regress_deep_shape.safetensors", '{"w":{"dtype":"F32","shape":%s,"data_offsets":[0,0]}}' % deep)
st("regress_deep_unused.safetensors", '{"x":%s}' % ("{\"a\":" * 3000 + "1" + "}" * 3000))
st("regress_long_shape.safetensors", '{"w":{"dtype":"F32","shape":[%s"x"],"data_offsets":[0,4]}}' % ("1," * 2000),
   b"\0" * 4)
st("regress_name_bytes.safetensors", b'{"a\\u0000\\u001b[2J\xff":{"dtype":"F99","shape":[],"data_offsets":[0,0]}}')
st("regress_overlap.safetensors", '{"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},'
   '"b":{"dtype":"U8","shape":[4],"data_offsets":[2,6]}}', b"\1" * 6)
st("regress_bool.safetensors", '{"b":{"dtype":"BOOL","shape":[3],"data_offsets":[0,3]}}', b"\0\1\7")
open(os.path.join(out, "regress_huge_len.safetensors"), "wb").write(struct.pack("<Q", 2**63) + b"{}")
PY

# ---- tfjs: manifest, then "\n--shard--\n", then the shard m.bin -------------------------------------------
python3 - "$C/tfjs" <<'PY'
import json, struct, sys, os
out = sys.argv[1]
def case(name, manifest, shard=b""):
    text = manifest if isinstance(manifest, str) else json.dumps(manifest)
    open(os.path.join(out, name), "wb").write(text.encode() + b"\n--shard--\n" + shard)
w = lambda n, shape, dtype="float32", q=None: dict(name=n, shape=shape, dtype=dtype, **({"quantization": q} if q else {}))
floats = struct.pack("<4f", 1.0, -2.0, 0.5, 3.0)
case("f32.json", [{"paths": ["m.bin"], "weights": [w("a", [2, 2])]}], floats)
case("quant.json", [{"paths": ["m.bin"], "weights": [
    w("u8", [4], q={"dtype": "uint8", "scale": 0.5, "min": -1}),
    w("u16", [2], q={"dtype": "uint16", "scale": 0.01, "min": 0}),
    w("f16", [2], q={"dtype": "float16"}),
    w("i32", [1], "int32"),
    w("iq", [2], "int32", {"dtype": "uint8", "scale": 1, "min": 0})]}],
    bytes([0, 1, 2, 255]) + struct.pack("<2H", 1, 65535) + struct.pack("<2H", 0x3c00, 0xc000) +
    struct.pack("<i", 7) + bytes([3, 4]))
case("model_json.json", {"format": "graph-model", "weightsManifest": [{"paths": ["m.bin"], "weights": [w("a", [4])]}]},
     floats)
case("regress_abs_path.json", [{"paths": ["/etc/passwd"], "weights": [w("a", [1])]}])
case("regress_dotdot.json", [{"paths": ["../../etc/passwd"], "weights": [w("a", [1])]}])
case("regress_deep.json", '[{"paths":["m.bin"],"weights":[],"x":%s}]' % ("[" * 10000 + "]" * 10000), floats)
case("regress_huge_shape.json", [{"paths": ["m.bin"], "weights": [w("a", [4294967296, 4294967296, 2])]}], floats)
case("regress_quant_range.json", [{"paths": ["m.bin"], "weights": [w("q", [4], "int32",
     {"dtype": "uint8", "scale": 1e10, "min": 0})]}], bytes(4))
PY

# ---- media_probe: our writers (debug synth), then hand-made regressions ------------------------------------
"$BIN" -q debug synth "$TMP/v.mp4" --seconds 0.2 --fps 10 --size 32x32 --audio-rate 8000 --channels 1
"$BIN" -q debug synth "$TMP/v.mkv" --seconds 0.2 --fps 10 --size 32x32 --audio-rate 8000 --channels 1
"$BIN" -q debug synth "$TMP/a.wav" --seconds 0.05 --audio-rate 8000 --channels 1
"$BIN" -q debug synth "$TMP/a.m4a" --seconds 0.1 --audio-rate 8000 --channels 1
cp "$TMP/v.mp4" "$C/media_probe/synth.mp4"
cp "$TMP/v.mkv" "$C/media_probe/synth.mkv"
cp "$TMP/a.wav" "$C/media_probe/tone.wav"
cp "$TMP/a.m4a" "$C/media_probe/tone.m4a"
python3 - "$C/media_probe" <<'PY'
import struct, sys, os
out = sys.argv[1]
def put(name, data):
    open(os.path.join(out, name), "wb").write(data)
# A WAV whose header claims 1 Hz (issue 12: hours of audio from one second).
pcm = b"".join(struct.pack("<h", (i * 37) % 2000 - 1000) for i in range(2000))
put("regress_onehz.wav", b"RIFF" + struct.pack("<I", 36 + len(pcm)) + b"WAVEfmt " +
    struct.pack("<IHHIIHH", 16, 1, 1, 1, 2, 2, 16) + b"data" + struct.pack("<I", len(pcm)) + pcm)
# Impossible y4m sizes (issue 12: "Device or resource busy", exit 13).
put("regress_y4m_huge.y4m", b"YUV4MPEG2 W100000 H100000 F25:1 Ip A1:1 C420jpeg\nFRAME\nabc")
put("regress_y4m_thin.y4m", b"YUV4MPEG2 W1 H65535 F25:1 Ip A1:1 C420jpeg\nFRAME\n" + bytes(64))
y = bytes(range(64)) * 1  # 8x8 luma
put("y4m_small.y4m", b"YUV4MPEG2 W8 H8 F25:1 Ip A1:1 C420jpeg\n" + (b"FRAME\n" + y + bytes(32)) * 2)
PY
# The resolution changes mid-stream (issue 12: exit 70 / 13): two H.264 streams of different sizes, concatenated.
if command -v ffmpeg >/dev/null; then
    "$BIN" -q debug synth "$TMP/s.mp4" --seconds 0.2 --fps 10 --size 32x32 --no-audio
    "$BIN" -q debug synth "$TMP/b.mp4" --seconds 0.2 --fps 10 --size 48x32 --no-audio
    for f in s b; do ffmpeg -v error -y -i "$TMP/$f.mp4" -c copy -bsf:v h264_mp4toannexb -f mpegts "$TMP/$f.ts"; done
    cat "$TMP/s.ts" "$TMP/b.ts" > "$C/media_probe/regress_size_change.ts"
fi

# ---- batch_manifest: the first byte picks CSV (0) or JSON lines (1); good manifests and each refusal ---------
M="$C/batch_manifest"
seed() { printf '%b' "$2" > "$M/$1"; }
seed csv_good.bin '\x00video,audio,output,seed,keep_video_tail\r\n# c\r\na.mp4,a.wav,o/a.mp4,3,yes\r\n"b, 2.mp4","say ""hi"".wav","two\nlines.mp4",,false\n'
seed csv_bom_blank.bin '\x00\xef\xbb\xbfvideo,audio,output\n\n  \na,b,c\n'
seed csv_unclosed.bin '\x00video,audio,output\na,b,"c\n'
seed csv_fields.bin '\x00video,audio,output\na,b\nc,d,e,f\n'
seed csv_dup_output.bin '\x00video,audio,output\na,b,x\nc,d,./x\n'
seed csv_quote_inside.bin '\x00video,audio,output\na,b"c",d\n"e"f,g,h\n'
seed csv_nul.bin '\x00video,audio,output\na,b\x00c,d\n'
seed jsonl_good.bin '\x01{"video":"a.mp4","audio":"a.wav","output":"o.mp4","seed":5,"guidance":2.5,"lossless":true,"crf":null}\n# c\n\n{"video":"/v/b","audio":"b","output":"p"}\n'
seed jsonl_types.bin '\x01{"video":[1],"audio":{"a":1},"output":7,"seed":1e400}\n'
seed jsonl_deep.bin "\\x01{\"video\":$(printf '[%.0s' $(seq 100))$(printf ']%.0s' $(seq 100))}\\n"
seed jsonl_dup_key.bin '\x01{"video":"a","audio":"b","output":"c","no_deepcache":1,"no-deepcache":0}\n'
seed jsonl_not_object.bin '\x01[1,2]\n"x"\nnull\n'
du -sh "$C"
