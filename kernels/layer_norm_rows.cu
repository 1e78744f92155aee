#include "element_types.cuh"
#include "layer_norm_rows.h"

#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>

namespace lsync::kernels {

namespace {

constexpr int kThreads = 256;  // 8 warps, one row each at a time
constexpr int kWarp = 32;

__device__ inline float warp_sum(float v) {
#pragma unroll
    for (int offset = kWarp / 2; offset > 0; offset /= 2) v += __shfl_xor_sync(0xffffffffu, v, offset);
    return v;
}

// Lane l of a row's warp holds its vectors l, l + 32, ..., l + 32 (NV - 1) (those below cols_vec) as fp32 in
// registers, so the row is read once. x, residual and sum carry no __restrict__: sum may alias either input
// (each element is read by the thread that then writes it).
template <typename T, int NV, bool kResidual>
__global__ void __launch_bounds__(kThreads)
    layer_norm_rows(const T* x, const T* residual, T* sum, T* __restrict__ y, const T* __restrict__ weight,
                    const T* __restrict__ bias, int64_t rows, int cols_vec, float inv_cols, float eps) {
    constexpr int VEC = 16 / sizeof(T);
    using V = Pack<T, VEC>;
    const int lane = threadIdx.x % kWarp;
    const int64_t warps = int64_t(gridDim.x) * (kThreads / kWarp);
    for (int64_t row = int64_t(blockIdx.x) * (kThreads / kWarp) + threadIdx.x / kWarp; row < rows; row += warps) {
        const int64_t base = row * cols_vec;
        float v[NV][VEC];
        float s = 0.f;
#pragma unroll
        for (int j = 0; j < NV; ++j) {
            const int c = lane + j * kWarp;
            if (c >= cols_vec) continue;
            V p = reinterpret_cast<const V*>(x)[base + c];
            if constexpr (kResidual) {
                const V r = reinterpret_cast<const V*>(residual)[base + c];
#pragma unroll
                for (int k = 0; k < VEC; ++k) p.v[k] = from_float<T>(to_float(p.v[k]) + to_float(r.v[k]));
                reinterpret_cast<V*>(sum)[base + c] = p;
            }
#pragma unroll
            for (int k = 0; k < VEC; ++k) {
                v[j][k] = to_float(p.v[k]);
                s += v[j][k];
            }
        }
        const float mean = warp_sum(s) * inv_cols;
        float q = 0.f;
#pragma unroll
        for (int j = 0; j < NV; ++j) {
            if (lane + j * kWarp >= cols_vec) continue;
#pragma unroll
            for (int k = 0; k < VEC; ++k) {
                const float d = v[j][k] - mean;
                q += d * d;
            }
        }
        const float rstd = rsqrtf(warp_sum(q) * inv_cols + eps);
#pragma unroll
        for (int j = 0; j < NV; ++j) {
            const int c = lane + j * kWarp;
            if (c >= cols_vec) continue;
            const V w = reinterpret_cast<const V*>(weight)[c], b = reinterpret_cast<const V*>(bias)[c];
            V o;
#pragma unroll
            for (int k = 0; k < VEC; ++k)
                o.v[k] = from_float<T>((v[j][k] - mean) * rstd * to_float(w.v[k]) + to_float(b.v[k]));
            reinterpret_cast<V*>(y)[base + c] = o;
        }
    }
}

template <typename T, int NV>
cudaError_t launch_width(const LayerNormArgs& a, int cols_vec) {
    // Enough resident warps to cover the rows in a few waves; each warp walks rows grid-stride.
    const int64_t rows_per_block = kThreads / kWarp;
    const int64_t blocks = std::max<int64_t>(
        1, std::min<int64_t>((a.rows + rows_per_block - 1) / rows_per_block, int64_t(a.sm_count) * 16));
    auto stream = static_cast<cudaStream_t>(a.stream);
    const auto grid = static_cast<unsigned>(blocks);
    const float inv_cols = 1.0f / static_cast<float>(a.cols);
    const auto* x = static_cast<const T*>(a.x);
    const auto* r = static_cast<const T*>(a.residual);
    const auto* w = static_cast<const T*>(a.weight);
    const auto* b = static_cast<const T*>(a.bias);
    auto* y = static_cast<T*>(a.y);
    auto* s = static_cast<T*>(a.sum);
    if (a.residual)
        layer_norm_rows<T, NV, true><<<grid, kThreads, 0, stream>>>(x, r, s, y, w, b, a.rows, cols_vec, inv_cols, a.eps);
    else
        layer_norm_rows<T, NV, false><<<grid, kThreads, 0, stream>>>(x, r, s, y, w, b, a.rows, cols_vec, inv_cols, a.eps);
    return cudaGetLastError();
}

template <typename T>
cudaError_t launch(const LayerNormArgs& a) {
    const int cols_vec = static_cast<int>(a.cols / (16 / sizeof(T)));
    // The fewest vectors per lane that hold the row (the instantiated widths; a lane's unused slots are skipped).
    switch ((cols_vec + kWarp - 1) / kWarp) {
        case 1: return launch_width<T, 1>(a, cols_vec);
        case 2: return launch_width<T, 2>(a, cols_vec);
        case 3: return launch_width<T, 3>(a, cols_vec);
        case 4: return launch_width<T, 4>(a, cols_vec);
        case 5: return launch_width<T, 5>(a, cols_vec);
        case 6: return launch_width<T, 6>(a, cols_vec);
        default: return launch_width<T, kLayerNormMaxVectorsPerLane>(a, cols_vec);
    }
}

bool aligned(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

}  // namespace

bool layer_norm_cols_supported(int64_t cols, int element_bytes) {
    if (element_bytes <= 0 || 16 % element_bytes != 0) return false;
    const int64_t vec = 16 / element_bytes;
    return cols > 0 && cols % vec == 0 && cols / vec <= int64_t(kWarp) * kLayerNormMaxVectorsPerLane;
}

std::string layer_norm_launch(const LayerNormArgs& a) {
    const int element_bytes = a.dtype == ElementType::Float32 ? 4 : 2;
    if (a.rows <= 0 || !layer_norm_cols_supported(a.cols, element_bytes)) return "layer norm: unsupported shape";
    if (!a.x || !a.y || !a.weight || !a.bias || (a.residual && !a.sum)) return "layer norm: null pointer";
    if (!aligned(a.x) || !aligned(a.y) || !aligned(a.weight) || !aligned(a.bias) ||
        (a.residual && (!aligned(a.residual) || !aligned(a.sum))))
        return "layer norm: pointers must be 16-byte aligned";
    cudaError_t err = cudaSuccess;
    switch (a.dtype) {
        case ElementType::Float32: err = launch<float>(a); break;
        case ElementType::Float16: err = launch<__half>(a); break;
        case ElementType::BFloat16: err = launch<__nv_bfloat16>(a); break;
    }
    if (err != cudaSuccess) return std::string("layer norm kernel: ") + cudaGetErrorString(err);
    return {};
}

}  // namespace lsync::kernels
