#include "ops/bias_add.h"

#include "core/error.h"
#include "ops/conv.h"
#include "ops/kernel_switch.h"
#include "ops/kernel_target.h"
#include "ops/memory_layout.h"
#include "ops/pad.h"

#include <string>
#include <utility>

#if LSYNC_WITH_CUDA
#include "channel_bias.h"

#include <c10/cuda/CUDAGuard.h>
#endif

namespace lsync::ops {

namespace {

KernelSwitch g_residual_pad_switch("LSYNC_RESIDUAL_PAD");

#if LSYNC_WITH_CUDA
// Whether the kernel serves y and bias: CUDA, the switch on, contiguous, one floating dtype, no gradient.
bool kernel_serves(const torch::Tensor& y, const torch::Tensor& bias) {
    const auto dt = y.scalar_type();
    return y.is_cuda() && fused_bias_enabled() && y.is_contiguous() && y.numel() > 0 && bias.is_contiguous() &&
           (dt == torch::kFloat || dt == torch::kHalf || dt == torch::kBFloat16) && bias.scalar_type() == dt &&
           bias.device() == y.device() && !(torch::GradMode::is_enabled() && (y.requires_grad() || bias.requires_grad()));
}

void launch(kernels::ChannelBiasArgs a, const torch::Tensor& y, const torch::Tensor& bias) {
    const c10::cuda::CUDAGuard guard(y.device());
    a.y = y.data_ptr();
    a.bias = bias.data_ptr();
    const KernelTarget target = kernel_target(y);
    a.dtype = target.type;
    a.sm_count = target.sm_count;
    a.stream = target.stream;
    const auto err = kernels::channel_bias_launch(a);
    LSYNC_CHECK(err.empty(), ErrorCode::Backend, err);
}
#endif

}  // namespace

torch::Tensor& add_channel_bias_(torch::Tensor& y, const torch::Tensor& bias) {
#if LSYNC_WITH_CUDA
    // Any memory order but NCHW and channels_last takes ATen's broadcast add.
    const bool channels_last = is_channels_last_only(y);
    if (y.dim() == 4 && bias.numel() == y.size(1) &&
        kernel_serves(channels_last ? y.permute({0, 2, 3, 1}) : y, bias)) {
        kernels::ChannelBiasArgs a;
        a.channels = y.size(1);
        a.channels_inner = channels_last;
        a.rows = channels_last ? y.size(0) * y.size(2) * y.size(3) : y.size(0) * y.size(1);
        a.plane = y.size(2) * y.size(3);
        launch(a, y, bias);
        return y;
    }
#endif
    return y.add_(bias.reshape({1, -1, 1, 1}));
}

namespace {

#if LSYNC_WITH_CUDA
// Whether the residual kernel takes y, its residual and biases in one channels_last pass.
bool residual_kernel_serves(const torch::Tensor& y, const torch::Tensor& bias, const torch::Tensor& residual,
                            const torch::Tensor& residual_bias) {
    return is_channels_last_only(y) && is_channels_last_only(residual) &&
           residual.scalar_type() == y.scalar_type() && residual.device() == y.device() &&
           !(torch::GradMode::is_enabled() && residual.requires_grad()) &&
           kernel_serves(y.permute({0, 2, 3, 1}), bias) &&
           (!residual_bias.defined() || kernel_serves(y.permute({0, 2, 3, 1}), residual_bias));
}

kernels::ChannelBiasArgs residual_args(const torch::Tensor& y, const torch::Tensor& residual,
                                       const torch::Tensor& residual_bias) {
    kernels::ChannelBiasArgs a;
    a.channels = y.size(1);
    a.channels_inner = true;
    a.rows = y.size(0) * y.size(2) * y.size(3);
    a.residual = residual.data_ptr();
    a.residual_bias = residual_bias.defined() ? residual_bias.data_ptr() : nullptr;
    return a;
}
#endif

void check_residual_shapes(const torch::Tensor& y, const torch::Tensor& bias, const torch::Tensor& residual,
                           const torch::Tensor& residual_bias, const char* what) {
    LSYNC_CHECK(y.dim() == 4 && residual.sizes() == y.sizes() && bias.numel() == y.size(1) &&
                    (!residual_bias.defined() || residual_bias.numel() == y.size(1)),
                ErrorCode::Internal, std::string(what) + ": y and the residual [N, C, H, W] with biases [C]");
}

}  // namespace

bool residual_pass_serves(const torch::Tensor& y, const torch::Tensor& bias, const torch::Tensor& residual,
                          const torch::Tensor& residual_bias) {
#if LSYNC_WITH_CUDA
    return y.dim() == 4 && residual.sizes() == y.sizes() && bias.numel() == y.size(1) &&
           (!residual_bias.defined() || residual_bias.numel() == y.size(1)) &&
           residual_kernel_serves(y, bias, residual, residual_bias);
#else
    (void)y;
    (void)bias;
    (void)residual;
    (void)residual_bias;
    return false;
#endif
}

torch::Tensor& add_channel_bias_residual_(torch::Tensor& y, const torch::Tensor& bias, torch::Tensor residual,
                                          const torch::Tensor& residual_bias) {
    check_residual_shapes(y, bias, residual, residual_bias, "add_channel_bias_residual_");
#if LSYNC_WITH_CUDA
    if (residual_kernel_serves(y, bias, residual, residual_bias)) {
        launch(residual_args(y, residual, residual_bias), y, bias);
        return y;
    }
#endif
    if (residual_bias.defined()) add_channel_bias_(residual, residual_bias);
    add_channel_bias_(y, bias);
    return y.add_(residual);
}

torch::Tensor add_channel_bias_residual_padded(torch::Tensor& y, const torch::Tensor& bias, torch::Tensor residual,
                                               const torch::Tensor& residual_bias) {
    check_residual_shapes(y, bias, residual, residual_bias, "add_channel_bias_residual_padded");
#if LSYNC_WITH_CUDA
    const int64_t n = y.size(0), h = y.size(2), w = y.size(3);
    if (residual_pad_enabled() && residual_kernel_serves(y, bias, residual, residual_bias) &&
        n * h * w < (int64_t(1) << 32)) {
        const auto layout = y.options().memory_format(at::MemoryFormat::ChannelsLast);
        auto out = torch::empty({n, y.size(1), h + 1, w + 1}, layout);
        out.narrow(2, h, 1).zero_();
        out.narrow(3, w, 1).zero_();
        auto a = residual_args(y, residual, residual_bias);
        a.out = out.data_ptr();
        a.out_height = h;
        a.out_width = w;
        launch(a, y, bias);
        return out;
    }
#endif
    return pad_right_bottom(add_channel_bias_residual_(y, bias, std::move(residual), residual_bias));
}

bool residual_pad_enabled() { return g_residual_pad_switch.enabled(); }

void set_residual_pad(bool enabled) { g_residual_pad_switch.set(enabled); }

torch::Tensor& add_sample_bias_(torch::Tensor& y, const torch::Tensor& bias, int64_t samples_per_bias) {
    LSYNC_CHECK(y.dim() == 4 && bias.dim() == 2 && samples_per_bias > 0 && y.size(0) % samples_per_bias == 0 &&
                    bias.size(0) == y.size(0) / samples_per_bias && bias.size(1) == y.size(1),
                ErrorCode::Internal, "add_sample_bias_: y [N, C, H, W] with bias [N / samples, C]");
#if LSYNC_WITH_CUDA
    if (kernel_serves(y, bias)) {
        kernels::ChannelBiasArgs a;
        a.channels = y.size(1);
        a.rows = y.size(0) * y.size(1);
        a.plane = y.size(2) * y.size(3);
        a.samples_per_bias = samples_per_bias;
        launch(a, y, bias);
        return y;
    }
#endif
    if (y.numel() == 0) return y;
    if (!y.is_contiguous())
        return y.add_(bias.repeat_interleave(samples_per_bias, 0).reshape({y.size(0), y.size(1), 1, 1}));
    const int64_t groups = bias.size(0), c = y.size(1);
    y.view({groups, samples_per_bias, c, -1}).add_(bias.reshape({groups, 1, c, 1}));
    return y;
}

torch::Tensor& add_row_bias_(torch::Tensor& y, const torch::Tensor& bias) {
    LSYNC_CHECK(y.dim() >= 1 && bias.numel() == y.size(-1), ErrorCode::Internal,
                "add_row_bias_: the bias must have as many elements as y's last dimension");
#if LSYNC_WITH_CUDA
    if (kernel_serves(y, bias)) {
        kernels::ChannelBiasArgs a;
        a.channels = y.size(-1);
        a.rows = y.numel() / a.channels;
        a.channels_inner = true;
        launch(a, y, bias);
        return y;
    }
#endif
    y.add_(bias.reshape({y.size(-1)}));
    return y;
}

}  // namespace lsync::ops
