#include "unet/motion_module.h"

#include "core/error.h"
#include "ops/bias_add.h"
#include "ops/memory_layout.h"
#include "ops/tile_transpose.h"
#include "ops/valid_frames.h"

#include <cmath>

namespace lsync::models {

torch::Tensor temporal_position_table(int64_t dim, int64_t max_len) {
    // Same operations and dtypes as the official PositionalEncoding, so the table is bit-identical to the
    // saved buffer (the checkpoint's copy is what gets loaded anyway).
    auto position = torch::arange(max_len, torch::kLong).unsqueeze(1);
    auto div_term = torch::exp(torch::arange(0, dim, 2, torch::kLong) * (-std::log(10000.0) / static_cast<double>(dim)));
    auto pe = torch::zeros({1, max_len, dim});
    auto angles = position * div_term;  // [max_len, ceil(dim/2)]
    using torch::indexing::None;
    using torch::indexing::Slice;
    pe.index_put_({0, Slice(), Slice(0, None, 2)}, torch::sin(angles));
    pe.index_put_({0, Slice(), Slice(1, None, 2)}, torch::cos(angles).slice(1, 0, dim / 2));
    return pe;
}

TemporalAttentionImpl::TemporalAttentionImpl(int64_t dim, int64_t heads, int64_t head_dim, bool position_encoding,
                                             int64_t max_len)
    : AttentionImpl(dim, heads, head_dim) {
    if (position_encoding) {
        auto pos = std::make_shared<torch::nn::Module>();
        pe = pos->register_buffer("pe", temporal_position_table(dim, max_len));
        register_module("pos_encoder", pos);
    }
}

torch::Tensor TemporalAttentionImpl::position_table(int64_t frames) const {
    // `pe` shares its TensorImpl with the registered buffer, which the loader and to() update in place.
    LSYNC_CHECK(frames <= pe.size(1), ErrorCode::Usage,
                "UNet: " + std::to_string(frames) + " frames exceed the motion modules' position table (" +
                    std::to_string(pe.size(1)) + ")");
    return pe.slice(1, 0, frames);
}

torch::Tensor TemporalAttentionImpl::forward(const torch::Tensor& x, const torch::Tensor& key_counts) {
    if (!pe.defined()) return AttentionImpl::forward(x, std::nullopt, std::nullopt, key_counts);
    return AttentionImpl::forward(x + position_table(x.size(1)), std::nullopt, std::nullopt, key_counts);
}

torch::Tensor TemporalAttentionImpl::forward_consuming(torch::Tensor x, const torch::Tensor& key_counts) {
    if (!pe.defined() || !x.is_contiguous() || pe.scalar_type() != x.scalar_type()) return forward(x, key_counts);
    // In place over [b*s, f*dim]: one bias row of f*dim for every pixel's tokens (ops/bias_add.h), where ATen
    // would broadcast the [1, f, dim] table through its generic element-wise kernel.
    auto rows = x.view({x.size(0), -1});
    ops::add_row_bias_(rows, position_table(x.size(1)));
    return AttentionImpl::forward(x, std::nullopt, std::nullopt, key_counts);
}

TemporalTransformerBlockImpl::TemporalTransformerBlockImpl(int64_t dim, const MotionModuleConfig& cfg) {
    const int64_t heads = cfg.num_attention_heads;
    const int64_t head_dim = dim / heads;  // dim is already heads * (channels / heads / dim_div)
    torch::nn::ModuleList attention_blocks, norms;
    for (size_t k = 0; k < cfg.attention_block_types.size(); ++k) {
        attention.push_back(TemporalAttention(dim, heads, head_dim, cfg.temporal_position_encoding,
                                              cfg.temporal_position_encoding_max_len));
        attention_blocks->push_back(attention.back());
        norm.push_back(LayerNorm(dim));
        norms->push_back(norm.back());
    }
    register_module("attention_blocks", attention_blocks);
    register_module("norms", norms);
    ff = register_module("ff", FeedForward(dim));
    ff_norm = register_module("ff_norm", LayerNorm(dim));
}

torch::Tensor TemporalTransformerBlockImpl::forward(const torch::Tensor& x, const torch::Tensor& key_counts) {
    // Official: h = attention[k](norm[k](h)) + h for each k, then ff(ff_norm(h)) + h. Each residual add is done
    // together with the norm that reads its result (forward_sum).
    ops::SumAndNorm s{x, attention.empty() ? ff_norm(x) : norm[0](x)};
    for (size_t k = 0; k < attention.size(); ++k) {
        auto& next = k + 1 < attention.size() ? norm[k + 1] : ff_norm;
        s = next->forward_sum(attention[k]->forward_consuming(s.normed, key_counts), s.sum);
    }
    return ff(s.normed) + s.sum;
}

MotionModuleImpl::MotionModuleImpl(int64_t channels, int64_t groups, const MotionModuleConfig& cfg) {
    auto tt = std::make_shared<torch::nn::Module>();
    const int64_t heads = cfg.num_attention_heads;
    const int64_t inner = heads * (channels / heads / cfg.temporal_attention_dim_div);
    norm = tt->register_module("norm", GroupNorm(groups, channels, 1e-6));
    proj_in = tt->register_module("proj_in", Linear(channels, inner));
    torch::nn::ModuleList transformer_blocks;
    for (int i = 0; i < cfg.num_transformer_block; ++i) {
        blocks.push_back(TemporalTransformerBlock(inner, cfg));
        transformer_blocks->push_back(blocks.back());
    }
    tt->register_module("transformer_blocks", transformer_blocks);
    proj_out = tt->register_module("proj_out", Linear(inner, channels));
    register_module("temporal_transformer", tt);
}

torch::Tensor MotionModuleImpl::forward(const torch::Tensor& x) {
    const int64_t b = x.size(0), c = x.size(1), frames = x.size(2), h = x.size(3), w = x.size(4), s = h * w;
    // A padded call's real frames per sequence (one sequence per pixel of each entry); undefined when all are.
    const auto key_counts = ops::valid_frames_per_sequence(b, s);
    // Frame-major planes [b, f, c, s] (what a per-frame conv leaves behind the 5-D view); norm statistics per
    // frame. The tokens go straight to pixel-major order [(b s), f, c], the order temporal attention needs,
    // and stay there through every block; the official code regroups them around each attention instead.
    const auto residual = fold_frames(x);
    if (ops::is_channels_last_only(residual)) {
        // Channels-last planes (the UNet's CUDA layout) lie as [b, f, s, c]: the same regrouping swaps the frame
        // and pixel dimensions of whole channel rows, on the way out with the residual added.
        const auto as_rows = [&](const torch::Tensor& planes) {
            return planes.permute({0, 2, 3, 1}).reshape({b, frames, s, c});
        };
        auto t = ops::swap_middle(as_rows(norm(residual))).view({b * s, frames, c});
        t = proj_in(t);
        for (auto& block : blocks) t = block->forward(t, key_counts);
        t = proj_out(t).view({b, s, frames, c});
        const auto y = ops::swap_middle(t, as_rows(residual));
        return unfold_frames(y.view({b * frames, h, w, c}).permute({0, 3, 1, 2}), frames);
    }
    auto t = ops::transpose_last2(norm(residual).reshape({b, frames * c, s})).reshape({b * s, frames, c});
    t = proj_in(t);
    for (auto& block : blocks) t = block->forward(t, key_counts);
    t = proj_out(t).reshape({b, s, frames * c});
    const auto y = ops::add_transposed(residual.reshape({b, frames * c, s}), t);
    return unfold_frames(y.view({b * frames, c, h, w}), frames);
}

}  // namespace lsync::models
