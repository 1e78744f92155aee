#pragma once
// The implementations of `--attention flex` (attention with an additive per-key bias). They compute the same
// function; which is fastest depends on the card, so `auto` walks a measured preference order and takes the
// first that can run the call (docs/attention.md, docs/benchmarks.md):
//   kernel        our fused CUDA kernel (kernels/flex_attention.cu): online softmax, bias per key, WMMA
//   folded-sdpa   the bias folded into one extra head dimension (q' = [q, 1, 0..], k' = [k, b*sqrt(d), 0..])
//                 so SDPA's bias-free FlashAttention kernel runs it; costs 8 extra head dims of FLOPs
//   sdpa-bias     SDPA with the bias as an additive mask (ATen picks mem-efficient/cuDNN/math)
//   standard      standard_attention with the bias (everywhere, also LibTorch 1.13)

#include "ops/attention.h"

#include <string>
#include <vector>

namespace lsync::ops {

enum class FlexImpl { Auto, Kernel, FoldedSdpa, SdpaBias, Standard };

std::string to_string(FlexImpl impl);
/// Parses "auto|kernel|folded-sdpa|sdpa-bias|standard"; Error(Usage) otherwise.
FlexImpl parse_flex_impl(const std::string& name);

/// Empty when `impl` can run `in` on this build and device, else the reason.
std::string flex_impl_unsupported(FlexImpl impl, const AttentionInputs& in);

/// Runs `in` with `impl` (Auto: the first supported in flex_preference()). Error(Backend) when unsupported.
torch::Tensor flex_attention_with(FlexImpl impl, const AttentionInputs& in);

/// The order Auto tries for these inputs (by shape, from measurements; the fused kernel is not in it).
std::vector<FlexImpl> flex_preference(const AttentionInputs& in);

}  // namespace lsync::ops
