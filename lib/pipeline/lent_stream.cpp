#include "pipeline/lent_stream.h"

#if LSYNC_WITH_CUDA
#include "core/env.h"
#include "core/lease_pool.h"

#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>

#include <map>
#include <memory>
#include <mutex>
#include <utility>

namespace lsync::pipeline {

namespace {
/// The current device's priority for `p`. The workers get the highest (docs/performance-notes.md section 30);
/// LSYNC_WORKER_PRIORITY=0 gives them the default, which is also the lowest (for measurements).
int numeric_priority(StreamPriority p) {
    int least = 0, greatest = 0;
    C10_CUDA_CHECK(cudaDeviceGetStreamPriorityRange(&least, &greatest));
    if (p == StreamPriority::Lowest || !env::flag("LSYNC_WORKER_PRIORITY", true)) return least;
    return greatest;
}

LeasePool<cudaStream_t>& streams_of(c10::DeviceIndex device, StreamPriority priority) {
    static std::mutex mutex;
    static std::map<std::pair<c10::DeviceIndex, StreamPriority>, std::unique_ptr<LeasePool<cudaStream_t>>> pools;
    std::lock_guard<std::mutex> lock(mutex);
    auto& pool = pools[{device, priority}];
    if (!pool)
        pool = std::make_unique<LeasePool<cudaStream_t>>([device, priority] {
            const c10::cuda::CUDAGuard guard(device);
            cudaStream_t s = nullptr;
            // Non-blocking, as LibTorch's pool streams: no implicit wait on the legacy default stream.
            C10_CUDA_CHECK(cudaStreamCreateWithPriority(&s, cudaStreamNonBlocking, numeric_priority(priority)));
            return s;
        });
    return *pool;
}
}  // namespace

LentStream::LentStream(c10::DeviceIndex device, StreamPriority priority)
    : device_(device), priority_(priority), raw_(streams_of(device, priority).acquire()) {}

LentStream::~LentStream() { streams_of(device_, priority_).release(raw_); }

c10::cuda::CUDAStream LentStream::stream() const { return c10::cuda::getStreamFromExternal(raw_, device_); }

}  // namespace lsync::pipeline
#endif
