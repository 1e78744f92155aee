#pragma once
// Device helpers shared by our kernels: fp32 <-> storage-type conversions (one rounding, to nearest even, as
// ATen's casts) and the 16-byte vector the memory-bound kernels load and store.

#include <cuda_bf16.h>
#include <cuda_fp16.h>

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

}  // namespace lsync::kernels
