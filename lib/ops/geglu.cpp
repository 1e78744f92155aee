#include "ops/geglu.h"

#include "core/error.h"
#include "ops/kernel_switch.h"
#include "ops/kernel_target.h"

#if LSYNC_WITH_CUDA
#include "fused_geglu.h"

#include <c10/cuda/CUDAGuard.h>
#endif

namespace lsync::ops {

namespace {

KernelSwitch g_geglu_switch("LSYNC_FUSED_GEGLU");

void check_halves(const torch::Tensor& projected) {
    LSYNC_CHECK(projected.defined() && projected.dim() >= 1, ErrorCode::Usage,
                "GEGLU: the projection must have at least one dimension");
    LSYNC_CHECK(projected.size(-1) % 2 == 0, ErrorCode::Usage,
                "GEGLU: the projection's last dimension must be even (value and gate halves), got " +
                    std::to_string(projected.size(-1)));
}

}  // namespace

bool fused_geglu_enabled() { return g_geglu_switch.enabled(); }

void set_fused_geglu(bool enabled) { g_geglu_switch.set(enabled); }

torch::Tensor geglu_reference(const torch::Tensor& projected) {
    check_halves(projected);
    auto h = projected.chunk(2, -1);
    return h[0] * torch::gelu(h[1]);
}

std::string geglu_fused_unsupported(const torch::Tensor& projected) {
#if LSYNC_WITH_CUDA
    if (!projected.defined() || !projected.is_cuda()) return "the fused GEGLU runs on CUDA devices only";
    const auto dt = projected.scalar_type();
    if (dt != torch::kFloat && dt != torch::kHalf && dt != torch::kBFloat16) return "dtype must be fp32, fp16 or bf16";
    if (projected.dim() < 1 || projected.size(-1) % 2 != 0) return "the last dimension must be even";
    if (projected.numel() == 0) return "empty input";
    if (!projected.is_contiguous()) return "input must be contiguous";
    if (torch::GradMode::is_enabled() && projected.requires_grad()) return "the fused GEGLU has no backward";
    return {};
#else
    (void)projected;
    return "this build has no CUDA kernels (LibTorch without CUDA)";
#endif
}

torch::Tensor geglu_fused(const torch::Tensor& projected) {
    const auto why = geglu_fused_unsupported(projected);
    LSYNC_CHECK(why.empty(), ErrorCode::Backend, "fused GEGLU: " + why);
#if LSYNC_WITH_CUDA
    const c10::cuda::CUDAGuard device_guard(projected.device());
    auto sizes = projected.sizes().vec();
    const int64_t inner = sizes.back() / 2;
    sizes.back() = inner;
    auto y = torch::empty(sizes, projected.options());

    kernels::GegluArgs a;
    a.x = projected.data_ptr();
    a.y = y.data_ptr();
    a.rows = projected.numel() / (2 * inner);
    a.inner = inner;
    const KernelTarget target = kernel_target(projected);
    a.dtype = target.type;
    a.sm_count = target.sm_count;
    a.stream = target.stream;
    const auto err = kernels::geglu_launch(a);
    LSYNC_CHECK(err.empty(), ErrorCode::Backend, "fused GEGLU: " + err);
    return y;
#else
    throw_error(ErrorCode::Backend, "fused GEGLU: " + why);
#endif
}

torch::Tensor geglu(const torch::Tensor& projected) {
    check_halves(projected);
#if LSYNC_WITH_CUDA
    if (projected.is_cuda() && fused_geglu_enabled() && geglu_fused_unsupported(projected).empty())
        return geglu_fused(projected);
#endif
    return geglu_reference(projected);
}

}  // namespace lsync::ops
