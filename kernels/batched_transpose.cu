#include "batched_transpose.h"
#include "element_types.cuh"

#include <cuda_runtime.h>

namespace lsync::kernels {

namespace {

constexpr int kTile = 32;
constexpr int kRowsPerPass = 8;  // a block of 32 x 8 threads moves a 32 x 32 tile in 4 passes

// blockIdx.x: tile column (along cols = I), blockIdx.y: tile row (along rows = J), blockIdx.z: batch entry.
template <typename T, bool kResidual>
__global__ void __launch_bounds__(kTile * kRowsPerPass)
    transpose_tiles(const T* __restrict__ x, T* __restrict__ y, const T* __restrict__ r, int64_t rows, int64_t cols) {
    __shared__ T tile[kTile][kTile + 1];  // +1: the column reads hit 32 different banks
    const int64_t base = static_cast<int64_t>(blockIdx.z) * rows * cols;
    const int64_t col0 = static_cast<int64_t>(blockIdx.x) * kTile, row0 = static_cast<int64_t>(blockIdx.y) * kTile;
    // Read x[row0 + k, col0 + tx]: consecutive threads read consecutive columns.
    for (int k = threadIdx.y; k < kTile; k += kRowsPerPass) {
        const int64_t row = row0 + k, col = col0 + threadIdx.x;
        if (row < rows && col < cols) tile[k][threadIdx.x] = x[base + row * cols + col];
    }
    __syncthreads();
    // Write y[col0 + k, row0 + tx] = x[row0 + tx, col0 + k]: consecutive threads write consecutive rows of x.
    for (int k = threadIdx.y; k < kTile; k += kRowsPerPass) {
        const int64_t col = col0 + k, row = row0 + threadIdx.x;
        if (row < rows && col < cols) {
            const int64_t at = base + col * rows + row;
            if constexpr (kResidual) {
                y[at] = from_float<T>(to_float(r[at]) + to_float(tile[threadIdx.x][k]));
            } else {
                y[at] = tile[threadIdx.x][k];
            }
        }
    }
}

template <typename T>
cudaError_t launch(const TransposeArgs& a) {
    const dim3 block(kTile, kRowsPerPass);
    const dim3 grid(static_cast<unsigned>((a.cols + kTile - 1) / kTile), static_cast<unsigned>((a.rows + kTile - 1) / kTile),
                    static_cast<unsigned>(a.batch));
    auto stream = static_cast<cudaStream_t>(a.stream);
    const auto* x = static_cast<const T*>(a.x);
    auto* y = static_cast<T*>(a.y);
    if (a.residual)
        transpose_tiles<T, true><<<grid, block, 0, stream>>>(x, y, static_cast<const T*>(a.residual), a.rows, a.cols);
    else
        transpose_tiles<T, false><<<grid, block, 0, stream>>>(x, y, nullptr, a.rows, a.cols);
    return cudaGetLastError();
}

}  // namespace

std::string transpose_unsupported(const TransposeArgs& a) {
    if (a.batch <= 0 || a.rows <= 0 || a.cols <= 0) return "empty transpose";
    if (a.batch > 65535) return "more than 65535 matrices in one transpose";
    if ((a.rows + kTile - 1) / kTile > 65535) return "more than 65535 x 32 rows";
    if ((a.cols + kTile - 1) / kTile > 2147483647LL) return "too many columns";
    return {};
}

std::string transpose_launch(const TransposeArgs& a) {
    auto why = transpose_unsupported(a);
    if (!why.empty()) return why;
    if (!a.x || !a.y) return "transpose_launch: null pointer";
    cudaError_t err = cudaSuccess;
    switch (a.dtype) {
        case ElementType::Float32: err = launch<float>(a); break;
        case ElementType::Float16: err = launch<__half>(a); break;
        case ElementType::BFloat16: err = launch<__nv_bfloat16>(a); break;
    }
    if (err != cudaSuccess) return std::string("transpose kernel: ") + cudaGetErrorString(err);
    return {};
}

}  // namespace lsync::kernels
