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
/// Bytes the caching allocator holds for live tensors on `device` now (0 on CPU).
int64_t allocated_memory_bytes(const torch::Device& device);

/// Bytes of the card not held by this process's live tensors (0 on CPU). Other processes are not counted.
int64_t available_memory_bytes(const torch::Device& device);

/// Gives the caching allocator's unused blocks back to the device (no-op on CPU): after an out-of-memory error,
/// before retrying smaller.
void release_cached_memory(const torch::Device& device);
/// Waits for the device's queued work (no-op on CPU): timings must not stop before the kernels finish.
void synchronize(const torch::Device& device);

}  // namespace lsync::diagnostics
