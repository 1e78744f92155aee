#include "ops/conv.h"

#include "core/error.h"
#include "ops/kernel_switch.h"
#include "ops/memory_layout.h"
#include "ops/kernel_target.h"

#include <type_traits>
#include <variant>

#if LSYNC_WITH_CUDA
#include "channel_bias.h"

#include <c10/cuda/CUDAGuard.h>
#endif

namespace lsync::ops {

namespace {

KernelSwitch g_switch("LSYNC_FUSED_BIAS");

#if LSYNC_WITH_CUDA
bool kernel_adds_bias(const torch::Tensor& y, const torch::Tensor& bias) {
    const auto dt = y.scalar_type();
    // The caller has checked the switch and that y is on CUDA. Any other memory order takes ATen's broadcast add.
    return y.dim() == 4 && (y.is_contiguous() || is_channels_last_only(y)) && y.numel() > 0 &&
           (dt == torch::kFloat || dt == torch::kHalf || dt == torch::kBFloat16) && bias.scalar_type() == dt &&
           bias.is_contiguous() && bias.numel() == y.size(1) && bias.device() == y.device() &&
           !(torch::GradMode::is_enabled() && (y.requires_grad() || bias.requires_grad()));
}

void add_bias_kernel(torch::Tensor& y, const torch::Tensor& bias) {
    const c10::cuda::CUDAGuard guard(y.device());
    kernels::ChannelBiasArgs a;
    a.y = y.data_ptr();
    a.bias = bias.data_ptr();
    a.channels = y.size(1);
    a.channels_inner = !y.is_contiguous();  // kernel_adds_bias: then channels_last
    a.rows = a.channels_inner ? y.size(0) * y.size(2) * y.size(3) : y.size(0) * y.size(1);
    a.plane = y.size(2) * y.size(3);
    const KernelTarget target = kernel_target(y);
    a.dtype = target.type;
    a.sm_count = target.sm_count;
    a.stream = target.stream;
    const auto err = kernels::channel_bias_launch(a);
    LSYNC_CHECK(err.empty(), ErrorCode::Backend, err);
}
#endif

}  // namespace

bool fused_bias_enabled() { return g_switch.enabled(); }

void set_fused_bias(bool enabled) { g_switch.set(enabled); }

torch::Tensor conv2d(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias, int64_t stride,
                     int64_t padding) {
#if LSYNC_WITH_CUDA
    if (bias.defined() && x.is_cuda() && fused_bias_enabled()) {
        auto y = torch::conv2d(x, weight, {}, {stride, stride}, {padding, padding});
        return add_channel_bias_(y, bias);
    }
#endif
    return torch::conv2d(x, weight, bias, {stride, stride}, {padding, padding});
}

torch::Tensor& add_channel_bias_(torch::Tensor& y, const torch::Tensor& bias) {
#if LSYNC_WITH_CUDA
    if (y.is_cuda() && fused_bias_enabled() && kernel_adds_bias(y, bias)) {
        add_bias_kernel(y, bias);
        return y;
    }
#endif
    return y.add_(bias.reshape({1, -1, 1, 1}));
}

torch::Tensor conv2d(const torch::nn::Conv2d& conv, const torch::Tensor& x) {
    const auto& o = conv->options;
    // The padding is a variant (explicit sizes, or "valid"/"same"): c10's in LibTorch 1.x, std's in 2.x, so
    // the unqualified visit finds whichever by argument-dependent lookup.
    int64_t pad = -1;
    visit(
        [&](const auto& p) {
            if constexpr (std::is_same_v<std::decay_t<decltype(p)>, torch::ExpandingArray<2>>)
                pad = (*p)[0] == (*p)[1] ? (*p)[0] : -1;
        },
        o.padding());
    LSYNC_CHECK(pad >= 0 && (*o.stride())[0] == (*o.stride())[1] && o.groups() == 1 && (*o.dilation())[0] == 1 &&
                    (*o.dilation())[1] == 1 && o.padding_mode().index() == 0,
                ErrorCode::Internal, "ops::conv2d: square stride and zero padding, no groups or dilation");
    return conv2d(x, conv->weight, conv->bias, (*o.stride())[0], pad);
}

}  // namespace lsync::ops
