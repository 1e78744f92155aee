#include "ops/upsample_conv.h"

#include "core/error.h"
#include "ops/conv.h"
#include "ops/conv_journal.h"
#include "ops/kernel_switch.h"
#include "ops/memory_layout.h"
#include "ops/upsample.h"

#if LSYNC_WITH_CUDA
#include "ops/kernel_target.h"
#include "subpixel_shuffle.h"

#include <c10/cuda/CUDAGuard.h>
#endif

namespace lsync::ops {

namespace {

KernelSwitch g_subpixel_switch("LSYNC_SUBPIXEL_UPSAMPLE");

// Which 3x3 taps each 2x2 tap sums, per parity: rows[a][p][k] = 1 when 3x3 row k lands on 2x2 row p.
torch::Tensor parity_taps() {
    return torch::tensor({1.f, 0.f, 0.f, 0.f, 1.f, 1.f,    // a = 0: input rows i-1 | i
                          1.f, 1.f, 0.f, 0.f, 0.f, 1.f})  // a = 1: input rows i | i+1
        .view({2, 2, 3});
}

}  // namespace

bool subpixel_upsample_enabled() { return g_subpixel_switch.enabled(); }

void set_subpixel_upsample(bool enabled) { g_subpixel_switch.set(enabled); }

torch::Tensor subpixel_weight(const torch::Tensor& weight3x3) {
    LSYNC_CHECK(weight3x3.dim() == 4 && weight3x3.size(2) == 3 && weight3x3.size(3) == 3, ErrorCode::Internal,
                "subpixel_weight: a [K, C, 3, 3] weight");
    const torch::NoGradGuard no_grad;
    const auto taps = parity_taps().to(weight3x3.device());
    const auto w = weight3x3.to(torch::kFloat);
    // s[a, b, k, c, p, q] = sum over (r, t) of taps[a, p, r] w[k, c, r, t] taps[b, q, t]
    const auto s = torch::einsum("apr,kcrt,bqt->abkcpq", {taps, w, taps});
    const int64_t k = weight3x3.size(0), c = weight3x3.size(1);
    const auto format =
        is_channels_last_only(weight3x3) ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous;
    return s.reshape({4 * k, c, 2, 2}).to(weight3x3.scalar_type()).contiguous(format);
}

torch::Tensor subpixel_shuffle_reference(const torch::Tensor& z, const torch::Tensor& bias) {
    LSYNC_CHECK(z.dim() == 4 && z.size(1) % 4 == 0 && z.size(2) > 1 && z.size(3) > 1, ErrorCode::Internal,
                "subpixel_shuffle: z must be [N, 4 K, H + 1, W + 1]");
    const int64_t n = z.size(0), k = z.size(1) / 4, h = z.size(2) - 1, w = z.size(3) - 1;
    const auto parity = [&](int64_t a, int64_t b) {
        return z.narrow(1, (2 * a + b) * k, k).narrow(2, a, h).narrow(3, b, w);
    };
    const auto row0 = torch::stack({parity(0, 0), parity(0, 1)}, -1);  // [N, K, H, W, 2]: b innermost
    const auto row1 = torch::stack({parity(1, 0), parity(1, 1)}, -1);
    auto y = torch::stack({row0, row1}, 3).reshape({n, k, 2 * h, 2 * w});  // [N, K, H, 2, W, 2]
    if (!bias.defined()) return y;
    // One rounding of the fp32 sum, as the kernel and ATen's add on CUDA (the CPU's half add may differ); for fp32
    // tensors the casts are no-ops.
    return (y.to(torch::kFloat) + bias.to(torch::kFloat).view({1, k, 1, 1})).to(y.scalar_type());
}

bool subpixel_shuffle_kernel_serves(const torch::Tensor& z, const torch::Tensor& bias) {
    const auto dt = z.scalar_type();
    return z.is_cuda() && z.dim() == 4 && z.size(1) % 4 == 0 && z.size(2) > 1 && z.size(3) > 1 &&
           (dt == torch::kFloat || dt == torch::kHalf || dt == torch::kBFloat16) &&
           z.is_contiguous(at::MemoryFormat::ChannelsLast) &&
           (!bias.defined() || (bias.dim() == 1 && bias.size(0) == z.size(1) / 4 && bias.is_contiguous() &&
                                bias.scalar_type() == dt && bias.device() == z.device()));
}

torch::Tensor subpixel_shuffle(const torch::Tensor& z, const torch::Tensor& bias) {
#if LSYNC_WITH_CUDA
    if (subpixel_shuffle_kernel_serves(z, bias)) {
        const c10::cuda::CUDAGuard guard(z.device());
        const int64_t n = z.size(0), k = z.size(1) / 4, h = z.size(2) - 1, w = z.size(3) - 1;
        auto y = torch::empty({n, k, 2 * h, 2 * w}, z.options().memory_format(at::MemoryFormat::ChannelsLast));
        kernels::SubpixelShuffleArgs a;
        a.z = z.data_ptr();
        a.bias = bias.defined() ? bias.data_ptr() : nullptr;
        a.y = y.data_ptr();
        a.batch = n;
        a.height = h;
        a.width = w;
        a.channels = k;
        const KernelTarget target = kernel_target(z);
        a.dtype = target.type;
        a.sm_count = target.sm_count;
        a.stream = target.stream;
        const auto err = kernels::subpixel_shuffle_launch(a);
        LSYNC_CHECK(err.empty(), ErrorCode::Backend, err);
        return y;
    }
#endif
    return subpixel_shuffle_reference(z, bias);
}

torch::Tensor upsample2x_conv3x3(const torch::Tensor& x, const torch::Tensor& weight3x3, const torch::Tensor& bias,
                                 const torch::Tensor& subpixel) {
    LSYNC_CHECK(x.dim() == 4, ErrorCode::Internal, "upsample2x_conv3x3: a 4-D input");
    if (!subpixel.defined()) return conv2d(upsample_nearest2x(x), weight3x3, bias, 1, 1);
    auto z = noted_conv2d(x, subpixel, {}, 1, 1);
    if (is_channels_last_only(x) && !z.is_contiguous(at::MemoryFormat::ChannelsLast))
        z = z.contiguous(at::MemoryFormat::ChannelsLast);
    return subpixel_shuffle(z, bias);
}

namespace {

// The switch on, and `t` on CUDA in fp16 or fp32: where the sub-pixel form runs, but for the input's layout.
bool subpixel_device_and_dtype(const torch::Tensor& t) {
    const auto dt = t.scalar_type();
    return t.is_cuda() && (dt == torch::kHalf || dt == torch::kFloat) && subpixel_upsample_enabled();
}

}  // namespace

bool subpixel_upsample_serves(const torch::Tensor& x) {
    return subpixel_device_and_dtype(x) && is_channels_last_only(x);
}

torch::Tensor upsample2x_conv3x3(const torch::Tensor& x, const torch::Tensor& weight3x3, const torch::Tensor& bias,
                                 DerivedWeight& subpixel) {
    if (!subpixel_upsample_serves(x)) return upsample2x_conv3x3(x, weight3x3, bias, torch::Tensor());
    return upsample2x_conv3x3(x, weight3x3, bias, subpixel.get(weight3x3, subpixel_weight));
}

void prepare_subpixel_weight(const torch::Tensor& weight3x3, DerivedWeight& subpixel) {
    if (subpixel_device_and_dtype(weight3x3)) subpixel.get(weight3x3, subpixel_weight);
}

}  // namespace lsync::ops
