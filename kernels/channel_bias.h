#pragma once
// In-place per-channel bias add on a contiguous [N, C, P] tensor: y[n, c, p] += bias[c].
// ATen adds a convolution's bias after cuDNN as a broadcast add_, which runs its generic (non-vectorised,
// per-element offset arithmetic) element-wise kernel: a quarter of a VAE decode's time on an H200. This kernel
// reads and writes 16-byte vectors (a vector never crosses a channel when P is a multiple of its width), fp32
// arithmetic, one rounding: the value ATen's add gives.

#include "element_type.h"

#include <cstdint>
#include <string>

namespace lsync::kernels {

struct ChannelBiasArgs {
    void* y = nullptr;             ///< [rows = N * C, plane], contiguous, updated in place
    const void* bias = nullptr;    ///< [C], the dtype of y
    int64_t rows = 0, channels = 0, plane = 0;
    ElementType dtype = ElementType::Float32;
    int sm_count = 132;
    void* stream = nullptr;        ///< cudaStream_t
};

/// Launches the add; returns an empty string or the CUDA error.
std::string channel_bias_launch(const ChannelBiasArgs& args);

}  // namespace lsync::kernels
