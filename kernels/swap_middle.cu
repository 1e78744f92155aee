#include "swap_middle.h"
#include "element_types.cuh"

#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>

namespace lsync::kernels {

namespace {

constexpr int kThreads = 256;

// One thread per output vector, in output order (consecutive threads write consecutive vectors); the source of
// a row of C channels is one contiguous run too, so a warp reads whole runs. A grid-stride loop bounds the grid.
template <typename T, int VEC, bool RESIDUAL>
__global__ void __launch_bounds__(kThreads)
    swap_middle_kernel(const T* __restrict__ x, T* __restrict__ y, const T* __restrict__ r, int64_t total,
                       int64_t outer, int64_t inner, int64_t vectors) {
    using P = Pack<T, VEC>;
    const auto* px = reinterpret_cast<const P*>(x);
    auto* py = reinterpret_cast<P*>(y);
    const auto* pr = reinterpret_cast<const P*>(r);
    for (int64_t o = int64_t(blockIdx.x) * kThreads + threadIdx.x; o < total; o += int64_t(gridDim.x) * kThreads) {
        const int64_t v = o % vectors;
        int64_t t = o / vectors;
        const int64_t f = t % outer;  // y's third index, x's second
        t /= outer;
        const int64_t s = t % inner;  // y's second index, x's third
        const int64_t b = t / inner;
        P val = px[((b * outer + f) * inner + s) * vectors + v];
        if constexpr (RESIDUAL) {
            const P res = pr[o];
#pragma unroll
            for (int k = 0; k < VEC; ++k) val.v[k] = from_float<T>(to_float(res.v[k]) + to_float(val.v[k]));
        }
        py[o] = val;
    }
}

template <typename T, int VEC>
cudaError_t launch_vec(const SwapMiddleArgs& a) {
    const int64_t vectors = a.channels / VEC;
    const int64_t total = a.batch * a.outer * a.inner * vectors;
    const int64_t blocks = std::max<int64_t>(1, std::min<int64_t>((total + kThreads - 1) / kThreads,
                                                                  int64_t(std::max(a.sm_count, 1)) * 16));
    const auto grid = static_cast<unsigned>(blocks);
    auto stream = static_cast<cudaStream_t>(a.stream);
    const T* x = static_cast<const T*>(a.x);
    T* y = static_cast<T*>(a.y);
    const T* r = static_cast<const T*>(a.residual);
    if (r)
        swap_middle_kernel<T, VEC, true><<<grid, kThreads, 0, stream>>>(x, y, r, total, a.outer, a.inner, vectors);
    else
        swap_middle_kernel<T, VEC, false><<<grid, kThreads, 0, stream>>>(x, y, r, total, a.outer, a.inner, vectors);
    return cudaGetLastError();
}

template <typename T>
cudaError_t launch(const SwapMiddleArgs& a) {
    constexpr int kVec = 16 / sizeof(T);
    const auto aligned = [](const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; };
    if (a.channels % kVec == 0 && aligned(a.x) && aligned(a.y) && aligned(a.residual)) return launch_vec<T, kVec>(a);
    return launch_vec<T, 1>(a);
}

}  // namespace

std::string swap_middle_launch(const SwapMiddleArgs& a) {
    if (a.batch <= 0 || a.outer <= 0 || a.inner <= 0 || a.channels <= 0) return "swap_middle: empty tensor";
    if (!a.x || !a.y) return "swap_middle: null pointer";
    cudaError_t err = cudaSuccess;
    switch (a.dtype) {
        case ElementType::Float32: err = launch<float>(a); break;
        case ElementType::Float16: err = launch<__half>(a); break;
        case ElementType::BFloat16: err = launch<__nv_bfloat16>(a); break;
    }
    if (err != cudaSuccess) return std::string("swap_middle kernel: ") + cudaGetErrorString(err);
    return {};
}

}  // namespace lsync::kernels
