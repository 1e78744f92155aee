#pragma once
// UNet3DConditionModel of latentsync/models/unet.py: the LatentSync 1.5/1.6 denoiser. Input [b, 13, f, h, w]
// (noisy latents | mask | masked-image latents | reference latents), timestep, audio tokens [b*f, 50, 384];
// output the predicted noise [b, 4, f, h, w]. named_parameters() + named_buffers() equal the official
// state-dict keys (1,206 parameters + 40 `pe` buffers for the released config).

#include "diffusion/denoiser.h"
#include "ops/attention_context.h"
#include "unet/unet_blocks.h"
#include "unet/unet_config.h"

#include <torch/torch.h>

#include <optional>
#include <vector>

namespace lsync::models {

/// DeepCache's kept features (branch 0 as LatentSync uses it): the running tensor that enters the LAST layer
/// of the LAST up block, before its skip concat. A reuse step recomputes conv_in (the fresh skip for that
/// layer), the time embedding, that layer (resnet, transformer, motion module) and the output head.
struct DeepCacheState {
    torch::Tensor hidden;  ///< [b, C, f, h, w], undefined until a Capture step
    bool valid() const { return hidden.defined(); }
    void reset() { hidden = torch::Tensor(); }
};

/// How the activations lie in memory between conv_in and conv_out. Planes: per-frame NCHW planes ([b, f, c, h, w]
/// behind the [b, c, f, h, w] view). ChannelsLast: [b, f, h, w, c] (ops/memory_layout.h, frames-channels-last):
/// cuDNN's NHWC convolutions read and write it as it lies, the attention tokens are views of it, and only the
/// motion modules regroup it. Auto: ChannelsLast on CUDA in fp16/bf16 with NHWC conv weights
/// (ops::nhwc_conv_enabled) unless LSYNC_UNET_CHANNELS_LAST=0, else Planes. Same sums in either (tests compare).
enum class UNetLayout { Auto, Planes, ChannelsLast };

/// Whether Auto picks ChannelsLast where it can: true unless LSYNC_UNET_CHANNELS_LAST=0 (read on first use), or
/// as last set.
bool unet_channels_last_enabled();
void set_unet_channels_last(bool enabled);

class UNet3DConditionModelImpl : public torch::nn::Module {
public:
    /// Builds the module tree with uninitialised parameters (fill with load_unet or init_random_parameters).
    explicit UNet3DConditionModelImpl(UNet3DConfig config);

    /// sample [b, in_channels, f, h, w]; timestep 0-d, [1] or [b] (any numeric dtype); audio [b*f, tokens,
    /// cross_attention_dim] or [b, f, tokens, dim] (undefined = no audio layer, as the official code allows), or
    /// for an even b the silent-first CFG form: [b*f/2, ...] or [b/2, f, ...], the rows of the second half of the
    /// batch, the first half's audio being all zeros (the unconditional branch; Transformer3DModel skips its
    /// audio layer's work).
    /// Inputs are cast to the model's device and dtype. `phase` selects DeepCache behaviour using the member
    /// state `deep_cache`. `trace`, when given, receives the named intermediates.
    torch::Tensor forward(const torch::Tensor& sample, const torch::Tensor& timestep, const torch::Tensor& audio,
                          diffusion::CachePhase phase = diffusion::CachePhase::Off, UNetTrace* trace = nullptr);
    /// The same with an explicit cache (e.g. one per CFG branch or chunk group).
    torch::Tensor forward_cached(const torch::Tensor& sample, const torch::Tensor& timestep,
                                 const torch::Tensor& audio, diffusion::CachePhase phase, DeepCacheState& cache,
                                 UNetTrace* trace = nullptr);

    /// The sinusoidal timestep features [b, C0] (diffusers Timesteps: fp32, [cos | sin] when flip_sin_to_cos).
    torch::Tensor time_proj(const torch::Tensor& timestep, int64_t batch) const;

    /// Every attention site uses `ctx` (nullptr = the default standard context).
    void set_attention(const ops::AttentionContextPtr& ctx);

    /// The activations' memory order (Auto unless set; tests force each on the CPU).
    void set_layout(UNetLayout layout) { layout_ = layout; }
    /// Whether a call whose activations are on `device` in `dtype` runs channels-last.
    bool runs_channels_last(const torch::Device& device, torch::ScalarType dtype) const;

    const UNet3DConfig& config() const { return config_; }
    torch::ScalarType dtype() const { return conv_in->weight.scalar_type(); }
    torch::Device device() const { return conv_in->weight.device(); }

    DeepCacheState deep_cache;

    Conv2d conv_in{nullptr}, conv_out{nullptr};
    Linear time_linear_1{nullptr}, time_linear_2{nullptr};  ///< time_embedding.linear_1 / linear_2
    std::vector<DownBlock3D> down_blocks;
    MidBlock3D mid_block{nullptr};
    std::vector<UpBlock3D> up_blocks;
    GroupNorm conv_norm_out{nullptr};

private:
    UNet3DConfig config_;
    UNetLayout layout_ = UNetLayout::Auto;
    /// Checks shapes and returns (sample, timesteps [b], audio) on the model's device and dtype.
    std::tuple<torch::Tensor, torch::Tensor, torch::Tensor> prepare(const torch::Tensor& sample,
                                                                    const torch::Tensor& timestep,
                                                                    const torch::Tensor& audio) const;
    torch::Tensor head(const torch::Tensor& x, UNetTrace* trace);
};
TORCH_MODULE(UNet3DConditionModel);

/// Adapts a UNet to the denoising loop's Denoiser signature (uses the module's own DeepCache state).
diffusion::Denoiser make_denoiser(UNet3DConditionModel unet);

}  // namespace lsync::models
