#pragma once
// ResnetBlock3D, Downsample3D and Upsample3D of latentsync/models/resnet.py. All convolutions are 2-D kernels
// applied per frame; the GroupNorms see the whole 5-D (b, c, f, h, w) tensor, so their statistics pool all
// frames of the chunk (use_inflated_groupnorm is false in every released config): all real frames of a padded
// chunk under an ops::ValidFramesScope (ops/valid_frames.h).

#include "unet/unet_layers.h"

#include <torch/torch.h>

#include <optional>
#include <vector>

namespace lsync::models {

class ResnetBlock3DImpl : public torch::nn::Module {
public:
    ResnetBlock3DImpl(int64_t in, int64_t out, int64_t temb_channels, int64_t groups, double eps,
                      double output_scale_factor = 1.0);
    /// x [b, in, f, h, w], temb [b, temb_channels] -> [b, out, f, h, w].
    torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& temb);

    GroupNorm norm1{nullptr}, norm2{nullptr};
    Conv2d conv1{nullptr}, conv2{nullptr}, conv_shortcut{nullptr};  ///< shortcut only when in != out
    Linear time_emb_proj{nullptr};
    double output_scale_factor;

private:
    /// conv1's bias plus the time shift [b, out], summed in fp32 and rounded once to `dtype`: the fused routes add
    /// the two in one pass.
    torch::Tensor conv1_bias_table(const torch::Tensor& shift, torch::ScalarType dtype) const;
    /// The fused route (CUDA, LSYNC_FUSED_BIAS on) on x in frames-channels-last memory (the UNet's CUDA layout,
    /// unet_3d.h); shift [b, out].
    torch::Tensor forward_channels_last(const torch::Tensor& x, const torch::Tensor& shift);
};
TORCH_MODULE(ResnetBlock3D);

/// 3x3 stride-2 conv with symmetric padding (`downsamplers.0.conv`).
class Downsample3DImpl : public torch::nn::Module {
public:
    Downsample3DImpl(int64_t channels, int64_t padding);
    torch::Tensor forward(const torch::Tensor& x);
    Conv2d conv{nullptr};
};
TORCH_MODULE(Downsample3D);

/// Nearest x2 on h and w (frames untouched), or to `size` (f, h, w) when the skip tensor has an odd side,
/// then a 3x3 conv (`upsamplers.0.conv`).
class Upsample3DImpl : public torch::nn::Module {
public:
    explicit Upsample3DImpl(int64_t channels);
    torch::Tensor forward(const torch::Tensor& x, const std::optional<std::vector<int64_t>>& size = std::nullopt);
    Conv2d conv{nullptr};
};
TORCH_MODULE(Upsample3D);

}  // namespace lsync::models
