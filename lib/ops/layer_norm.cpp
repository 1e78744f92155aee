#include "ops/layer_norm.h"

#include "core/error.h"
#include "ops/kernel_switch.h"
#include "ops/kernel_target.h"

#if LSYNC_WITH_CUDA
#include "launch_shape.h"
#include "layer_norm_rows.h"

#include <c10/cuda/CUDAGuard.h>
#endif

#include <cstdint>

namespace lsync::ops {

namespace {

KernelSwitch g_layer_norm_switch("LSYNC_FUSED_LAYER_NORM");

void check_params(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias) {
    LSYNC_CHECK(x.defined() && x.dim() >= 1 && weight.defined() && bias.defined() &&
                    weight.numel() == x.size(-1) && bias.numel() == x.size(-1),
                ErrorCode::Internal, "layer_norm: weight and bias must have as many elements as x's last dimension");
}

#if LSYNC_WITH_CUDA
// The kernel's call: sum (when residual is defined) and y are allocated by the caller.
void launch(const torch::Tensor& x, const torch::Tensor& residual, const torch::Tensor& sum, const torch::Tensor& y,
            const torch::Tensor& weight, const torch::Tensor& bias, double eps) {
    const c10::cuda::CUDAGuard guard(x.device());
    kernels::LayerNormArgs a;
    a.x = x.data_ptr();
    a.residual = residual.defined() ? residual.data_ptr() : nullptr;
    a.sum = residual.defined() ? sum.data_ptr() : nullptr;
    a.y = y.data_ptr();
    a.weight = weight.data_ptr();
    a.bias = bias.data_ptr();
    a.cols = x.size(-1);
    a.rows = x.numel() / a.cols;
    a.eps = static_cast<float>(eps);
    const KernelTarget target = kernel_target(x);
    a.dtype = target.type;
    a.sm_count = target.sm_count;
    a.stream = target.stream;
    const auto err = kernels::layer_norm_launch(a);
    LSYNC_CHECK(err.empty(), ErrorCode::Backend, err);
}

bool kernel_serves(const torch::Tensor& x, const torch::Tensor& residual, const torch::Tensor& weight,
                   const torch::Tensor& bias) {
    return x.is_cuda() && fused_layer_norm_enabled() && layer_norm_kernel_unsupported(x, residual, weight, bias).empty();
}
#endif

}  // namespace

bool fused_layer_norm_enabled() { return g_layer_norm_switch.enabled(); }

void set_fused_layer_norm(bool enabled) { g_layer_norm_switch.set(enabled); }

std::string layer_norm_kernel_unsupported(const torch::Tensor& x, const torch::Tensor& residual,
                                          const torch::Tensor& weight, const torch::Tensor& bias) {
#if LSYNC_WITH_CUDA
    if (!x.defined() || !x.is_cuda()) return "the LayerNorm kernel runs on CUDA devices only";
    const auto dt = x.scalar_type();
    if (dt != torch::kFloat && dt != torch::kHalf && dt != torch::kBFloat16) return "dtype must be fp32, fp16 or bf16";
    if (x.dim() < 1 || x.numel() == 0) return "empty input";
    if (!kernels::layer_norm_cols_supported(x.size(-1), static_cast<int>(x.element_size())))
        return "rows must be a multiple of 16 bytes and at most 2,048 fp16 / 1,024 fp32 values";
    for (const auto* p : {&weight, &bias})
        if (!p->defined() || p->scalar_type() != dt || p->device() != x.device() || !p->is_contiguous() ||
            p->numel() != x.size(-1) || !kernels::aligned16(p->data_ptr()))
            return "weight and bias must be contiguous, aligned, of x's dtype, device and last dimension";
    if (!x.is_contiguous() || !kernels::aligned16(x.data_ptr())) return "input must be contiguous and 16-byte aligned";
    if (residual.defined() &&
        (residual.sizes() != x.sizes() || residual.scalar_type() != dt || residual.device() != x.device() ||
         !residual.is_contiguous() || !kernels::aligned16(residual.data_ptr())))
        return "the residual must be contiguous, aligned, of x's shape, dtype and device";
    if (torch::GradMode::is_enabled() &&
        (x.requires_grad() || weight.requires_grad() || bias.requires_grad() ||
         (residual.defined() && residual.requires_grad())))
        return "the LayerNorm kernel has no backward";
    return {};
#else
    (void)x, (void)residual, (void)weight, (void)bias;
    return "this build has no CUDA kernels (LibTorch without CUDA)";
#endif
}

torch::Tensor layer_norm(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias, double eps) {
    check_params(x, weight, bias);
#if LSYNC_WITH_CUDA
    if (kernel_serves(x, {}, weight, bias)) {
        auto y = torch::empty_like(x, torch::MemoryFormat::Contiguous);
        launch(x, {}, {}, y, weight, bias, eps);
        return y;
    }
#endif
    return torch::layer_norm(x, {x.size(-1)}, weight, bias, eps);
}

SumAndNorm add_layer_norm(const torch::Tensor& x, const torch::Tensor& residual, const torch::Tensor& weight,
                          const torch::Tensor& bias, double eps) {
    check_params(x, weight, bias);
#if LSYNC_WITH_CUDA
    if (kernel_serves(x, residual, weight, bias)) {
        SumAndNorm out{torch::empty_like(x, torch::MemoryFormat::Contiguous),
                       torch::empty_like(x, torch::MemoryFormat::Contiguous)};
        launch(x, residual, out.sum, out.normed, weight, bias, eps);
        return out;
    }
#endif
    SumAndNorm out;
    out.sum = x + residual;
    out.normed = torch::layer_norm(out.sum, {out.sum.size(-1)}, weight, bias, eps);
    return out;
}

}  // namespace lsync::ops
