#pragma once
// The second half of a nearest x2 upsampling followed by a 3x3 convolution (padding 1), computed as one 2x2
// convolution of the low-resolution input (ops/upsample_conv.h): cuDNN writes, for each of the four output
// phases (a, b) = (row, column) parity, C channels at every position of the (H + 1) x (W + 1) grid of a
// padding-1 2x2 convolution, in channels-inner memory [N, H + 1, W + 1, 4 C] with the phase outermost in the
// channel index (phase = 2 a + b). This pass puts them in place and adds the convolution's bias:
//   y[n, 2 i + a, 2 j + b, c] = z[n, i + a, j + b, (2 a + b) C + c] + bias[c]
// with y channels inner [N, 2 H, 2 W, C]. fp32 arithmetic and one rounding, as ATen's bias add after a
// convolution. A thread moves one 16-byte vector of channels when C is a multiple of the vector's width and
// the pointers are aligned; single elements otherwise.

#include "element_type.h"

#include <cstdint>
#include <string>

namespace lsync::kernels {

struct SubpixelShuffleArgs {
    const void* z = nullptr;     ///< [N, H + 1, W + 1, 4 C], contiguous
    const void* bias = nullptr;  ///< [C] in z's type, or null for none
    void* y = nullptr;           ///< [N, 2 H, 2 W, C], contiguous
    int64_t batch = 0, height = 0, width = 0, channels = 0;  ///< N, H, W (the input's), C
    ElementType dtype = ElementType::Float32;
    int sm_count = 132;
    void* stream = nullptr;      ///< cudaStream_t
};

/// Empty when the kernel runs these arguments, else why not.
std::string subpixel_shuffle_unsupported(const SubpixelShuffleArgs& args);

/// Launches the pass; returns an empty string or the CUDA error.
std::string subpixel_shuffle_launch(const SubpixelShuffleArgs& args);

}  // namespace lsync::kernels
