#pragma once
// Swaps the two middle dimensions of a contiguous [B, F, S, C] tensor, optionally adding a residual on the way:
//   y[b, s, f, c] = x[b, f, s, c]  (+ r[b, s, f, c])
// The channels-last UNet's motion modules regroup their per-frame planes ([frames, pixels, channels] in memory)
// into pixel-major tokens ([pixels, frames, channels], the rows temporal attention reads) and back, the second
// time with the module's residual. Each row of C channels moves as a whole, so reads and writes are both runs
// of C contiguous elements (16-byte vectors when C allows): no shared-memory tile is needed. ATen runs it as a
// strided element-wise copy (and a second pass for the add). fp32 arithmetic, one rounding: ATen's add.

#include "element_type.h"

#include <cstdint>
#include <string>

namespace lsync::kernels {

struct SwapMiddleArgs {
    const void* x = nullptr;         ///< [batch, outer, inner, channels] contiguous
    void* y = nullptr;               ///< [batch, inner, outer, channels] contiguous
    const void* residual = nullptr;  ///< [batch, inner, outer, channels] contiguous, or null
    int64_t batch = 0, outer = 0, inner = 0, channels = 0;
    ElementType dtype = ElementType::Float32;
    int sm_count = 132;
    void* stream = nullptr;  ///< cudaStream_t
};

/// Launches the copy; returns an empty string or why not / the CUDA error.
std::string swap_middle_launch(const SwapMiddleArgs& args);

}  // namespace lsync::kernels
