#include "im2col_3x3.h"

#include "element_types.cuh"
#include "launch_shape.h"

#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>

namespace lsync::kernels {

namespace {

constexpr int kThreads = 256;
constexpr int kVec = 8;  // 16-byte stores of fp16/bf16

// One thread per 8-column vector of a pixel's row: the 8 taps are gathered (the input is small and cached) and
// stored as one 16-byte vector, so the matrix is written at full width. Index arithmetic in 32 bits (the launcher
// bounds the pixels); only the input offsets are 64-bit.
template <typename T>
__global__ void __launch_bounds__(kThreads)
    im2col_rows(const T* __restrict__ x, Pack<T, kVec>* __restrict__ cols, unsigned vectors, unsigned row_vectors,
                int channels, int height, int width, int64_t sn, int64_t sc, int64_t sh, int64_t sw) {
    const int taps = 9 * channels;
    for (unsigned i = blockIdx.x * kThreads + threadIdx.x; i < vectors; i += gridDim.x * kThreads) {
        const unsigned pixel = i / row_vectors;
        const int k0 = static_cast<int>(i % row_vectors) * kVec;
        const int w = static_cast<int>(pixel % unsigned(width));
        const unsigned hn = pixel / unsigned(width);
        const int h = static_cast<int>(hn % unsigned(height));
        const int64_t n = hn / unsigned(height);
        Pack<T, kVec> out;
#pragma unroll
        for (int j = 0; j < kVec; ++j) {
            const int k = k0 + j;
            T v = from_float<T>(0.f);
            if (k < taps) {
                const int tap = k / channels, c = k - tap * channels;
                const int ih = h + tap / 3 - 1, iw = w + tap % 3 - 1;
                if (ih >= 0 && ih < height && iw >= 0 && iw < width) v = x[n * sn + c * sc + ih * sh + iw * sw];
            }
            out.v[j] = v;
        }
        cols[i] = out;
    }
}

}  // namespace

std::string im2col_3x3_unsupported(const Im2col3x3Args& a) {
    if (a.images <= 0 || a.channels <= 0 || a.height <= 0 || a.width <= 0) return "empty input";
    if (a.dtype == ElementType::Float32) return "fp16 or bf16 only";
    if (a.k_padded % kVec != 0 || a.k_padded < 9 * a.channels) return "k_padded must be a multiple of 8 >= 9 C";
    if (!aligned16(a.cols)) return "the matrix is not 16-byte aligned";
    // 32-bit indices in the kernel (a grid-stride loop may step past the last vector by one grid).
    if (a.images * a.height * a.width * (a.k_padded / kVec) > (int64_t(1) << 31) || a.channels > (1 << 20))
        return "too large for 32-bit indices";
    return {};
}

std::string im2col_3x3_launch(const Im2col3x3Args& a) {
    auto why = im2col_3x3_unsupported(a);
    if (!why.empty()) return why;
    const int64_t row_vectors = a.k_padded / kVec;
    const int64_t vectors = a.images * a.height * a.width * row_vectors;  // < 2^31: checked above
    const unsigned blocks = grid_stride_blocks(vectors, kThreads, a.sm_count, 16);
    const auto stream = static_cast<cudaStream_t>(a.stream);
    if (a.dtype == ElementType::Float16)
        im2col_rows<__half><<<blocks, kThreads, 0, stream>>>(
            static_cast<const __half*>(a.x), static_cast<Pack<__half, kVec>*>(a.cols), unsigned(vectors),
            unsigned(row_vectors), int(a.channels), int(a.height), int(a.width), a.stride_n, a.stride_c, a.stride_h,
            a.stride_w);
    else
        im2col_rows<__nv_bfloat16><<<blocks, kThreads, 0, stream>>>(
            static_cast<const __nv_bfloat16*>(a.x), static_cast<Pack<__nv_bfloat16, kVec>*>(a.cols),
            unsigned(vectors), unsigned(row_vectors), int(a.channels), int(a.height), int(a.width), a.stride_n,
            a.stride_c, a.stride_h, a.stride_w);
    const auto err = cudaGetLastError();
    if (err != cudaSuccess) return std::string("im2col kernel: ") + cudaGetErrorString(err);
    return {};
}

}  // namespace lsync::kernels
