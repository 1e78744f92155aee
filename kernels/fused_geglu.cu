#include "fused_geglu.h"
#include "element_types.cuh"

#include <cuda_runtime.h>

#include <algorithm>
#include <climits>
#include <cstdint>

namespace lsync::kernels {

namespace {

constexpr int kThreads = 256;
// One wave at full occupancy (2048 resident threads per multiprocessor on sm_80/sm_90); the grid-stride loop
// covers the rest, so no block waits in a tail wave. __launch_bounds__ holds the kernels to 32 registers so
// that wave really is resident.
constexpr int kBlocksPerSm = 2048 / kThreads;

// Same operation order as ATen's CUDA gelu (x * 0.5 * (1 + erf(x * sqrt(1/2)))), so fp32 stays close to it.
__device__ inline float gelu_erf(float g) { return g * 0.5f * (1.f + erff(g * 0.70710678118654752f)); }

// Counts in packs of VEC elements: `cols` packs per output row, `n` packs in y. Index is uint32_t when the whole
// input fits in 2^31 elements (cheaper division), else int64_t.
template <typename T, int VEC, typename Index>
__global__ void __launch_bounds__(kThreads, kBlocksPerSm)
geglu_kernel(const Pack<T, VEC>* __restrict__ x, Pack<T, VEC>* __restrict__ y, Index cols, Index n) {
    const Index stride = Index(gridDim.x) * kThreads;
    for (Index i = Index(blockIdx.x) * kThreads + threadIdx.x; i < n; i += stride) {
        const Index r = i / cols;
        const Index in = i + r * cols;  // r * 2 * cols + (i - r * cols): the value half of row r
        const Pack<T, VEC> v = x[in];
        const Pack<T, VEC> g = x[in + cols];
        Pack<T, VEC> out;
#pragma unroll
        for (int k = 0; k < VEC; ++k) out.v[k] = from_float<T>(to_float(v.v[k]) * gelu_erf(to_float(g.v[k])));
        y[i] = out;
    }
}

template <typename T>
int vector_width(const GegluArgs& a) {
    constexpr int kVec = 16 / sizeof(T);
    const bool aligned = reinterpret_cast<uintptr_t>(a.x) % 16 == 0 && reinterpret_cast<uintptr_t>(a.y) % 16 == 0;
    return aligned && a.inner % kVec == 0 ? kVec : 1;
}

template <typename T, int VEC, typename Index>
cudaError_t launch_typed(const GegluArgs& a) {
    const int64_t cols = a.inner / VEC, n = a.rows * cols;
    const int64_t blocks = std::min<int64_t>((n + kThreads - 1) / kThreads, int64_t(std::max(a.sm_count, 1)) * kBlocksPerSm);
    geglu_kernel<T, VEC, Index><<<static_cast<unsigned>(blocks), kThreads, 0, static_cast<cudaStream_t>(a.stream)>>>(
        static_cast<const Pack<T, VEC>*>(a.x), static_cast<Pack<T, VEC>*>(a.y), static_cast<Index>(cols),
        static_cast<Index>(n));
    return cudaGetLastError();
}

template <typename T, int VEC>
cudaError_t launch_index(const GegluArgs& a) {
    // 32-bit indices need i + stride and the input offset below 2^32: true when the input has < 2^31 elements.
    return a.rows * 2 * a.inner <= INT_MAX ? launch_typed<T, VEC, uint32_t>(a) : launch_typed<T, VEC, int64_t>(a);
}

template <typename T>
cudaError_t launch_vec(const GegluArgs& a) {
    constexpr int kVec = 16 / sizeof(T);
    return vector_width<T>(a) == kVec ? launch_index<T, kVec>(a) : launch_index<T, 1>(a);
}

}  // namespace

std::string geglu_unsupported(const GegluArgs& a) {
    if (a.rows <= 0 || a.inner <= 0) return "empty tensor or non-positive sizes";
    if (a.inner > INT64_MAX / 2 / a.rows) return "rows * 2 * inner overflows 64 bits";
    return {};
}

std::string geglu_launch(const GegluArgs& a) {
    auto why = geglu_unsupported(a);
    if (!why.empty()) return why;
    if (!a.x || !a.y) return "geglu_launch: null pointer";
    cudaError_t err = cudaSuccess;
    switch (a.dtype) {
        case ElementType::Float32: err = launch_vec<float>(a); break;
        case ElementType::Float16: err = launch_vec<__half>(a); break;
        case ElementType::BFloat16: err = launch_vec<__nv_bfloat16>(a); break;
    }
    if (err != cudaSuccess) return std::string("geglu kernel: ") + cudaGetErrorString(err);
    return {};
}

}  // namespace lsync::kernels
