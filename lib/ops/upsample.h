#pragma once
// Nearest-neighbour upsampling by 2 of the UNet's and VAE's upsamplers. On CUDA (fp32, fp16, bf16; a contiguous
// NCHW or channels_last 4-D tensor) it runs kernels/nearest_upsample.cu, which moves 16-byte vectors (ATen's
// channels_last kernel moves one element per thread); LSYNC_FUSED_UPSAMPLE=0 (read once) sends every call to
// ATen. Everywhere else torch::upsample_nearest2d. The result keeps the input's memory order; the values are
// copies, so every path gives the same numbers.

#include <torch/torch.h>

namespace lsync::ops {

/// x [N, C, H, W] -> [N, C, 2H, 2W], y[.., 2h + dh, 2w + dw] = x[.., h, w], in x's memory order (a tensor that
/// is both orders at once, C == 1 or H = W = 1, comes back contiguous from the kernel).
torch::Tensor upsample_nearest2x(const torch::Tensor& x);

/// The ATen form (what the CPU runs; bf16 through fp32 as diffusers does, an exact round trip).
torch::Tensor upsample_nearest2x_reference(const torch::Tensor& x);

/// Whether the CUDA kernel serves upsample_nearest2x(x): the switch on, CUDA, a supported dtype and layout.
bool upsample_kernel_serves(const torch::Tensor& x);

bool fused_upsample_enabled();
void set_fused_upsample(bool enabled);

}  // namespace lsync::ops
