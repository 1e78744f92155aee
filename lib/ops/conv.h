#pragma once
// 2-D convolution whose bias is added by our vectorised kernel (kernels/channel_bias.cu) on CUDA: ATen adds a
// cuDNN convolution's bias as a separate broadcast add_ through its slowest element-wise path. fp32/fp16/bf16 on
// CUDA unless LSYNC_FUSED_BIAS=0 (read once), for NCHW outputs and for the channels_last outputs cuDNN gives a
// channels_last input (the result keeps that memory order); everywhere else exactly at::conv2d with the bias,
// so CPU results do not change.

#include <torch/torch.h>

namespace lsync::ops {

/// y = conv2d(x, weight, bias) with square stride and zero padding; bias may be undefined.
torch::Tensor conv2d(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias, int64_t stride,
                     int64_t padding);

/// A torch::nn::Conv2d (square stride and padding, no dilation or groups) through conv2d().
torch::Tensor conv2d(const torch::nn::Conv2d& conv, const torch::Tensor& x);

/// The switch of our bias kernel (LSYNC_FUSED_BIAS), shared by conv2d() and the adds of ops/bias_add.h.
bool fused_bias_enabled();
void set_fused_bias(bool enabled);

}  // namespace lsync::ops
