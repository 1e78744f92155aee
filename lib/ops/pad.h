#pragma once
// Zero padding by one pixel on the right and bottom: the SD VAE encoder's Downsample2D pad before its stride-2
// conv (F.pad(x, (0, 1, 0, 1))). On CUDA, for a channels_last tensor whose pixels are whole 16-byte vectors (the
// VAE's fp16/bf16/fp32 layers), kernels/pad_right_bottom.cu writes it in one pass; LSYNC_FUSED_PAD=0 (read once)
// turns that off. Everywhere else the ATen form. Both keep the input's memory order and copy values exactly.

#include <torch/torch.h>

namespace lsync::ops {

/// x [N, C, H, W] -> [N, C, H + 1, W + 1], the last row and column zero, in x's memory order.
torch::Tensor pad_right_bottom(const torch::Tensor& x);

/// The ATen form: the copy into the padded buffer's view, and only the new row and column zeroed.
torch::Tensor pad_right_bottom_reference(const torch::Tensor& x);

/// Whether the CUDA kernel serves pad_right_bottom(x).
bool pad_kernel_serves(const torch::Tensor& x);

bool fused_pad_enabled();
void set_fused_pad(bool enabled);

}  // namespace lsync::ops
