#pragma once
// The one place that knows the differences between Debian's CPU LibTorch 1.13 and the CUDA LibTorch 2.x of the
// GPU hosts. Everything else calls these helpers instead of testing versions itself.

#include <torch/torch.h>
#include <torch/version.h>

#include <optional>
#include <string>

#define LSYNC_TORCH_AT_LEAST(major, minor) \
    (TORCH_VERSION_MAJOR > (major) || (TORCH_VERSION_MAJOR == (major) && TORCH_VERSION_MINOR >= (minor)))

// Public at::scaled_dot_product_attention arrived in 2.0 (1.13 only had a private, differently shaped op).
#define LSYNC_HAS_SDPA LSYNC_TORCH_AT_LEAST(2, 0)
// The `scale=` argument of SDPA arrived in 2.1.
#define LSYNC_HAS_SDPA_SCALE LSYNC_TORCH_AT_LEAST(2, 1)
// GEMMs of fp16/bf16 inputs that write fp32 (the `out_dtype` overloads of mm/bmm/baddbmm) arrived in 2.8.
#define LSYNC_HAS_GEMM_FP32_OUT LSYNC_TORCH_AT_LEAST(2, 8)

namespace lsync::compat {

/// "2.11.0" style version of the LibTorch we were compiled against.
std::string torch_version();

/// True when this LibTorch was built with CUDA *and* a CUDA device is usable now.
bool cuda_available();
int cuda_device_count();
/// Compute capability major version of CUDA device `index` (0 without CUDA).
int cuda_capability_major(int index);

/// `device` with its index: a CUDA device named without one ("cuda") is the current CUDA device, where a tensor
/// made for it lands, so "cuda" and the tensor's own "cuda:0" compare equal only after this. Devices that have an
/// index, and the CPU, are returned as they are.
torch::Device indexed_device(const torch::Device& device);

/// cuDNN version as an integer (e.g. 90100), or nullopt when LibTorch has no cuDNN.
std::optional<long> cudnn_version();

/// Fused scaled-dot-product attention on LibTorch >= 2.0. Shapes: q [B, H, Lq, D], k/v [B, H, Lk, D];
/// `bias` broadcastable to [B, H, Lq, Lk] and added to the logits. Throws lsync::Error(Backend) on 1.13.
torch::Tensor sdpa(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                   const std::optional<torch::Tensor>& bias);

/// FlashAttention-2, ATen's own kernel (`_scaled_dot_product_flash_attention`, the one SDPA runs when it picks
/// "flash"), called directly instead of through SDPA's choice, where it serves these inputs: CUDA, fp16/bf16,
/// q/k/v [B, H, L, D] of one batch, head count and head dim, D a multiple of 8 up to 256, rows dense, compute
/// capability 8 or later, LibTorch >= 2.1. nullopt where it does not (the caller then uses sdpa()).
std::optional<torch::Tensor> flash2_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v);
/// Whether flash2_attention serves these inputs: its checks alone, no kernel runs (for `doctor`'s line).
bool flash2_serves(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v);

/// SDPA without a mask and with an explicit softmax scale (LibTorch >= 2.1); Error(Backend) elsewhere.
torch::Tensor sdpa_scaled(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, double scale);

/// alpha * (a @ b) for a [B, M, K] and b [B, K, N] of one type, fp16 or bf16, on CUDA: accumulated in fp32 and
/// written in fp32, never rounded to the inputs' type. Error(Backend) where LSYNC_HAS_GEMM_FP32_OUT is false.
torch::Tensor bmm_fp32_out(const torch::Tensor& a, const torch::Tensor& b, double alpha);

/// Which kernel SDPA would dispatch to for these inputs ("flash", "mem-efficient", "cudnn", "math", ...),
/// or an explanation when it cannot be asked (LibTorch 1.13, CPU builds).
std::string sdpa_kernel_choice(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                               const std::optional<torch::Tensor>& bias);

}  // namespace lsync::compat
