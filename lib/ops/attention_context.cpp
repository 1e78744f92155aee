#include "ops/attention_context.h"

#include "core/error.h"

namespace lsync::ops {

AttentionContext::AttentionContext(std::shared_ptr<AttentionDispatcher> dispatcher)
    : dispatcher_(std::move(dispatcher)) {}

torch::Tensor AttentionContext::attend(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                       const std::optional<torch::Tensor>& key_bias,
                                       const torch::Tensor& key_counts) const {
    AttentionInputs in{q, k, v, key_bias, key_counts};
    if (dispatcher_) return (*dispatcher_)(in);
    return standard_attention(in);
}

void AttentionContext::set_lip_focus(const torch::Tensor& mouth, double weight) {
    LSYNC_CHECK(weight > 0, ErrorCode::Usage, "--lip-focus must be positive");
    LSYNC_CHECK(mouth.dim() == 2, ErrorCode::Internal, "lip-focus mouth mask must be [H, W]");
    mouth_ = mouth.to(torch::kCPU, torch::kFloat).contiguous();
    weight_ = weight;
    bias_cache_.clear();
}

std::optional<torch::Tensor> AttentionContext::spatial_bias(int64_t h, int64_t w, const torch::Device& device) const {
    if (!lip_focus_enabled()) return std::nullopt;
    auto& cached = bias_cache_[{h, w}];
    if (!cached.defined()) {
        // Area downsampling keeps the fraction of each token's footprint that is mouth; >= 0.5 counts as mouth.
        auto grid = torch::adaptive_avg_pool2d(mouth_.unsqueeze(0).unsqueeze(0), {h, w}).reshape({1, h * w});
        cached = lip_focus_bias((grid >= 0.5).to(torch::kFloat), weight_);
    }
    if (cached.device() != device) cached = cached.to(device);
    return cached;
}

AttentionContextPtr default_attention_context() {
    static const auto ctx = std::make_shared<AttentionContext>();
    return ctx;
}

}  // namespace lsync::ops
