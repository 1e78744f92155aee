#!/usr/bin/env bash
# Before/after of the fused GroupNorm (+SiLU) kernel (kernels/fused_group_norm.cu, issue 13) in one device call:
# the kernel alone at the UNet/VAE shapes, then the full-size random UNet (flash, 256 and 512) and VAE (16
# images, 256 and 512) with LSYNC_FUSED_GROUPNORM=0 (ATen: group_norm + silu + layout copies) and =1 (fused).
# Usage: bash scripts/bench-groupnorm.sh [latentsync binary] [log dir]   (after scripts/gpu-check.sh)
set -u
BIN="${1:-build-gpu/bin/latentsync}"
LOGS="${2:-${OUT:-build-gpu/logs}}"
ITERS="${LSYNC_BENCH_ITERS:-10}"
mkdir -p "$LOGS"
run() {
    echo "== $* ($(date +%T))"
    timeout 120 "$@" 2>&1
    echo
}
{
    nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,memory.total --format=csv,noheader
    run "$BIN" bench group-norm --iters 50
    for mode in 0 1; do run env LSYNC_FUSED_GROUPNORM=$mode "$BIN" bench unet --res 256,512 --attention flash --iters "$ITERS"; done
    for mode in 0 1; do run env LSYNC_FUSED_GROUPNORM=$mode "$BIN" bench vae --res 256,512 --iters "$ITERS"; done
    # The UNet pair again in the other order: the spread between the two pairs is the run-to-run noise.
    if [ -n "${LSYNC_BENCH_REPEAT:-}" ]; then
        for mode in 1 0; do run env LSYNC_FUSED_GROUPNORM=$mode "$BIN" bench unet --res 256,512 --attention flash --iters "$ITERS"; done
    fi
} | tee "$LOGS/bench-groupnorm.md"
