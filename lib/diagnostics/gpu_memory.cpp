#include "diagnostics/gpu_memory.h"

#include <algorithm>
#include <atomic>

#if LSYNC_WITH_CUDA
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAFunctions.h>
#include <ATen/cuda/CUDAContext.h>
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

int64_t peak_reserved_bytes(const torch::Device& device) {
#if LSYNC_WITH_CUDA
    if (!device.is_cuda()) return 0;
    const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(device.has_index() ? device.index() : 0);
    return stats.reserved_bytes[static_cast<size_t>(c10::CachingAllocator::StatType::AGGREGATE)].peak;
#else
    (void)device;
    return 0;
#endif
}

int64_t allocated_memory_bytes(const torch::Device& device) {
#if LSYNC_WITH_CUDA
    if (!device.is_cuda()) return 0;
    (void)torch::empty({1}, torch::TensorOptions().device(device));  // the allocator reports once it is set up
    const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(device.has_index() ? device.index() : 0);
    return stats.allocated_bytes[static_cast<size_t>(c10::CachingAllocator::StatType::AGGREGATE)].current;
#else
    (void)device;
    return 0;
#endif
}

int64_t available_memory_bytes(const torch::Device& device) {
#if LSYNC_WITH_CUDA
    if (!device.is_cuda()) return 0;
    const int index = device.has_index() ? device.index() : 0;
    (void)torch::empty({1}, torch::TensorOptions().device(device));  // the allocator reports once it is set up
    const auto total = static_cast<int64_t>(at::cuda::getDeviceProperties(index)->totalGlobalMem);
    const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(index);
    const auto agg = static_cast<size_t>(c10::CachingAllocator::StatType::AGGREGATE);
    // The card's memory less what our live tensors hold: other processes on the same card are not seen (the
    // CUDA context's own few hundred MiB neither), which --vram-budget and the planner's margin cover.
    return std::max<int64_t>(0, total - stats.allocated_bytes[agg].current);
#else
    (void)device;
    return 0;
#endif
}

namespace {
// The devices a GpuMemoryCap holds now, one bit per index (a cap is process-wide, as the allocator's fraction is).
std::atomic<uint64_t> g_capped{0};
uint64_t device_bit(int index) { return index >= 0 && index < 64 ? uint64_t{1} << index : 0; }
}  // namespace

bool memory_capped(const torch::Device& device) {
    return device.is_cuda() && (g_capped.load() & device_bit(device.has_index() ? device.index() : 0)) != 0;
}

GpuMemoryCap::GpuMemoryCap(const torch::Device& device, int64_t bytes) {
#if LSYNC_WITH_CUDA
    if (!device.is_cuda() || bytes <= 0) return;
    const int index = device.has_index() ? device.index() : 0;
    (void)torch::empty({1}, torch::TensorOptions().device(device));  // the allocator takes a cap once it is set up
    const auto total = static_cast<double>(at::cuda::getDeviceProperties(index)->totalGlobalMem);
    const double fraction = static_cast<double>(bytes) / total;
    if (fraction >= 1.0) return;
    c10::cuda::CUDACachingAllocator::setMemoryFraction(fraction, static_cast<c10::DeviceIndex>(index));
    index_ = index;
    g_capped |= device_bit(index);
#else
    (void)device;
    (void)bytes;
#endif
}

GpuMemoryCap::~GpuMemoryCap() {
#if LSYNC_WITH_CUDA
    if (index_ >= 0) {
        c10::cuda::CUDACachingAllocator::setMemoryFraction(1.0, static_cast<c10::DeviceIndex>(index_));
        g_capped &= ~device_bit(index_);
    }
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
