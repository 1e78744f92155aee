#pragma once
// Where one call's GPU time goes: runs a function under LibTorch's Kineto profiler and sums the device
// activities (kernels, copies, fills) by name and by family (matrix products, convolutions, attention, norms,
// element-wise, layout copies...). The benchmarks print it with `--profile`, so a device call shows which
// kernels a change should target without Nsight (not always usable on the lent machines).

#include <torch/torch.h>

#include <functional>
#include <string>
#include <vector>

namespace lsync::diagnostics {

struct KernelTotal {
    std::string name;     ///< kernel or family name
    int64_t count = 0;    ///< launches
    double total_ms = 0;  ///< summed device time
};

struct KernelProfile {
    bool available = false;             ///< false: no device activity was recorded (CPU, or no CUPTI)
    std::string note;                   ///< why not, when unavailable
    double wall_ms = 0;                 ///< the call, synchronised, as the host saw it (profiler on)
    double device_ms = 0;               ///< summed device time of every activity
    int64_t launches = 0;
    std::vector<KernelTotal> kernels;   ///< by name, largest first
    std::vector<KernelTotal> families;  ///< by family, largest first
};

/// The family a kernel's name belongs to ("gemm", "conv", "conv_layout", "attention", "group_norm",
/// "layer_norm", "elementwise", "copy", "reduce", "softmax", "other").
std::string kernel_family(const std::string& kernel_name);

/// Runs `fn` once under the profiler (after the caller's warm-up) and sums its device activities.
KernelProfile profile_kernels(const std::function<void()>& fn, const torch::Device& device);

/// Markdown: the families, then the `top` largest kernels (names shortened to fit a table cell).
std::string format_kernel_profile(const KernelProfile& p, const std::string& title, size_t top = 25);

}  // namespace lsync::diagnostics
