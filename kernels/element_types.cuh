#pragma once
// Device helpers shared by our kernels: fp32 <-> storage-type conversions (one rounding, to nearest even, as
// ATen's casts) and the 16-byte vector the memory-bound kernels load and store.

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <type_traits>

namespace lsync::kernels {

__device__ inline float to_float(float v) { return v; }
__device__ inline float to_float(__half v) { return __half2float(v); }
__device__ inline float to_float(__nv_bfloat16 v) { return __bfloat162float(v); }

template <typename T>
__device__ inline T from_float(float v);
template <>
__device__ inline float from_float<float>(float v) { return v; }
template <>
__device__ inline __half from_float<__half>(float v) { return __float2half_rn(v); }
template <>
__device__ inline __nv_bfloat16 from_float<__nv_bfloat16>(float v) { return __float2bfloat16_rn(v); }

/// VEC elements of T moved as one aligned load or store (16 bytes for the vectorised paths).
template <typename T, int VEC>
struct alignas(sizeof(T) * VEC) Pack {
    T v[VEC];
};

/// a += b element-wise, each sum rounded to T as ATen's fp32 add then cast stores it. For fp16 and bf16 that is T's
/// own add (packed two at a time where VEC is even): fp32 holds more than twice their significand bits plus two,
/// so the fp32 sum rounded once to T is the exact sum rounded once (no double rounding), without the conversions.
template <typename T, int VEC>
__device__ inline void add_in_place(Pack<T, VEC>& a, const Pack<T, VEC>& b) {
    if constexpr (std::is_same_v<T, float>) {
#pragma unroll
        for (int i = 0; i < VEC; ++i) a.v[i] += b.v[i];
    } else if constexpr (VEC % 2 == 0) {
        using T2 = std::conditional_t<std::is_same_v<T, __half>, __half2, __nv_bfloat162>;
        auto* x = reinterpret_cast<T2*>(a.v);
        const auto* y = reinterpret_cast<const T2*>(b.v);
#pragma unroll
        for (int i = 0; i < VEC / 2; ++i) x[i] = __hadd2(x[i], y[i]);
    } else {
#pragma unroll
        for (int i = 0; i < VEC; ++i) a.v[i] = __hadd(a.v[i], b.v[i]);
    }
}

}  // namespace lsync::kernels
