#pragma once
// The down, mid and up blocks of latentsync/models/unet_blocks.py (CrossAttnDownBlock3D / DownBlock3D,
// UNetMidBlock3DCrossAttn, CrossAttnUpBlock3D / UpBlock3D). One class per direction: the "CrossAttn" variants
// only add `attentions`. Each layer is resnet -> transformer (if any) -> motion module (if any).

#include "unet/motion_module.h"
#include "unet/resnet_3d.h"
#include "unet/transformer_3d.h"
#include "unet/unet_config.h"

#include <torch/torch.h>

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace lsync::models {

/// Named intermediate tensors of one forward pass (debugging and parity tests), e.g. "down0.resnet0",
/// "down1.res0", "mid", "up3". Keys are listed in docs/unet.md.
using UNetTrace = std::map<std::string, torch::Tensor>;

/// Keeps `t` under `key` when a trace is asked for.
inline void record_trace(UNetTrace* trace, const std::string& key, const torch::Tensor& t) {
    if (trace) (*trace)[key] = t;
}

/// What every block needs to build its layers.
struct BlockSpec {
    int64_t temb_channels;
    int64_t groups;
    double eps;
    int64_t heads;       ///< spatial attention heads (the config's attention_head_dim)
    int64_t cross_dim;   ///< audio width, 0 = no audio layer
    bool cross_attn;     ///< has `attentions`
    bool motion;         ///< has `motion_modules`
    MotionModuleConfig motion_cfg;
};

class DownBlock3DImpl : public torch::nn::Module {
public:
    DownBlock3DImpl(int64_t in, int64_t out, int num_layers, const BlockSpec& spec, bool add_downsample,
                    int64_t downsample_padding);
    /// Returns the block output and its skip tensors (one per layer, plus the downsampled output).
    /// With `trace`, records "<prefix>.resnet<j>", ".attn<j>", ".motion<j>".
    std::pair<torch::Tensor, std::vector<torch::Tensor>> forward(torch::Tensor x, const torch::Tensor& temb,
                                                                 const torch::Tensor& audio, UNetTrace* trace,
                                                                 const std::string& prefix);
    std::vector<ResnetBlock3D> resnets;
    std::vector<Transformer3DModel> attentions;
    std::vector<MotionModule> motion_modules;
    Downsample3D downsampler{nullptr};
};
TORCH_MODULE(DownBlock3D);

class MidBlock3DImpl : public torch::nn::Module {
public:
    MidBlock3DImpl(int64_t channels, const BlockSpec& spec, double output_scale_factor);
    torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& temb, const torch::Tensor& audio);
    std::vector<ResnetBlock3D> resnets;  ///< 2
    Transformer3DModel attention{nullptr};
    MotionModule motion_module{nullptr};
};
TORCH_MODULE(MidBlock3D);

class UpBlock3DImpl : public torch::nn::Module {
public:
    /// Layer j's resnet takes (j == 0 ? prev_out : out) + (j == last ? in : out) channels.
    UpBlock3DImpl(int64_t in, int64_t out, int64_t prev_out, int num_layers, const BlockSpec& spec,
                  bool add_upsample);
    int num_layers() const { return static_cast<int>(resnets.size()); }
    /// Layer j on the running tensor x concatenated (channels) with its skip tensor.
    torch::Tensor layer(int j, const torch::Tensor& x, const torch::Tensor& skip, const torch::Tensor& temb,
                        const torch::Tensor& audio, UNetTrace* trace, const std::string& prefix);
    /// The upsampler (identity when the block has none); `size` = (f, h, w) of the next skip when the
    /// latent side is not a multiple of 2^(number of upsamplers).
    torch::Tensor upsample(const torch::Tensor& x, const std::optional<std::vector<int64_t>>& size);
    std::vector<ResnetBlock3D> resnets;
    std::vector<Transformer3DModel> attentions;
    std::vector<MotionModule> motion_modules;
    Upsample3D upsampler{nullptr};
};
TORCH_MODULE(UpBlock3D);

}  // namespace lsync::models
