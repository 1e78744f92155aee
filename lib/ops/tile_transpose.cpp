#include "ops/tile_transpose.h"

#include "core/error.h"
#include "ops/kernel_switch.h"
#include "ops/kernel_target.h"

#if LSYNC_WITH_CUDA
#include "batched_transpose.h"
#include "swap_middle.h"

#include <c10/cuda/CUDAGuard.h>
#endif

namespace lsync::ops {

namespace {

KernelSwitch g_transpose_switch("LSYNC_FUSED_TRANSPOSE");

void check_shapes(const torch::Tensor& x, const torch::Tensor* residual) {
    LSYNC_CHECK(x.defined() && x.dim() == 3, ErrorCode::Internal, "transpose: input must be [B, J, I]");
    if (residual)
        LSYNC_CHECK(residual->dim() == 3 && residual->size(0) == x.size(0) && residual->size(1) == x.size(2) &&
                        residual->size(2) == x.size(1) && residual->scalar_type() == x.scalar_type() &&
                        residual->device() == x.device(),
                    ErrorCode::Internal, "transpose: the residual must be [B, I, J] of the input's dtype and device");
}

#if LSYNC_WITH_CUDA
// Whether our kernels take x at all: CUDA, the switch on, a dtype they have, no gradient.
bool tensor_served(const torch::Tensor& x) {
    const auto dt = x.scalar_type();
    return x.is_cuda() && fused_transpose_enabled() && x.numel() > 0 &&
           (dt == torch::kFloat || dt == torch::kHalf || dt == torch::kBFloat16) &&
           !(torch::GradMode::is_enabled() && x.requires_grad());
}

bool kernel_serves(const torch::Tensor& x) {
    if (!tensor_served(x)) return false;
    kernels::TransposeArgs grid;  // the grid limits only
    grid.batch = x.size(0);
    grid.rows = x.size(1);
    grid.cols = x.size(2);
    return kernels::transpose_unsupported(grid).empty();
}

torch::Tensor run_kernel(const torch::Tensor& x_in, const torch::Tensor* residual_in,
                         const torch::Tensor* bias_in = nullptr, int64_t batches_per_bias = 0) {
    const c10::cuda::CUDAGuard guard(x_in.device());
    const auto x = x_in.contiguous();
    const auto residual = residual_in ? residual_in->contiguous() : torch::Tensor();
    const auto bias = bias_in ? bias_in->contiguous() : torch::Tensor();
    auto y = torch::empty({x.size(0), x.size(2), x.size(1)}, x.options());
    kernels::TransposeArgs a;
    a.x = x.data_ptr();
    a.y = y.data_ptr();
    a.residual = residual.defined() ? residual.data_ptr() : nullptr;
    a.bias = bias.defined() ? bias.data_ptr() : nullptr;
    a.batches_per_bias = batches_per_bias;
    a.batch = x.size(0);
    a.rows = x.size(1);
    a.cols = x.size(2);
    const KernelTarget target = kernel_target(x);
    a.dtype = target.type;
    a.stream = target.stream;
    const auto err = kernels::transpose_launch(a);
    LSYNC_CHECK(err.empty(), ErrorCode::Backend, err);
    return y;
}

torch::Tensor run_swap_middle(const torch::Tensor& x_in, const torch::Tensor& residual_in) {
    const c10::cuda::CUDAGuard guard(x_in.device());
    const auto x = x_in.contiguous();
    const auto residual = residual_in.defined() ? residual_in.contiguous() : torch::Tensor();
    auto y = torch::empty({x.size(0), x.size(2), x.size(1), x.size(3)}, x.options());
    kernels::SwapMiddleArgs a;
    a.x = x.data_ptr();
    a.y = y.data_ptr();
    a.residual = residual.defined() ? residual.data_ptr() : nullptr;
    a.batch = x.size(0);
    a.outer = x.size(1);
    a.inner = x.size(2);
    a.channels = x.size(3);
    const KernelTarget target = kernel_target(x);
    a.dtype = target.type;
    a.sm_count = target.sm_count;
    a.stream = target.stream;
    const auto err = kernels::swap_middle_launch(a);
    LSYNC_CHECK(err.empty(), ErrorCode::Backend, err);
    return y;
}
#endif

}  // namespace

bool fused_transpose_enabled() { return g_transpose_switch.enabled(); }

void set_fused_transpose(bool enabled) { g_transpose_switch.set(enabled); }

torch::Tensor transpose_last2_reference(const torch::Tensor& x) { return x.transpose(1, 2).contiguous(); }

torch::Tensor add_transposed_reference(const torch::Tensor& residual, const torch::Tensor& x) {
    // An explicit contiguous output: left to itself, the add may take the transposed operand's layout.
    auto y = torch::empty({x.size(0), x.size(2), x.size(1)}, x.options());
    return torch::add_out(y, residual, x.transpose(1, 2));
}

torch::Tensor transpose_last2_add_bias_reference(const torch::Tensor& x, const torch::Tensor& bias,
                                                 int64_t batches_per_bias, const torch::Tensor& residual) {
    // Out of place: when a size-1 dimension makes the transposed view contiguous already, contiguous() returns
    // that view of x, which an in-place add would change.
    const auto y = transpose_last2_reference(x);
    torch::Tensor biased;
    if (batches_per_bias == 0) {
        biased = y + bias.reshape({1, -1, 1});
    } else {
        const int64_t groups = x.size(0) / batches_per_bias;
        biased = (y.view({groups, batches_per_bias, y.size(1), y.size(2)}) + bias.reshape({groups, 1, -1, 1}))
                     .view(y.sizes());
    }
    if (!residual.defined()) return biased;
    auto out = torch::empty_like(biased);  // contiguous [B, I, J] whatever the residual's strides
    return torch::add_out(out, residual, biased);
}

torch::Tensor transpose_last2_add_bias(const torch::Tensor& x, const torch::Tensor& bias, int64_t batches_per_bias,
                                       const torch::Tensor& residual) {
    check_shapes(x, residual.defined() ? &residual : nullptr);
    LSYNC_CHECK(bias.defined() && batches_per_bias >= 0 && bias.scalar_type() == x.scalar_type() &&
                    bias.device() == x.device() &&
                    (batches_per_bias == 0 ? bias.numel() == x.size(2)
                                           : x.size(0) % batches_per_bias == 0 &&
                                                 bias.numel() == x.size(0) / batches_per_bias * x.size(2)),
                ErrorCode::Internal, "transpose: the bias must be [I] or [B / batches_per_bias, I] of x's dtype and device");
#if LSYNC_WITH_CUDA
    if (kernel_serves(x))
        return run_kernel(x, residual.defined() ? &residual : nullptr, &bias, batches_per_bias);
#endif
    return transpose_last2_add_bias_reference(x, bias, batches_per_bias, residual);
}

torch::Tensor transpose_last2(const torch::Tensor& x) {
    check_shapes(x, nullptr);
#if LSYNC_WITH_CUDA
    if (kernel_serves(x))
        return run_kernel(x, nullptr);
#endif
    return transpose_last2_reference(x);
}

torch::Tensor add_transposed(const torch::Tensor& residual, const torch::Tensor& x) {
    check_shapes(x, &residual);
#if LSYNC_WITH_CUDA
    if (kernel_serves(x))
        return run_kernel(x, &residual);
#endif
    return add_transposed_reference(residual, x);
}

torch::Tensor swap_middle_reference(const torch::Tensor& x, const torch::Tensor& residual) {
    auto y = torch::empty({x.size(0), x.size(2), x.size(1), x.size(3)}, x.options());
    if (!residual.defined()) return y.copy_(x.transpose(1, 2));
    return torch::add_out(y, residual, x.transpose(1, 2));
}

torch::Tensor swap_middle(const torch::Tensor& x, const torch::Tensor& residual) {
    LSYNC_CHECK(x.defined() && x.dim() == 4, ErrorCode::Internal, "swap_middle: input must be [B, F, S, C]");
    if (residual.defined())
        LSYNC_CHECK(residual.dim() == 4 && residual.size(0) == x.size(0) && residual.size(1) == x.size(2) &&
                        residual.size(2) == x.size(1) && residual.size(3) == x.size(3) &&
                        residual.scalar_type() == x.scalar_type() && residual.device() == x.device(),
                    ErrorCode::Internal,
                    "swap_middle: the residual must be [B, S, F, C] of the input's dtype and device");
#if LSYNC_WITH_CUDA
    if (tensor_served(x) && !(torch::GradMode::is_enabled() && residual.defined() && residual.requires_grad()))
        return run_swap_middle(x, residual);
#endif
    return swap_middle_reference(x, residual);
}

}  // namespace lsync::ops
