#pragma once
// The UNet's layout changes between per-frame planes [.., channels, pixels] and attention tokens
// [.., pixels, channels]: a batched transpose of the last two dimensions, optionally fused with the residual
// add that follows it. On CUDA (fp32/fp16/bf16) they run kernels/tile_transpose.cu (coalesced tiles, one pass);
// elsewhere, or with LSYNC_FUSED_TRANSPOSE=0 (read once), ATen's permute + copy / add, which gives the same
// values (a copy, and one fp32 add rounded once either way).

#include <torch/torch.h>

namespace lsync::ops {

/// x [B, J, I] -> contiguous [B, I, J].
torch::Tensor transpose_last2(const torch::Tensor& x);

/// residual [B, I, J] + x [B, J, I] transposed -> contiguous [B, I, J].
torch::Tensor add_transposed(const torch::Tensor& residual, const torch::Tensor& x);

/// x [B, J, I] -> contiguous [B, I, J] plus bias[b / batches_per_bias, i]: bias [I] when batches_per_bias is 0,
/// else [B / batches_per_bias, I] (an NHWC convolution's output back to NCHW with its bias, or with a UNet
/// resnet's bias + time embedding per batch entry's frames: ops::conv2d). With a residual [B, I, J] it returns
/// residual + (x^T + bias), the biased value rounded first (a resnet's conv2 and its shortcut add).
torch::Tensor transpose_last2_add_bias(const torch::Tensor& x, const torch::Tensor& bias, int64_t batches_per_bias,
                                       const torch::Tensor& residual = {});

/// x [B, F, S, C] -> contiguous [B, S, F, C] (the middle two dimensions swapped), plus residual [B, S, F, C] when
/// given: the channels-last UNet's motion modules, between per-frame planes and pixel-major tokens
/// (kernels/swap_middle.cu on CUDA).
torch::Tensor swap_middle(const torch::Tensor& x, const torch::Tensor& residual = {});

/// The ATen forms of the four, what the CPU runs (tests compare the kernels against them).
torch::Tensor transpose_last2_reference(const torch::Tensor& x);
torch::Tensor add_transposed_reference(const torch::Tensor& residual, const torch::Tensor& x);
torch::Tensor transpose_last2_add_bias_reference(const torch::Tensor& x, const torch::Tensor& bias,
                                                 int64_t batches_per_bias, const torch::Tensor& residual = {});
torch::Tensor swap_middle_reference(const torch::Tensor& x, const torch::Tensor& residual = {});

/// Whether the CUDA kernels serve these calls: true unless LSYNC_FUSED_TRANSPOSE=0, or as last set.
bool fused_transpose_enabled();
void set_fused_transpose(bool enabled);

}  // namespace lsync::ops
