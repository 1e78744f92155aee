#include "ops/conv.h"

#include "core/env.h"
#include "core/error.h"
#include "ops/bias_add.h"
#include "ops/conv_journal.h"
#include "ops/im2col_conv.h"
#include "ops/kernel_switch.h"
#include "ops/memory_layout.h"
#include "ops/tile_transpose.h"

#include <type_traits>
#include <variant>

namespace lsync::ops {

namespace {

KernelSwitch g_bias_switch("LSYNC_FUSED_BIAS");
KernelSwitch g_nhwc("LSYNC_NHWC_CONV");

// LSYNC_CUDNN_BENCHMARK=1 (read at the first convolution) lets cuDNN time its algorithms for each new shape and
// keep the fastest, instead of taking its heuristic's pick: a measurement switch, off by default because the
// choice then depends on timings, so two runs (or two GPUs of one render) may round differently.
void apply_cudnn_preferences() {
    static const bool applied = [] {
        if (env::flag("LSYNC_CUDNN_BENCHMARK")) at::globalContext().setBenchmarkCuDNN(true);
        return true;
    }();
    (void)applied;
}

// A plain NCHW input and a weight laid out channels_last (use_channels_last_conv_weights): cuDNN runs NHWC, so
// the activations go there and back through our coalesced transposes, the bias added on the way back (bias [K],
// or [N / samples_per_bias, K] with samples_per_bias > 0) unless LSYNC_FUSED_BIAS=0 sends bias adds to ATen.
// Left to ATen, this pair would turn the whole call channels_last (its strided copy for the input, a
// channels_last output the NCHW code after it cannot use).
// With a residual [N, K, Ho, Wo] (its shape checked by conv2d_add) the result is residual + (conv + bias), added on
// the same way back.
torch::Tensor conv2d_nhwc(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias,
                          int64_t samples_per_bias, int64_t stride, int64_t padding,
                          const torch::Tensor& residual = {}) {
    const int64_t n = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3);
    // Each temporary is released as soon as the next one exists: at most the input, one NHWC copy and the output.
    auto y = noted_conv2d(transpose_last2(x.reshape({n, c, h * w})).view({n, h, w, c}).permute({0, 3, 1, 2}), weight,
                          {}, stride, padding);
    const int64_t k = y.size(1), ho = y.size(2), wo = y.size(3);
    const auto tokens = y.permute({0, 2, 3, 1}).reshape({n, ho * wo, k});
    if (bias.defined() && fused_bias_enabled())
        return transpose_last2_add_bias(tokens, bias, samples_per_bias,
                                        residual.defined() ? residual.reshape({n, k, ho * wo}) : torch::Tensor())
            .view({n, k, ho, wo});
    auto out = transpose_last2(tokens).view({n, k, ho, wo});
    if (bias.defined()) {
        if (samples_per_bias > 0)
            add_sample_bias_(out, bias, samples_per_bias);
        else
            add_channel_bias_(out, bias);
    }
    return residual.defined() ? residual + out : out;
}

}  // namespace

bool nhwc_conv_serves(const torch::Tensor& x, const torch::Tensor& weight) {
    return x.is_cuda() && nhwc_conv_enabled() && x.dim() == 4 && x.numel() > 0 && x.scalar_type() == weight.scalar_type() &&
           is_channels_last_only(weight) && !is_channels_last_only(x);
}

bool fused_bias_enabled() { return g_bias_switch.enabled(); }

void set_fused_bias(bool enabled) { g_bias_switch.set(enabled); }

bool nhwc_conv_enabled() { return g_nhwc.enabled(); }

void set_nhwc_conv(bool enabled) { g_nhwc.set(enabled); }

namespace {
bool nhwc_eligible(at::IntArrayRef sizes, torch::ScalarType dt, bool cuda) {
    return sizes.size() == 4 && cuda && (dt == torch::kHalf || dt == torch::kBFloat16) && sizes[2] * sizes[3] > 1 &&
           sizes[0] % 8 == 0 && sizes[1] % 8 == 0;
}
}  // namespace

bool nhwc_conv_weight_eligible(const torch::Tensor& weight) {
    return nhwc_eligible(weight.sizes(), weight.scalar_type(), weight.is_cuda());
}

at::MemoryFormat conv_weight_memory_format(at::IntArrayRef sizes, torch::ScalarType dtype, const torch::Device& device) {
    return nhwc_conv_enabled() && nhwc_eligible(sizes, dtype, device.is_cuda()) ? at::MemoryFormat::ChannelsLast
                                                                               : at::MemoryFormat::Contiguous;
}

void use_channels_last_conv_weights(torch::nn::Module& module) {
    if (!nhwc_conv_enabled()) return;
    torch::NoGradGuard no_grad;
    for (auto& p : module.parameters(true))
        if (nhwc_conv_weight_eligible(p)) p.set_data(p.contiguous(at::MemoryFormat::ChannelsLast));
}

torch::Tensor conv2d_sample_bias(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias,
                                 int64_t samples_per_bias, int64_t stride, int64_t padding) {
    apply_cudnn_preferences();
    if (nhwc_conv_serves(x, weight) && bias.scalar_type() == x.scalar_type() && bias.dim() == 2 && samples_per_bias > 0 &&
        x.size(0) % samples_per_bias == 0 && bias.size(0) == x.size(0) / samples_per_bias &&
        bias.size(1) == weight.size(0))
        return conv2d_nhwc(x, weight, bias, samples_per_bias, stride, padding);
    auto y = conv2d(x, weight, torch::Tensor(), stride, padding);
    return add_sample_bias_(y, bias, samples_per_bias);
}

torch::Tensor conv2d_add(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias,
                         const torch::Tensor& residual, int64_t stride, int64_t padding) {
    apply_cudnn_preferences();
    LSYNC_CHECK(x.dim() == 4 && weight.dim() == 4 && residual.defined() && stride > 0, ErrorCode::Internal,
                "conv2d_add: a 4-D input and weight and a residual");
    const int64_t ho = (x.size(2) + 2 * padding - weight.size(2)) / stride + 1;
    const int64_t wo = (x.size(3) + 2 * padding - weight.size(3)) / stride + 1;
    LSYNC_CHECK(residual.sizes() == torch::IntArrayRef({x.size(0), weight.size(0), ho, wo}), ErrorCode::Internal,
                "conv2d_add: the residual must have the convolution output's shape");
    if (nhwc_conv_serves(x, weight) && bias.defined() && bias.scalar_type() == x.scalar_type() &&
        residual.scalar_type() == x.scalar_type() && residual.device() == x.device()) {
        return conv2d_nhwc(x, weight, bias, 0, stride, padding, residual);
    }
    if (is_channels_last_only(x) && is_channels_last_only(residual) && bias.defined()) {
        // Channels-last activations (the UNet's CUDA path): cuDNN writes NHWC, then one pass adds the bias and the
        // residual, the biased value rounded first (add_channel_bias_residual_; its two ATen adds elsewhere).
        auto y = noted_conv2d(x, weight, {}, stride, padding);
        return add_channel_bias_residual_(y, bias, residual);
    }
    return residual + conv2d(x, weight, bias, stride, padding);
}

torch::Tensor conv2d(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias, int64_t stride,
                     int64_t padding) {
    apply_cudnn_preferences();
    if (is_channels_last_only(weight) && !is_channels_last_only(x)) {
        if (nhwc_conv_serves(x, weight) && (!bias.defined() || bias.scalar_type() == x.scalar_type()))
            return conv2d_nhwc(x, weight, bias, 0, stride, padding);
        return conv2d(x, weight.contiguous(), bias, stride, padding);  // an NCHW call, as the weight was before
    }
#if LSYNC_WITH_CUDA
    if (im2col_conv_serves(x, weight, stride, padding)) {
        auto y = im2col_conv2d(x, weight);
        return bias.defined() ? add_channel_bias_(y, bias) : y;
    }
    if (bias.defined() && x.is_cuda() && fused_bias_enabled()) {
        auto y = noted_conv2d(x, weight, {}, stride, padding);
        return add_channel_bias_(y, bias);
    }
#endif
    return noted_conv2d(x, weight, bias, stride, padding);  // with a bias or without: the same cuDNN convolution
}

namespace {

// The module's square stride and zero padding (the only geometry conv2d() takes).
std::pair<int64_t, int64_t> square_geometry(const torch::nn::Conv2d& conv) {
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
    return {(*o.stride())[0], pad};
}

}  // namespace

torch::Tensor conv2d(const torch::nn::Conv2d& conv, const torch::Tensor& x) {
    const auto [stride, pad] = square_geometry(conv);
    return conv2d(x, conv->weight, conv->bias, stride, pad);
}

torch::Tensor conv2d_without_bias(const torch::nn::Conv2d& conv, const torch::Tensor& x) {
    const auto [stride, pad] = square_geometry(conv);
    return conv2d(x, conv->weight, torch::Tensor(), stride, pad);
}

}  // namespace lsync::ops
