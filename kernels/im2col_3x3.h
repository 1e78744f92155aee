#pragma once
// The patches of a 3 x 3, stride-1, padding-1 convolution as rows of a matrix: cols[p, k] for output pixel p
// (n, h, w) and column k = (kh * 3 + kw) * C + c holds x[n, c, h + kh - 1, w + kw - 1] (zero outside the image),
// columns from 9 C up to k_padded zero. With the weight as a [k_padded, K] matrix in the same column order, one
// GEMM gives the convolution's output as [pixels, K]: the channels-last tensor. For convolutions with very few
// input channels (the SD VAE encoder's conv_in: 3), where cuDNN's NHWC heuristics pick a slow generic kernel
// (0.32 ms for 16 images at 256 px on an H200, where writing the output needs under 0.1). Exact copies.

#include "element_type.h"

#include <cstdint>
#include <string>

namespace lsync::kernels {

struct Im2col3x3Args {
    const void* x = nullptr;  ///< [images, channels, height, width] with the element strides below
    void* cols = nullptr;     ///< [images * height * width, k_padded], contiguous
    int64_t images = 0, channels = 0, height = 0, width = 0;
    int64_t stride_n = 0, stride_c = 0, stride_h = 0, stride_w = 0;
    int64_t k_padded = 0;     ///< a multiple of 8, at least 9 * channels
    ElementType dtype = ElementType::Float16;  ///< fp16 or bf16
    int sm_count = 132;
    void* stream = nullptr;   ///< cudaStream_t
};

/// Empty when the kernel runs these arguments, else why not.
std::string im2col_3x3_unsupported(const Im2col3x3Args& args);

/// Launches the gather; returns an empty string or the CUDA error.
std::string im2col_3x3_launch(const Im2col3x3Args& args);

}  // namespace lsync::kernels
