#pragma once
// The device, dtype and attention choices every command that runs a network makes the same way: `render`,
// `debug forward`, `bench`. Error(Usage) for a malformed value, Error(Backend) for a device that is not there.

#include "ops/attention_context.h"

#include <torch/torch.h>

#include <string>
#include <vector>

namespace lsync::pipeline {

/// --device: cpu, cuda, cuda:N, auto (CUDA when present). Error(Backend) when CUDA is asked for but absent.
/// `option` names the option in messages.
torch::Device parse_device(const std::string& name, const std::string& option = "--device");

/// --devices: a comma-separated list of devices (each as --device; a bare number N means cuda:N), or "all" (every
/// CUDA device). A device may appear twice (two workers on it). All must be of one type (CPU or CUDA).
std::vector<torch::Device> parse_device_list(const std::string& text);

/// --dtype: float32, float16, bfloat16, auto. auto is the official rule: fp16 on CUDA cards with compute
/// capability > 7, else fp32 (always fp32 on the CPU).
torch::ScalarType parse_dtype(const std::string& name, const torch::Device& device);

/// The attention context for --attention (auto|flash|flex|standard) and --strict-attention on this device and
/// dtype; the dispatcher's notes (fallbacks) are logged as warnings.
ops::AttentionContextPtr make_attention_context(const std::string& backend, bool strict, const torch::Device& device,
                                                torch::ScalarType dtype);

}  // namespace lsync::pipeline
