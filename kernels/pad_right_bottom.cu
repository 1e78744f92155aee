#include "pad_right_bottom.h"
#include "launch_shape.h"

#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>

namespace lsync::kernels {

namespace {

constexpr int kThreads = 256;
constexpr int64_t kMaxRowBlocks = 65535;  // gridDim.y's limit; more rows are taken in steps of it

// One output pixel row per blockIdx.y step: its first `copy` vectors are input row (image, h) and the rest (the
// last pixel, or the whole bottom row) zero.
__global__ void __launch_bounds__(kThreads)
    pad_rows(const uint4* __restrict__ x, uint4* __restrict__ y, int64_t out_rows, int64_t height,
             int64_t in_row_vectors, int64_t out_row_vectors) {
    const uint4 zero = make_uint4(0, 0, 0, 0);
    for (int64_t row = blockIdx.y; row < out_rows; row += gridDim.y) {
        const int64_t image = row / (height + 1), h = row % (height + 1);
        const int64_t copy = h < height ? in_row_vectors : 0;
        const uint4* src = x + (image * height + h) * in_row_vectors;
        uint4* dst = y + row * out_row_vectors;
        for (int64_t j = blockIdx.x * int64_t(kThreads) + threadIdx.x; j < out_row_vectors;
             j += int64_t(gridDim.x) * kThreads)
            dst[j] = j < copy ? src[j] : zero;
    }
}

}  // namespace

std::string pad_right_bottom_unsupported(const PadRightBottomArgs& a) {
    if (a.images <= 0 || a.height <= 0 || a.width <= 0 || a.channels <= 0) return "empty pad";
    if (a.element_bytes != 2 && a.element_bytes != 4) return "elements of 2 or 4 bytes only";
    if ((a.channels * a.element_bytes) % 16 != 0) return "a pixel is not a whole number of 16-byte vectors";
    if (!aligned16(a.x) || !aligned16(a.y)) return "tensors not 16-byte aligned";
    return {};
}

std::string pad_right_bottom_launch(const PadRightBottomArgs& a) {
    auto why = pad_right_bottom_unsupported(a);
    if (!why.empty()) return why;
    const int64_t pixel_vectors = a.channels * a.element_bytes / 16;
    const int64_t in_row = a.width * pixel_vectors, out_row = (a.width + 1) * pixel_vectors;
    const int64_t out_rows = a.images * (a.height + 1);
    // Enough blocks to fill the card several times over; a block's threads cover a row (or part of one).
    const int64_t row_blocks = (out_row + kThreads - 1) / kThreads;
    const int64_t want_rows = std::max<int64_t>(1, int64_t(std::max(a.sm_count, 1)) * 32 / row_blocks);
    const dim3 grid(static_cast<unsigned>(row_blocks),
                    static_cast<unsigned>(std::min({out_rows, want_rows, kMaxRowBlocks})));
    pad_rows<<<grid, kThreads, 0, static_cast<cudaStream_t>(a.stream)>>>(
        static_cast<const uint4*>(a.x), static_cast<uint4*>(a.y), out_rows, a.height, in_row, out_row);
    const auto err = cudaGetLastError();
    if (err != cudaSuccess) return std::string("pad kernel: ") + cudaGetErrorString(err);
    return {};
}

}  // namespace lsync::kernels
