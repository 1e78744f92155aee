#pragma once
// A device named for a benchmark's header: the GPU's product name and memory, or the CPU's model and the
// thread budget the measurement ran with.

#include <torch/torch.h>

#include <string>

namespace lsync::diagnostics {

/// "NVIDIA H200 (cuda:0, 139.8 GiB)", "AMD EPYC 7B13 (cpu, 2 threads)".
std::string device_description(const torch::Device& device);

}  // namespace lsync::diagnostics
