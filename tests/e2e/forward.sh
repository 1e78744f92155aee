#!/usr/bin/env bash
# `latentsync debug forward unet|unet-trace|vae-encode|vae-decode` on the golden inputs: the files the command
# writes must hold the official outputs (golden README tolerances), read back with plain Python. This is the
# path users take to compare our numbers with the Python implementation, so it is tested end to end.
source "$(dirname "$0")/lib.sh"
FIX="$(cd "$(dirname "$0")/../fixtures/golden" && pwd)"
cd "$WORK"

"$BIN" -q debug forward unet --weights "$FIX/unet_tiny_latentsync_unet.pt" --config "$FIX/unet_tiny_config.json" \
    --inputs "$FIX/unet_golden.safetensors" -o unet.safetensors || fail "forward unet"
"$BIN" -q debug forward unet-trace --weights "$FIX/unet_tiny_latentsync_unet.pt" --config "$FIX/unet_tiny_config.json" \
    --inputs "$FIX/unet_golden.safetensors" -o trace.safetensors || fail "forward unet-trace"
"$BIN" -q debug forward vae-encode --weights "$FIX/vae_tiny" --inputs "$FIX/vae_golden.safetensors" \
    -o enc.safetensors || fail "forward vae-encode"
"$BIN" -q debug forward vae-decode --weights "$FIX/vae_tiny" --inputs "$FIX/vae_golden.safetensors" \
    -o dec.safetensors || fail "forward vae-decode"

python3 - "$FIX" <<'PY' || fail "forward outputs differ from the golden tensors"
import sys
from safetensors_read import check, numbers as read

g = sys.argv[1]
check(read("unet.safetensors"), read(g + "/unet_golden.safetensors"), ["out_a", "out_b"], 1e-4, 1e-3)
hooks = read(g + "/unet_golden_intermediates.safetensors")
check(read("trace.safetensors"), hooks, sorted(hooks), 1e-4, 1e-3)
vae = read(g + "/vae_golden.safetensors")
check(read("enc.safetensors"), vae, ["latent_mean", "latent_logvar", "latent_std"], 1e-4, 1e-3)
check(read("dec.safetensors"), vae, ["decode_output"], 1e-4, 1e-3)
PY

# Bad uses: a missing input tensor names what the file has; the VAE given as the UNet is a weights error.
expect_rc 2 "no tensor 'sample'" -- "$BIN" debug forward unet --weights "$FIX/unet_tiny_latentsync_unet.pt" \
    --config "$FIX/unet_tiny_config.json" --inputs "$FIX/vae_golden.safetensors" -o x.safetensors
expect_rc 12 "UNet" -- "$BIN" debug forward unet --weights "$FIX/vae_tiny/diffusion_pytorch_model.safetensors" \
    --config "$FIX/unet_tiny_config.json" --inputs "$FIX/unet_golden.safetensors" -o x.safetensors
expect_rc 10 "exists" -- "$BIN" debug forward unet --weights "$FIX/unet_tiny_latentsync_unet.pt" \
    --config "$FIX/unet_tiny_config.json" --inputs "$FIX/unet_golden.safetensors" -o unet.safetensors
finish
