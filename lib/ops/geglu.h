#pragma once
// GEGLU of the UNet feed-forward: the projection's last dimension split in halves [value, gate], then
// value * GELU_exact(gate). On CUDA (fp32, fp16, bf16, contiguous, no autograd) it runs the fused kernel of
// kernels/fused_geglu.cu: one read of the projection, one write of the result, fp32 arithmetic. Everywhere else
// (CPU, LibTorch without CUDA, other dtypes, strided input, autograd) it is exactly ATen's chunk + gelu + mul:
// CPU results do not change.
//
// LSYNC_FUSED_GEGLU=0 in the environment (read once) turns the fused path off, for before/after timings.

#include <torch/torch.h>

#include <string>

namespace lsync::ops {

/// projected [..., 2 * inner] -> [..., inner]. An odd last dimension is Error(Usage): the halves would differ
/// in size (ATen's chunk would not refuse it, the model never produces it).
torch::Tensor geglu(const torch::Tensor& projected);

/// The unfused ATen path (chunk(2, -1), then h[0] * gelu(h[1])): what geglu() does on the CPU.
torch::Tensor geglu_reference(const torch::Tensor& projected);

/// Empty when the fused kernel can run this call, else why not.
std::string geglu_fused_unsupported(const torch::Tensor& projected);

/// The fused kernel alone; Error(Backend) when geglu_fused_unsupported() is not empty.
torch::Tensor geglu_fused(const torch::Tensor& projected);

/// Whether geglu() uses the fused kernel where it can: true unless LSYNC_FUSED_GEGLU=0 (read on the first
/// call), or as last set by set_fused_geglu().
bool fused_geglu_enabled();
void set_fused_geglu(bool enabled);

}  // namespace lsync::ops
