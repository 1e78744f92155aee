#pragma once
// Attention over short sequences: at most 16 queries and 16 keys per (batch, head), the motion modules'
// temporal attention over the 16 frames of a chunk. ATen's fused kernels tile 64-128 rows, so at this length
// most of their work is padding: cuDNN ran these shapes at 8-13x the time their bytes take on an H200
// (docs/performance-notes.md section 6). Here one warp owns one (batch, head): S = Q K^T in two 16x8 tensor-core
// tiles (fp32 accumulation), the softmax in registers, then P V one 8-wide slice of the head dim at a time,
// written straight to the output. fp16/bf16 in and out; P is rounded to the input type before P V, as in
// FlashAttention.
//   out[b, i, h, :] = sum_j softmax_j(scale * q[b, h, i] . k[b, h, j]) v[b, h, j]
// Plain pointers and strides: this header and its .cu see no LibTorch; lib/ops/short_attention.cpp validates
// tensors and calls it on the current stream.

#include "element_type.h"

#include <cstdint>
#include <string>

namespace lsync::kernels {

/// The longest query and key sequence the kernel takes.
constexpr int kShortAttentionMaxLength = 16;

struct ShortAttentionArgs {
    const void* q = nullptr;    ///< [B, H, Lq, D] with the element strides below; D contiguous
    const void* k = nullptr;    ///< [B, H, Lk, D]
    const void* v = nullptr;    ///< [B, H, Lk, D]
    void* out = nullptr;        ///< [B, Lq, H, D] contiguous (the layout the output projection reads)
    int64_t batch = 0, heads = 0, lq = 0, lk = 0, head_dim = 0;
    int64_t q_b = 0, q_h = 0, q_l = 0;  ///< element strides of q's first three dimensions
    int64_t k_b = 0, k_h = 0, k_l = 0;
    int64_t v_b = 0, v_h = 0, v_l = 0;
    float scale = 1.f;          ///< usually 1/sqrt(head_dim)
    /// int32 [B] in device memory, or null: sequence b attends to its first key_counts[b] keys only (at least
    /// 1; the motion modules' real frames of a padded chunk, ops/valid_frames.h)
    const int32_t* key_counts = nullptr;
    ElementType dtype = ElementType::Float16;
    int device_major = 0;       ///< compute capability of the tensors' device (the mma needs 8.0)
    void* stream = nullptr;     ///< cudaStream_t
};

/// Empty when the kernel can run these arguments, else why not (lengths, dtype, head dim, alignment).
std::string short_attention_unsupported(const ShortAttentionArgs& args);

/// Launches the kernel; returns an empty string or the CUDA error.
std::string short_attention_launch(const ShortAttentionArgs& args);

}  // namespace lsync::kernels
