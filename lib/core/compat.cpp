#include "core/compat.h"

#include "core/env.h"
#include "core/error.h"

#include <ATen/Context.h>
#include <ATen/detail/CUDAHooksInterface.h>
#include <torch/cuda.h>

#include <cstdlib>
#include <string>

#if LSYNC_WITH_CUDA
#include <ATen/cuda/CUDAContext.h>
#endif

namespace lsync::compat {

std::string torch_version() {
    return std::to_string(TORCH_VERSION_MAJOR) + "." + std::to_string(TORCH_VERSION_MINOR) + "." +
           std::to_string(TORCH_VERSION_PATCH);
}

bool cuda_available() { return torch::cuda::is_available(); }

int cuda_device_count() { return static_cast<int>(torch::cuda::device_count()); }

int cuda_capability_major(int index) {
#if LSYNC_WITH_CUDA
    if (index < cuda_device_count()) return at::cuda::getDeviceProperties(index)->major;
#else
    (void)index;
#endif
    return 0;
}

torch::Device indexed_device(const torch::Device& device) {
#if LSYNC_WITH_CUDA
    if (device.is_cuda() && !device.has_index()) return {torch::kCUDA, c10::cuda::current_device()};
#endif
    return device;
}

std::optional<long> cudnn_version() {
    if (!at::globalContext().hasCuDNN()) return std::nullopt;
    return static_cast<long>(at::detail::getCUDAHooks().versionCuDNN());
}

#if LSYNC_HAS_SDPA
namespace {

// LSYNC_SDPA_CUDNN=0 (read once) takes cuDNN's attention out of ATen's choice, which then falls to
// FlashAttention-2 or the memory-efficient kernel, biased calls included: a switch for measuring, not a user
// setting. (The render's unbiased calls choose their kernel by size: pipeline::sdpa_kernel.)
void apply_sdpa_preferences() {
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 5)
    static const bool applied = [] {
        if (!env::flag("LSYNC_SDPA_CUDNN", true)) at::globalContext().setSDPUseCuDNN(false);
        return true;
    }();
    (void)applied;
#endif
}

}  // namespace
#endif

torch::Tensor sdpa(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                   const std::optional<torch::Tensor>& bias) {
#if LSYNC_HAS_SDPA
    apply_sdpa_preferences();
    std::optional<at::Tensor> mask;
    if (bias) mask = bias->to(q.scalar_type());
    return at::scaled_dot_product_attention(q, k, v, mask, 0.0, false);
#else
    (void)q; (void)k; (void)v; (void)bias;
    throw_error(ErrorCode::Backend, "scaled_dot_product_attention needs LibTorch >= 2.0 (this build: " +
                                        torch_version() + ")");
#endif
}

torch::Tensor sdpa_scaled(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, double scale) {
#if LSYNC_HAS_SDPA_SCALE
    return at::scaled_dot_product_attention(q, k, v, std::nullopt, 0.0, false, scale);
#else
    (void)q; (void)k; (void)v; (void)scale;
    throw_error(ErrorCode::Backend, "SDPA with a scale argument needs LibTorch >= 2.1 (this build: " +
                                        torch_version() + ")");
#endif
}

bool flash2_serves(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v) {
    if (!LSYNC_HAS_SDPA_SCALE) return false;
    const auto dt = q.scalar_type();
    if (!q.is_cuda() || (dt != torch::kHalf && dt != torch::kBFloat16)) return false;
    if (q.dim() != 4 || k.dim() != 4 || v.dim() != 4 || k.scalar_type() != dt || v.scalar_type() != dt) return false;
    const int64_t d = q.size(3);
    if (d % 8 != 0 || d > 256 || k.size(3) != d || v.size(3) != d || k.size(2) != v.size(2)) return false;
    for (int i = 0; i < 2; ++i)
        if (k.size(i) != q.size(i) || v.size(i) != q.size(i)) return false;
    if (q.size(2) == 0 || k.size(2) == 0) return false;
    if (q.stride(3) != 1 || k.stride(3) != 1 || v.stride(3) != 1) return false;
    return cuda_capability_major(q.device().index()) >= 8;
}

std::optional<torch::Tensor> flash2_attention(const torch::Tensor& q, const torch::Tensor& k,
                                              const torch::Tensor& v) {
    if (!flash2_serves(q, k, v)) return std::nullopt;
#if LSYNC_HAS_SDPA_SCALE
    try {
        // The scale left unset is 1 / sqrt(D), what SDPA passes it.
        return std::get<0>(at::_scaled_dot_product_flash_attention(q, k, v, 0.0, false, false, std::nullopt));
    } catch (const c10::Error&) {
        return std::nullopt;  // a constraint the checks do not know of: SDPA's own choice serves instead
    }
#else
    return std::nullopt;
#endif
}

torch::Tensor bmm_fp32_out(const torch::Tensor& a, const torch::Tensor& b, double alpha) {
#if LSYNC_HAS_GEMM_FP32_OUT
    auto out = torch::empty({a.size(0), a.size(1), b.size(2)}, a.options().dtype(torch::kFloat));
    // beta = 0: the uninitialised output is not read (not even its NaNs reach the result).
    at::baddbmm_out(out, out, a, b, at::kFloat, /*beta=*/0, /*alpha=*/alpha);
    return out;
#else
    (void)a;
    (void)b;
    (void)alpha;
    throw_error(ErrorCode::Backend, "GEMMs with fp32 output need LibTorch >= 2.8 (this is " + torch_version() + ")");
#endif
}

std::string sdpa_kernel_choice(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                               const std::optional<torch::Tensor>& bias) {
#if LSYNC_HAS_SDPA
    std::optional<at::Tensor> mask;
    if (bias) mask = bias->to(q.scalar_type());
    if (!q.is_cuda()) return "cpu (fused CPU flash kernel or math, chosen by ATen)";
    apply_sdpa_preferences();
    // Values of sdp::SDPBackend: -1 error, 0 math, 1 flash, 2 efficient, 3 cudnn, 4 overrideable.
    const int64_t choice = at::_fused_sdp_choice(q, k, v, mask, 0.0, false);
    switch (choice) {
        case 0: return "math";
        case 1: return "flash";
        case 2: return "mem-efficient";
        case 3: return "cudnn";
        case 4: return "overrideable";
        default: return "none";
    }
#else
    (void)q; (void)k; (void)v; (void)bias;
    return "unavailable: LibTorch " + torch_version() + " has no public scaled_dot_product_attention";
#endif
}

}  // namespace lsync::compat
