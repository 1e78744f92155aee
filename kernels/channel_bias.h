#pragma once
// In-place per-channel bias add, y += bias along the channels, in either memory order of a conv output:
//   channels outer (channels_inner = false): contiguous [N, C, P], y[n, c, p] += bias[n / samples_per_bias, c]
//                                            (samples_per_bias = 0: one bias row for all samples);
//   channels inner (channels_inner = true):  [M, C] with C innermost (a channels_last [N, C, H, W] output of
//                                            cuDNN's NHWC convolutions, M = N * H * W), y[m, c] += bias[c].
// ATen adds a convolution's bias after cuDNN as a broadcast add_, which runs its generic (non-vectorised,
// per-element offset arithmetic) element-wise kernel: a quarter of a VAE decode's time on an H200. This kernel
// reads and writes 16-byte vectors (channels outer: a vector never crosses a channel when P is a multiple of its
// width; channels inner: a thread keeps one vector of channels, its bias in registers, when C is a multiple of
// the width), fp32 arithmetic, one rounding: the value ATen's add gives.

#include "element_type.h"

#include <cstdint>
#include <string>

namespace lsync::kernels {

struct ChannelBiasArgs {
    void* y = nullptr;             ///< [rows = N * C, plane] (or [rows = M, channels]), contiguous, in place
    const void* bias = nullptr;    ///< [C] (or [N / samples_per_bias, C]), the dtype of y
    int64_t rows = 0, channels = 0, plane = 0;  ///< plane: unused when channels_inner
    /// Channels outer only: consecutive samples sharing one row of a [N / samples_per_bias, C] bias (a UNet
    /// resnet's conv bias plus its batch entry's time embedding, over the entry's frames); 0: one row of [C].
    int64_t samples_per_bias = 0;
    bool channels_inner = false;   ///< y is [rows, channels]: bias along the innermost dimension
    /// Channels inner only: [rows, channels] added after the bias, y = residual + (y + bias) with the biased value
    /// rounded first (a VAE resnet's conv2 and its shortcut in one pass); null: none.
    const void* residual = nullptr;
    /// With a residual only: [channels] added to the residual first, rounded, y = (residual + residual_bias) +
    /// (y + bias) (a shortcut conv's bias, or that of the conv whose output is the residual); null: none.
    const void* residual_bias = nullptr;
    /// With a residual only: the sums go to `out` instead of y, [N, out_height + 1, out_width + 1, channels] with
    /// rows = N * out_height * out_width (y's images padded by one pixel right and bottom, the pad left to the
    /// caller: a VAE Downsample2D's input written where its conv reads it); null: in place.
    void* out = nullptr;
    int64_t out_height = 0, out_width = 0;
    ElementType dtype = ElementType::Float32;
    int sm_count = 132;
    void* stream = nullptr;        ///< cudaStream_t
};

/// Launches the add; returns an empty string or the CUDA error.
std::string channel_bias_launch(const ChannelBiasArgs& args);

}  // namespace lsync::kernels
