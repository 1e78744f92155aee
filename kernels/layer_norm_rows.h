#pragma once
// LayerNorm over the last dimension of a contiguous [rows, cols] tensor, optionally of the sum of two inputs:
//   y = (s - mean(s)) / sqrt(var(s) + eps) * weight + bias,  s = x            (residual == nullptr)
//                                                            s = x + residual, also written to `sum`
// Every UNet transformer block and motion-module block does `h = layer(norm(h)) + h` two or three times; the
// sum is the next norm's input, so computing both in one pass saves the norm's re-read of the sum. ATen's
// LayerNorm kernel, at the UNet's shapes (131,072 rows of 320 at 512 px), ran at about a fifth of the H200's
// bandwidth: one block per row. Here one warp owns a row, held in registers (16-byte vectors, at most
// kMaxVectorsPerLane per lane), statistics in fp32 (mean, then the centred sum of squares: two passes over
// registers), one rounding per output. The sum is rounded to the storage type before it is normalised, so the
// fused path normalises exactly the tensor the unfused `x + residual` would produce.

#include "element_type.h"

#include <cstdint>
#include <string>

namespace lsync::kernels {

struct LayerNormArgs {
    const void* x = nullptr;         ///< [rows, cols], contiguous, 16-byte aligned
    const void* residual = nullptr;  ///< optional, as x: normalise x + residual
    void* sum = nullptr;             ///< with residual: x + residual is written here (ops::add_layer_norm gives a new tensor)
    void* y = nullptr;               ///< [rows, cols] output (must not alias the inputs)
    const void* weight = nullptr;    ///< [cols], the dtype of x
    const void* bias = nullptr;      ///< [cols], the dtype of x
    int64_t rows = 0, cols = 0;
    float eps = 1e-5f;
    ElementType dtype = ElementType::Float32;
    int sm_count = 132;
    void* stream = nullptr;  ///< cudaStream_t
};

/// The widest row (in 16-byte vectors per lane of a warp) the kernel keeps in registers.
constexpr int kLayerNormMaxVectorsPerLane = 8;

/// Whether the kernel takes rows of `cols` elements of `element_bytes` each (a multiple of the 16-byte vector,
/// at most 32 lanes x kLayerNormMaxVectorsPerLane vectors: 2,048 fp16 or 1,024 fp32 values).
bool layer_norm_cols_supported(int64_t cols, int element_bytes);

/// Launches the norm; returns an empty string or why it could not (bad shape, CUDA error).
std::string layer_norm_launch(const LayerNormArgs& args);

}  // namespace lsync::kernels
