#include "softmax_rows.h"

#include "element_types.cuh"
#include "launch_shape.h"

#include <cuda_runtime.h>

#include <cstdint>

namespace lsync::kernels {

namespace {

constexpr int kThreads = 256;
constexpr int kWarps = kThreads / 32;

// A running (maximum, sum of exp(x - maximum)) over part of a row.
struct MaxSum {
    float m = -INFINITY;
    float s = 0.f;
};

__device__ inline MaxSum merge(MaxSum a, MaxSum b) {
    const float m = fmaxf(a.m, b.m);
    if (m == -INFINITY) return a;  // both empty (or all -inf): nothing to scale
    return {m, a.s * expf(a.m - m) + b.s * expf(b.m - m)};
}

__device__ inline void add(MaxSum& a, float v) {
    if (v > a.m) {
        a.s = a.s * expf(a.m - v) + 1.f;
        a.m = v;
    } else if (v != -INFINITY) {  // -inf adds nothing (and -inf - -inf would be NaN)
        a.s += expf(v - a.m);
    }
}

// One block per row. VEC = 4: float4 loads and 4-element stores (cols a multiple of 4, rows 16-byte aligned).
template <typename T, int VEC>
__global__ void __launch_bounds__(kThreads) softmax_rows(const float* __restrict__ x, T* __restrict__ y,
                                                          int64_t cols) {
    const float* xr = x + blockIdx.x * cols;
    T* yr = y + blockIdx.x * cols;
    const int64_t vecs = cols / VEC;
    MaxSum acc;
    for (int64_t i = threadIdx.x; i < vecs; i += kThreads) {
        const auto p = reinterpret_cast<const Pack<float, VEC>*>(xr)[i];
#pragma unroll
        for (int j = 0; j < VEC; ++j) add(acc, p.v[j]);
    }
#pragma unroll
    for (int off = 16; off > 0; off /= 2) {
        MaxSum o;
        o.m = __shfl_down_sync(0xffffffffu, acc.m, off);
        o.s = __shfl_down_sync(0xffffffffu, acc.s, off);
        acc = merge(acc, o);
    }
    __shared__ MaxSum warps[kWarps];
    __shared__ MaxSum row;
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    if (lane == 0) warps[warp] = acc;
    __syncthreads();
    if (threadIdx.x == 0) {
        MaxSum r = warps[0];
        for (int w = 1; w < kWarps; ++w) r = merge(r, warps[w]);
        row = r;
    }
    __syncthreads();
    const float m = row.m, inv = 1.f / row.s;
    for (int64_t i = threadIdx.x; i < vecs; i += kThreads) {
        const auto p = reinterpret_cast<const Pack<float, VEC>*>(xr)[i];
        Pack<T, VEC> out;
#pragma unroll
        for (int j = 0; j < VEC; ++j) out.v[j] = from_float<T>(expf(p.v[j] - m) * inv);
        reinterpret_cast<Pack<T, VEC>*>(yr)[i] = out;
    }
}

template <typename T>
void launch(const SoftmaxRowsArgs& a, cudaStream_t stream) {
    const auto rows = static_cast<unsigned>(a.rows);
    const bool vec = a.cols % 4 == 0 && aligned16(a.x) && reinterpret_cast<uintptr_t>(a.y) % (4 * sizeof(T)) == 0;
    if (vec)
        softmax_rows<T, 4><<<rows, kThreads, 0, stream>>>(a.x, static_cast<T*>(a.y), a.cols);
    else
        softmax_rows<T, 1><<<rows, kThreads, 0, stream>>>(a.x, static_cast<T*>(a.y), a.cols);
}

}  // namespace

std::string softmax_rows_unsupported(const SoftmaxRowsArgs& a) {
    if (a.rows <= 0 || a.cols <= 0) return "empty input";
    if (a.dtype == ElementType::Float32) return "fp16 or bf16 output only";
    if (a.rows > 0x7fffffff) return "more rows than one grid holds";
    return {};
}

std::string softmax_rows_launch(const SoftmaxRowsArgs& a) {
    auto why = softmax_rows_unsupported(a);
    if (!why.empty()) return why;
    const auto stream = static_cast<cudaStream_t>(a.stream);
    if (a.dtype == ElementType::Float16)
        launch<__half>(a, stream);
    else
        launch<__nv_bfloat16>(a, stream);
    const auto err = cudaGetLastError();
    if (err != cudaSuccess) return std::string("softmax kernel: ") + cudaGetErrorString(err);
    return {};
}

}  // namespace lsync::kernels
