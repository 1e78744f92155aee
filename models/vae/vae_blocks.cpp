#include "vae/vae_blocks.h"

#include "core/error.h"
#include "ops/bias_add.h"
#include "ops/conv.h"
#include "ops/group_norm.h"
#include "ops/memory_layout.h"
#include "ops/pad.h"
#include "ops/tile_transpose.h"

#include <string>
#include <tuple>
#include <utility>

namespace lsync::models {

namespace nn = torch::nn;

namespace {

constexpr double kEps = 1e-6;

nn::GroupNorm group_norm(int64_t groups, int64_t channels) {
    return nn::GroupNorm(nn::GroupNormOptions(groups, channels).eps(kEps).affine(true));
}

nn::Conv2d conv(int64_t in, int64_t out, int64_t k, int64_t stride, int64_t pad) {
    return nn::Conv2d(nn::Conv2dOptions(in, out, k).stride(stride).padding(pad));
}

}  // namespace

torch::Tensor group_norm_silu(const torch::nn::GroupNorm& norm, const torch::Tensor& x) {
    return ops::group_norm(x, norm->options.num_groups(), norm->weight, norm->bias, norm->options.eps(),
                           /*silu=*/true);
}

VAEResnetBlockImpl::VAEResnetBlockImpl(int64_t in_channels, int64_t out_channels, int64_t groups) {
    norm1_ = register_module("norm1", group_norm(groups, in_channels));
    conv1_ = register_module("conv1", conv(in_channels, out_channels, 3, 1, 1));
    norm2_ = register_module("norm2", group_norm(groups, out_channels));
    conv2_ = register_module("conv2", conv(out_channels, out_channels, 3, 1, 1));
    if (in_channels != out_channels)
        conv_shortcut_ = register_module("conv_shortcut", conv(in_channels, out_channels, 1, 1, 0));
}

std::pair<torch::Tensor, torch::Tensor> conv_bias_deferred(const torch::nn::Conv2d& conv, const torch::Tensor& x) {
    if (!(x.is_cuda() && ops::fused_bias_enabled() && conv->bias.defined())) return {ops::conv2d(conv, x), {}};
    return {ops::conv2d_without_bias(conv, x), conv->bias};
}

torch::Tensor VAEResnetBlockImpl::forward(torch::Tensor x, const torch::Tensor& x_bias) {
    Link link;
    link.x_bias = x_bias;
    return forward_linked(std::move(x), link).first;
}

std::pair<torch::Tensor, ops::NormStats> VAEResnetBlockImpl::forward_linked(torch::Tensor x, const Link& link) {
    const torch::Tensor& x_bias = link.x_bias;
    LSYNC_CHECK(!(x_bias.defined() && link.x_stats.workspace.defined()), ErrorCode::Internal,
                "VAE resnet: statistics of x are of the biased x, which is never written");
    const bool fused = x.is_cuda() && ops::fused_bias_enabled();
    // x's pending bias rides on norm1's loads and on the residual pass, where norm1's kernel serves and no shortcut
    // conv needs the biased x as its input; otherwise it is added now. (Should the residual pass fall back to
    // ATen's adds, it adds the bias into x in place: the same values.)
    const bool defer_input_bias = fused && x_bias.defined() && !conv_shortcut_ &&
                                  ops::input_bias_norm_serves(x, x_bias, norm1_->options.num_groups(), norm1_->weight,
                                                              norm1_->bias);
    if (x_bias.defined() && !defer_input_bias) ops::add_channel_bias_(x, x_bias);
    if (fused) {
        // The conv biases ride on the passes after them: conv1's is added as norm2 loads its input, conv2's with
        // the shortcut (and the shortcut conv's bias) in one pass. Two reads and writes of the block's activations
        // less than a bias pass per conv; the same values (each sum rounded as the separate adds would store it).
        // That residual pass may also write the output padded for a downsampler, or take the next norm's
        // statistics as it writes.
        const auto groups = norm1_->options.num_groups();
        auto n1 = defer_input_bias ? ops::bias_group_norm_(x, x_bias, groups, norm1_->weight, norm1_->bias,
                                                           norm1_->options.eps(), /*silu=*/true)
                                   : ops::group_norm_with_stats(x, link.x_stats, groups, norm1_->weight,
                                                                norm1_->bias, norm1_->options.eps(), /*silu=*/true);
        auto h = ops::conv2d(n1, conv1_->weight, torch::Tensor(), 1, 1);
        n1 = torch::Tensor();
        h = ops::bias_group_norm_(h, conv1_->bias, norm2_->options.num_groups(), norm2_->weight, norm2_->bias,
                                  norm2_->options.eps(), /*silu=*/true);
        h = ops::conv2d(h, conv2_->weight, torch::Tensor(), 1, 1);
        auto [residual, residual_bias] = conv_shortcut_ ? conv_bias_deferred(conv_shortcut_, x)
                                                        : std::pair{x, defer_input_bias ? x_bias : torch::Tensor()};
        if (link.pad_output)
            return {ops::add_channel_bias_residual_padded(h, conv2_->bias, residual, residual_bias), {}};
        if (link.next_norm_groups > 0) {
            auto stats = ops::add_channel_bias_residual_stats_(h, conv2_->bias, residual, residual_bias,
                                                                link.next_norm_groups);
            return {h, std::move(stats)};
        }
        return {ops::add_channel_bias_residual_(h, conv2_->bias, residual, residual_bias), {}};
    }
    auto h = ops::conv2d(conv1_, group_norm_silu(norm1_, x));
    h = ops::conv2d(conv2_, group_norm_silu(norm2_, h));
    h = (conv_shortcut_ ? ops::conv2d(conv_shortcut_, x) : x) + h;
    return {link.pad_output ? ops::pad_right_bottom(h) : h, {}};
}

VAEAttentionImpl::VAEAttentionImpl(int64_t channels, int64_t groups) : ctx_(ops::default_attention_context()) {
    group_norm_ = register_module("group_norm", group_norm(groups, channels));
    to_q_ = register_module("to_q", nn::Linear(channels, channels));
    to_k_ = register_module("to_k", nn::Linear(channels, channels));
    to_v_ = register_module("to_v", nn::Linear(channels, channels));
    // to_out is [Linear, Dropout] in diffusers; only index 0 has parameters.
    auto to_out = nn::ModuleList();
    to_out0_ = nn::Linear(channels, channels);
    to_out->push_back(to_out0_);
    register_module("to_out", to_out);
}

torch::Tensor VAEAttentionImpl::forward(const torch::Tensor& x) {
    const auto b = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3);
    auto normed = ops::group_norm(x, group_norm_->options.num_groups(), group_norm_->weight, group_norm_->bias,
                                  group_norm_->options.eps());
    if (ops::is_channels_last_only(x)) {
        // NHWC memory already is the tokens [B, H*W, C]: views in, and the residual sum (contiguous tokens) viewed
        // back as a channels_last [B, C, H, W]. No transposes either way.
        auto t = normed.permute({0, 2, 3, 1}).reshape({b, h * w, c});
        auto q = to_q_(t).unsqueeze(1), k = to_k_(t).unsqueeze(1), v = to_v_(t).unsqueeze(1);
        auto o = to_out0_(ctx_->attend(q, k, v).squeeze(1));
        return (o + x.permute({0, 2, 3, 1}).reshape({b, h * w, c})).view({b, h, w, c}).permute({0, 3, 1, 2});
    }
    // [B, C, H, W] -> tokens [B, H*W, C], one head of size C.
    auto t = normed.reshape({b, c, h * w}).transpose(1, 2);
    auto q = to_q_(t).unsqueeze(1), k = to_k_(t).unsqueeze(1), v = to_v_(t).unsqueeze(1);
    auto o = to_out0_(ctx_->attend(q, k, v).squeeze(1));
    // Back to planes with the residual in one pass, written contiguous: `o^T + x` would leave a channels-last
    // result that every later norm and conv of the decoder copies (or converts) again.
    return ops::add_transposed(x.reshape({b, c, h * w}), o).view({b, c, h, w});
}

VAEMidBlockImpl::VAEMidBlockImpl(int64_t channels, int64_t groups, bool add_attention) {
    auto resnets = nn::ModuleList();
    for (int i = 0; i < 2; ++i) {
        resnets_.emplace_back(channels, channels, groups);
        resnets->push_back(resnets_.back());
    }
    if (add_attention) {
        auto attentions = nn::ModuleList();
        attentions_.emplace_back(channels, groups);
        attentions->push_back(attentions_.back());
        register_module("attentions", attentions);
    }
    register_module("resnets", resnets);
}

torch::Tensor VAEMidBlockImpl::forward(torch::Tensor x, const torch::Tensor& x_bias) {
    x = resnets_[0](x, x_bias);
    if (!attentions_.empty()) x = attentions_[0](x);
    return resnets_[1](x);
}

void VAEMidBlockImpl::set_attention(const ops::AttentionContextPtr& ctx) {
    for (auto& a : attentions_) a->set_attention(ctx);
}

DownEncoderBlockImpl::DownEncoderBlockImpl(int64_t in_channels, int64_t out_channels, int64_t layers, int64_t groups,
                                           bool downsample) {
    auto resnets = nn::ModuleList();
    for (int64_t i = 0; i < layers; ++i) {
        resnets_.emplace_back(i == 0 ? in_channels : out_channels, out_channels, groups);
        resnets->push_back(resnets_.back());
    }
    register_module("resnets", resnets);
    if (downsample) {
        // downsamplers.0 is a Downsample2D whose only child is `conv`.
        auto down = std::make_shared<nn::Module>();
        down_conv_ = down->register_module("conv", conv(out_channels, out_channels, 3, 2, 0));
        auto downsamplers = nn::ModuleList();
        downsamplers->push_back(down);
        register_module("downsamplers", downsamplers);
    }
}

namespace {

// Runs a block's resnets in turn, each residual pass taking the statistics of the next one's norm1: the first
// reads x with its pending `x_bias`, the last writes its output padded when `pad_last`.
torch::Tensor run_linked_resnets(std::vector<VAEResnetBlock>& resnets, torch::Tensor x, const torch::Tensor& x_bias,
                                 bool pad_last) {
    ops::NormStats stats;
    for (size_t i = 0; i < resnets.size(); ++i) {
        const bool last = i + 1 == resnets.size();
        VAEResnetBlockImpl::Link link;
        if (i == 0) link.x_bias = x_bias;
        link.x_stats = std::move(stats);
        link.pad_output = last && pad_last;
        link.next_norm_groups = last ? 0 : resnets[i + 1]->norm1_groups();
        std::tie(x, stats) = resnets[i]->forward_linked(std::move(x), link);
    }
    return x;
}

}  // namespace

torch::Tensor DownEncoderBlockImpl::forward(torch::Tensor x, const torch::Tensor& x_bias) {
    // The last resnet writes its output padded for the downsampler's conv (Downsample2D's pad, in its pass).
    x = run_linked_resnets(resnets_, std::move(x), x_bias, static_cast<bool>(down_conv_));
    if (down_conv_) x = ops::conv2d(down_conv_, resnets_.empty() ? ops::pad_right_bottom(x) : x);
    return x;
}

UpDecoderBlockImpl::UpDecoderBlockImpl(int64_t in_channels, int64_t out_channels, int64_t layers, int64_t groups,
                                       bool upsample) {
    auto resnets = nn::ModuleList();
    for (int64_t i = 0; i < layers; ++i) {
        resnets_.emplace_back(i == 0 ? in_channels : out_channels, out_channels, groups);
        resnets->push_back(resnets_.back());
    }
    register_module("resnets", resnets);
    if (upsample) {
        auto up = std::make_shared<nn::Module>();
        up_conv_ = up->register_module("conv", conv(out_channels, out_channels, 3, 1, 1));
        auto upsamplers = nn::ModuleList();
        upsamplers->push_back(up);
        register_module("upsamplers", upsamplers);
    }
}

torch::Tensor UpDecoderBlockImpl::forward(torch::Tensor x) {
    x = run_linked_resnets(resnets_, std::move(x), {}, /*pad_last=*/false);
    // Nearest x2 and the conv: four 2x2 convs of x on CUDA (ops/upsample_conv.h), else the upsampled copy (in x's
    // memory order: a channels_last input stays channels_last) and the 3x3 conv.
    if (up_conv_) x = ops::upsample2x_conv3x3(x, up_conv_->weight, up_conv_->bias, *up_subpixel_);
    return x;
}

void UpDecoderBlockImpl::prepare_derived_weights() {
    if (up_conv_) ops::prepare_subpixel_weight(up_conv_->weight, *up_subpixel_);
}

}  // namespace lsync::models
