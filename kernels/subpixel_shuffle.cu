#include "subpixel_shuffle.h"

#include "element_types.cuh"
#include "launch_shape.h"

#include <cuda_runtime.h>

#include <cstdint>

namespace lsync::kernels {

namespace {

constexpr int kThreads = 256;

// Thread i handles output vector i of y (VEC channels of one output pixel), in y's memory order, so the stores
// are coalesced; the loads read whole vectors of one phase's channel block.
template <typename T, int VEC>
__global__ void __launch_bounds__(kThreads)
    shuffle_vectors(const T* __restrict__ z, const T* __restrict__ bias, T* __restrict__ y, int64_t count,
                    int64_t height, int64_t width, int64_t channels) {
    const int64_t vectors = channels / VEC;  // per output pixel
    const int64_t out_w = 2 * width, out_h = 2 * height;
    for (int64_t i = blockIdx.x * int64_t(kThreads) + threadIdx.x; i < count; i += int64_t(gridDim.x) * kThreads) {
        const int64_t v = i % vectors;
        int64_t pixel = i / vectors;
        const int64_t ox = pixel % out_w;
        pixel /= out_w;
        const int64_t oy = pixel % out_h;
        const int64_t n = pixel / out_h;
        const int64_t a = oy & 1, b = ox & 1;
        const int64_t zy = (oy >> 1) + a, zx = (ox >> 1) + b;
        const int64_t src = (((n * (height + 1) + zy) * (width + 1) + zx) * 4 + (2 * a + b)) * channels + v * VEC;
        const auto in = *reinterpret_cast<const Pack<T, VEC>*>(z + src);
        Pack<T, VEC> out;
        if (bias) {
            const auto bv = *reinterpret_cast<const Pack<T, VEC>*>(bias + v * VEC);
#pragma unroll
            for (int k = 0; k < VEC; ++k) out.v[k] = from_float<T>(to_float(in.v[k]) + to_float(bv.v[k]));
        } else {
            out = in;
        }
        *reinterpret_cast<Pack<T, VEC>*>(y + i * VEC) = out;
    }
}

template <typename T>
void launch_typed(const SubpixelShuffleArgs& a) {
    constexpr int kVec = 16 / sizeof(T);
    const auto stream = static_cast<cudaStream_t>(a.stream);
    const int64_t pixels = a.batch * 4 * a.height * a.width;
    const auto* z = static_cast<const T*>(a.z);
    const auto* bias = static_cast<const T*>(a.bias);
    auto* y = static_cast<T*>(a.y);
    if (a.channels % kVec == 0 && aligned16(a.z) && aligned16(a.y) && (!a.bias || aligned16(a.bias))) {
        const int64_t count = pixels * (a.channels / kVec);
        const unsigned grid = grid_stride_blocks(count, kThreads, a.sm_count, 16);
        shuffle_vectors<T, kVec><<<grid, kThreads, 0, stream>>>(z, bias, y, count, a.height, a.width, a.channels);
    } else {
        const int64_t count = pixels * a.channels;
        const unsigned grid = grid_stride_blocks(count, kThreads, a.sm_count, 16);
        shuffle_vectors<T, 1><<<grid, kThreads, 0, stream>>>(z, bias, y, count, a.height, a.width, a.channels);
    }
}

}  // namespace

std::string subpixel_shuffle_unsupported(const SubpixelShuffleArgs& a) {
    if (a.batch <= 0 || a.height <= 0 || a.width <= 0 || a.channels <= 0) return "empty sub-pixel shuffle";
    return {};
}

std::string subpixel_shuffle_launch(const SubpixelShuffleArgs& a) {
    auto why = subpixel_shuffle_unsupported(a);
    if (!why.empty()) return why;
    if (!a.z || !a.y) return "subpixel_shuffle_launch: null pointer";
    switch (a.dtype) {
        case ElementType::Float32: launch_typed<float>(a); break;
        case ElementType::Float16: launch_typed<__half>(a); break;
        case ElementType::BFloat16: launch_typed<__nv_bfloat16>(a); break;
    }
    const auto err = cudaGetLastError();
    if (err != cudaSuccess) return std::string("sub-pixel shuffle kernel: ") + cudaGetErrorString(err);
    return {};
}

}  // namespace lsync::kernels
