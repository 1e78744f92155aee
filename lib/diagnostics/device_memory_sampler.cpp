#include "diagnostics/device_memory_sampler.h"

#include <algorithm>
#include <chrono>

#if LSYNC_WITH_CUDA
#include <cuda_runtime_api.h>
#endif

namespace lsync::diagnostics {

DeviceMemorySampler::DeviceMemorySampler(const std::vector<torch::Device>& devices, int interval_ms)
    : interval_ms_(std::max(1, interval_ms)) {
    for (const auto& d : devices) {
        const int index = d.has_index() ? d.index() : 0;
        if (d.is_cuda() && std::find(indices_.begin(), indices_.end(), index) == indices_.end())
            indices_.push_back(index);
    }
    readings_.resize(indices_.size());
#if LSYNC_WITH_CUDA
    if (indices_.empty()) return;
    // cudaSetDevice is per thread: sampling on a thread of its own leaves the caller's current device alone.
    thread_ = std::thread([this] {
        {
            std::lock_guard<std::mutex> lock(mutex_);
            sample();
            for (auto& r : readings_) r.before_bytes = r.peak_bytes;
            started_ = true;
        }
        wake_.notify_all();
        std::unique_lock<std::mutex> lock(mutex_);
        while (!stopping_) {
            wake_.wait_for(lock, std::chrono::milliseconds(interval_ms_));
            sample();
        }
    });
    std::unique_lock<std::mutex> lock(mutex_);
    wake_.wait(lock, [this] { return started_; });
#endif
}

DeviceMemorySampler::~DeviceMemorySampler() { stop(); }

// Under mutex_. A failing query (a device gone bad) leaves the readings as they were: the benchmark reports
// what it saw, and the render itself reports the CUDA error.
void DeviceMemorySampler::sample() {
#if LSYNC_WITH_CUDA
    for (size_t i = 0; i < indices_.size(); ++i) {
        size_t free_b = 0, total_b = 0;
        if (cudaSetDevice(indices_[i]) != cudaSuccess || cudaMemGetInfo(&free_b, &total_b) != cudaSuccess) continue;
        auto& r = readings_[i];
        r.total_bytes = static_cast<int64_t>(total_b);
        r.peak_bytes = std::max(r.peak_bytes, static_cast<int64_t>(total_b - free_b));
    }
#endif
}

std::vector<DeviceMemoryReading> DeviceMemorySampler::stop() {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        stopping_ = true;
    }
    wake_.notify_all();
    if (thread_.joinable()) thread_.join();
    std::lock_guard<std::mutex> lock(mutex_);
    return readings_;
}

}  // namespace lsync::diagnostics
