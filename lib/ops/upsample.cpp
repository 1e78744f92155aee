#include "ops/upsample.h"

#include "core/error.h"
#include "ops/kernel_switch.h"
#include "ops/kernel_target.h"
#include "ops/memory_layout.h"

#if LSYNC_WITH_CUDA
#include "nearest_upsample.h"

#include <c10/cuda/CUDAGuard.h>
#endif

namespace lsync::ops {

namespace {

KernelSwitch g_upsample_switch("LSYNC_FUSED_UPSAMPLE");

}  // namespace

bool fused_upsample_enabled() { return g_upsample_switch.enabled(); }

void set_fused_upsample(bool enabled) { g_upsample_switch.set(enabled); }

torch::Tensor upsample_nearest2x_reference(const torch::Tensor& x) {
    const std::vector<int64_t> size{x.size(2) * 2, x.size(3) * 2};
    if (x.scalar_type() != torch::kBFloat16) return torch::upsample_nearest2d(x, size);
    return torch::upsample_nearest2d(x.to(torch::kFloat), size).to(torch::kBFloat16);
}

bool upsample_kernel_serves(const torch::Tensor& x) {
#if LSYNC_WITH_CUDA
    const auto dt = x.scalar_type();
    return x.is_cuda() && fused_upsample_enabled() && x.dim() == 4 && x.numel() > 0 &&
           (dt == torch::kFloat || dt == torch::kHalf || dt == torch::kBFloat16) &&
           (x.is_contiguous() || is_channels_last_only(x)) && !(torch::GradMode::is_enabled() && x.requires_grad());
#else
    (void)x;
    return false;
#endif
}

torch::Tensor upsample_nearest2x(const torch::Tensor& x) {
    LSYNC_CHECK(x.dim() == 4, ErrorCode::Internal, "upsample_nearest2x: a 4-D input");
#if LSYNC_WITH_CUDA
    if (upsample_kernel_serves(x)) {
        const c10::cuda::CUDAGuard guard(x.device());
        const bool channels_last = is_channels_last_only(x);
        const int64_t n = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3);
        auto y = torch::empty({n, c, 2 * h, 2 * w},
                              x.options().memory_format(channels_last ? at::MemoryFormat::ChannelsLast
                                                                      : at::MemoryFormat::Contiguous));
        kernels::Upsample2xArgs a;
        a.x = x.data_ptr();
        a.y = y.data_ptr();
        a.outer = channels_last ? n : n * c;
        a.height = h;
        a.width = w;
        a.inner = channels_last ? c : 1;
        a.element_bytes = static_cast<int>(x.element_size());
        const KernelTarget target = kernel_target(x);
        a.sm_count = target.sm_count;
        a.stream = target.stream;
        const auto err = kernels::upsample2x_launch(a);
        LSYNC_CHECK(err.empty(), ErrorCode::Backend, err);
        return y;
    }
#endif
    return upsample_nearest2x_reference(x);
}

}  // namespace lsync::ops
