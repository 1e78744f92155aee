#include "diagnostics/kernel_profile.h"

#include "diagnostics/gpu_memory.h"
#include "diagnostics/kineto_time.h"

#include <torch/csrc/autograd/profiler_kineto.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <set>
#include <sstream>

namespace lsync::diagnostics {

namespace {

bool contains(const std::string& s, const char* part) { return s.find(part) != std::string::npos; }

std::vector<KernelTotal> sorted(const std::map<std::string, KernelTotal>& totals) {
    std::vector<KernelTotal> v;
    for (const auto& kv : totals) v.push_back(kv.second);
    std::sort(v.begin(), v.end(), [](const KernelTotal& a, const KernelTotal& b) { return a.total_ms > b.total_ms; });
    return v;
}

// Drops the namespaces and qualifiers that make ATen's template names long, so the functor that tells two
// element-wise kernels apart survives the cut to a table cell.
std::string readable_kernel_name(std::string n) {
    for (const char* noise : {"void ", "at::native::", "(anonymous namespace)::", "at::", "c10::", "std::"}) {
        const std::string w = noise;
        for (size_t pos; (pos = n.find(w)) != std::string::npos;) n.erase(pos, w.size());
    }
    return n.substr(0, 160);
}

}  // namespace

std::string kernel_family(const std::string& n) {
    // Order matters: cuDNN's convolution kernels are GEMM-shaped ("xmma_fprop"), attention kernels may say gemm.
    if (contains(n, "flash") || contains(n, "fmha") || contains(n, "attention") || contains(n, "Attention"))
        return "attention";
    if (contains(n, "fprop") || contains(n, "conv") || contains(n, "Conv") || contains(n, "wgrad") ||
        contains(n, "dgrad") || contains(n, "implicit"))
        return "conv";
    if (contains(n, "gemm") || contains(n, "Gemm") || contains(n, "nvjet") || contains(n, "cutlass") ||
        contains(n, "cublas") || contains(n, "xmma"))
        return "gemm";
    // cuDNN's conversions of NCHW tensors to the NHWC layout its convolution kernels run in, and back.
    if (contains(n, "nchwToNhwc") || contains(n, "nhwcToNchw")) return "conv_layout";
    // The VAE resnets' residual pass that also takes the next norm's first pass counts with the norms; the patch
    // matrix of the VAE's conv_in (im2col, then a GEMM) with the convolutions.
    if (contains(n, "group_norm") || contains(n, "GroupNorm") || contains(n, "residual_stats")) return "group_norm";
    if (contains(n, "im2col")) return "conv";
    if (contains(n, "layer_norm") || contains(n, "LayerNorm")) return "layer_norm";
    if (contains(n, "softmax") || contains(n, "Softmax")) return "softmax";
    if (contains(n, "copy") || contains(n, "Copy") || contains(n, "Memcpy") || contains(n, "transpose") ||
        contains(n, "CatArray") || contains(n, "upsample") || contains(n, "pad") ||
        contains(n, "shuffle_vectors"))
        return "copy";
    if (contains(n, "reduce") || contains(n, "Reduce")) return "reduce";
    if (contains(n, "elementwise") || contains(n, "Elementwise") || contains(n, "vectorized") ||
        contains(n, "geglu") || contains(n, "channel_bias") ||
        contains(n, "Memset") || contains(n, "fill"))
        return "elementwise";
    return "other";
}

KernelProfile profile_kernels(const std::function<void()>& fn, const torch::Device& device) {
    namespace prof = torch::autograd::profiler;
    using torch::profiler::impl::ActivityType;
    using torch::profiler::impl::ProfilerConfig;
    using torch::profiler::impl::ProfilerState;
    KernelProfile p;
    if (!device.is_cuda()) {
        p.note = "device activities are recorded on CUDA devices only";
        return p;
    }
    const std::set<ActivityType> activities{ActivityType::CPU, ActivityType::CUDA};
    const ProfilerConfig config(ProfilerState::KINETO);
    synchronize(device);
    prof::prepareProfiler(config, activities);
    prof::enableProfiler(config, activities);
    const auto start = std::chrono::steady_clock::now();
    try {
        fn();
        synchronize(device);
    } catch (...) {
        prof::disableProfiler();
        throw;
    }
    p.wall_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    const auto result = prof::disableProfiler();
    std::map<std::string, KernelTotal> by_name, by_family;
    for (const auto& e : result->events()) {
        if (e.deviceType() != c10::DeviceType::CUDA) continue;
        const std::string name = e.name();
        const double ms = static_cast<double>(duration_ns(e)) / 1e6;
        for (auto* totals : {&by_name, &by_family}) {
            const std::string key = totals == &by_name ? name : kernel_family(name);
            auto& t = (*totals)[key];
            t.name = key;
            t.count += 1;
            t.total_ms += ms;
        }
        p.device_ms += ms;
        p.launches += 1;
    }
    p.available = p.launches > 0;
    if (!p.available) p.note = "the profiler recorded no device activity (is CUPTI there?)";
    p.kernels = sorted(by_name);
    p.families = sorted(by_family);
    return p;
}

std::string format_kernel_profile(const KernelProfile& p, const std::string& title, size_t top) {
    std::ostringstream out;
    out << "\n" << title << ": ";
    if (!p.available) {
        out << "no kernel profile (" << p.note << ")\n";
        return out.str();
    }
    char buf[512];
    std::snprintf(buf, sizeof buf, "%.2f ms of device time in %lld activities, %.2f ms wall with the profiler on\n\n",
                  p.device_ms, static_cast<long long>(p.launches), p.wall_ms);
    out << buf << "| family | launches | ms | share |\n|---|---|---|---|\n";
    for (const auto& f : p.families) {
        std::snprintf(buf, sizeof buf, "| %s | %lld | %.2f | %.1f%% |\n", f.name.c_str(),
                      static_cast<long long>(f.count), f.total_ms, 100 * f.total_ms / p.device_ms);
        out << buf;
    }
    out << "\n| kernel | family | launches | ms | share |\n|---|---|---|---|---|\n";
    for (size_t i = 0; i < p.kernels.size() && i < top; ++i) {
        const auto& k = p.kernels[i];
        std::string name = readable_kernel_name(k.name);
        std::replace(name.begin(), name.end(), '|', '/');
        std::snprintf(buf, sizeof buf, "| %s | %s | %lld | %.2f | %.1f%% |\n", name.c_str(),
                      kernel_family(k.name).c_str(), static_cast<long long>(k.count), k.total_ms,
                      100 * k.total_ms / p.device_ms);
        out << buf;
    }
    return out.str();
}

}  // namespace lsync::diagnostics
