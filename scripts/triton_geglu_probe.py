#!/usr/bin/env python3
"""A probe for issue 13 (docs/performance-notes.md section 27), run on the GPU host, which has PyTorch and Triton.

The UNet feed-forward's first projection (C -> 8C) is a cuBLAS GEMM whose [tokens, 8C] output the GEGLU pass reads
back to write [tokens, 4C]. This times that pair (cuBLAS through torch, then one fused GEGLU pass, as the render
runs them) against one Triton kernel that computes both halves of the projection per output tile and applies the
bias and GEGLU to its fp32 accumulators before the only store. The shapes are the 1.5 render's 256 px UNet call
(2 chunks x CFG x 16 frames = 64 images): 1,024 tokens of 320 channels, 256 of 640, 64 of 1,280 per image.

    python3 scripts/triton_geglu_probe.py

Prints one markdown row per level: milliseconds of each form (Triton's do_bench medians), the fused kernel's
TFLOP/s, and its largest error against the unfused pair (both fp16 with fp32 accumulation; the fused form rounds
once, the pair three times).
"""
import sys

import torch
import triton
import triton.language as tl

INV_SQRT2 = tl.constexpr(0.7071067811865476)


@triton.jit
def geglu_pass(h_ptr, out_ptr, n_cols, BLOCK: tl.constexpr):
    """out[r, j] = h[r, j] * gelu(h[r, n_cols + j]) for h [rows, 2 n_cols]: the render's separate GEGLU pass."""
    row = tl.program_id(0).to(tl.int64)
    col = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
    keep = col < n_cols
    value = tl.load(h_ptr + row * 2 * n_cols + col, mask=keep).to(tl.float32)
    gate = tl.load(h_ptr + row * 2 * n_cols + n_cols + col, mask=keep).to(tl.float32)
    y = value * (0.5 * gate * (1.0 + tl.erf(gate * INV_SQRT2)))
    tl.store(out_ptr + row * n_cols + col, y.to(tl.float16), mask=keep)


CONFIGS = [
    triton.Config({"BM": 128, "BN": 128, "BK": 64, "GROUP": 8}, num_warps=8, num_stages=3),
    triton.Config({"BM": 128, "BN": 64, "BK": 64, "GROUP": 8}, num_warps=4, num_stages=4),
    triton.Config({"BM": 64, "BN": 128, "BK": 64, "GROUP": 8}, num_warps=4, num_stages=4),
]


@triton.autotune(configs=CONFIGS, key=["M", "N", "K"])
@triton.jit
def gemm_geglu(x_ptr, w_ptr, b_ptr, out_ptr, M, N, K, BM: tl.constexpr, BN: tl.constexpr, BK: tl.constexpr,
               GROUP: tl.constexpr):
    """out = (x W_v^T + b_v) * gelu(x W_g^T + b_g) for x [M, K], W [2N, K] (rows [0, N) the value half, [N, 2N)
    the gate half, as the checkpoint's GEGLU projection), b [2N]. Shapes are whole tiles (checked by the caller)."""
    pid = tl.program_id(0)
    tiles_m = M // BM
    tiles_n = N // BN
    # Tiles in groups of GROUP rows of tiles, so neighbouring programs share their x rows and weight columns in L2.
    per_group = GROUP * tiles_n
    first_m = (pid // per_group) * GROUP
    rows_here = min(tiles_m - first_m, GROUP)
    tile_m = first_m + (pid % per_group) % rows_here
    tile_n = (pid % per_group) // rows_here
    rm = (tile_m * BM + tl.arange(0, BM)).to(tl.int64)
    rn = tile_n * BN + tl.arange(0, BN)
    rk = tl.arange(0, BK)
    x_at = x_ptr + rm[:, None] * K + rk[None, :]
    value_at = w_ptr + rn[None, :].to(tl.int64) * K + rk[:, None]  # W^T tile [BK, BN] of the value rows
    gate_at = w_ptr + (rn[None, :] + N).to(tl.int64) * K + rk[:, None]
    acc_value = tl.zeros((BM, BN), dtype=tl.float32)
    acc_gate = tl.zeros((BM, BN), dtype=tl.float32)
    for _ in range(0, K // BK):
        x = tl.load(x_at)
        acc_value = tl.dot(x, tl.load(value_at), acc_value)
        acc_gate = tl.dot(x, tl.load(gate_at), acc_gate)
        x_at += BK
        value_at += BK
        gate_at += BK
    value = acc_value + tl.load(b_ptr + rn).to(tl.float32)[None, :]
    gate = acc_gate + tl.load(b_ptr + N + rn).to(tl.float32)[None, :]
    y = value * (0.5 * gate * (1.0 + tl.erf(gate * INV_SQRT2)))
    tl.store(out_ptr + rm[:, None] * N + rn[None, :], y.to(tl.float16))


def fused(x, w, b):
    m, k = x.shape
    n = w.shape[0] // 2
    assert m % 128 == 0 and n % 128 == 0 and k % 64 == 0, "whole tiles only"
    out = torch.empty((m, n), device=x.device, dtype=torch.float16)
    grid = lambda meta: ((m // meta["BM"]) * (n // meta["BN"]),)  # noqa: E731
    gemm_geglu[grid](x, w, b, out, m, n, k)
    return out


def unfused(x, w, b):
    h = torch.nn.functional.linear(x, w, b)
    n = w.shape[0] // 2
    out = torch.empty((x.shape[0], n), device=x.device, dtype=torch.float16)
    geglu_pass[(x.shape[0], triton.cdiv(n, 1024))](h, out, n, BLOCK=1024)
    return out


def timed(fn):
    return triton.testing.do_bench(fn, warmup=10, rep=50, return_mode="median")


def main():
    dev = torch.device("cuda")
    torch.manual_seed(5)
    print(f"{torch.cuda.get_device_name(0)}, torch {torch.__version__}, triton {triton.__version__}, fp16\n")
    print("| level | tokens x C -> 4C | cuBLAS GEMM ms | + GEGLU pass ms | fused Triton ms | fused / pair | "
          "fused TFLOP/s | max abs diff |")
    print("|---|---|---|---|---|---|---|---|")
    for level, (tokens, c) in enumerate([(1024, 320), (256, 640), (64, 1280)], start=1):
        m = 64 * tokens
        x = torch.randn((m, c), device=dev, dtype=torch.float16)
        w = torch.randn((8 * c, c), device=dev, dtype=torch.float16) / c**0.5
        b = torch.randn((8 * c,), device=dev, dtype=torch.float16) * 0.1
        want = unfused(x, w, b)
        got = fused(x, w, b)
        diff = (got.float() - want.float()).abs().max().item()
        gemm_ms = timed(lambda: torch.nn.functional.linear(x, w, b))
        pair_ms = timed(lambda: unfused(x, w, b))
        fused_ms = timed(lambda: fused(x, w, b))
        tflops = 2.0 * m * c * 8 * c / fused_ms / 1e9
        print(f"| {level} | {m} x {c} -> {4 * c} | {gemm_ms:.3f} | {pair_ms:.3f} | {fused_ms:.3f} | "
              f"{fused_ms / pair_ms:.2f} | {tflops:.0f} | {diff:.2e} |", flush=True)
    print(f"\nautotuned: {gemm_geglu.best_config}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
