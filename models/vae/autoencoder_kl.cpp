#include "vae/autoencoder_kl.h"

#include "core/error.h"
#include "ops/conv.h"
#include "ops/kernel_switch.h"

#include <string>

namespace lsync::models {

namespace nn = torch::nn;

namespace {

ops::KernelSwitch g_channels_last("LSYNC_VAE_CHANNELS_LAST");

// The input of encode()/decode() in the memory order the networks run in: channels_last on CUDA for the dtypes
// cuDNN's NHWC convolutions and our NHWC kernels take, unchanged elsewhere (the CPU path stays NCHW, bit for bit).
torch::Tensor network_layout(const torch::Tensor& x) {
    const auto dt = x.scalar_type();
    if (!x.is_cuda() || (dt != torch::kFloat && dt != torch::kHalf && dt != torch::kBFloat16) ||
        !vae_channels_last_enabled())
        return x;
    return x.contiguous(at::MemoryFormat::ChannelsLast);
}

nn::GroupNorm out_norm(int64_t groups, int64_t channels) {
    return nn::GroupNorm(nn::GroupNormOptions(groups, channels).eps(1e-6).affine(true));
}

nn::Conv2d conv3(int64_t in, int64_t out) { return nn::Conv2d(nn::Conv2dOptions(in, out, 3).padding(1)); }

void check_image(const torch::Tensor& t, int64_t channels, const char* what) {
    LSYNC_CHECK(t.defined() && t.dim() == 4 && t.size(1) == channels, ErrorCode::Usage,
                std::string("VAE ") + what + ": expected [B, " + std::to_string(channels) + ", H, W], got " +
                    (t.defined() ? c10::str(t.sizes()) : std::string("an undefined tensor")));
    LSYNC_CHECK(t.is_floating_point(), ErrorCode::Usage, std::string("VAE ") + what + ": expected a float tensor");
}

}  // namespace

bool vae_channels_last_enabled() { return g_channels_last.enabled(); }

void set_vae_channels_last(bool enabled) { g_channels_last.set(enabled); }

VAEEncoderImpl::VAEEncoderImpl(const VAEConfig& c) {
    const auto& ch = c.block_out_channels;
    const auto g = c.norm_num_groups;
    conv_in_ = register_module("conv_in", conv3(c.in_channels, ch[0]));
    auto down = nn::ModuleList();
    int64_t prev = ch[0];
    for (size_t i = 0; i < ch.size(); ++i) {
        down_blocks_.emplace_back(prev, ch[i], c.layers_per_block, g, i + 1 < ch.size());
        down->push_back(down_blocks_.back());
        prev = ch[i];
    }
    register_module("down_blocks", down);
    mid_block_ = register_module("mid_block", VAEMidBlock(ch.back(), g, c.mid_block_add_attention));
    conv_norm_out_ = register_module("conv_norm_out", out_norm(g, ch.back()));
    conv_out_ = register_module("conv_out", conv3(ch.back(), 2 * c.latent_channels));
}

torch::Tensor VAEEncoderImpl::forward(torch::Tensor x) {
    // conv_in's bias is added where the first resnet reads its output (a pass over the largest tensor less).
    auto [h, pending_bias] = conv_bias_deferred(conv_in_, x);
    x = down_blocks_[0](h, pending_bias);
    h = torch::Tensor();
    for (size_t i = 1; i < down_blocks_.size(); ++i) x = down_blocks_[i](x);
    x = mid_block_(x);
    return ops::conv2d(conv_out_, group_norm_silu(conv_norm_out_, x));
}

VAEDecoderImpl::VAEDecoderImpl(const VAEConfig& c) {
    const auto& ch = c.block_out_channels;
    const auto g = c.norm_num_groups;
    conv_in_ = register_module("conv_in", conv3(c.latent_channels, ch.back()));
    mid_block_ = register_module("mid_block", VAEMidBlock(ch.back(), g, c.mid_block_add_attention));
    auto up = nn::ModuleList();
    int64_t prev = ch.back();
    for (size_t i = 0; i < ch.size(); ++i) {
        const int64_t out = ch[ch.size() - 1 - i];
        up_blocks_.emplace_back(prev, out, c.layers_per_block + 1, g, i + 1 < ch.size());
        up->push_back(up_blocks_.back());
        prev = out;
    }
    register_module("up_blocks", up);
    conv_norm_out_ = register_module("conv_norm_out", out_norm(g, ch[0]));
    conv_out_ = register_module("conv_out", conv3(ch[0], c.out_channels));
}

torch::Tensor VAEDecoderImpl::forward(torch::Tensor z) {
    auto [h, pending_bias] = conv_bias_deferred(conv_in_, z);  // added where the mid block's first resnet reads h
    z = mid_block_(h, pending_bias);
    h = torch::Tensor();
    for (auto& b : up_blocks_) z = b(z);
    return ops::conv2d(conv_out_, group_norm_silu(conv_norm_out_, z));
}

torch::Tensor LatentDistribution::sample(c10::optional<at::Generator> generator) const {
    auto eps = torch::randn(mean.sizes(), generator, mean.options());
    return mean + std * eps;
}

AutoencoderKLImpl::AutoencoderKLImpl(const VAEConfig& config) : config_(config) {
    encoder_ = register_module("encoder", VAEEncoder(config));
    decoder_ = register_module("decoder", VAEDecoder(config));
    const auto lc = config.latent_channels;
    if (config.use_quant_conv) quant_conv_ = register_module("quant_conv", nn::Conv2d(nn::Conv2dOptions(2 * lc, 2 * lc, 1)));
    if (config.use_post_quant_conv)
        post_quant_conv_ = register_module("post_quant_conv", nn::Conv2d(nn::Conv2dOptions(lc, lc, 1)));
}

LatentDistribution AutoencoderKLImpl::encode(const torch::Tensor& image) {
    check_image(image, config_.in_channels, "encode input");
    const auto f = config_.downscale();
    LSYNC_CHECK(image.size(2) % f == 0 && image.size(3) % f == 0, ErrorCode::Usage,
                "VAE encode input: H and W must be multiples of " + std::to_string(f) + ", got " +
                    c10::str(image.sizes()));
    torch::NoGradGuard no_grad;
    auto moments = encoder_(network_layout(image.to(device(), dtype())));
    if (quant_conv_) moments = ops::conv2d(quant_conv_, moments);
    // Back to NCHW once (a no-op when it already is), so the halves are the views callers always got.
    auto halves = moments.contiguous().chunk(2, 1);
    LatentDistribution d;
    d.mean = halves[0];
    d.logvar = torch::clamp(halves[1], -30.0, 20.0);
    d.std = torch::exp(0.5 * d.logvar);
    return d;
}

torch::Tensor AutoencoderKLImpl::decode(const torch::Tensor& z) {
    check_image(z, config_.latent_channels, "decode input");
    torch::NoGradGuard no_grad;
    auto x = network_layout(z.to(device(), dtype()));
    if (post_quant_conv_) x = ops::conv2d(post_quant_conv_, x);
    return decoder_(x).contiguous();
}

void AutoencoderKLImpl::prepare_derived_weights() {
    if (vae_channels_last_enabled()) decoder_->prepare_derived_weights();  // the sub-pixel form's condition
}

void AutoencoderKLImpl::set_attention(const ops::AttentionContextPtr& ctx) {
    encoder_->set_attention(ctx);
    decoder_->set_attention(ctx);
}

torch::ScalarType AutoencoderKLImpl::dtype() const { return encoder_->parameters().front().scalar_type(); }
torch::Device AutoencoderKLImpl::device() const { return encoder_->parameters().front().device(); }

}  // namespace lsync::models
