#!/usr/bin/env bash
# `latentsync models list|verify|inspect` on real fixture files and on broken ones.
source "$(dirname "$0")/lib.sh"
FIX="$(cd "$(dirname "$0")/../fixtures" && pwd)"
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$WORK"

# inspect: every supported format, stable JSON.
"$BIN" models inspect --json "$FIX/golden/unet_tiny_latentsync_unet.pt" > unet.json || fail "inspect unet"
python3 - unet.json <<'PY' || fail "inspect unet json"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["format"] == "torch-zip" and d["looks_like"]["kind"] == "latentsync-unet", d["looks_like"]
assert d["metadata"]["global_step"] == 0
assert len(d["tensors"]) == 776
t = {x["name"]: x for x in d["tensors"]}
assert t["conv_in.weight"]["shape"] == [32, 13, 3, 3] and t["conv_in.weight"]["dtype"] == "float32"
PY
"$BIN" models inspect --json "$FIX/golden/whisper_tiny_random.pt" | python3 -c "
import json,sys; d=json.load(sys.stdin); assert d['looks_like']['kind']=='whisper'; assert d['metadata']['dims']['n_audio_state']==64" \
    || fail "inspect whisper"
"$BIN" models inspect --json "$FIX/golden/vae_tiny/diffusion_pytorch_model.safetensors" | python3 -c "
import json,sys; d=json.load(sys.stdin); assert d['format']=='safetensors' and d['looks_like']['kind']=='vae'" || fail "inspect vae"
"$BIN" models inspect --json "$FIX/face-api/ssd_mobilenetv1_model-weights_manifest.json" | python3 -c "
import json,sys; d=json.load(sys.stdin); assert d['format']=='tfjs' and d['looks_like']['kind']=='face-detector'" || fail "inspect face detector"

# convert: .pt -> .safetensors keeps every tensor bit for bit (checked against the independent Python reader's
# hashes) and the container metadata.
for f in unet_tiny_latentsync_unet whisper_tiny_random; do
    "$BIN" -q convert "$FIX/golden/$f.pt" "$f.safetensors" || fail "convert $f"
    python3 - "$f.safetensors" "$FIX/checkpoints/golden_tensor_hashes.json" "$f.pt" <<'PY' || fail "convert $f: tensors differ"
import hashlib, json, sys
from safetensors_read import raw, tensor_bytes
header, meta, data = raw(sys.argv[1])
assert meta["converted_from"] == "torch-zip", meta
want = json.load(open(sys.argv[2]))[sys.argv[3]]
assert set(header) == set(want), (len(header), len(want))
for name, h in header.items():
    assert h["shape"] == want[name]["shape"], name
    assert hashlib.sha256(tensor_bytes(header, data, name)).hexdigest() == want[name]["sha256"], name
PY
done
expect_rc 10 "exists" -- "$BIN" convert "$FIX/golden/whisper_tiny_random.pt" whisper_tiny_random.safetensors

# The other direction, as the load-memory measurement makes its big checkpoints: safetensors -> torch.save
# (scripts/safetensors_to_torch_zip.py, ZIP64, streamed) -> our reader -> safetensors: every tensor unchanged.
python3 "$ROOT/scripts/safetensors_to_torch_zip.py" "$FIX/golden/vae_tiny/diffusion_pytorch_model.safetensors" \
    vae_as_pt.pt || fail "safetensors_to_torch_zip"
"$BIN" -q models inspect --json vae_as_pt.pt | python3 -c "
import json,sys; d=json.load(sys.stdin); assert d['format']=='torch-zip' and d['metadata']['global_step']==0, d['metadata']" \
    || fail "inspect the streamed torch.save archive"
"$BIN" -q convert vae_as_pt.pt vae_roundtrip.safetensors || fail "convert the streamed archive"
python3 - "$FIX/golden/vae_tiny/diffusion_pytorch_model.safetensors" vae_roundtrip.safetensors <<'PY' || fail "round trip changed tensors"
import sys
from safetensors_read import raw, tensor_bytes
def tensors(path):
    header, _, data = raw(path)
    return {k: (v["dtype"], v["shape"], tensor_bytes(header, data, k)) for k, v in header.items()}
a, b = tensors(sys.argv[1]), tensors(sys.argv[2])
assert a.keys() == b.keys() and len(a) == 180, (len(a), len(b))
for k in a:
    assert a[k] == b[k], k
PY

# Bad files: one error line, exit 12 (weights), the reason named.
expect_rc 12 "os.system" -- "$BIN" models inspect "$FIX/checkpoints/bad_global.pt"
expect_rc 12 "truncated" -- "$BIN" models inspect "$FIX/checkpoints/truncated.pt"
expect_rc 12 "legacy" -- "$BIN" models inspect "$FIX/checkpoints/legacy.pt"
expect_rc 12 "not a supported model file" -- "$BIN" models inspect "$FIX/checkpoints/wrong_magic.pt"
expect_rc 3 "not found" -- "$BIN" models inspect nothere.pt

# list / verify over a model directory with a wrong model in a slot and a git-lfs pointer in another.
mkdir -p models/latentsync-1.5 models/whisper models/sd-vae-ft-mse models/face-api
cp "$FIX/golden/vae_tiny/diffusion_pytorch_model.safetensors" models/latentsync-1.5/latentsync_unet.pt
cp "$FIX/golden/whisper_tiny_random.pt" models/whisper/tiny.pt
printf 'version https://git-lfs.github.com/spec/v1\noid sha256:0\nsize 1\n' > models/sd-vae-ft-mse/diffusion_pytorch_model.safetensors
cp "$FIX"/face-api/* models/face-api/
"$BIN" models list --model-dir models > list.txt || fail "list exits non-zero"
grep -q "missing  unet-1.6" list.txt || fail "list: unet-1.6 not reported missing"$'\n'"$(cat list.txt)"
grep -q "git-lfs" list.txt || fail "list: lfs pointer not named"
"$BIN" models verify --model-dir models --json > verify.json
rc=$?
[ "$rc" = 12 ] || fail "verify with unusable files should exit 12, got $rc"
python3 - verify.json <<'PY' || fail "verify json"
import json, sys
d = json.load(open(sys.argv[1]))
f = {x["component"]: x for x in d["files"]}
assert not f["unet-1.5"]["ok"] and "holds a" in f["unet-1.5"]["problem"] and "expected latentsync-unet" in f["unet-1.5"]["problem"], f["unet-1.5"]
assert f["face-detector"]["ok"] and f["face-landmarks"]["ok"], (f["face-detector"], f["face-landmarks"])
assert f["whisper-tiny"]["ok"] is False  # a random tiny whisper is far below the real file's size
assert d["ready"] is False
PY
# Without network access the download script fails clearly and leaves no partial file.
if command -v curl >/dev/null; then
    out=$(HF_ENDPOINT=http://127.0.0.1:9 bash "$ROOT/scripts/fetch-models.sh" --model-dir fetched 2>&1)
    rc=$?
    [ "$rc" = 1 ] || fail "fetch-models without network: exit $rc"
    grep -q "could not download" <<<"$out" || fail "fetch-models: unclear error: $out"
    find fetched -name '*.part' | grep -q . && fail "fetch-models left a partial download"
fi
finish
