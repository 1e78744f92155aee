#include "ops/group_norm.h"

#include "core/error.h"
#include "ops/bias_add.h"
#include "ops/conv.h"
#include "ops/kernel_switch.h"
#include "ops/memory_layout.h"
#include "ops/kernel_target.h"
#include "ops/valid_frames.h"

#include <climits>
#include <cstdint>

#if LSYNC_WITH_CUDA
#include "fused_group_norm.h"
#include "group_norm_nhwc.h"
#include "launch_shape.h"

#include <c10/cuda/CUDAGuard.h>
#endif

namespace lsync::ops {

namespace {

KernelSwitch g_group_norm_switch("LSYNC_FUSED_GROUPNORM");
// On an H200 (docs/performance-notes.md section 26) the VAE's calls lost 0.1-0.3 ms (256 px encode) and about
// 1 ms (512 px encode and decode) of 16 images; the same bits.
KernelSwitch g_residual_stats_switch("LSYNC_RESIDUAL_STATS");

#if LSYNC_WITH_CUDA
bool frames_outer_layout(const torch::Tensor& x) {
    // [B, C, F, H, W] whose memory is [B, F, C, H, W] (unfold_frames of a per-frame conv's output).
    if (x.dim() != 5) return false;
    const auto C = x.size(1), F = x.size(2), H = x.size(3), W = x.size(4);
    return x.stride(4) == 1 && x.stride(3) == W && x.stride(1) == H * W && x.stride(2) == C * H * W &&
           x.stride(0) == F * C * H * W;
}

// The kernel's view of a channels_last x (sizes and x's address; y unset, a fresh allocation is aligned).
kernels::GroupNormArgs channels_last_args(const torch::Tensor& x, int64_t groups) {
    kernels::GroupNormArgs a;
    a.x = x.data_ptr();
    a.batch = x.size(0);
    a.channels = x.size(1);
    a.groups = groups;
    a.frames = 1;
    a.plane = x.size(2) * x.size(3);
    a.channels_last = true;
    return a;
}
#endif

// x in plain NCHW memory with the canonical strides. On the CPU, ATen's GroupNorm picks its channels-last kernel by
// the strides, also those of size-1 dimensions: a [N, C, 1, 1] view with strides [C, 1, C, C] (what a token view of
// a one-pixel level leaves) is contiguous yet goes there. That kernel takes the variance as E[x^2] - E[x]^2 in the
// input's precision, which cancels for small groups of near-equal values (the tiny test UNet's 2-element groups
// gave errors of order 1 against fp64, the contiguous kernel 2e-4), and that error then runs through every later
// step of a denoising loop. The contiguous kernel accumulates in a way that does not cancel; the copy is the CPU's
// only cost, and only for inputs that really are channels-last.
torch::Tensor planes_strided(const torch::Tensor& x) {
    if (!x.is_contiguous()) return x.contiguous();
    return x.as_strided(x.sizes(), dense_strides(x.sizes()), x.storage_offset());
}

}  // namespace

bool fused_group_norm_enabled() { return g_group_norm_switch.enabled(); }

void set_fused_group_norm(bool enabled) { g_group_norm_switch.set(enabled); }

torch::Tensor group_norm_reference(const torch::Tensor& x, int64_t groups, const torch::Tensor& weight,
                                   const torch::Tensor& bias, double eps, bool silu) {
    auto y = torch::group_norm(x.is_cuda() ? x : planes_strided(x), groups, weight, bias, eps);
    return silu ? torch::silu(y) : y;
}

std::string group_norm_fused_unsupported(const torch::Tensor& x, int64_t groups, const torch::Tensor& weight,
                                         const torch::Tensor& bias) {
#if LSYNC_WITH_CUDA
    if (!x.defined() || !x.is_cuda()) return "the fused GroupNorm runs on CUDA devices only";
    const auto dt = x.scalar_type();
    if (dt != torch::kFloat && dt != torch::kHalf && dt != torch::kBFloat16) return "dtype must be fp32, fp16 or bf16";
    if (x.dim() < 3 || x.dim() > 5) return "input must be [N, C, L], [N, C, H, W] or [N, C, F, H, W]";
    if (x.numel() == 0) return "empty input";
    if (groups <= 0 || x.size(1) % groups != 0) return "channels must be a multiple of groups";
    // The kernel indexes inside one group's contiguous run with 32 bits.
    if (x.size(1) / groups * (x.numel() / (x.size(0) * x.size(1))) > INT_MAX)
        return "a group holds more than 2^31 elements";
    if (weight.defined() != bias.defined()) return "weight and bias must both be given or both be absent";
    if (weight.defined()) {
        for (const auto* t : {&weight, &bias}) {
            if (t->device() != x.device()) return "weight and bias must be on the input's device";
            if (t->numel() != x.size(1) || !t->is_contiguous()) return "weight and bias must be contiguous [C]";
            if (t->scalar_type() != dt && t->scalar_type() != torch::kFloat)
                return "weight and bias must have the input's dtype or fp32";
        }
        if (weight.scalar_type() != bias.scalar_type()) return "weight and bias must share a dtype";
    }
    if (torch::GradMode::is_enabled() &&
        (x.requires_grad() || (weight.defined() && (weight.requires_grad() || bias.requires_grad()))))
        return "the fused GroupNorm has no backward";
    // The channels-last kernel needs a tile of whole groups (no group wider than 256 vectors).
    if (is_channels_last_only(x)) {
        auto a = channels_last_args(x, groups);
        a.dtype = kernel_target(x).type;
        return kernels::group_norm_unsupported(a);
    }
    return {};
#else
    (void)x;
    (void)groups;
    (void)weight;
    (void)bias;
    return "this build has no CUDA kernels (LibTorch without CUDA)";
#endif
}

#if LSYNC_WITH_CUDA
namespace {

// Fills in the affine, numerics and device fields of `a` (layout and pointers set by the caller) and checks
// that the kernels take the call.
void fill_launch_args(kernels::GroupNormArgs& a, const torch::Tensor& weight, const torch::Tensor& bias, double eps,
                      bool silu, const torch::Tensor& x) {
    a.weight = weight.defined() ? weight.data_ptr() : nullptr;
    a.bias = bias.defined() ? bias.data_ptr() : nullptr;
    a.affine_fp32 = weight.defined() && weight.scalar_type() == torch::kFloat;
    a.eps = static_cast<float>(eps);
    a.silu = silu;
    const KernelTarget target = kernel_target(x);
    a.dtype = target.type;
    a.sm_count = target.sm_count;
    a.stream = target.stream;
    const auto unsupported = kernels::group_norm_unsupported(a);
    LSYNC_CHECK(unsupported.empty(), ErrorCode::Backend, "fused GroupNorm: " + unsupported);
}

// Both passes on x's current stream.
void launch_fused(kernels::GroupNormArgs& a, const torch::Tensor& weight, const torch::Tensor& bias, double eps,
                  bool silu, const torch::Tensor& x) {
    fill_launch_args(a, weight, bias, eps, silu, x);
    auto workspace = torch::empty({kernels::group_norm_workspace_floats(a)}, x.options().dtype(torch::kFloat));
    a.workspace = workspace.data_ptr<float>();
    const auto err = kernels::group_norm_launch(a);
    LSYNC_CHECK(err.empty(), ErrorCode::Backend, err);
}

// Real frames of a channels_last image of stacked frames (ops/valid_frames.h): the counts (int32 [N] on the
// image's device), each frame `frame_pixels` pixels; no counts: every pixel counts.
struct ImageFrames {
    torch::Tensor counts;
    int64_t frame_pixels = 0;
};

// The channels_last kernels on x (checked by the caller), y channels_last too: the next NHWC convolution reads it
// as it lies. `input_bias` ([C] of x's dtype, or undefined) is added to x as it is loaded.
// A 2-D input_bias [N, C] holds one row per image.
torch::Tensor run_channels_last(const torch::Tensor& x, int64_t groups, const torch::Tensor& weight,
                                const torch::Tensor& bias, double eps, bool silu,
                                const torch::Tensor& input_bias = {}, const ImageFrames& frames = {}) {
    auto y = torch::empty(x.sizes(), x.options().memory_format(at::MemoryFormat::ChannelsLast));
    auto a = channels_last_args(x, groups);
    a.y = y.data_ptr();
    a.input_bias = input_bias.defined() ? input_bias.data_ptr() : nullptr;
    a.input_bias_per_image = input_bias.defined() && input_bias.dim() == 2;
    if (frames.counts.defined()) {
        a.valid_frames = frames.counts.data_ptr<int32_t>();
        a.frame_pixels = frames.frame_pixels;
    }
    launch_fused(a, weight, bias, eps, silu, x);
    return y;
}

// Whether the channels-last kernel runs x (a channels_last image) with `input_bias` ([C], or [N, C]: a row per
// image) added as it loads: the fused GroupNorm and bias switches on, a bias it can read, a shape it takes.
bool input_bias_kernel_serves(const torch::Tensor& x, const torch::Tensor& input_bias, int64_t groups,
                              const torch::Tensor& weight, const torch::Tensor& bias) {
    return x.is_cuda() && fused_group_norm_enabled() && fused_bias_enabled() && is_channels_last_only(x) &&
           input_bias.is_contiguous() && input_bias.scalar_type() == x.scalar_type() &&
           input_bias.device() == x.device() && !(torch::GradMode::is_enabled() && input_bias.requires_grad()) &&
           group_norm_fused_unsupported(x, groups, weight, bias).empty();
}

}  // namespace
#endif

torch::Tensor group_norm_fused(const torch::Tensor& x_in, int64_t groups, const torch::Tensor& weight,
                               const torch::Tensor& bias, double eps, bool silu) {
    const auto why = group_norm_fused_unsupported(x_in, groups, weight, bias);
    LSYNC_CHECK(why.empty(), ErrorCode::Backend, "fused GroupNorm: " + why);
#if LSYNC_WITH_CUDA
    const c10::cuda::CUDAGuard device_guard(x_in.device());
    const bool frames_outer = !x_in.is_contiguous() && frames_outer_layout(x_in);
    // channels_last in, channels_last out.
    if (is_channels_last_only(x_in)) return run_channels_last(x_in, groups, weight, bias, eps, silu);
    // Any other layout is made contiguous first, as at::group_norm does.
    const torch::Tensor x = frames_outer || x_in.is_contiguous() ? x_in : x_in.contiguous();
    // A 5-D result is always in frames-outer memory order: the per-frame conv that reads it (fold_frames) then
    // needs no copy.
    const bool y_frames_outer = x.dim() == 5 && !frames_outer && x.size(2) > 1;
    auto y = y_frames_outer ? torch::empty({x.size(0), x.size(2), x.size(1), x.size(3), x.size(4)}, x.options())
                                  .permute({0, 2, 1, 3, 4})
                            : torch::empty_strided(x.sizes(), x.strides(), x.options());

    kernels::GroupNormArgs a;
    a.x = x.data_ptr();
    a.y = y.data_ptr();
    a.batch = x.size(0);
    a.channels = x.size(1);
    a.groups = groups;
    a.frames = x.dim() == 5 ? x.size(2) : 1;
    a.plane = x.numel() / (a.batch * a.channels * a.frames);
    a.frames_outer = frames_outer;
    a.y_frames_outer = y_frames_outer;
    launch_fused(a, weight, bias, eps, silu, x);
    return y;
#else
    (void)eps;
    (void)silu;
    throw_error(ErrorCode::Backend, "fused GroupNorm: " + why);
#endif
}

torch::Tensor bias_group_norm_(torch::Tensor& x, const torch::Tensor& input_bias, int64_t groups,
                               const torch::Tensor& weight, const torch::Tensor& bias, double eps, bool silu) {
    LSYNC_CHECK(x.dim() == 4 && input_bias.numel() == x.size(1), ErrorCode::Internal,
                "bias_group_norm_: a 4-D input and one bias value per channel");
#if LSYNC_WITH_CUDA
    if (input_bias_kernel_serves(x, input_bias, groups, weight, bias)) {
        const c10::cuda::CUDAGuard device_guard(x.device());
        return run_channels_last(x, groups, weight, bias, eps, silu, input_bias);
    }
#endif
    add_channel_bias_(x, input_bias);
    return group_norm(x, groups, weight, bias, eps, silu);
}

bool input_bias_norm_serves(const torch::Tensor& x, const torch::Tensor& input_bias, int64_t groups,
                            const torch::Tensor& weight, const torch::Tensor& bias) {
#if LSYNC_WITH_CUDA
    return x.dim() == 4 && input_bias.numel() == x.size(1) &&
           input_bias_kernel_serves(x, input_bias, groups, weight, bias);
#else
    (void)x, (void)input_bias, (void)groups, (void)weight, (void)bias;
    return false;
#endif
}

torch::Tensor group_norm_sample_bias(const torch::Tensor& x, const torch::Tensor& input_bias, int64_t groups,
                                    const torch::Tensor& weight, const torch::Tensor& bias, double eps, bool silu) {
    LSYNC_CHECK(x.dim() == 5 && input_bias.dim() == 2 && input_bias.size(0) == x.size(0) &&
                    input_bias.size(1) == x.size(1),
                ErrorCode::Internal, "group_norm_sample_bias: x [B, C, F, H, W] with an input bias [B, C]");
#if LSYNC_WITH_CUDA
    if (is_frames_channels_last(x)) {
        const auto image = frames_as_image(x);
        const auto counts = valid_frames_for(x.size(0));
        if (input_bias_kernel_serves(image, input_bias, groups, weight, bias) &&
            (!counts.defined() || counts_fit(counts, x.size(0), x.device()))) {
            const c10::cuda::CUDAGuard device_guard(x.device());
            const ImageFrames frames{counts, x.size(3) * x.size(4)};
            return image_as_frames(run_channels_last(image, groups, weight, bias, eps, silu, input_bias, frames),
                                   x.size(2));
        }
    }
#endif
    return group_norm(x + input_bias.reshape({x.size(0), x.size(1), 1, 1, 1}), groups, weight, bias, eps, silu);
}

torch::Tensor group_norm(const torch::Tensor& x, int64_t groups, const torch::Tensor& weight,
                         const torch::Tensor& bias, double eps, bool silu) {
    // A call with padding frames (ops/valid_frames.h): statistics over the real ones.
    if (x.dim() == 5) {
        if (const auto counts = valid_frames_for(x.size(0)); counts.defined()) {
#if LSYNC_WITH_CUDA
            if (is_frames_channels_last(x) && x.is_cuda() && fused_group_norm_enabled() &&
                counts_fit(counts, x.size(0), x.device())) {
                const auto image = frames_as_image(x);
                if (group_norm_fused_unsupported(image, groups, weight, bias).empty()) {
                    const c10::cuda::CUDAGuard device_guard(x.device());
                    const ImageFrames frames{counts, x.size(3) * x.size(4)};
                    return image_as_frames(run_channels_last(image, groups, weight, bias, eps, silu, {}, frames),
                                           x.size(2));
                }
            }
#endif
            return group_norm_valid_frames_reference(x, counts.to(x.device()), groups, weight, bias, eps, silu);
        }
    }
    // Frames-channels-last 5-D: statistics per batch entry over all its frames are those of the channels_last
    // image [B, C, F*H, W] over the same memory, which every path below keeps channels_last.
    if (is_frames_channels_last(x)) {
        const auto y = group_norm(frames_as_image(x), groups, weight, bias, eps, silu);
        return image_as_frames(y.contiguous(at::MemoryFormat::ChannelsLast), x.size(2));
    }
#if LSYNC_WITH_CUDA
    if (x.is_cuda()) {
        if (fused_group_norm_enabled() && group_norm_fused_unsupported(x, groups, weight, bias).empty())
            return group_norm_fused(x, groups, weight, bias, eps, silu);
        // ATen's CUDA GroupNorm writes NCHW whatever it reads; a channels_last input gets its memory order back,
        // so the convolutions after it stay in NHWC (one copy here instead of cuDNN's two around the next conv).
        if (is_channels_last_only(x))
            return group_norm_reference(x, groups, weight, bias, eps, silu).contiguous(at::MemoryFormat::ChannelsLast);
    }
#endif
    return group_norm_reference(x, groups, weight, bias, eps, silu);
}

bool residual_stats_enabled() { return g_residual_stats_switch.enabled(); }

void set_residual_stats(bool enabled) { g_residual_stats_switch.set(enabled); }

NormStats add_channel_bias_residual_stats_(torch::Tensor& y, const torch::Tensor& bias, const torch::Tensor& residual,
                                           const torch::Tensor& residual_bias, int64_t groups) {
#if LSYNC_WITH_CUDA
    // Both 16-byte aligned, so the fused pass walks y with the vector width the norm's second pass will use.
    if (residual_stats_enabled() && fused_group_norm_enabled() &&
        residual_pass_serves(y, bias, residual, residual_bias) && kernels::aligned16(y.data_ptr()) &&
        kernels::aligned16(residual.data_ptr()) &&
        group_norm_fused_unsupported(y, groups, {}, {}).empty()) {
        const c10::cuda::CUDAGuard device_guard(y.device());
        auto a = channels_last_args(y, groups);
        fill_launch_args(a, {}, {}, 0.0, false, y);
        NormStats stats{torch::empty({kernels::group_norm_workspace_floats(a)}, y.options().dtype(torch::kFloat)),
                        groups, y.data_ptr()};
        a.workspace = stats.workspace.data_ptr<float>();
        kernels::nhwc::ResidualSums sums;
        sums.sums = y.data_ptr();
        sums.bias = bias.data_ptr();
        sums.residual = residual.data_ptr();
        sums.residual_bias = residual_bias.defined() ? residual_bias.data_ptr() : nullptr;
        const auto err = kernels::nhwc::residual_stats_launch(a, sums);
        LSYNC_CHECK(err.empty(), ErrorCode::Backend, err);
        return stats;
    }
#endif
    (void)groups;
    add_channel_bias_residual_(y, bias, residual, residual_bias);
    return {};
}

torch::Tensor group_norm_with_stats(const torch::Tensor& x, const NormStats& stats, int64_t groups,
                                    const torch::Tensor& weight, const torch::Tensor& bias, double eps, bool silu) {
#if LSYNC_WITH_CUDA
    // The second pass must walk x with the geometry the first one used: the same sizes and device, and the same
    // vector width, which the kernel picks from x's and y's alignment (the statistics were taken of an aligned x
    // with no y; y here is a fresh, aligned allocation), so the workspace size check below backs up the rest.
    if (stats.workspace.defined() && stats.groups == groups && stats.of == x.data_ptr() &&
        kernels::aligned16(x.data_ptr()) && fused_group_norm_enabled() &&
        is_channels_last_only(x) && group_norm_fused_unsupported(x, groups, weight, bias).empty()) {
        const c10::cuda::CUDAGuard device_guard(x.device());
        auto y = torch::empty(x.sizes(), x.options().memory_format(at::MemoryFormat::ChannelsLast));
        auto a = channels_last_args(x, groups);
        a.y = y.data_ptr();
        fill_launch_args(a, weight, bias, eps, silu, x);
        LSYNC_CHECK(kernels::group_norm_workspace_floats(a) == stats.workspace.numel(), ErrorCode::Internal,
                    "group_norm_with_stats: statistics of another geometry");
        a.workspace = stats.workspace.data_ptr<float>();
        const auto err = kernels::nhwc::group_norm_apply_launch(a);
        LSYNC_CHECK(err.empty(), ErrorCode::Backend, err);
        return y;
    }
#endif
    return group_norm(x, groups, weight, bias, eps, silu);
}

}  // namespace lsync::ops
