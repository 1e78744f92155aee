#pragma once
// The device, dtype and attention choices every command that runs a network makes the same way: `render`,
// `debug forward`, `bench`. Error(Usage) for a malformed value, Error(Backend) for a device that is not there.

#include "ops/attention_context.h"

#include <torch/torch.h>

#include <string>
#include <vector>

namespace lsync::pipeline {

/// --device: cpu, cuda, cuda:N, auto (CUDA when present). Error(Backend) when CUDA is asked for but absent.
/// A CUDA device comes back with its index ("cuda" is the current device, cuda:0). `option` names the option in
/// messages.
torch::Device parse_device(const std::string& name, const std::string& option = "--device");

/// --devices: a comma-separated list of devices (each as --device; a bare number N means cuda:N), or "all" (every
/// CUDA device). A device may appear twice (two workers on it). All must be of one type (CPU or CUDA).
std::vector<torch::Device> parse_device_list(const std::string& text);

/// --dtype: float32, float16, bfloat16, auto. auto is the official rule: fp16 on CUDA cards with compute
/// capability > 7, else fp32 (always fp32 on the CPU).
torch::ScalarType parse_dtype(const std::string& name, const torch::Device& device);

/// The attention context for --attention (auto|flash|flex|standard) and --strict-attention on this device and
/// dtype, SDPA's calls without a bias through `kernel`; the dispatcher's notes (fallbacks) are logged as warnings.
ops::AttentionContextPtr make_attention_context(const std::string& backend, bool strict, const torch::Device& device,
                                                torch::ScalarType dtype,
                                                ops::SdpaKernel kernel = ops::SdpaKernel::AtenChoice);

/// ATen's choice (cuDNN on an H100/H200) for the self-attention of 1,024 tokens and more (the 256 px UNet's largest
/// level, the 512 px UNet's two largest), where it is 1.6-2x faster than FlashAttention-2 (head dims 80 and 40,
/// which FlashAttention-2 pads to 64); FlashAttention-2 for the rest (256 and 64 tokens, the audio cross-attention:
/// within 0.2 ms a call), which then needs none of cuDNN's per-shape plans (docs/performance-notes.md section 18).
inline constexpr ops::SdpaKernel kLargeCallsOnCudnn{int64_t{1024} * 1024};

/// The SDPA kernel of the UNet's calls (ops::SdpaKernel): kLargeCallsOnCudnn. At 256 px FlashAttention-2 served every
/// call until session 43 (docs/performance-notes.md section 41), since cuDNN's per-shape plans cost the first group
/// more than its 3-4 % faster UNet won back in a 500-frame render (section 11); the first-use journal's pre-warm
/// now builds those plans while the models load. LSYNC_SDPA_CUDNN=1 keeps ATen's choice for every call, =0 takes
/// FlashAttention-2 for every call (and keeps cuDNN out of the biased calls too: compat.cpp).
/// LSYNC_SDPA_CUDNN_FROM_LOGITS=N takes ATen's choice for calls of at least N logits per head and FlashAttention-2
/// below.
ops::SdpaKernel sdpa_kernel();

}  // namespace lsync::pipeline
