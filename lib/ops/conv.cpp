#include "ops/conv.h"

#include "core/error.h"
#include "ops/bias_add.h"
#include "ops/kernel_switch.h"

#include <type_traits>
#include <variant>

namespace lsync::ops {

namespace {

KernelSwitch g_switch("LSYNC_FUSED_BIAS");

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
