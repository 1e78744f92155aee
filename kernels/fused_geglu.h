#pragma once
// Fused GEGLU for the UNet feed-forward (diffusers GEGLU after its projection):
//   y[r, j] = x[r, j] * gelu(x[r, inner + j]),  gelu(g) = 0.5 g (1 + erf(g / sqrt 2))  (exact, ATen's default),
// x [rows, 2 * inner] and y [rows, inner], both contiguous. fp16/bf16/fp32 in and out, fp32 arithmetic and one
// rounding to the output dtype (ATen's chunk + gelu + mul rounds twice and runs its strided kernel on the halves).
// Plain pointers: this header and its .cu see no LibTorch; lib/ops/geglu.cpp validates tensors and calls it on
// the current stream.

#include "element_type.h"

#include <cstdint>
#include <string>

namespace lsync::kernels {

struct GegluArgs {
    const void* x = nullptr;  ///< [rows, 2 * inner], row stride 2 * inner
    void* y = nullptr;        ///< [rows, inner], row stride inner; must not overlap x
    int64_t rows = 0, inner = 0;
    ElementType dtype = ElementType::Float32;
    int sm_count = 132;       ///< multiprocessors of the device (sizes the grid)
    void* stream = nullptr;   ///< cudaStream_t
};

/// Empty when the kernel can run these arguments, else why not.
std::string geglu_unsupported(const GegluArgs& args);

/// Launches the kernel; returns an empty string or the CUDA error.
std::string geglu_launch(const GegluArgs& args);

}  // namespace lsync::kernels
