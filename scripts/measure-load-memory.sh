#!/usr/bin/env bash
# Measures the peak host memory of loading a full-size checkpoint (issue: "loading a full-size random 1.5
# UNet checkpoint (about 5 GB fp32) to fp16 keeps peak host memory under 1.3x the file size").
#
#   scripts/measure-load-memory.sh [BUILD_DIR] [WORK_DIR]
#
# 1. `latentsync debug random-weights unet` writes a full-size random UNet (the real 1.5 config, fp32) as
#    safetensors; 2. scripts/safetensors_to_torch_zip.py rewrites it as the LatentSync torch.save container;
# 3. `latentsync debug load-weights unet --dtype float16` loads it the way render will and reports its own
# peak resident set (getrusage), which the script compares with the file size. Needs ~11 GB of disk in
# WORK_DIR (default: a temporary directory, removed afterwards) and ~8 GB of RAM for step 1.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${1:-$ROOT/build}"
BIN="$BUILD_DIR/bin/latentsync"
WORK="${2:-}"
if [ -z "$WORK" ]; then
    WORK="$(mktemp -d)"
    trap 'rm -rf "$WORK"' EXIT
fi
CONFIG="$ROOT/tests/fixtures/golden/stage2_model_config.json"

echo "== random full-size UNet (1.5 config) -> $WORK/unet.safetensors"
"$BIN" debug random-weights unet --config "$CONFIG" -o "$WORK/unet.safetensors" --overwrite
echo "== safetensors -> torch.save container"
python3 "$ROOT/scripts/safetensors_to_torch_zip.py" "$WORK/unet.safetensors" "$WORK/latentsync_unet.pt"
rm -f "$WORK/unet.safetensors"
size=$(stat -c %s "$WORK/latentsync_unet.pt")
echo "== load to float16 (file: $((size / 1048576)) MiB)"
out=$("$BIN" debug load-weights unet --config "$CONFIG" --weights "$WORK/latentsync_unet.pt" --dtype float16)
echo "$out"
peak_kib=$(sed -n 's/.*peak RSS \([0-9]*\) KiB.*/\1/p' <<<"$out")
python3 - "$peak_kib" "$size" <<'PY'
import sys
peak = int(sys.argv[1]) * 1024
size = int(sys.argv[2])
ratio = peak / size
print("peak host memory %.0f MiB = %.2fx the file size (%.0f MiB); limit 1.3x: %s"
      % (peak / 2**20, ratio, size / 2**20, "PASS" if ratio < 1.3 else "FAIL"))
sys.exit(0 if ratio < 1.3 else 1)
PY
