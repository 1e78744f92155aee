#pragma once
// Host-side helpers the kernels' launchers share: the alignment their 16-byte vector paths need, and the grid of
// a grid-stride loop.

#include <algorithm>
#include <cstdint>

namespace lsync::kernels {

/// Whether p may be loaded and stored as 16-byte vectors.
inline bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

/// Blocks of `threads` threads for a grid-stride loop over `count` items: one item per thread, but at most
/// `blocks_per_sm` blocks per multiprocessor (each thread then loops), and at least one block.
inline unsigned grid_stride_blocks(int64_t count, int threads, int sm_count, int64_t blocks_per_sm) {
    const int64_t want = (count + threads - 1) / threads;
    return static_cast<unsigned>(
        std::max<int64_t>(1, std::min<int64_t>(want, int64_t(std::max(sm_count, 1)) * blocks_per_sm)));
}

}  // namespace lsync::kernels
