#include "diagnostics/gpu_memory.h"

#if LSYNC_WITH_CUDA
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAFunctions.h>
#endif

namespace lsync::diagnostics {

void reset_peak_memory(const torch::Device& device) {
#if LSYNC_WITH_CUDA
    if (!device.is_cuda()) return;
    // The allocator refuses to report on a device it has not been set up for ("did you call init?"), which is
    // the state before the first allocation of a process.
    (void)torch::empty({1}, torch::TensorOptions().device(device));
    c10::cuda::CUDACachingAllocator::resetPeakStats(device.has_index() ? device.index() : 0);
#else
    (void)device;
#endif
}

int64_t peak_memory_bytes(const torch::Device& device) {
#if LSYNC_WITH_CUDA
    if (!device.is_cuda()) return 0;
    const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(device.has_index() ? device.index() : 0);
    return stats.allocated_bytes[static_cast<size_t>(c10::CachingAllocator::StatType::AGGREGATE)].peak;
#else
    (void)device;
    return 0;
#endif
}

void release_cached_memory(const torch::Device& device) {
#if LSYNC_WITH_CUDA
    if (device.is_cuda()) c10::cuda::CUDACachingAllocator::emptyCache();
#else
    (void)device;
#endif
}

void synchronize(const torch::Device& device) {
#if LSYNC_WITH_CUDA
    if (device.is_cuda()) c10::cuda::device_synchronize();
#else
    (void)device;
#endif
}

}  // namespace lsync::diagnostics
