#!/usr/bin/env bash
# Downloads the model files latentsync needs into the model directory, skipping those already present.
#   scripts/fetch-models.sh [--model-dir DIR] [--version 1.5|1.6|all]
# Needs internet access (Hugging Face for the networks, the npm registry for the face models). Each file is
# downloaded to a temporary name and renamed when complete, so an interrupted download never looks finished.
# HF_ENDPOINT overrides https://huggingface.co (mirrors).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DIR="${LATENTSYNC_MODEL_DIR:-$HOME/.cache/latentsync}"
VERSION=1.6
while [ $# -gt 0 ]; do
    case "$1" in
        --model-dir) DIR="$2"; shift 2 ;;
        --version) VERSION="$2"; shift 2 ;;
        *) echo "usage: $0 [--model-dir DIR] [--version 1.5|1.6|all]" >&2; exit 2 ;;
    esac
done
case "$VERSION" in 1.5|1.6|all) ;; *) echo "fetch-models: --version must be 1.5, 1.6 or all" >&2; exit 2 ;; esac
HF="${HF_ENDPOINT:-https://huggingface.co}"
command -v curl >/dev/null || { echo "fetch-models: curl is required (apt-get install curl)" >&2; exit 1; }

fetch() {  # fetch URL DEST
    local url="$1" dest="$2"
    if [ -s "$dest" ]; then echo "present: $dest"; return 0; fi
    mkdir -p "$(dirname "$dest")"
    echo "downloading $url"
    if ! curl -fL --retry 3 --connect-timeout 20 -o "$dest.part" "$url"; then
        rm -f "$dest.part"
        echo "fetch-models: could not download $url (no internet access, or the file moved). Download it by hand into $dest" >&2
        exit 1
    fi
    mv "$dest.part" "$dest"
}

if [ "$VERSION" = 1.5 ] || [ "$VERSION" = all ]; then
    fetch "$HF/ByteDance/LatentSync-1.5/resolve/main/latentsync_unet.pt" "$DIR/latentsync-1.5/latentsync_unet.pt"
fi
if [ "$VERSION" = 1.6 ] || [ "$VERSION" = all ]; then
    fetch "$HF/ByteDance/LatentSync-1.6/resolve/main/latentsync_unet.pt" "$DIR/latentsync-1.6/latentsync_unet.pt"
fi
fetch "$HF/ByteDance/LatentSync-1.6/resolve/main/whisper/tiny.pt" "$DIR/whisper/tiny.pt"
fetch "$HF/stabilityai/sd-vae-ft-mse/resolve/main/diffusion_pytorch_model.safetensors" \
    "$DIR/sd-vae-ft-mse/diffusion_pytorch_model.safetensors"
fetch "$HF/stabilityai/sd-vae-ft-mse/resolve/main/config.json" "$DIR/sd-vae-ft-mse/config.json"
bash "$ROOT/scripts/fetch-face-models.sh" "$DIR/face-api"
echo "done: run \`latentsync models verify --model-dir $DIR\`"
