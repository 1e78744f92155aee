#pragma once
// The leaf layers of the UNet: Linear, Conv2d (applied per frame to 5-D video tensors, the official
// "InflatedConv3d"), GroupNorm and LayerNorm. They register "weight"/"bias" exactly like torch.nn, but their
// parameters start UNINITIALISED (torch::empty): the full-size UNet has 1.27 G parameters, and initialising
// them only to overwrite them with the checkpoint would cost seconds and 5 GB of touched memory. Every
// parameter is filled by load_unet() or init_random_parameters() before use. requires_grad is false: this is
// an inference port, and no autograd graph should ever be recorded.

#include "ops/layer_norm.h"

#include <torch/torch.h>

#include <string>
#include <vector>

namespace lsync::models {

/// (b, c, f, h, w) -> (b*f, c, h, w): frames become batch entries.
torch::Tensor fold_frames(const torch::Tensor& x);
/// (b*f, c, h, w) -> (b, c, f, h, w).
torch::Tensor unfold_frames(const torch::Tensor& x, int64_t frames);

class LinearImpl : public torch::nn::Module {
public:
    LinearImpl(int64_t in, int64_t out, bool bias = true);
    torch::Tensor forward(const torch::Tensor& x);
    torch::Tensor weight, bias;  ///< [out, in], [out] (undefined without bias)
};
TORCH_MODULE(Linear);

/// A 2-D convolution; on a 5-D (b, c, f, h, w) input it runs on every frame independently.
class Conv2dImpl : public torch::nn::Module {
public:
    Conv2dImpl(int64_t in, int64_t out, int64_t kernel, int64_t stride = 1, int64_t padding = 0);
    torch::Tensor forward(const torch::Tensor& x);
    torch::Tensor weight, bias;  ///< [out, in, k, k], [out]
    int64_t stride, padding;
};
TORCH_MODULE(Conv2d);

/// GroupNorm over whatever trailing dimensions the input has: on a 5-D video tensor the statistics span all
/// frames (the official ResnetBlock3D / conv_norm_out behaviour); fold frames first for per-frame statistics.
/// Runs ops::group_norm: the fused CUDA kernel where it applies, exactly torch::group_norm elsewhere.
class GroupNormImpl : public torch::nn::Module {
public:
    GroupNormImpl(int64_t groups, int64_t channels, double eps);
    torch::Tensor forward(const torch::Tensor& x);
    /// silu(forward(x)) in one pass on CUDA.
    torch::Tensor forward_silu(const torch::Tensor& x);
    torch::Tensor weight, bias;
    int64_t groups;
    double eps;
};
TORCH_MODULE(GroupNorm);

/// LayerNorm over the last dimension; runs ops::layer_norm (our CUDA kernel where it applies).
class LayerNormImpl : public torch::nn::Module {
public:
    explicit LayerNormImpl(int64_t dim, double eps = 1e-5);
    torch::Tensor forward(const torch::Tensor& x);
    /// {x + residual, forward(x + residual)}: a block's residual add and the next norm in one pass on CUDA.
    ops::SumAndNorm forward_sum(const torch::Tensor& x, const torch::Tensor& residual);
    torch::Tensor weight, bias;
    double eps;
};
TORCH_MODULE(LayerNorm);

/// Registers `items` as ModuleList `name` (children "0", "1", ...). The official lists hold None for absent
/// motion modules, which own no keys, so an empty list is not registered at all.
template <class Holder>
void register_module_list(torch::nn::Module& parent, const std::string& name, const std::vector<Holder>& items) {
    if (items.empty()) return;
    torch::nn::ModuleList list;
    for (const auto& m : items) list->push_back(m);
    parent.register_module(name, list);
}

/// Fills every parameter of `module` the way the golden fixtures were made (N(0, 1/fan_in) for matrices and
/// kernels, 1 + 0.1 N(0,1) for norm scales, 0.05 N(0,1) for biases), from `seed`. Buffers are left alone.
/// For tests, benchmarks and `--weights random`; not the official initialisation. The values are drawn where
/// the parameters are (a full-size UNet drawn on the host takes seconds): on the CPU they are the fixtures'; on
/// a GPU they come from its own generator, the same on cards of one model, not the same as the CPU's.
void init_random_parameters(torch::nn::Module& module, uint64_t seed);

/// Gives every parameter of `module` (not its buffers) new, uninitialised memory on `device` in `dtype`, all of it
/// one allocation, in the order the module lists them, conv weights laid out as ops::conv_weight_memory_format
/// says: a loader (io::load_weights writes such parameters in place) or init_random_parameters fills them next.
/// Why one allocation: weights made one by one, then converted (channels_last) or stacked (q/k/v), left about
/// 0.4 GiB of holes among them that only the loading thread's stream could reuse (call EA, 1.5 render under
/// --vram-budget; docs/performance-notes.md section 15). Here q, k and v of an attention layer sit back to back,
/// so their stacked matrix is a view (unet_attention.h).
void place_parameters(torch::nn::Module& module, const torch::Device& device, torch::ScalarType dtype);

/// What `module.to(device, dtype)` does, except that the parameters get new, uninitialised memory there instead of
/// copies of their values (place_parameters): for modules whose parameters init_random_parameters overwrites
/// next. Copying a full-size UNet's never-written host memory to a GPU costs page faults and a pageable copy of its
/// fp32 size, about a second per device, paid twice over when two loading threads compete for the host.
/// Buffers (values made at construction, such as positional tables) are moved with their values, as by to().
void to_uninitialised(torch::nn::Module& module, const torch::Device& device, torch::ScalarType dtype);

/// Makes every parameter and buffer of `module` the tensor of the same name in `from` (same storage, no copy): a
/// second instance of a network that owns its per-call state (attention context, DeepCache state, lazily made
/// views) but not its weights, so two workers on one GPU hold one set of weights. Both must be the same
/// architecture: a name or shape that differs is an Error(Internal). `module`'s own tensors are released.
void share_parameters(torch::nn::Module& module, const torch::nn::Module& from);

}  // namespace lsync::models
