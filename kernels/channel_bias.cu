#include "channel_bias.h"

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>

namespace lsync::kernels {

namespace {

constexpr int kThreads = 256;

__device__ inline float to_float(float v) { return v; }
__device__ inline float to_float(__half v) { return __half2float(v); }
__device__ inline float to_float(__nv_bfloat16 v) { return __bfloat162float(v); }
template <typename T> __device__ inline T from_float(float v);
template <> __device__ inline float from_float<float>(float v) { return v; }
template <> __device__ inline __half from_float<__half>(float v) { return __float2half_rn(v); }
template <> __device__ inline __nv_bfloat16 from_float<__nv_bfloat16>(float v) { return __float2bfloat16_rn(v); }

template <typename T, int VEC> struct alignas(sizeof(T) * VEC) Pack {
    T v[VEC];
};

// One thread per VEC consecutive elements of a plane, grid-stride; `vectors` = rows * plane / VEC.
template <typename T, int VEC>
__global__ void __launch_bounds__(kThreads)
    add_channel_bias(T* __restrict__ y, const T* __restrict__ bias, int64_t vectors, int64_t plane_vectors,
                     int64_t channels) {
    for (int64_t i = blockIdx.x * int64_t(kThreads) + threadIdx.x; i < vectors; i += int64_t(gridDim.x) * kThreads) {
        const float b = to_float(bias[(i / plane_vectors) % channels]);
        auto* p = reinterpret_cast<Pack<T, VEC>*>(y) + i;
        Pack<T, VEC> v = *p;
#pragma unroll
        for (int k = 0; k < VEC; ++k) v.v[k] = from_float<T>(to_float(v.v[k]) + b);
        *p = v;
    }
}

template <typename T>
cudaError_t launch(const ChannelBiasArgs& a) {
    constexpr int kVec = 16 / sizeof(T);
    const bool vec = a.plane % kVec == 0 && reinterpret_cast<uintptr_t>(a.y) % 16 == 0;
    const int width = vec ? kVec : 1;
    const int64_t vectors = a.rows * a.plane / width;
    const int64_t blocks = std::min<int64_t>((vectors + kThreads - 1) / kThreads, int64_t(a.sm_count) * 16);
    auto stream = static_cast<cudaStream_t>(a.stream);
    auto* y = static_cast<T*>(a.y);
    const auto* bias = static_cast<const T*>(a.bias);
    if (vec)
        add_channel_bias<T, kVec><<<blocks, kThreads, 0, stream>>>(y, bias, vectors, a.plane / kVec, a.channels);
    else
        add_channel_bias<T, 1><<<blocks, kThreads, 0, stream>>>(y, bias, vectors, a.plane, a.channels);
    return cudaGetLastError();
}

}  // namespace

std::string channel_bias_launch(const ChannelBiasArgs& a) {
    if (a.rows <= 0 || a.plane <= 0 || a.channels <= 0 || a.rows % a.channels != 0) return "channel bias: bad shape";
    if (!a.y || !a.bias) return "channel bias: null pointer";
    cudaError_t err = cudaSuccess;
    switch (a.dtype) {
        case BiasDType::Float32: err = launch<float>(a); break;
        case BiasDType::Float16: err = launch<__half>(a); break;
        case BiasDType::BFloat16: err = launch<__nv_bfloat16>(a); break;
    }
    if (err != cudaSuccess) return std::string("channel bias kernel: ") + cudaGetErrorString(err);
    return {};
}

}  // namespace lsync::kernels
