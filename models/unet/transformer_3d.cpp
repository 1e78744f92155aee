#include "unet/transformer_3d.h"

#include "core/error.h"
#include "ops/memory_layout.h"
#include "ops/tile_transpose.h"

namespace lsync::models {

BasicTransformerBlockImpl::BasicTransformerBlockImpl(int64_t dim, int64_t heads, int64_t head_dim, int64_t cross_dim) {
    attn1 = register_module("attn1", Attention(dim, heads, head_dim));
    norm1 = register_module("norm1", LayerNorm(dim));
    if (cross_dim > 0) {
        norm2 = register_module("norm2", LayerNorm(dim));
        attn2 = register_module("attn2", Attention(dim, heads, head_dim, cross_dim));
    }
    ff = register_module("ff", FeedForward(dim));
    norm3 = register_module("norm3", LayerNorm(dim));
}

torch::Tensor BasicTransformerBlockImpl::forward(const torch::Tensor& x, const torch::Tensor& audio,
                                                 const std::optional<torch::Tensor>& self_bias) {
    // Official: h = attn1(norm1(x)) + x; h = attn2(norm2(h), audio) + h; return ff(norm3(h)) + h. Each residual
    // add is done together with the norm that reads its result (forward_sum).
    // The audio layer runs only when audio is given (and exists).
    const bool cross = attn2 && audio.defined();
    auto s = (cross ? norm2 : norm3)->forward_sum(attn1(norm1(x), std::nullopt, self_bias), x);
    if (cross) s = norm3->forward_sum(cross_attention(s.normed, audio), s.sum);
    return ff(s.normed) + s.sum;
}

torch::Tensor BasicTransformerBlockImpl::cross_attention(const torch::Tensor& h, const torch::Tensor& audio) {
    const int64_t silent = h.size(0) - audio.size(0);
    if (silent == 0) return attn2(h, audio);
    // All-zero audio rows: to_k and to_v have no bias, so the keys and values are zeros, the softmax over equal
    // logits weighs zeros and the attention output is 0; to_out then gives its bias exactly. The official code
    // computes the same values the long way for the unconditional half of every CFG call.
    const auto tail = attn2(h.narrow(0, silent, audio.size(0)), audio);
    const auto bias = attn2->out->bias.to(tail.scalar_type());
    return torch::cat({bias.expand({silent, tail.size(1), tail.size(2)}), tail}, 0);
}

Transformer3DModelImpl::Transformer3DModelImpl(int64_t channels, int64_t heads, int64_t groups, int64_t cross_dim) {
    norm = register_module("norm", GroupNorm(groups, channels, 1e-6));
    proj_in = register_module("proj_in", Conv2d(channels, channels, 1));
    block = BasicTransformerBlock(channels, heads, channels / heads, cross_dim);
    transformer_blocks->push_back(block);
    register_module("transformer_blocks", transformer_blocks);
    proj_out = register_module("proj_out", Conv2d(channels, channels, 1));
}

torch::Tensor Transformer3DModelImpl::forward(const torch::Tensor& x, const torch::Tensor& audio) {
    const int64_t frames = x.size(2), c = x.size(1), h = x.size(3), w = x.size(4);
    const auto residual = fold_frames(x);  // [b*f, c, h, w]; norm statistics per frame
    const int64_t n = residual.size(0);
    if (audio.defined())
        LSYNC_CHECK(audio.size(0) == n || audio.size(0) * 2 == n, ErrorCode::Usage,
                    "UNet: audio has " + std::to_string(audio.size(0)) + " rows, expected batch x frames = " +
                        std::to_string(n) + " (or half of it, the first half silent)");
    // Tokens [n, h*w, c] in row-major pixel order. The 1x1 proj_in/proj_out convs are matrix products on the
    // tokens (the same sums). Channels-last planes (the UNet's CUDA layout) are those tokens as they lie; planes
    // in channels-outer memory are transposed once on the way in and once, with the residual added, on the way
    // out.
    const bool channels_last = ops::is_channels_last_only(residual);
    const auto as_tokens = [&](const torch::Tensor& planes) {
        return planes.permute({0, 2, 3, 1}).reshape({n, h * w, c});
    };
    auto t = channels_last ? as_tokens(norm(residual)) : ops::transpose_last2(norm(residual).reshape({n, c, h * w}));
    t = torch::linear(t, proj_in->weight.view({c, c}), proj_in->bias);
    const auto bias = block->attn1->context()->spatial_bias(h, w, x.device());
    t = block(t, audio, bias);
    t = torch::linear(t, proj_out->weight.view({c, c}), proj_out->bias);
    if (channels_last)
        return unfold_frames(t.add_(as_tokens(residual)).view({n, h, w, c}).permute({0, 3, 1, 2}), frames);
    const auto y = ops::add_transposed(residual.reshape({n, c, h * w}), t);
    return unfold_frames(y.view({n, c, h, w}), frames);
}

}  // namespace lsync::models
