#include "batched_transpose.h"
#include "element_types.cuh"
#include "launch_shape.h"

#include <cuda_runtime.h>

#include <cstdint>

namespace lsync::kernels {

namespace {

constexpr int kTile = 32;
constexpr int kRowsPerPass = 8;  // a block of 32 x 8 threads moves a 32 x 32 tile in 4 passes

// blockIdx.x: tile column (along cols = I), blockIdx.y: tile row (along rows = J), blockIdx.z: batch entry.
// What is added on the way out.
enum Epilogue { kPlain, kResidual, kBias, kBiasResidual };

// The bias of output row `col` (a column of x) for batch entry `batch`.
template <typename T>
__device__ inline float bias_of(const T* __restrict__ bias, int64_t batch, int64_t batches_per_bias, int64_t cols,
                                int64_t col) {
    return to_float(bias[(batches_per_bias > 0 ? batch / batches_per_bias : 0) * cols + col]);
}

template <typename T, Epilogue kAdd>
__global__ void __launch_bounds__(kTile * kRowsPerPass)
    transpose_tiles(const T* __restrict__ x, T* __restrict__ y, const T* __restrict__ r, const T* __restrict__ bias,
                    int64_t batches_per_bias, int64_t rows, int64_t cols) {
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
            if constexpr (kAdd == kResidual) {
                y[at] = from_float<T>(to_float(r[at]) + to_float(tile[threadIdx.x][k]));
            } else if constexpr (kAdd == kBias || kAdd == kBiasResidual) {
                T v = from_float<T>(to_float(tile[threadIdx.x][k]) + bias_of(bias, blockIdx.z, batches_per_bias, cols, col));
                // The residual goes on the rounded biased value, as `residual + conv(x)` does after the conv.
                if constexpr (kAdd == kBiasResidual) v = from_float<T>(to_float(r[at]) + to_float(v));
                y[at] = v;
            } else {
                y[at] = tile[threadIdx.x][k];
            }
        }
    }
}

// 2-byte elements whose rows and cols are whole 16-byte vectors: 64 x 64 tiles moved as 16-byte vectors both
// ways (the element-wise kernel above issues one 2-byte access per element and reached about half the
// bandwidth). A tile row is 8 chunks of 8 elements; chunk c of row r is stored at chunk c ^ (r / 8 % 8), so the
// column reads of the write phase (8 rows r = 8v + k of one column, for 8 values of v across the lanes) fall
// in 8 different chunks: no bank conflicts (lanes reading the same 4-byte word are a broadcast).
constexpr int kVecTile = 64;
constexpr int kVecThreads = 256;
constexpr int kVec = 8;

template <typename T, Epilogue kAdd>
__global__ void __launch_bounds__(kVecThreads)
    transpose_tiles_vec(const T* __restrict__ x, T* __restrict__ y, const T* __restrict__ r, const T* __restrict__ bias,
                        int64_t batches_per_bias, int64_t rows, int64_t cols) {
    using V = Pack<T, kVec>;
    constexpr int kChunks = kVecTile / kVec;  // vectors per tile row
    __shared__ V tile[kVecTile][kChunks];
    const int64_t base = static_cast<int64_t>(blockIdx.z) * rows * cols;
    const int64_t col0 = static_cast<int64_t>(blockIdx.x) * kVecTile, row0 = static_cast<int64_t>(blockIdx.y) * kVecTile;
    // Load: vector (row, chunk) of the tile is x[row0 + row, col0 + 8 chunk ...]; 8 lanes cover a 128-byte row.
    for (int v = threadIdx.x; v < kVecTile * kChunks; v += kVecThreads) {
        const int row = v / kChunks, chunk = v % kChunks;
        const int64_t gr = row0 + row, gc = col0 + chunk * kVec;
        if (gr < rows && gc < cols)
            tile[row][chunk ^ ((row / kVec) % kChunks)] = *reinterpret_cast<const V*>(x + base + gr * cols + gc);
    }
    __syncthreads();
    // Store: vector (j, rv) of the output is y[col0 + j, row0 + 8 rv ...] = column j of tile rows 8 rv ... 8 rv + 7;
    // 8 lanes cover 64 consecutive outputs (128 bytes).
    for (int v = threadIdx.x; v < kVecTile * kChunks; v += kVecThreads) {
        const int j = v / kChunks, rv = v % kChunks;
        const int64_t gc = col0 + j, gr = row0 + rv * kVec;
        if (gc >= cols || gr >= rows) continue;
        const int chunk = (j / kVec) ^ rv, lane_elem = j % kVec;
        V o;
#pragma unroll
        for (int k = 0; k < kVec; ++k) o.v[k] = tile[rv * kVec + k][chunk].v[lane_elem];
        const int64_t at = base + gc * rows + gr;
        if constexpr (kAdd == kResidual) {
            const V res = *reinterpret_cast<const V*>(r + at);
#pragma unroll
            for (int k = 0; k < kVec; ++k) o.v[k] = from_float<T>(to_float(res.v[k]) + to_float(o.v[k]));
        } else if constexpr (kAdd == kBias || kAdd == kBiasResidual) {
            const float b = bias_of(bias, blockIdx.z, batches_per_bias, cols, gc);
#pragma unroll
            for (int k = 0; k < kVec; ++k) o.v[k] = from_float<T>(to_float(o.v[k]) + b);
            if constexpr (kAdd == kBiasResidual) {
                const V res = *reinterpret_cast<const V*>(r + at);
#pragma unroll
                for (int k = 0; k < kVec; ++k) o.v[k] = from_float<T>(to_float(res.v[k]) + to_float(o.v[k]));
            }
        }
        *reinterpret_cast<V*>(y + at) = o;
    }
}

template <typename T, Epilogue kAdd>
void launch_epilogue(const TransposeArgs& a, bool vec, cudaStream_t stream) {
    const auto* x = static_cast<const T*>(a.x);
    auto* y = static_cast<T*>(a.y);
    const auto* r = static_cast<const T*>(a.residual);
    const auto* b = static_cast<const T*>(a.bias);
    if constexpr (sizeof(T) == 2) {
        if (vec) {
            const dim3 grid(static_cast<unsigned>((a.cols + kVecTile - 1) / kVecTile),
                            static_cast<unsigned>((a.rows + kVecTile - 1) / kVecTile), static_cast<unsigned>(a.batch));
            transpose_tiles_vec<T, kAdd><<<grid, kVecThreads, 0, stream>>>(x, y, r, b, a.batches_per_bias, a.rows, a.cols);
            return;
        }
    }
    {
        const dim3 grid(static_cast<unsigned>((a.cols + kTile - 1) / kTile), static_cast<unsigned>((a.rows + kTile - 1) / kTile),
                        static_cast<unsigned>(a.batch));
        transpose_tiles<T, kAdd><<<grid, dim3(kTile, kRowsPerPass), 0, stream>>>(x, y, r, b, a.batches_per_bias, a.rows,
                                                                              a.cols);
    }
}

template <typename T>
cudaError_t launch(const TransposeArgs& a) {
    auto stream = static_cast<cudaStream_t>(a.stream);
    const bool vec = sizeof(T) == 2 && a.rows % kVec == 0 && a.cols % kVec == 0 && aligned16(a.x) && aligned16(a.y) &&
                     (!a.residual || aligned16(a.residual));
    if (a.residual && a.bias)
        launch_epilogue<T, kBiasResidual>(a, vec, stream);
    else if (a.residual)
        launch_epilogue<T, kResidual>(a, vec, stream);
    else if (a.bias)
        launch_epilogue<T, kBias>(a, vec, stream);
    else
        launch_epilogue<T, kPlain>(a, vec, stream);
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
    if (a.bias && (a.batches_per_bias < 0 || (a.batches_per_bias > 0 && a.batch % a.batches_per_bias != 0)))
        return "transpose_launch: the batch must be whole groups of batches_per_bias";
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
