#pragma once
// Convolutions whose input or output channel count is not a multiple of 8, such as the VAE's first (3 -> 128
// channels at full resolution) and last (128 -> 3): cuDNN has no Hopper NHWC tensor-core kernel for them and
// runs an older one at a fraction of the bandwidth (0.29-0.30 ms each for 16 images of 256 px on an H200, where
// their reads take about 0.06 ms). With zero channels added up to a multiple of 8 (the weight, the bias and, for
// the input side, a zero-padded copy of the input) the same sums run in the NHWC kernels, and the added output
// channels are dropped. Zeros add nothing: the values differ only by the kernels' summation order.
//
// Served on CUDA for channels_last fp16/bf16 inputs (the VAE's there) unless LSYNC_CHANNEL_PAD_CONV=0 (read
// once); everywhere else the plain ops::conv2d.

#include "ops/derived_weight.h"

#include <torch/torch.h>

namespace lsync::ops {

/// [K, C, kh, kw] -> [K', C', kh, kw] with K', C' the next multiples of 8, zeros beyond, laid out as
/// conv_weight_memory_format gives (channels_last on CUDA in fp16/bf16).
torch::Tensor channel_padded_weight(const torch::Tensor& weight);
/// [K] -> [K'], zeros beyond.
torch::Tensor channel_padded_bias(const torch::Tensor& bias);

/// A module's padded weight and bias, made at their first use (ops/derived_weight.h).
struct ChannelPaddedWeights {
    DerivedWeight weight, bias;
};

/// conv2d(x, weight, bias, stride, padding) through the padded weights (on any device: the CPU tests check the
/// algebra); the result in x's memory order.
torch::Tensor conv2d_channel_padded(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias,
                                    int64_t stride, int64_t padding, ChannelPaddedWeights& padded);

/// Whether the padded form serves this pair in a model: the switch on, CUDA, a channels_last fp16/bf16 input, and
/// a channel count (in or out) that is not a multiple of 8.
bool channel_pad_serves(const torch::Tensor& x, const torch::Tensor& weight);

/// A torch::nn::Conv2d (square stride and padding) through the padded form where it serves, else ops::conv2d.
torch::Tensor conv2d_padding_channels(const torch::nn::Conv2d& conv, const torch::Tensor& x,
                                      ChannelPaddedWeights& padded);

bool channel_pad_conv_enabled();
void set_channel_pad_conv(bool enabled);

}  // namespace lsync::ops
