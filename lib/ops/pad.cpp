#include "ops/pad.h"

#include "core/error.h"
#include "ops/kernel_switch.h"
#include "ops/kernel_target.h"

#if LSYNC_WITH_CUDA
#include "launch_shape.h"
#include "pad_right_bottom.h"

#include <c10/cuda/CUDAGuard.h>
#endif

namespace lsync::ops {

namespace {

KernelSwitch g_pad_switch("LSYNC_FUSED_PAD");

}  // namespace

bool fused_pad_enabled() { return g_pad_switch.enabled(); }

void set_fused_pad(bool enabled) { g_pad_switch.set(enabled); }

torch::Tensor pad_right_bottom_reference(const torch::Tensor& x) {
    // constant_pad_nd keeps the order too, but fills the whole output before copying x in.
    const auto n = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3);
    auto y = torch::empty({n, c, h + 1, w + 1}, x.options().memory_format(x.suggest_memory_format()));
    y.narrow(2, 0, h).narrow(3, 0, w).copy_(x);
    y.narrow(2, h, 1).zero_();
    y.narrow(2, 0, h).narrow(3, w, 1).zero_();
    return y;
}

bool pad_kernel_serves(const torch::Tensor& x) {
#if LSYNC_WITH_CUDA
    const auto dt = x.scalar_type();
    return x.is_cuda() && fused_pad_enabled() && x.dim() == 4 && x.numel() > 0 &&
           (dt == torch::kFloat || dt == torch::kHalf || dt == torch::kBFloat16) &&
           x.is_contiguous(at::MemoryFormat::ChannelsLast) &&
           (x.size(1) * static_cast<int64_t>(x.element_size())) % 16 == 0 &&
           kernels::aligned16(x.data_ptr()) && !(torch::GradMode::is_enabled() && x.requires_grad());
#else
    (void)x;
    return false;
#endif
}

torch::Tensor pad_right_bottom(const torch::Tensor& x) {
    LSYNC_CHECK(x.dim() == 4, ErrorCode::Internal, "pad_right_bottom: a 4-D input");
#if LSYNC_WITH_CUDA
    if (pad_kernel_serves(x)) {
        const c10::cuda::CUDAGuard guard(x.device());
        const int64_t n = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3);
        auto y = torch::empty({n, c, h + 1, w + 1}, x.options().memory_format(at::MemoryFormat::ChannelsLast));
        kernels::PadRightBottomArgs a;
        a.x = x.data_ptr();
        a.y = y.data_ptr();
        a.images = n;
        a.height = h;
        a.width = w;
        a.channels = c;
        a.element_bytes = static_cast<int>(x.element_size());
        const KernelTarget target = kernel_target(x);
        a.sm_count = target.sm_count;
        a.stream = target.stream;
        const auto err = kernels::pad_right_bottom_launch(a);
        LSYNC_CHECK(err.empty(), ErrorCode::Backend, err);
        return y;
    }
#endif
    return pad_right_bottom_reference(x);
}

}  // namespace lsync::ops
