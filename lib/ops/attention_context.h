#pragma once
// What every attention site of a network needs at run time: the dispatcher that picks and remembers the backend,
// and the lip-focus setting that spatial self-attention sites turn into a per-key bias. One context is shared
// by all modules of a pipeline (set once with each network's `set_attention`), so a runtime fallback decided in
// one layer holds for every layer.

#include "ops/attention.h"

#include <torch/torch.h>

#include <map>
#include <memory>
#include <optional>

namespace lsync::ops {

class AttentionContext {
public:
    /// Standard attention, no lip focus: what tests and tools get unless they ask for more.
    AttentionContext() = default;
    explicit AttentionContext(std::shared_ptr<AttentionDispatcher> dispatcher);

    /// q [B, H, Lq, D], k/v [B, H, Lk, D] -> [B, H, Lq, D] on the dispatcher's backend (standard when none);
    /// key_counts as AttentionInputs::key_counts.
    torch::Tensor attend(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                         const std::optional<torch::Tensor>& key_bias = std::nullopt,
                         const torch::Tensor& key_counts = {}) const;

    /// Enables lip focus: `mouth` is [H, W] (any resolution, 1 = mouth, 0 = elsewhere, e.g. 1 - mask.png) and
    /// `weight` the factor (--lip-focus). weight == 1 disables it.
    void set_lip_focus(const torch::Tensor& mouth, double weight);
    bool lip_focus_enabled() const { return mouth_.defined() && weight_ != 1.0; }

    /// The key bias [1, h*w] (fp32, on `device`) for a spatial self-attention site whose tokens are an h x w grid
    /// in row-major order, or nullopt when lip focus is off. The mask is area-downsampled to the grid and a
    /// token counts as mouth when at least half of its area is; results are cached per grid size.
    std::optional<torch::Tensor> spatial_bias(int64_t h, int64_t w, const torch::Device& device) const;

    const AttentionDispatcher* dispatcher() const { return dispatcher_.get(); }

private:
    std::shared_ptr<AttentionDispatcher> dispatcher_;
    torch::Tensor mouth_;
    double weight_ = 1.0;
    mutable std::map<std::pair<int64_t, int64_t>, torch::Tensor> bias_cache_;
};

using AttentionContextPtr = std::shared_ptr<AttentionContext>;

/// The context used when a network was never given one.
AttentionContextPtr default_attention_context();

}  // namespace lsync::ops
