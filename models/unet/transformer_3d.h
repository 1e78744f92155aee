#pragma once
// Transformer3DModel of latentsync/models/attention.py: per frame, GroupNorm (eps 1e-6) -> 1x1 conv proj_in ->
// one BasicTransformerBlock over the h*w tokens (spatial self-attention, audio cross-attention, GEGLU
// feed-forward, each pre-LayerNorm with a residual) -> 1x1 conv proj_out -> + input.

#include "unet/unet_attention.h"
#include "unet/unet_layers.h"

#include <torch/torch.h>

namespace lsync::models {

class BasicTransformerBlockImpl : public torch::nn::Module {
public:
    /// cross_dim = 0 leaves out the audio layer (norm2/attn2).
    BasicTransformerBlockImpl(int64_t dim, int64_t heads, int64_t head_dim, int64_t cross_dim);
    /// x [N, h*w, dim]; audio [N, tokens, cross_dim], or [M < N, ...] for the last M rows with the first N - M
    /// silent (all-zero audio), or undefined; self_bias = lip-focus key bias or none.
    torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& audio,
                          const std::optional<torch::Tensor>& self_bias);

    Attention attn1{nullptr}, attn2{nullptr};
    LayerNorm norm1{nullptr}, norm2{nullptr}, norm3{nullptr};
    FeedForward ff{nullptr};

private:
    /// attn2 over h's rows; audio may hold only the last rows, the first ones silent (forward).
    torch::Tensor cross_attention(const torch::Tensor& h, const torch::Tensor& audio);
};
TORCH_MODULE(BasicTransformerBlock);

class Transformer3DModelImpl : public torch::nn::Module {
public:
    /// LatentSync passes the config's attention_head_dim as `heads`; head size = channels / heads.
    Transformer3DModelImpl(int64_t channels, int64_t heads, int64_t groups, int64_t cross_dim);
    /// x [b, c, f, h, w]; audio [b*f, tokens, cross_dim] (row = batch * frames + frame) or undefined, or
    /// [b*f/2, ...]: the rows of the second half, the first half silent (the UNet's silent-first CFG form).
    torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& audio);

    GroupNorm norm{nullptr};
    Conv2d proj_in{nullptr}, proj_out{nullptr};
    torch::nn::ModuleList transformer_blocks;
    BasicTransformerBlock block{nullptr};
};
TORCH_MODULE(Transformer3DModel);

}  // namespace lsync::models
