#pragma once
// LayerNorm over the last dimension, alone or of a residual sum, as the UNet's transformer and motion-module
// blocks use it (`h = layer(norm(h)) + h`, then the next norm of h). On CUDA (fp32, fp16, bf16; contiguous
// rows of a multiple of 16 bytes up to 2,048 fp16 / 1,024 fp32 values; no autograd) it runs
// kernels/layer_norm_rows.cu: one warp per row, fp32 statistics, and for the sum one pass that writes both the
// sum and its norm. Everywhere else it is exactly torch::layer_norm (and ATen's add before it): CPU results do
// not change.
//
// LSYNC_FUSED_LAYER_NORM=0 in the environment (read once) turns the kernel off, for before/after timings.

#include <torch/torch.h>

#include <string>

namespace lsync::ops {

/// torch::layer_norm(x, {C}, weight, bias, eps) with weight and bias of C = x.size(-1) elements.
torch::Tensor layer_norm(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias, double eps);

struct SumAndNorm {
    torch::Tensor sum;     ///< x + residual
    torch::Tensor normed;  ///< layer_norm(sum)
};

/// sum = x + residual (same shape), normed = layer_norm(sum, weight, bias, eps): on CUDA in one pass, the sum
/// rounded to the storage type before it is normalised (so the values of the unfused pair).
SumAndNorm add_layer_norm(const torch::Tensor& x, const torch::Tensor& residual, const torch::Tensor& weight,
                          const torch::Tensor& bias, double eps);

/// Empty when the kernel can run this call (residual may be undefined: the norm alone), else why not.
std::string layer_norm_kernel_unsupported(const torch::Tensor& x, const torch::Tensor& residual,
                                          const torch::Tensor& weight, const torch::Tensor& bias);

/// Whether layer_norm() and add_layer_norm() use the kernel where it can run: true unless
/// LSYNC_FUSED_LAYER_NORM=0 (read on the first call), or as last set by set_fused_layer_norm().
bool fused_layer_norm_enabled();
void set_fused_layer_norm(bool enabled);

}  // namespace lsync::ops
