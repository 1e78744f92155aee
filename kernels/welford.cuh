#pragma once
// Welford/Chan statistics shared by the GroupNorm kernels (channels outer and channels last): a partial is
// (count, mean, M2), partials merge exactly up to rounding (Chan et al.), so long groups lose no precision to a
// running sum of squares.

#include <cuda_runtime.h>

namespace lsync::kernels {

struct Welford {
    float n, mean, m2;
};

/// a += (nb, mb, m2b); an empty partial (nb == 0) changes nothing.
__device__ inline void merge(Welford& a, float nb, float mb, float m2b) {
    if (nb == 0.f) return;
    const float n = a.n + nb;
    const float delta = mb - a.mean;
    const float ratio = __fdividef(nb, n);  // 2 ulp, n < 2^126
    a.mean += delta * ratio;
    a.m2 += m2b + delta * delta * a.n * ratio;
    a.n = n;
}

/// Chan merge over the 32 lanes of a full warp; the result is valid in lane 0.
__device__ inline Welford warp_reduce(Welford w) {
    for (int off = 16; off > 0; off >>= 1) {
        const float n = __shfl_down_sync(0xffffffffu, w.n, off);
        const float m = __shfl_down_sync(0xffffffffu, w.mean, off);
        const float q = __shfl_down_sync(0xffffffffu, w.m2, off);
        merge(w, n, m, q);
    }
    return w;
}

}  // namespace lsync::kernels
