#include "ops/short_attention.h"

#include "core/error.h"
#include "ops/kernel_switch.h"
#include "ops/kernel_target.h"
#include "ops/valid_frames.h"

#include <cmath>

#if LSYNC_WITH_CUDA
#include "short_attention_mma.h"

#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>
#endif

namespace lsync::ops {

namespace {

KernelSwitch g_short_attention_switch("LSYNC_SHORT_ATTENTION");

#if LSYNC_WITH_CUDA
// The kernel's arguments for `in`, writing `out` ([B, Lq, H, D]); an undefined `out` only checks.
kernels::ShortAttentionArgs kernel_args(const AttentionInputs& in, const torch::Tensor& out) {
    kernels::ShortAttentionArgs a;
    a.q = in.q.data_ptr();
    a.k = in.k.data_ptr();
    a.v = in.v.data_ptr();
    // Checking only: q stands in, so the alignment test is about q, k and v.
    a.out = out.defined() ? out.data_ptr() : const_cast<void*>(in.q.data_ptr());
    a.batch = in.q.size(0);
    a.heads = in.q.size(1);
    a.lq = in.q.size(2);
    a.lk = in.k.size(2);
    a.head_dim = in.q.size(3);
    a.q_b = in.q.stride(0), a.q_h = in.q.stride(1), a.q_l = in.q.stride(2);
    a.k_b = in.k.stride(0), a.k_h = in.k.stride(1), a.k_l = in.k.stride(2);
    a.v_b = in.v.stride(0), a.v_h = in.v.stride(1), a.v_l = in.v.stride(2);
    a.scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(a.head_dim)));  // SDPA's default
    a.dtype = in.q.scalar_type() == torch::kHalf       ? kernels::ElementType::Float16
              : in.q.scalar_type() == torch::kBFloat16 ? kernels::ElementType::BFloat16
                                                       : kernels::ElementType::Float32;
    a.device_major = at::cuda::getDeviceProperties(in.q.device().index())->major;
    a.key_counts = in.key_counts.defined() ? in.key_counts.data_ptr<int32_t>() : nullptr;
    return a;
}
#endif

}  // namespace

bool short_attention_enabled() { return g_short_attention_switch.enabled(); }

void set_short_attention(bool enabled) { g_short_attention_switch.set(enabled); }

std::string short_attention_unsupported(const AttentionInputs& in) {
#if LSYNC_WITH_CUDA
    const auto& q = in.q;
    if (!q.defined() || !in.k.defined() || !in.v.defined()) return "q, k and v must be defined";
    if (!q.is_cuda()) return "the short-sequence attention kernel runs on CUDA devices only";
    if (in.key_bias) return "no key bias (lip focus) in the short-sequence kernel";
    if (q.dim() != 4 || in.k.dim() != 4 || in.v.dim() != 4) return "q, k and v must be [B, H, L, D]";
    const auto dt = q.scalar_type();
    if (dt != torch::kHalf && dt != torch::kBFloat16) return "dtype must be fp16 or bf16";
    if (in.k.scalar_type() != dt || in.v.scalar_type() != dt) return "q, k and v must share a dtype";
    if (in.k.device() != q.device() || in.v.device() != q.device()) return "q, k and v must share a device";
    if (in.k.size(0) != q.size(0) || in.k.size(1) != q.size(1) || in.k.size(3) != q.size(3) ||
        in.v.sizes() != in.k.sizes())
        return "k and v must be [B, H, Lk, D] with q's B, H and D";
    if (q.stride(3) != 1 || in.k.stride(3) != 1 || in.v.stride(3) != 1) return "the head dim must be contiguous";
    if (torch::GradMode::is_enabled() && (q.requires_grad() || in.k.requires_grad() || in.v.requires_grad()))
        return "the short-sequence kernel has no backward";
    if (q.numel() == 0 || in.k.numel() == 0) return "empty input";
    if (in.key_counts.defined() && !counts_fit(in.key_counts, q.size(0), q.device()))
        return "key counts must be contiguous int32 [B] on q's device";
    return kernels::short_attention_unsupported(kernel_args(in, torch::Tensor()));
#else
    (void)in;
    return "this build has no CUDA kernels (LibTorch without CUDA)";
#endif
}

bool short_attention_serves(const AttentionInputs& in) {
    return in.q.defined() && in.q.is_cuda() && short_attention_enabled() && short_attention_unsupported(in).empty();
}

torch::Tensor short_attention(const AttentionInputs& in) {
    const auto why = short_attention_unsupported(in);
    LSYNC_CHECK(why.empty(), ErrorCode::Backend, "short-sequence attention: " + why);
#if LSYNC_WITH_CUDA
    const c10::cuda::CUDAGuard device_guard(in.q.device());
    auto out = torch::empty({in.q.size(0), in.q.size(2), in.q.size(1), in.q.size(3)}, in.q.options());
    auto a = kernel_args(in, out);
    a.stream = kernel_target(in.q).stream;
    const auto err = kernels::short_attention_launch(a);
    LSYNC_CHECK(err.empty(), ErrorCode::Backend, "short-sequence attention: " + err);
    return out.transpose(1, 2);
#else
    throw_error(ErrorCode::Backend, "short-sequence attention: " + why);
#endif
}

}  // namespace lsync::ops
