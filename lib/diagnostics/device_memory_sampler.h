#pragma once
// GPU memory as the driver sees it (cudaMemGetInfo: total - free), sampled on a thread of its own while a
// benchmark runs. Unlike the caching allocator's peak (gpu_memory.h) it includes the CUDA context, cuDNN/cuBLAS
// workspaces, the allocator's cached blocks and fragmentation: what another process on the card would find
// taken. It counts other processes on the card too, so compare "before" with the peak.

#include <torch/torch.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

namespace lsync::diagnostics {

struct DeviceMemoryReading {
    int64_t before_bytes = 0;  ///< used when sampling started
    int64_t peak_bytes = 0;    ///< highest used seen while sampling
    int64_t total_bytes = 0;
};

class DeviceMemorySampler {
public:
    /// Starts sampling the CUDA devices among `devices` every `interval_ms` (the others are not sampled); returns
    /// once the first sample ("before") is taken. Without CUDA it samples nothing.
    explicit DeviceMemorySampler(const std::vector<torch::Device>& devices, int interval_ms = 20);
    ~DeviceMemorySampler();
    DeviceMemorySampler(const DeviceMemorySampler&) = delete;
    DeviceMemorySampler& operator=(const DeviceMemorySampler&) = delete;

    /// Stops sampling (after a last sample) and returns one reading per CUDA device, in the order given.
    std::vector<DeviceMemoryReading> stop();

private:
    void sample();
    std::vector<int> indices_;
    std::vector<DeviceMemoryReading> readings_;  ///< under mutex_
    std::mutex mutex_;
    std::condition_variable wake_;
    bool stopping_ = false, started_ = false;
    int interval_ms_;
    std::thread thread_;
};

}  // namespace lsync::diagnostics
