#pragma once
// Peak GPU memory as LibTorch's caching allocator sees it (what the benchmarks report). On CPU-only builds the
// functions return 0.

#include <torch/torch.h>

#include <cstdint>

namespace lsync::diagnostics {

/// Resets the allocator's peak counters of `device` (no-op on CPU).
void reset_peak_memory(const torch::Device& device);
/// Peak bytes allocated by tensors on `device` since the last reset (0 on CPU).
int64_t peak_memory_bytes(const torch::Device& device);
/// Peak bytes the caching allocator reserved from the device since the last reset: live tensors, its cached
/// blocks, and the pools of CUDA graphs, whose replays reuse their captures' memory without the allocator
/// counting it as allocated (so the peak above can miss it). An upper bound of what a render needs (cached
/// blocks are given back under a cap); 0 on CPU.
int64_t peak_reserved_bytes(const torch::Device& device);
/// Bytes the caching allocator holds for live tensors on `device` now (0 on CPU).
int64_t allocated_memory_bytes(const torch::Device& device);

/// Bytes of the card not held by this process's live tensors (0 on CPU). Other processes are not counted.
int64_t available_memory_bytes(const torch::Device& device);

/// Gives the caching allocator's unused blocks back to the device (no-op on CPU): after an out-of-memory error,
/// before retrying smaller.
void release_cached_memory(const torch::Device& device);
/// A hard cap on what LibTorch's caching allocator may hold on one CUDA device (`--vram-budget`), for as long as
/// the object lives: an allocation that would pass it first gives the allocator's unused blocks back, then fails
/// with an out-of-memory error (which the render's workers answer by halving their batch). It counts everything
/// the allocator holds on the device (every thread's tensors, cached blocks, CUDA graphs' pools), not the CUDA
/// context or what other processes use. No-op on the CPU, for `bytes` <= 0, or `bytes` at or above the card's
/// memory. The cap is per device and process-wide: the last one made wins until it ends.
class GpuMemoryCap {
public:
    GpuMemoryCap(const torch::Device& device, int64_t bytes);
    ~GpuMemoryCap();
    GpuMemoryCap(const GpuMemoryCap&) = delete;
    GpuMemoryCap& operator=(const GpuMemoryCap&) = delete;
    /// Whether a cap is in force (CUDA, and `bytes` below the card's memory).
    bool active() const { return index_ >= 0; }

private:
    int index_ = -1;
};

/// Whether a GpuMemoryCap is in force on `device` now (false on the CPU).
bool memory_capped(const torch::Device& device);

/// Waits for the device's queued work (no-op on CPU): timings must not stop before the kernels finish.
void synchronize(const torch::Device& device);

}  // namespace lsync::diagnostics
