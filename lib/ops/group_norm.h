#pragma once
// GroupNorm with an optional SiLU behind it, the chain every UNet/VAE resnet starts with. On CUDA (fp32, fp16,
// bf16) it runs the fused kernel of kernels/fused_group_norm.cu: one read of x for the statistics, one read and
// one write for normalise + affine + SiLU, fp32 statistics. 5-D tensors: an input in the memory order that
// `unfold_frames` leaves ([B, F, C, H, W] behind a [B, C, F, H, W] view) is read as it lies, and every 5-D
// result is written in that order, so neither the norm nor the per-frame conv after it copies the layout (the
// ATen path makes the input contiguous and the conv copies it back). 4-D channels_last inputs ([N, H, W, C] in
// memory, the VAE's CUDA path) are read as they lie and written channels_last (kernels/group_norm_nhwc.cu), and so
// are 5-D inputs in frames-channels-last memory (the UNet's CUDA path), as channels_last images of F*H rows.
// Everywhere else (CPU, LibTorch without CUDA, other dtypes, autograd) it is exactly at::group_norm followed by
// at::silu, made channels_last again on CUDA when the input was: CPU results do not change.
//
// LSYNC_FUSED_GROUPNORM=0 in the environment (read once) turns the fused path off, for before/after timings.

#include <torch/torch.h>

#include <string>

namespace lsync::ops {

/// y = act(GroupNorm(x)) with act = SiLU when `silu`, else identity. Statistics per (batch, group) over
/// C/groups channels and every trailing dimension (on [B, C, F, H, W]: across all frames). weight/bias may be
/// undefined (no affine).
torch::Tensor group_norm(const torch::Tensor& x, int64_t groups, const torch::Tensor& weight,
                         const torch::Tensor& bias, double eps, bool silu = false);

/// group_norm() of x + input_bias[c] (input_bias [C] of x's dtype): a VAE resnet's conv1 bias folded into the
/// norm after it. On CUDA with a channels_last x, the fused kernel and LSYNC_FUSED_BIAS on, both passes add the
/// bias as they load (rounded as the add would store it) and the biased tensor is never written; otherwise the
/// bias is added to x in place (add_channel_bias_: x must be a tensor of the caller's, e.g. the conv's output)
/// and group_norm() runs on it. Same values either way.
torch::Tensor bias_group_norm_(torch::Tensor& x, const torch::Tensor& input_bias, int64_t groups,
                               const torch::Tensor& weight, const torch::Tensor& bias, double eps, bool silu = false);

/// Whether bias_group_norm_(x, input_bias, ...) takes the kernel route, which leaves x as it is (else the bias is
/// added to x in place first).
bool input_bias_norm_serves(const torch::Tensor& x, const torch::Tensor& input_bias, int64_t groups,
                            const torch::Tensor& weight, const torch::Tensor& bias);

/// group_norm() of the 5-D x [B, C, F, H, W] + input_bias[b, c] (input_bias [B, C] of x's dtype): a UNet resnet's
/// conv1 bias plus each batch entry's time embedding, folded into norm2. On CUDA with x in frames-channels-last
/// memory (ops/memory_layout.h), the fused kernel and LSYNC_FUSED_BIAS on, both passes add the row of x's batch
/// entry as they load (rounded as the add would store it); otherwise the sum is formed by ATen first. Same values.
torch::Tensor group_norm_sample_bias(const torch::Tensor& x, const torch::Tensor& input_bias, int64_t groups,
                                    const torch::Tensor& weight, const torch::Tensor& bias, double eps,
                                    bool silu = false);

/// The statistics of a GroupNorm taken ahead, by the pass that wrote its input (add_channel_bias_residual_stats_).
struct NormStats {
    torch::Tensor workspace;     ///< the kernel's first-pass partials; undefined: none were taken
    int64_t groups = 0;
    const void* of = nullptr;    ///< the data of the tensor they describe
};

/// add_channel_bias_residual_ (ops/bias_add.h) that, on CUDA where its one pass and the channels-last GroupNorm
/// serve (and LSYNC_RESIDUAL_STATS is not 0), also takes the first pass of GroupNorm(groups) of the sums it writes
/// (a VAE resnet's output, for the next resnet's norm1): one read of the sums less. Elsewhere the plain add (which
/// adds a residual bias into `residual` in place), and no statistics.
NormStats add_channel_bias_residual_stats_(torch::Tensor& y, const torch::Tensor& bias, const torch::Tensor& residual,
                                           const torch::Tensor& residual_bias, int64_t groups);

/// group_norm() of x on the statistics in `stats` when they are x's (taken of x's data with these groups, x
/// unchanged since) and the kernel serves the call: the second pass alone, the same bits as group_norm().
/// Otherwise group_norm().
torch::Tensor group_norm_with_stats(const torch::Tensor& x, const NormStats& stats, int64_t groups,
                                    const torch::Tensor& weight, const torch::Tensor& bias, double eps,
                                    bool silu = false);

/// Whether add_channel_bias_residual_stats_ takes statistics: on unless LSYNC_RESIDUAL_STATS=0 (read once), or as
/// last set.
bool residual_stats_enabled();
void set_residual_stats(bool enabled);

/// The unfused ATen path (at::group_norm, then at::silu): what group_norm() does on the CPU.
torch::Tensor group_norm_reference(const torch::Tensor& x, int64_t groups, const torch::Tensor& weight,
                                   const torch::Tensor& bias, double eps, bool silu = false);

/// Empty when the fused kernel can run this call, else why not.
std::string group_norm_fused_unsupported(const torch::Tensor& x, int64_t groups, const torch::Tensor& weight,
                                         const torch::Tensor& bias);

/// The fused kernel alone; Error(Backend) when group_norm_fused_unsupported() is not empty.
torch::Tensor group_norm_fused(const torch::Tensor& x, int64_t groups, const torch::Tensor& weight,
                               const torch::Tensor& bias, double eps, bool silu = false);

/// Whether group_norm() uses the fused kernel where it can: true unless LSYNC_FUSED_GROUPNORM=0 (read on the
/// first call), or as last set by set_fused_group_norm() (tests compare whole networks both ways).
bool fused_group_norm_enabled();
void set_fused_group_norm(bool enabled);

}  // namespace lsync::ops
