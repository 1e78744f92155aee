#pragma once
// The AnimateDiff-style motion module of latentsync/models/motion_module.py (VanillaTemporalModule ->
// TemporalTransformer3DModel -> TemporalTransformerBlock -> VersatileAttention): self-attention across the
// frames of each pixel. Parameter path: motion_modules.N.temporal_transformer.{norm, proj_in,
// transformer_blocks.0.{attention_blocks.K, norms.K, ff, ff_norm}, proj_out}.

#include "unet/unet_attention.h"
#include "unet/unet_config.h"
#include "unet/unet_layers.h"

#include <torch/torch.h>

namespace lsync::models {

/// The official VanillaTemporalModule never forwards the config's norm_num_groups: its GroupNorm always has 32.
constexpr int64_t kMotionModuleGroups = 32;

/// The motion modules' position table [1, max_len, dim]: pe[p, 2i] = sin(p * 10000^(-2i/dim)),
/// pe[p, 2i+1] = cos(same) (interleaved, unlike the timestep embedding's [cos | sin]).
torch::Tensor temporal_position_table(int64_t dim, int64_t max_len);

/// VersatileAttention in "Temporal" mode: tokens regrouped so each pixel attends over the frames, with the
/// position table added to its (already normalised) input so q, k and v all see it.
class TemporalAttentionImpl : public AttentionImpl {
public:
    TemporalAttentionImpl(int64_t dim, int64_t heads, int64_t head_dim, bool position_encoding, int64_t max_len);
    /// x [b*s, f, dim]: the tokens already grouped by pixel (s = h*w), which is the order the whole motion
    /// module keeps (its norms, projections and feed-forward work per token, so only the entry and exit
    /// reorder) -> the same shape. key_counts int32 [b*s] or undefined: each sequence's real frames
    /// (ops/valid_frames.h), the only keys it attends to.
    torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& key_counts = {});
    /// forward() on a temporary the caller gives up (a norm's output): the position table is added into it in
    /// place.
    torch::Tensor forward_consuming(torch::Tensor x, const torch::Tensor& key_counts = {});
    torch::Tensor pe;  ///< buffer `pos_encoder.pe`, undefined without position encoding

private:
    /// pe[:, :frames]; Error(Usage) past the table.
    torch::Tensor position_table(int64_t frames) const;
};
TORCH_MODULE(TemporalAttention);

class TemporalTransformerBlockImpl : public torch::nn::Module {
public:
    TemporalTransformerBlockImpl(int64_t dim, const MotionModuleConfig& cfg);
    /// x [b*s, f, dim] -> the same shape; key_counts as TemporalAttentionImpl::forward's.
    torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& key_counts = {});
    std::vector<TemporalAttention> attention;
    std::vector<LayerNorm> norm;
    FeedForward ff{nullptr};
    LayerNorm ff_norm{nullptr};
};
TORCH_MODULE(TemporalTransformerBlock);

/// `motion_modules.N`: holds `temporal_transformer`. It receives temb and audio in the official code but uses
/// neither.
class MotionModuleImpl : public torch::nn::Module {
public:
    MotionModuleImpl(int64_t channels, int64_t groups, const MotionModuleConfig& cfg);
    /// x [b, c, f, h, w] -> same shape. Under an ops::ValidFramesScope each entry's frames attend to its real
    /// frames only.
    torch::Tensor forward(const torch::Tensor& x);

    GroupNorm norm{nullptr};
    Linear proj_in{nullptr}, proj_out{nullptr};
    std::vector<TemporalTransformerBlock> blocks;
};
TORCH_MODULE(MotionModule);

}  // namespace lsync::models
