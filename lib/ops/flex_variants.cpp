#include "ops/flex_variants.h"

#include "core/compat.h"
#include "core/error.h"

#include <cmath>

#if LSYNC_WITH_CUDA
#include "flex_attention.h"

#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>
#endif

namespace lsync::ops {

std::string to_string(FlexImpl impl) {
    switch (impl) {
        case FlexImpl::Auto: return "auto";
        case FlexImpl::Kernel: return "kernel";
        case FlexImpl::FoldedSdpa: return "folded-sdpa";
        case FlexImpl::SdpaBias: return "sdpa-bias";
        case FlexImpl::Standard: return "standard";
    }
    return "?";
}

FlexImpl parse_flex_impl(const std::string& name) {
    for (auto i : {FlexImpl::Auto, FlexImpl::Kernel, FlexImpl::FoldedSdpa, FlexImpl::SdpaBias, FlexImpl::Standard})
        if (to_string(i) == name) return i;
    throw_error(ErrorCode::Usage, "unknown flex implementation '" + name +
                                      "' (choose auto, kernel, folded-sdpa, sdpa-bias or standard)");
}

std::vector<FlexImpl> flex_preference(const AttentionInputs& in) {
    // Measured on an H200 with PyTorch 2.11 (docs/benchmarks.md, `latentsync bench attention`): folding the
    // bias into FlashAttention wins for long sequences at small head dims (512 input, down0: 2.6 vs 3.8 ms),
    // SDPA with the bias as a mask (cuDNN) wins everywhere else. Our fused kernel is correct but 5-10x slower
    // than both, so it is only used when asked for (FlexImpl::Kernel).
    const bool long_small_heads = in.q.dim() == 4 && in.q.size(-1) <= 64 && in.k.size(2) >= 2048;
    if (long_small_heads) return {FlexImpl::FoldedSdpa, FlexImpl::SdpaBias, FlexImpl::Standard};
    return {FlexImpl::SdpaBias, FlexImpl::FoldedSdpa, FlexImpl::Standard};
}

namespace {

[[maybe_unused]] bool half_precision(const torch::Tensor& t) {
    return t.scalar_type() == torch::kHalf || t.scalar_type() == torch::kBFloat16;
}

#if LSYNC_WITH_CUDA
kernels::BHLStrides strides_of(const torch::Tensor& t) { return {t.stride(0), t.stride(1), t.stride(2)}; }

kernels::FlexAttentionArgs kernel_args(const AttentionInputs& in, const torch::Tensor& out, const torch::Tensor& bias) {
    kernels::FlexAttentionArgs a;
    a.q = in.q.data_ptr();
    a.k = in.k.data_ptr();
    a.v = in.v.data_ptr();
    a.out = out.defined() ? out.data_ptr() : in.q.data_ptr();
    a.key_bias = bias.defined() ? bias.data_ptr<float>() : nullptr;
    a.bias_batch = bias.defined() ? static_cast<int>(bias.size(0)) : 1;
    a.batch = static_cast<int>(in.q.size(0));
    a.heads = static_cast<int>(in.q.size(1));
    a.lq = static_cast<int>(in.q.size(2));
    a.lk = static_cast<int>(in.k.size(2));
    a.head_dim = static_cast<int>(in.q.size(3));
    a.q_stride = strides_of(in.q);
    a.k_stride = strides_of(in.k);
    a.v_stride = strides_of(in.v);
    a.scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(in.q.size(3))));
    a.dtype = in.q.scalar_type() == torch::kHalf ? kernels::FlexDType::Float16 : kernels::FlexDType::BFloat16;
    a.stream = at::cuda::getCurrentCUDAStream(in.q.device().index()).stream();
    return a;
}
#endif

std::string kernel_unsupported(const AttentionInputs& in) {
#if LSYNC_WITH_CUDA
    if (!in.q.is_cuda()) return "the fused kernel runs on CUDA devices only";
    if (!half_precision(in.q)) return "the fused kernel needs fp16 or bf16";
    if (in.k.scalar_type() != in.q.scalar_type() || in.v.scalar_type() != in.q.scalar_type())
        return "q, k and v must share a dtype";
    if (in.q.dim() != 4 || in.k.dim() != 4 || in.v.dim() != 4) return "q, k, v must be [B, H, L, D]";
    if (in.q.stride(3) != 1 || in.k.stride(3) != 1 || in.v.stride(3) != 1) return "head dim must be contiguous";
    if (in.k.sizes() != in.v.sizes() || in.k.size(0) != in.q.size(0) || in.k.size(1) != in.q.size(1) ||
        in.k.size(3) != in.q.size(3))
        return "q, k, v shapes do not match";
    if (in.key_bias && (in.key_bias->dim() != 2 || in.key_bias->size(1) != in.k.size(2)))
        return "key bias must be [B or 1, Lk]";
    const int major = at::cuda::getDeviceProperties(in.q.device().index())->major;
    return kernels::flex_attention_unsupported(kernel_args(in, torch::Tensor(), torch::Tensor()), major);
#else
    (void)in;
    return "this build has no CUDA kernels (LibTorch without CUDA)";
#endif
}

torch::Tensor run_kernel(const AttentionInputs& in) {
#if LSYNC_WITH_CUDA
    // The launch goes to the current device: make it q's (a caller on another device, or a kernels::selftest of
    // another GPU, leaves it elsewhere, and the kernel then reads foreign pointers).
    const c10::cuda::CUDAGuard device_guard(in.q.device());
    torch::Tensor bias;
    if (in.key_bias) bias = in.key_bias->to(in.q.device(), torch::kFloat).contiguous();
    auto out = torch::empty(in.q.sizes(), in.q.options().memory_format(torch::MemoryFormat::Contiguous));
    const auto err = kernels::flex_attention_launch(kernel_args(in, out, bias));
    LSYNC_CHECK(err.empty(), ErrorCode::Backend, err);
    return out;
#else
    (void)in;
    throw_error(ErrorCode::Backend, kernel_unsupported(in));
#endif
}

// logits = scale * (q.k + 1 * b*sqrt(d)) = scale * q.k + b: the bias rides in one extra head dimension, padded
// to a multiple of 8 so FlashAttention accepts the head size. The output's extra dimensions are dropped.
torch::Tensor run_folded(const AttentionInputs& in) {
#if LSYNC_HAS_SDPA_SCALE
    const int64_t d = in.q.size(-1);
    const double scale = 1.0 / std::sqrt(static_cast<double>(d));
    const auto B = in.q.size(0), H = in.q.size(1), Lq = in.q.size(2), Lk = in.k.size(2);
    auto q_extra = torch::zeros({B, H, Lq, 8}, in.q.options());
    q_extra.select(3, 0).fill_(1);
    auto k_extra = torch::zeros({B, H, Lk, 8}, in.k.options());
    if (in.key_bias) {
        auto b = (in.key_bias->to(in.k.device(), torch::kFloat) * std::sqrt(static_cast<double>(d)))
                     .to(in.k.scalar_type());  // [Bb, Lk]
        k_extra.select(3, 0).copy_(b.unsqueeze(1).expand({B, H, Lk}));
    }
    auto v_extra = torch::zeros({B, H, Lk, 8}, in.v.options());
    auto q2 = torch::cat({in.q, q_extra}, 3);
    auto k2 = torch::cat({in.k, k_extra}, 3);
    auto v2 = torch::cat({in.v, v_extra}, 3);
    return compat::sdpa_scaled(q2, k2, v2, scale).narrow(3, 0, d);
#else
    (void)in;
    throw_error(ErrorCode::Backend, "folded-sdpa needs SDPA with a scale argument (LibTorch >= 2.1)");
#endif
}

}  // namespace

std::string flex_impl_unsupported(FlexImpl impl, const AttentionInputs& in) {
    switch (impl) {
        case FlexImpl::Kernel: return kernel_unsupported(in);
        case FlexImpl::FoldedSdpa:
#if LSYNC_HAS_SDPA_SCALE
            if (!in.q.is_cuda() || !half_precision(in.q)) return "folded-sdpa is for fp16/bf16 on CUDA";
            if (in.q.size(-1) + 8 > 256) return "head dim too large for FlashAttention after folding";
            return {};
#else
            return "needs LibTorch >= 2.1 (SDPA scale argument)";
#endif
        case FlexImpl::SdpaBias:
            return LSYNC_HAS_SDPA ? std::string() : "needs LibTorch >= 2.0 (scaled_dot_product_attention)";
        case FlexImpl::Standard: return {};
        case FlexImpl::Auto:
            for (auto i : flex_preference(in))
                if (flex_impl_unsupported(i, in).empty()) return {};
            return "no flex implementation can run this call";
    }
    return "?";
}

torch::Tensor flex_attention_with(FlexImpl impl, const AttentionInputs& in) {
    if (impl == FlexImpl::Auto) {
        for (auto i : flex_preference(in))
            if (flex_impl_unsupported(i, in).empty()) return flex_attention_with(i, in);
    }
    const auto why = flex_impl_unsupported(impl, in);
    LSYNC_CHECK(why.empty(), ErrorCode::Backend, "flex attention (" + to_string(impl) + "): " + why);
    switch (impl) {
        case FlexImpl::Kernel: return run_kernel(in);
        case FlexImpl::FoldedSdpa: return run_folded(in);
        case FlexImpl::SdpaBias: {
            if (!in.key_bias) return compat::sdpa(in.q, in.k, in.v, std::nullopt);
            auto bias = in.key_bias->to(in.q.device(), in.q.scalar_type()).unsqueeze(1).unsqueeze(1);
            return compat::sdpa(in.q, in.k, in.v, bias);
        }
        default: return standard_attention(in);
    }
}

}  // namespace lsync::ops
