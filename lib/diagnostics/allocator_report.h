#pragma once
// Where LibTorch's caching allocator holds a GPU's memory. A render under `--vram-budget` needs about 1.3 GiB
// more than its peak of live tensors (docs/performance-notes.md section 14); the allocator's own statistics
// cannot say where that goes, its per-segment snapshot can: memory reserved for CUDA graphs, free blocks inside
// segments that also hold live tensors (which the allocator can never give back), and on which stream.

#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>

namespace lsync::diagnostics {

/// What the allocator holds in one pool on one stream of a device, in bytes.
struct PoolUsage {
    std::string pool;  ///< "small", "large" (the default pools) or "graph pool A.B" (a CUDA graph's private pool)
    int stream = 0;    ///< 0: the default stream; others numbered in the order the snapshot meets them
    int64_t segments = 0;
    int64_t reserved = 0;          ///< what the segments take from the card
    int64_t live = 0;              ///< in tensors
    int64_t free_beside_live = 0;  ///< free blocks in segments that also hold tensors: never given back
    int64_t free_whole = 0;        ///< free segments: given back when the cache is emptied or a cap is reached
    int64_t largest_free = 0;
};

struct AllocatorUsage {
    std::vector<PoolUsage> pools;  ///< largest reservation first
    PoolUsage total;               ///< pool "all"
};

/// The allocator's snapshot of `device`, summed per pool and stream (nothing on the CPU).
AllocatorUsage allocator_usage(const torch::Device& device);

/// One line per pool and stream of `device` (the default small and large pools, each CUDA graph's private
/// pool), largest first: segments, bytes reserved, bytes of live tensors, free bytes inside segments that hold
/// live tensors, free bytes in whole segments, the largest free block; then the totals. Empty on the CPU.
std::string allocator_report(const torch::Device& device);

/// From now on, every out-of-memory error of LibTorch's CUDA allocator first logs, at debug level (`--debug`),
/// what was asked and `allocator_report` of its device at that moment, before the failing call lets go of
/// anything. Once per process; a no-op without CUDA.
void report_allocator_at_out_of_memory();

}  // namespace lsync::diagnostics
