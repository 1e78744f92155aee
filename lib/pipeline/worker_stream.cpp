#include "pipeline/worker_stream.h"

#if LSYNC_WITH_CUDA
#include "core/env.h"
#include "core/lease_pool.h"

#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>

#include <map>
#include <memory>
#include <mutex>

namespace lsync::pipeline {

namespace {
/// The device's highest stream priority: the workers are the render's critical path, and the face pass beside
/// them (on LibTorch's pool streams, at the lowest priority) is ahead of them, so where both have kernels waiting
/// the GPU runs the worker's first (docs/performance-notes.md section 30). LSYNC_WORKER_PRIORITY=0 gives the
/// workers the default priority (for measurements). Reads the current device's range.
int worker_priority() {
    if (!env::flag("LSYNC_WORKER_PRIORITY", true)) return 0;
    int least = 0, greatest = 0;
    C10_CUDA_CHECK(cudaDeviceGetStreamPriorityRange(&least, &greatest));
    return greatest;
}

LeasePool<cudaStream_t>& streams_of(c10::DeviceIndex device) {
    static std::mutex mutex;
    static std::map<c10::DeviceIndex, std::unique_ptr<LeasePool<cudaStream_t>>> pools;
    std::lock_guard<std::mutex> lock(mutex);
    auto& pool = pools[device];
    if (!pool)
        pool = std::make_unique<LeasePool<cudaStream_t>>([device] {
            const c10::cuda::CUDAGuard guard(device);
            cudaStream_t s = nullptr;
            // Non-blocking, as LibTorch's pool streams: no implicit wait on the legacy default stream.
            C10_CUDA_CHECK(cudaStreamCreateWithPriority(&s, cudaStreamNonBlocking, worker_priority()));
            return s;
        });
    return *pool;
}
}  // namespace

WorkerStream::WorkerStream(c10::DeviceIndex device) : device_(device), raw_(streams_of(device).acquire()) {}

WorkerStream::~WorkerStream() { streams_of(device_).release(raw_); }

c10::cuda::CUDAStream WorkerStream::stream() const { return c10::cuda::getStreamFromExternal(raw_, device_); }

}  // namespace lsync::pipeline
#endif
