#pragma once
// Softmax over the last dimension of fp32 logits, written in a half-precision type: the step between the two
// GEMMs of attention computed with fp32 logits (attention.cpp's route for heads wider than the fused kernels
// hold), without a pass that writes fp32 probabilities and another that casts them.

#include <torch/torch.h>

namespace lsync::ops {

/// softmax(logits, -1) in `dtype`, each value rounded once from fp32. On CUDA, for contiguous fp32 logits and an
/// fp16/bf16 `dtype`: kernels/softmax_rows.cu; elsewhere ATen's softmax and a cast (the same values up to the
/// last bit of the exponentials).
torch::Tensor softmax_last_to(const torch::Tensor& logits, torch::ScalarType dtype);

}  // namespace lsync::ops
