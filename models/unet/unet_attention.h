#pragma once
// The attention layer and GEGLU feed-forward shared by the spatial transformers and the motion modules
// (latentsync/models/attention.py `Attention`, diffusers `FeedForward`). Parameter names follow the official
// attributes: to_q/to_k/to_v (no bias), to_out.0 (with bias); ff.net.0.proj, ff.net.2.

#include "ops/attention_context.h"
#include "unet/unet_layers.h"

#include <torch/torch.h>

#include <optional>

namespace lsync::models {

class AttentionImpl : public torch::nn::Module {
public:
    /// `context_dim` = 0 for self-attention (keys come from the queries' width).
    AttentionImpl(int64_t query_dim, int64_t heads, int64_t head_dim, int64_t context_dim = 0);

    /// x [N, Lq, query_dim]; context [N, Lk, context_dim] (defaults to x); key_bias [1 or N, Lk] fp32, added
    /// to the logits (lip focus); key_counts int32 [N] or undefined: sequence n attends to its first
    /// key_counts[n] keys (ops/valid_frames.h). Returns [N, Lq, query_dim]. Large N runs in slices of sequences
    /// (row_slices.h).
    torch::Tensor forward(const torch::Tensor& x, const std::optional<torch::Tensor>& context = std::nullopt,
                          const std::optional<torch::Tensor>& key_bias = std::nullopt,
                          const torch::Tensor& key_counts = {});

    const ops::AttentionContextPtr& context() const { return ctx_; }
    void set_context(ops::AttentionContextPtr ctx) { ctx_ = std::move(ctx); }

    Linear to_q{nullptr}, to_k{nullptr}, to_v{nullptr}, out{nullptr};
    int64_t heads;

private:
    /// forward() on one slice of sequences (forward() slices dim 0 to bound the temporaries: row_slices.h).
    torch::Tensor forward_rows(const torch::Tensor& x, const std::optional<torch::Tensor>& context,
                               const std::optional<torch::Tensor>& key_bias, const torch::Tensor& key_counts);
    /// The products that share an input in one GEMM: q, k, v of self-attention (k, v of cross-attention) with
    /// their weights stacked into one matrix. Where the weights already abut in one storage (models::place_parameters
    /// lays them out so) the stacked matrix is a view of them; otherwise it is made once, owns the storage, and the
    /// parameters become views of its row blocks. Either way it costs no memory and a load into the parameters
    /// lands in it; it is rebuilt when a parameter was replaced (to(), a new tensor), which the addresses show.
    torch::Tensor stacked_projection(const torch::Tensor& input, const std::vector<Linear*>& parts,
                                     torch::Tensor& stacked);
    torch::Tensor stacked_qkv_, stacked_kv_;
    ops::AttentionContextPtr ctx_ = ops::default_attention_context();
};
TORCH_MODULE(Attention);

/// diffusers FeedForward with GEGLU: proj to 2 x 4C, first half = value, second half = gate,
/// value * GELU_exact(gate), then back to C. Many tokens run in slices (row_slices.h).
class FeedForwardImpl : public torch::nn::Module {
public:
    explicit FeedForwardImpl(int64_t dim, int64_t mult = 4);
    torch::Tensor forward(const torch::Tensor& x);
    Linear proj{nullptr}, out{nullptr};
};
TORCH_MODULE(FeedForward);

/// Hands `ctx` to every attention layer below `module` (the network's set_attention uses this).
void set_attention_context(torch::nn::Module& module, const ops::AttentionContextPtr& ctx);

}  // namespace lsync::models
