#pragma once
// A 3 x 3, stride-1, padding-1 convolution with few input channels as one GEMM over its patches
// (kernels/im2col_3x3.cu): the SD VAE encoder's conv_in (3 channels in, 128 out). cuDNN's NHWC heuristics give that
// shape a generic kernel that takes about three times what writing its output costs; the patch matrix of 3
// channels is 32 columns (27 taps and 5 zeros), a ninth of the output's size, and cuBLAS's GEMM over it writes the
// output channels-last at the memory's pace. CUDA, fp16/bf16, a channels_last input of at most 7 channels and an
// output channel count that is a multiple of 8; on unless LSYNC_IM2COL_CONV=0. fp32 accumulation as cuDNN's; the
// values agree to rounding (a whole fp16 VAE encode on an H200 gave cuDNN's latents bit for bit).

#include <torch/torch.h>

namespace lsync::ops {

/// Whether conv2d(x, weight, bias, stride, padding) takes the patch-GEMM route.
bool im2col_conv_serves(const torch::Tensor& x, const torch::Tensor& weight, int64_t stride, int64_t padding);

/// The convolution without bias through the route (im2col_conv_serves must hold): channels_last [N, K, H, W].
torch::Tensor im2col_conv2d(const torch::Tensor& x, const torch::Tensor& weight);

/// The patch matrix alone, [N * H * W, k_padded] (k_padded a multiple of 8, at least 9 C): for tests.
torch::Tensor im2col_3x3(const torch::Tensor& x, int64_t k_padded);

bool im2col_conv_enabled();
void set_im2col_conv(bool enabled);

}  // namespace lsync::ops
