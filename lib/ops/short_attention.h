#pragma once
// Attention over short sequences on CUDA (kernels/short_attention_mma.h): at most 16 queries and 16 keys, the
// motion modules' temporal attention over a chunk's 16 frames, where ATen's fused kernels spend most of their
// tiles on padding. `flash_attention` takes this path for every call it fits; LSYNC_SHORT_ATTENTION=0 (or
// set_short_attention(false)) sends those calls back to SDPA, to measure.

#include "ops/attention.h"

#include <string>

namespace lsync::ops {

bool short_attention_enabled();
void set_short_attention(bool enabled);

/// Empty when the kernel can run `in` (CUDA, compute capability >= 8.0, fp16/bf16, at most 16 queries and 16
/// keys, no key bias, head dim a multiple of 8, strides in 16-byte units, no gradient, key counts if any
/// int32 [B] on q's device), else why not.
std::string short_attention_unsupported(const AttentionInputs& in);

/// Whether `flash` runs `in` on the kernel: a CUDA call the kernel takes, with the switch on.
bool short_attention_serves(const AttentionInputs& in);

/// The kernel's result, [B, H, Lq, D] as a view of [B, Lq, H, D] memory (what the caller's output projection
/// reads, and the layout SDPA returns too). Error(Backend) when unsupported.
torch::Tensor short_attention(const AttentionInputs& in);

}  // namespace lsync::ops
