#include "diagnostics/device_description.h"

#include "core/threads.h"

#include <cstdio>
#include <fstream>

#if LSYNC_WITH_CUDA
#include <ATen/cuda/CUDAContext.h>
#endif

namespace lsync::diagnostics {

namespace {

std::string cpu_model() {
    std::ifstream in("/proc/cpuinfo");
    std::string line;
    while (std::getline(in, line)) {
        if (line.rfind("model name", 0) != 0) continue;
        const auto colon = line.find(':');
        if (colon == std::string::npos) break;
        const auto start = line.find_first_not_of(' ', colon + 1);
        return start == std::string::npos ? "CPU" : line.substr(start);
    }
    return "CPU";  // not Linux, or an architecture whose cpuinfo has no model name
}

}  // namespace

std::string device_description(const torch::Device& device) {
#if LSYNC_WITH_CUDA
    if (device.is_cuda()) {
        const auto* p = at::cuda::getDeviceProperties(device.has_index() ? device.index() : 0);
        char buf[256];
        std::snprintf(buf, sizeof buf, "%s (%s, %.1f GiB)", p->name, device.str().c_str(),
                      static_cast<double>(p->totalGlobalMem) / (1024.0 * 1024.0 * 1024.0));
        return buf;
    }
#endif
    return cpu_model() + " (" + device.str() + ", " + std::to_string(thread_budget()) + " threads)";
}

}  // namespace lsync::diagnostics
