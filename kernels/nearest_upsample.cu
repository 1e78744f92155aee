#include "nearest_upsample.h"
#include "launch_shape.h"

#include <cuda_runtime.h>

#include <cstdint>

namespace lsync::kernels {

namespace {

constexpr int kThreads = 256;

// Channels inner, whole 16-byte vectors per pixel (vin of them): thread i moves input vector i to four outputs.
__global__ void __launch_bounds__(kThreads)
    upsample_pixels(const uint4* __restrict__ x, uint4* __restrict__ y, int64_t count, int64_t height, int64_t width,
                    int64_t vin) {
    const int64_t row_vectors = 2 * width * vin;  // one output row
    for (int64_t i = blockIdx.x * int64_t(kThreads) + threadIdx.x; i < count; i += int64_t(gridDim.x) * kThreads) {
        const int64_t v = i % vin, pixel = i / vin;
        const int64_t w = pixel % width, oh = pixel / width;  // oh = o * height + h
        const uint4 val = x[i];
        uint4* out = y + (2 * oh * 2 * width + 2 * w) * vin + v;  // row 2h of image o: (2 (o H + h)) * 2W
        out[0] = val;
        out[vin] = val;
        out[row_vectors] = val;
        out[row_vectors + vin] = val;
    }
}

// inner = 1 with rows of whole 16-byte vectors: each element doubled along the row, the widened row written to
// both output rows.
template <typename E>
__global__ void __launch_bounds__(kThreads)
    upsample_rows(const uint4* __restrict__ x, uint4* __restrict__ y, int64_t count, int64_t row_vectors) {
    constexpr int kPer = 16 / sizeof(E);
    for (int64_t i = blockIdx.x * int64_t(kThreads) + threadIdx.x; i < count; i += int64_t(gridDim.x) * kThreads) {
        const int64_t v = i % row_vectors, row = i / row_vectors;  // row = o * height + h
        const uint4 in = x[i];
        const E* e = reinterpret_cast<const E*>(&in);
        uint4 out[2];
        E* o = reinterpret_cast<E*>(out);
#pragma unroll
        for (int k = 0; k < kPer; ++k) o[2 * k] = o[2 * k + 1] = e[k];
        uint4* dst = y + 2 * row * 2 * row_vectors + 2 * v;  // output row 2 row has 2 row_vectors vectors
        dst[0] = out[0];
        dst[1] = out[1];
        dst[2 * row_vectors] = out[0];
        dst[2 * row_vectors + 1] = out[1];
    }
}

// Anything else: one element per thread.
template <typename E>
__global__ void __launch_bounds__(kThreads)
    upsample_elements(const E* __restrict__ x, E* __restrict__ y, int64_t count, int64_t width, int64_t inner) {
    for (int64_t i = blockIdx.x * int64_t(kThreads) + threadIdx.x; i < count; i += int64_t(gridDim.x) * kThreads) {
        const int64_t c = i % inner, pixel = i / inner;
        const int64_t w = pixel % width, oh = pixel / width;
        const E val = x[i];
        E* out = y + (2 * oh * 2 * width + 2 * w) * inner + c;
        const int64_t row = 2 * width * inner;
        out[0] = val;
        out[inner] = val;
        out[row] = val;
        out[row + inner] = val;
    }
}

template <typename E>
void launch_typed(const Upsample2xArgs& a, cudaStream_t stream) {
    const bool aligned = aligned16(a.x) && aligned16(a.y);
    const int64_t elements = a.outer * a.height * a.width * a.inner;
    if (aligned && (a.inner * int64_t(sizeof(E))) % 16 == 0) {
        const int64_t vin = a.inner * int64_t(sizeof(E)) / 16;
        const int64_t count = a.outer * a.height * a.width * vin;
        upsample_pixels<<<grid_stride_blocks(count, kThreads, a.sm_count, 16), kThreads, 0, stream>>>(
            static_cast<const uint4*>(a.x), static_cast<uint4*>(a.y), count, a.height, a.width, vin);
    } else if (aligned && a.inner == 1 && (a.width * int64_t(sizeof(E))) % 16 == 0) {
        const int64_t row_vectors = a.width * int64_t(sizeof(E)) / 16;
        const int64_t count = a.outer * a.height * row_vectors;
        upsample_rows<E><<<grid_stride_blocks(count, kThreads, a.sm_count, 16), kThreads, 0, stream>>>(
            static_cast<const uint4*>(a.x), static_cast<uint4*>(a.y), count, row_vectors);
    } else {
        upsample_elements<E><<<grid_stride_blocks(elements, kThreads, a.sm_count, 16), kThreads, 0, stream>>>(
            static_cast<const E*>(a.x), static_cast<E*>(a.y), elements, a.width, a.inner);
    }
}

}  // namespace

std::string upsample2x_unsupported(const Upsample2xArgs& a) {
    if (a.outer <= 0 || a.height <= 0 || a.width <= 0 || a.inner <= 0) return "empty upsample";
    if (a.element_bytes != 2 && a.element_bytes != 4) return "elements of 2 or 4 bytes only";
    return {};
}

std::string upsample2x_launch(const Upsample2xArgs& a) {
    auto why = upsample2x_unsupported(a);
    if (!why.empty()) return why;
    if (!a.x || !a.y) return "upsample2x_launch: null pointer";
    const auto stream = static_cast<cudaStream_t>(a.stream);
    if (a.element_bytes == 2)
        launch_typed<uint16_t>(a, stream);
    else
        launch_typed<uint32_t>(a, stream);
    const auto err = cudaGetLastError();
    if (err != cudaSuccess) return std::string("upsample kernel: ") + cudaGetErrorString(err);
    return {};
}

}  // namespace lsync::kernels
