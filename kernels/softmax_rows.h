#pragma once
// Softmax over the rows of an fp32 matrix, written in fp16 or bf16: the middle step of attention computed as two
// GEMMs with fp32 logits (lib/ops/attention.cpp, the VAE's 512-channel head). ATen's softmax would write fp32
// and a cast pass would follow; this writes the probabilities in the type the second GEMM reads. A block takes a
// row's maximum and sum in fp32 in one pass (online), then reads the row again (a row of 4,096 keys is 16 KiB,
// still in cache) and writes exp(x - max) * (1 / sum), computed in fp32 and rounded once.

#include "element_type.h"

#include <cstdint>
#include <string>

namespace lsync::kernels {

struct SoftmaxRowsArgs {
    const float* x = nullptr;  ///< [rows, cols], contiguous
    void* y = nullptr;         ///< [rows, cols], contiguous, of `dtype`
    int64_t rows = 0, cols = 0;
    ElementType dtype = ElementType::Float16;  ///< fp16 or bf16
    void* stream = nullptr;                    ///< cudaStream_t
};

/// Empty when the kernel runs these arguments, else why not.
std::string softmax_rows_unsupported(const SoftmaxRowsArgs& args);

/// Launches it; returns an empty string or the CUDA error.
std::string softmax_rows_launch(const SoftmaxRowsArgs& args);

}  // namespace lsync::kernels
