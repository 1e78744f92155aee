#pragma once
// AutoencoderKL (diffusers 0.32.2, the `stabilityai/sd-vae-ft-mse` architecture): image [B, 3, H, W] in [-1, 1]
// <-> latent [B, 4, H/8, W/8]. Module and parameter names equal the diffusers state-dict keys
// (encoder.*, decoder.*, quant_conv.*, post_quant_conv.*). The encoder's output is a diagonal Gaussian; the
// pipeline uses a posterior *sample* of it, drawn here from a caller-provided generator so results do not
// depend on global RNG state. Scaling by 0.18215 is the pipeline's business (lib/diffusion/latents.h).
//
// On CUDA (fp32, fp16, bf16) encode() and decode() run channels_last: the input is converted to NHWC memory once,
// every block keeps it (cuDNN's NHWC convolutions, the NHWC GroupNorm kernel, residual adds, nearest upsampling,
// the downsampler's padding, the mid-block attention reading the memory as [B, H*W, C] tokens), and the result
// is made NCHW-contiguous once at the end. Without it cuDNN converted NCHW <-> NHWC around every convolution
// (28% of a decode on an H200). LSYNC_VAE_CHANNELS_LAST=0 keeps NCHW throughout; the CPU always does.

#include "vae/vae_blocks.h"
#include "vae/vae_config.h"

#include "ops/attention_context.h"

#include <torch/torch.h>

#include <optional>
#include <vector>

namespace lsync::models {

/// conv_in -> down blocks -> mid block -> GroupNorm -> SiLU -> conv_out (2 * latent channels: mean, logvar).
class VAEEncoderImpl : public torch::nn::Module {
public:
    explicit VAEEncoderImpl(const VAEConfig& c);
    torch::Tensor forward(torch::Tensor x);
    void set_attention(const ops::AttentionContextPtr& ctx) { mid_block_->set_attention(ctx); }

private:
    torch::nn::Conv2d conv_in_{nullptr}, conv_out_{nullptr};
    std::vector<DownEncoderBlock> down_blocks_;
    VAEMidBlock mid_block_{nullptr};
    torch::nn::GroupNorm conv_norm_out_{nullptr};
};
TORCH_MODULE(VAEEncoder);

/// conv_in -> mid block -> up blocks (reversed channels, one more resnet each) -> GroupNorm -> SiLU -> conv_out.
class VAEDecoderImpl : public torch::nn::Module {
public:
    explicit VAEDecoderImpl(const VAEConfig& c);
    torch::Tensor forward(torch::Tensor z);
    void set_attention(const ops::AttentionContextPtr& ctx) { mid_block_->set_attention(ctx); }
    void prepare_derived_weights() {
        for (auto& block : up_blocks_) block->prepare_derived_weights();
    }

private:
    torch::nn::Conv2d conv_in_{nullptr}, conv_out_{nullptr};
    VAEMidBlock mid_block_{nullptr};
    std::vector<UpDecoderBlock> up_blocks_;
    torch::nn::GroupNorm conv_norm_out_{nullptr};
};
TORCH_MODULE(VAEDecoder);

/// `latent_dist` of diffusers: mean and log-variance (clamped to [-30, 20]) per latent element, unscaled.
struct LatentDistribution {
    torch::Tensor mean, logvar, std;
    /// mean + std * eps with eps ~ N(0, 1) drawn from `generator` (the default CPU/CUDA generator when none)
    /// in the latents' dtype on their device, as DiagonalGaussianDistribution.sample does.
    torch::Tensor sample(c10::optional<at::Generator> generator = c10::nullopt) const;
};

/// Whether encode()/decode() run channels_last on CUDA: true unless LSYNC_VAE_CHANNELS_LAST=0 (read at the first
/// call), or as last set by set_vae_channels_last() (tests compare both ways in one process).
bool vae_channels_last_enabled();
void set_vae_channels_last(bool enabled);

class AutoencoderKLImpl : public torch::nn::Module {
public:
    explicit AutoencoderKLImpl(const VAEConfig& config);

    /// image [B, C_in, H, W] (H, W multiples of 8) -> posterior. Runs in the module's dtype; the input is cast.
    /// mean/logvar/std are views of one NCHW-contiguous [B, 2 * latent, h, w] tensor.
    LatentDistribution encode(const torch::Tensor& image);
    /// z [B, latent, h, w] (unscaled) -> image [B, C_out, 8h, 8w], NCHW-contiguous, in the module's dtype, not
    /// clamped.
    torch::Tensor decode(const torch::Tensor& z);

    /// Every attention site (one per mid block) uses `ctx`.
    void set_attention(const ops::AttentionContextPtr& ctx);
    /// Makes now the weights that the networks derive from the loaded ones at their first call on this device and
    /// dtype (the decoder's sub-pixel upsamplers on CUDA), so that a render's first group does not: call once the
    /// parameters are in place (a later change of them is seen at the next call, as before).
    void prepare_derived_weights();
    const VAEConfig& config() const { return config_; }
    /// dtype and device of the parameters (what encode/decode compute in).
    torch::ScalarType dtype() const;
    torch::Device device() const;

private:
    VAEConfig config_;
    VAEEncoder encoder_{nullptr};
    VAEDecoder decoder_{nullptr};
    torch::nn::Conv2d quant_conv_{nullptr}, post_quant_conv_{nullptr};
};
TORCH_MODULE(AutoencoderKL);

}  // namespace lsync::models
