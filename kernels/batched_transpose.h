#pragma once
// Batched 2-D transpose with an optional per-row bias and/or residual added on the way out:
//   y[b, i, j] = x[b, j, i]  (+ bias[b / batches_per_bias, i])  (+ r[b, i, j])
// (with both, the biased value is rounded before the residual is added, as a conv's biased output would be)
// x is [B, J, I] contiguous, y and r are [B, I, J] contiguous. The UNet moves between its per-frame planes
// ([frames, channels, pixels]) and its attention tokens ([pixels, channels]) with exactly this permutation;
// ATen runs it as a strided element-wise copy whose reads or writes are uncoalesced (the largest "copy" item
// of a UNet call's profile), and as a second pass for the residual add. This kernel stages tiles in shared memory
// so both sides are coalesced (64 x 64 tiles of 16-byte vectors for fp16/bf16 with whole-vector rows and
// columns, else 32 x 32 tiles of elements), and adds the residual in the same pass (fp32 arithmetic, one
// rounding, the same value ATen's add gives). The bias form is a convolution's bias (or a UNet resnet's bias
// plus time embedding) added while an NHWC convolution's output goes back to NCHW (ops::conv2d).

#include "element_type.h"

#include <cstdint>
#include <string>

namespace lsync::kernels {

struct TransposeArgs {
    const void* x = nullptr;         ///< [batch, rows, cols]
    void* y = nullptr;               ///< [batch, cols, rows]
    const void* residual = nullptr;  ///< [batch, cols, rows] or null
    /// [cols] (batches_per_bias = 0) or [batch / batches_per_bias, cols], or null.
    const void* bias = nullptr;
    int64_t batches_per_bias = 0;
    int64_t batch = 0, rows = 0, cols = 0;
    ElementType dtype = ElementType::Float32;
    void* stream = nullptr;  ///< cudaStream_t
};

/// Empty when the kernel can run these arguments, else why not (grid limits).
std::string transpose_unsupported(const TransposeArgs& args);

/// Launches the transpose; returns an empty string or the CUDA error.
std::string transpose_launch(const TransposeArgs& args);

}  // namespace lsync::kernels
