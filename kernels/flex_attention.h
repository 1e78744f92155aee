#pragma once
// Fused attention with a per-key additive bias (the lip-focus score modification of `--attention flex`):
//   out[b,h,i,:] = sum_j softmax_j(scale * q_i . k_j + bias[b, j]) v_j
// One pass over the keys with an online softmax (FlashAttention style) on tensor cores (WMMA), so the
// [Lq, Lk] score matrix never exists in global memory. fp16/bf16 inputs, fp32 accumulation and softmax.
// Plain pointers and strides: this header and its .cu see no LibTorch; lib/ops/ validates tensors and
// calls it on the current stream.

#include <cstdint>
#include <string>

namespace lsync::kernels {

enum class FlexDType { Float16, BFloat16 };

/// Element strides of a [B, H, L, D] tensor whose last dimension is contiguous.
struct BHLStrides {
    int64_t b = 0, h = 0, l = 0;
};

struct FlexAttentionArgs {
    const void* q = nullptr;
    const void* k = nullptr;
    const void* v = nullptr;
    void* out = nullptr;                ///< [B, H, Lq, D], contiguous
    const float* key_bias = nullptr;    ///< [bias_batch, Lk] contiguous fp32, or null for no bias
    int bias_batch = 1;                 ///< 1 (shared by the batch) or B
    int batch = 0, heads = 0, lq = 0, lk = 0, head_dim = 0;
    BHLStrides q_stride, k_stride, v_stride;
    float scale = 1.f;                  ///< usually 1/sqrt(head_dim)
    FlexDType dtype = FlexDType::Float16;
    void* stream = nullptr;             ///< cudaStream_t
};

/// Empty when the kernel can run these arguments, else why not (head dim, alignment, architecture).
std::string flex_attention_unsupported(const FlexAttentionArgs& args, int device_major);

/// Launches the kernel; returns an empty string or the CUDA error.
std::string flex_attention_launch(const FlexAttentionArgs& args);

}  // namespace lsync::kernels
