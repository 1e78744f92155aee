#pragma once
// The building blocks of diffusers' AutoencoderKL (diffusers 0.32.2: resnet.py ResnetBlock2D, Downsample2D,
// Upsample2D; unets/unet_2d_blocks.py DownEncoderBlock2D, UpDecoderBlock2D, UNetMidBlock2D; the mid-block
// Attention with group norm). Children are registered under the diffusers attribute names, so
// named_parameters() equals the keys of `diffusion_pytorch_model.safetensors`. No time embedding anywhere:
// the VAE calls every block with temb = None.

#include "ops/attention_context.h"
#include "ops/group_norm.h"
#include "ops/upsample_conv.h"

#include <torch/torch.h>

#include <utility>
#include <vector>

namespace lsync::models {

/// silu(norm(x)) through ops::group_norm: one fused pass on CUDA, exactly torch's modules elsewhere.
torch::Tensor group_norm_silu(const torch::nn::GroupNorm& norm, const torch::Tensor& x);

/// conv(x) and the bias still to add: on CUDA with LSYNC_FUSED_BIAS on, the conv without its bias and the bias, for
/// a block that adds it where it reads the output (VAEResnetBlockImpl::forward's x_bias); elsewhere conv(x) with
/// its bias and an undefined tensor.
std::pair<torch::Tensor, torch::Tensor> conv_bias_deferred(const torch::nn::Conv2d& conv, const torch::Tensor& x);

/// GroupNorm -> SiLU -> conv3x3 -> GroupNorm -> SiLU -> conv3x3, plus a 1x1 `conv_shortcut` when the channel
/// count changes. eps 1e-6 (the VAE passes resnet_eps = 1e-6), output scale 1.
class VAEResnetBlockImpl : public torch::nn::Module {
public:
    VAEResnetBlockImpl(int64_t in_channels, int64_t out_channels, int64_t groups);
    /// With `x_bias` ([C]), x is a conv's output still without that bias: where the block reads x (norm1 and the
    /// residual) it adds the bias as it loads, on CUDA's fused route, so the biased x is not written; elsewhere
    /// the bias is added to x in place (x must be a tensor of the caller's, free to change). The same values.
    torch::Tensor forward(torch::Tensor x, const torch::Tensor& x_bias = {});

    /// What a resnet takes from the block before it and gives the one after, on CUDA's fused route (elsewhere
    /// only the padding applies; the values never change).
    struct Link {
        torch::Tensor x_bias;          ///< forward()'s
        ops::NormStats x_stats;        ///< norm1's statistics of x, taken by the residual pass that wrote x
        bool pad_output = false;       ///< return the output padded right and bottom (a Downsample2D's pad), [N, C,
                                       ///< H + 1, W + 1], written there by the residual pass where its kernel serves
        int64_t next_norm_groups = 0;  ///< > 0: the residual pass takes the next norm's statistics of the output
    };
    /// forward() with the neighbours' parts: the output and, where taken, the next norm's statistics of it.
    std::pair<torch::Tensor, ops::NormStats> forward_linked(torch::Tensor x, const Link& link);

    int64_t norm1_groups() const { return norm1_->options.num_groups(); }

private:
    torch::nn::GroupNorm norm1_{nullptr}, norm2_{nullptr};
    torch::nn::Conv2d conv1_{nullptr}, conv2_{nullptr}, conv_shortcut_{nullptr};
};
TORCH_MODULE(VAEResnetBlock);

/// Single-head self-attention over the H*W tokens of a feature map (head dim = channels), residual added.
/// Weights as `to_q/to_k/to_v/to_out.0`; the old `query/key/value/proj_attn` spelling is renamed at load time.
class VAEAttentionImpl : public torch::nn::Module {
public:
    VAEAttentionImpl(int64_t channels, int64_t groups);
    torch::Tensor forward(const torch::Tensor& x);
    void set_attention(ops::AttentionContextPtr ctx) { ctx_ = std::move(ctx); }

private:
    torch::nn::GroupNorm group_norm_{nullptr};
    torch::nn::Linear to_q_{nullptr}, to_k_{nullptr}, to_v_{nullptr}, to_out0_{nullptr};
    ops::AttentionContextPtr ctx_;
};
TORCH_MODULE(VAEAttention);

/// resnets.0 -> attentions.0 -> resnets.1 (attention optional: `mid_block_add_attention`).
class VAEMidBlockImpl : public torch::nn::Module {
public:
    VAEMidBlockImpl(int64_t channels, int64_t groups, bool add_attention);
    /// `x_bias`: the first resnet's (VAEResnetBlockImpl::forward).
    torch::Tensor forward(torch::Tensor x, const torch::Tensor& x_bias = {});
    void set_attention(const ops::AttentionContextPtr& ctx);

private:
    std::vector<VAEResnetBlock> resnets_;
    std::vector<VAEAttention> attentions_;
};
TORCH_MODULE(VAEMidBlock);

/// `layers` resnets, then (except in the last block) a 3x3 stride-2 conv after asymmetric zero padding
/// (right/bottom by one), the Downsample2D(padding=0) path.
class DownEncoderBlockImpl : public torch::nn::Module {
public:
    DownEncoderBlockImpl(int64_t in_channels, int64_t out_channels, int64_t layers, int64_t groups, bool downsample);
    /// `x_bias`: the first resnet's (VAEResnetBlockImpl::forward).
    torch::Tensor forward(torch::Tensor x, const torch::Tensor& x_bias = {});

private:
    std::vector<VAEResnetBlock> resnets_;
    torch::nn::Conv2d down_conv_{nullptr};
};
TORCH_MODULE(DownEncoderBlock);

/// `layers` resnets, then (except in the last block) nearest x2 upsampling and a 3x3 conv (on CUDA in sub-pixel
/// form: ops/upsample_conv.h).
class UpDecoderBlockImpl : public torch::nn::Module {
public:
    UpDecoderBlockImpl(int64_t in_channels, int64_t out_channels, int64_t layers, int64_t groups, bool upsample);
    torch::Tensor forward(torch::Tensor x);
    /// Makes the sub-pixel weight the first CUDA call would (ops::prepare_subpixel_weight).
    void prepare_derived_weights();

private:
    std::vector<VAEResnetBlock> resnets_;
    torch::nn::Conv2d up_conv_{nullptr};
    /// up_conv_'s stacked 2x2 taps, made by prepare_derived_weights() or at the first CUDA call (shared by the
    /// workers that share this module).
    std::shared_ptr<ops::DerivedWeight> up_subpixel_ = std::make_shared<ops::DerivedWeight>();
};
TORCH_MODULE(UpDecoderBlock);

}  // namespace lsync::models
