#include "ops/valid_frames.h"

#include "core/error.h"

#include <limits>

namespace lsync::ops {

namespace {
thread_local torch::Tensor g_counts;
}  // namespace

ValidFramesScope::ValidFramesScope(torch::Tensor counts) : previous_(g_counts) {
    if (!counts.defined()) return;
    LSYNC_CHECK(counts.dim() == 1 && counts.size(0) > 0 && counts.scalar_type() == torch::kInt, ErrorCode::Internal,
                "ValidFramesScope: counts must be int32 [n]");
    g_counts = std::move(counts);
}

ValidFramesScope::~ValidFramesScope() { g_counts = previous_; }

const torch::Tensor& valid_frames() { return g_counts; }

torch::Tensor valid_frames_for(int64_t batch) {
    if (!g_counts.defined()) return {};
    const int64_t n = g_counts.size(0);
    LSYNC_CHECK(batch > 0 && batch % n == 0, ErrorCode::Internal,
                "valid frames: a call of " + std::to_string(batch) + " entries under a scope of " +
                    std::to_string(n));
    return batch == n ? g_counts : g_counts.repeat({batch / n});
}

torch::Tensor valid_frames_per_sequence(int64_t batch, int64_t per_entry) {
    const auto counts = valid_frames_for(batch);
    if (!counts.defined()) return {};
    // Broadcast and copy rather than repeat_interleave, whose output size some LibTorch versions read back to the
    // host (not allowed while a CUDA graph is captured).
    return per_entry == 1 ? counts : counts.unsqueeze(1).expand({-1, per_entry}).reshape({-1});
}

bool counts_fit(const torch::Tensor& counts, int64_t batch, const torch::Device& device) {
    return counts.dim() == 1 && counts.size(0) == batch && counts.scalar_type() == torch::kInt &&
           counts.device() == device && counts.is_contiguous();
}

torch::Tensor key_mask_bias(const torch::Tensor& counts, int64_t keys) {
    const auto positions = torch::arange(keys, counts.options().dtype(torch::kInt)).unsqueeze(0);
    const auto zeros = torch::zeros({counts.size(0), keys}, counts.options().dtype(torch::kFloat));
    return zeros.masked_fill(positions >= counts.unsqueeze(1), -std::numeric_limits<float>::infinity());
}

torch::Tensor group_norm_valid_frames_reference(const torch::Tensor& x, const torch::Tensor& counts, int64_t groups,
                                                const torch::Tensor& weight, const torch::Tensor& bias, double eps,
                                                bool silu) {
    LSYNC_CHECK(x.dim() == 5 && counts.dim() == 1 && counts.size(0) == x.size(0) && x.size(1) % groups == 0,
                ErrorCode::Internal, "group_norm_valid_frames_reference: x [B, C, F, H, W] and counts [B]");
    const int64_t b = x.size(0), c = x.size(1), f = x.size(2), h = x.size(3), w = x.size(4);
    // [B, G, C/G, F, H*W] in fp32, and the real frames' mask [B, 1, 1, F, 1].
    const auto v = x.to(torch::kFloat).reshape({b, groups, c / groups, f, h * w});
    const auto frames = torch::arange(f, counts.options().dtype(torch::kInt)).unsqueeze(0);
    const auto real = (frames < counts.unsqueeze(1)).to(torch::kFloat).view({b, 1, 1, f, 1});
    const auto n = (counts.to(torch::kFloat) * static_cast<double>(c / groups * h * w)).view({b, 1, 1, 1, 1});
    const std::vector<int64_t> dims{2, 3, 4};
    const auto mean = (v * real).sum(dims, /*keepdim=*/true) / n;
    const auto centred = v - mean;
    const auto var = (centred * centred * real).sum(dims, /*keepdim=*/true) / n;
    auto y = (centred * torch::rsqrt(var + eps)).view({b, c, f, h, w});
    if (weight.defined()) y = y * weight.to(torch::kFloat).view({1, c, 1, 1, 1});
    if (bias.defined()) y = y + bias.to(torch::kFloat).view({1, c, 1, 1, 1});
    if (silu) y = torch::silu(y);
    // The caller's layout: a frames-channels-last input gets a frames-channels-last result.
    auto out = x.is_non_overlapping_and_dense() ? torch::empty_strided(x.sizes(), x.strides(), x.options())
                                                : torch::empty_like(x, at::MemoryFormat::Contiguous);
    out.copy_(y);
    return out;
}

}  // namespace lsync::ops
