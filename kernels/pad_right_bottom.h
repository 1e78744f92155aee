#pragma once
// Zero padding by one pixel on the right and bottom of a channels-last image batch: y [N, H+1, W+1, C] from x
// [N, H, W, C], the new column and row zero (the SD VAE encoder's Downsample2D pads so before its stride-2 conv).
// ATen's copy into the padded buffer's strided view runs its generic element-wise kernel, one element per thread
// with offset arithmetic per element: 0.6 ms of a 256 px, 16-image encode on an H200 for three pads. Here a
// block walks output pixel rows and its threads move 16-byte vectors of a row, which is the input row followed
// by one pixel of zeros: no index arithmetic per vector. Exact copies.

#include <cstdint>
#include <string>

namespace lsync::kernels {

struct PadRightBottomArgs {
    const void* x = nullptr;  ///< [images, height, width, channels], contiguous
    void* y = nullptr;        ///< [images, height + 1, width + 1, channels], contiguous
    int64_t images = 0, height = 0, width = 0, channels = 0;
    int element_bytes = 2;    ///< 2 or 4
    int sm_count = 132;
    void* stream = nullptr;   ///< cudaStream_t
};

/// Empty when the kernel runs these arguments (16-byte aligned tensors, channels * element_bytes a multiple of
/// 16), else why not.
std::string pad_right_bottom_unsupported(const PadRightBottomArgs& args);

/// Launches the copy; returns an empty string or the CUDA error.
std::string pad_right_bottom_launch(const PadRightBottomArgs& args);

}  // namespace lsync::kernels
