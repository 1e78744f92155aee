#include "channel_bias.h"
#include "element_types.cuh"

#include <cuda_runtime.h>

#include <algorithm>
#include <climits>
#include <cstdint>

namespace lsync::kernels {

namespace {

constexpr int kThreads = 256;

// blockIdx.y walks the rows (one (n, c) plane each), so the channel is one modulo per row rather than a 64-bit
// division per vector; blockIdx.x and the threads walk the plane's vectors.
template <typename T, int VEC>
__global__ void __launch_bounds__(kThreads)
    add_channel_bias(T* __restrict__ y, const T* __restrict__ bias, int64_t rows, int64_t plane_vectors,
                     int64_t channels, int64_t rows_per_bias) {
    for (int64_t row = blockIdx.y; row < rows; row += gridDim.y) {
        // rows_per_bias = samples_per_bias * channels (0: one bias row): the bias row of this sample.
        const int64_t bias_row = rows_per_bias > 0 ? row / rows_per_bias : 0;
        const float b = to_float(bias[bias_row * channels + row % channels]);
        auto* p = reinterpret_cast<Pack<T, VEC>*>(y) + row * plane_vectors;
        for (int64_t i = blockIdx.x * int64_t(kThreads) + threadIdx.x; i < plane_vectors;
             i += int64_t(gridDim.x) * kThreads) {
            Pack<T, VEC> v = p[i];
#pragma unroll
            for (int k = 0; k < VEC; ++k) v.v[k] = from_float<T>(to_float(v.v[k]) + b);
            p[i] = v;
        }
    }
}

// Channels innermost: the grid's threads are split into row_step rows of `cols` vector columns (the idle rest is
// less than one row), so a thread keeps one column, loads its VEC biases once and walks down the rows;
// consecutive threads touch consecutive vectors. kUnroll rows are loaded before any is stored, so several
// 16-byte loads are in flight per thread.
constexpr int kUnroll = 4;

// The pixel row of an [N, H + 1, W + 1] output that pixel row p of the [N, H, W] input lands on: image row
// R = p / W of image n = R / H goes to (R + n) * (W + 1). 32-bit divisions (the launch checks that p fits).
__device__ inline int64_t padded_row(int64_t p, uint32_t w, uint32_t h) {
    const uint32_t r = static_cast<uint32_t>(p) / w;
    return p + r + int64_t(r / h) * (int64_t(w) + 1);
}

// With RESIDUAL, y = r + (y + bias), the biased value rounded first (a resnet's conv2 bias and its shortcut); with
// RESBIAS too, y = (r + rbias) + (y + bias), each sum rounded as the separate adds store it (a shortcut conv's bias,
// or the bias of the conv that made the block's input, added here instead of in a pass of its own). The adds
// are add_in_place's, in the storage type: the biases stay packed in half the registers (the fp32 form held 100
// per thread, two blocks per multiprocessor). With PADDED the sums go to `out`, the images padded by one pixel
// right and bottom (out_w = W, out_h = H), instead of back into y.
template <typename T, int VEC, bool RESIDUAL, bool RESBIAS, bool PADDED>
__global__ void __launch_bounds__(kThreads)
    add_channel_bias_inner(T* __restrict__ y, const T* __restrict__ bias, const T* __restrict__ r,
                           const T* __restrict__ rbias, T* __restrict__ out, uint32_t out_w, uint32_t out_h,
                           int64_t rows, int64_t cols, int64_t row_step) {
    const int64_t g = int64_t(blockIdx.x) * kThreads + threadIdx.x;
    if (g >= row_step * cols) return;
    const int64_t col = g % cols;
    Pack<T, VEC> b, rb;
#pragma unroll
    for (int k = 0; k < VEC; ++k) {
        b.v[k] = bias[col * VEC + k];
        rb.v[k] = RESBIAS ? rbias[col * VEC + k] : from_float<T>(0.f);
    }
    auto* p = reinterpret_cast<Pack<T, VEC>*>(y) + col;
    const auto* pr = reinterpret_cast<const Pack<T, VEC>*>(r) + col;
    auto* po = reinterpret_cast<Pack<T, VEC>*>(PADDED ? out : y) + col;
    for (int64_t row = g / cols; row < rows; row += row_step * kUnroll) {
        Pack<T, VEC> v[kUnroll], res[kUnroll];
#pragma unroll
        for (int u = 0; u < kUnroll; ++u)
            if (row + u * row_step < rows) {
                v[u] = p[(row + u * row_step) * cols];
                if constexpr (RESIDUAL) res[u] = pr[(row + u * row_step) * cols];
            }
#pragma unroll
        for (int u = 0; u < kUnroll; ++u)
            if (row + u * row_step < rows) {
                add_in_place(v[u], b);
                if constexpr (RESIDUAL) {
                    if constexpr (RESBIAS) add_in_place(res[u], rb);
                    add_in_place(res[u], v[u]);  // r + (y + bias): the same sum in either operand order
                    v[u] = res[u];
                }
                const int64_t dst = PADDED ? padded_row(row + u * row_step, out_w, out_h) : row + u * row_step;
                po[dst * cols] = v[u];
            }
    }
}

template <typename T>
cudaError_t launch_inner(const ChannelBiasArgs& a) {
    constexpr int kVec = 16 / sizeof(T);
    const bool vec = a.channels % kVec == 0 && reinterpret_cast<uintptr_t>(a.y) % 16 == 0 &&
                     reinterpret_cast<uintptr_t>(a.residual) % 16 == 0 && reinterpret_cast<uintptr_t>(a.out) % 16 == 0;
    const int64_t cols = a.channels / (vec ? kVec : 1);
    // A few waves of blocks (each thread then does a few unrolled steps), never fewer threads than one row.
    const int64_t want = std::max<int64_t>(1, (a.rows * cols + kThreads * kUnroll - 1) / (kThreads * kUnroll));
    const int64_t blocks = std::max(std::min<int64_t>(want, int64_t(a.sm_count) * 8), (cols + kThreads - 1) / kThreads);
    const int64_t row_step = blocks * kThreads / cols;
    auto stream = static_cast<cudaStream_t>(a.stream);
    auto* y = static_cast<T*>(a.y);
    const auto* bias = static_cast<const T*>(a.bias);
    const auto* r = static_cast<const T*>(a.residual);
    const auto* rb = static_cast<const T*>(a.residual_bias);
    auto* out = static_cast<T*>(a.out);
    const auto grid = static_cast<unsigned>(blocks);
    const auto run = [&](auto kernel) {
        kernel<<<grid, kThreads, 0, stream>>>(y, bias, r, rb, out, static_cast<uint32_t>(a.out_width),
                                              static_cast<uint32_t>(a.out_height), a.rows, cols, row_step);
    };
    if (out && vec)
        rb ? run(add_channel_bias_inner<T, kVec, true, true, true>)
           : run(add_channel_bias_inner<T, kVec, true, false, true>);
    else if (out)
        rb ? run(add_channel_bias_inner<T, 1, true, true, true>) : run(add_channel_bias_inner<T, 1, true, false, true>);
    else if (vec && r && rb)
        run(add_channel_bias_inner<T, kVec, true, true, false>);
    else if (vec && r)
        run(add_channel_bias_inner<T, kVec, true, false, false>);
    else if (vec)
        run(add_channel_bias_inner<T, kVec, false, false, false>);
    else if (r && rb)
        run(add_channel_bias_inner<T, 1, true, true, false>);
    else if (r)
        run(add_channel_bias_inner<T, 1, true, false, false>);
    else
        run(add_channel_bias_inner<T, 1, false, false, false>);
    return cudaGetLastError();
}

template <typename T>
cudaError_t launch(const ChannelBiasArgs& a) {
    if (a.channels_inner) return launch_inner<T>(a);
    constexpr int kVec = 16 / sizeof(T);
    const bool vec = a.plane % kVec == 0 && reinterpret_cast<uintptr_t>(a.y) % 16 == 0;
    const int64_t plane_vectors = a.plane / (vec ? kVec : 1);
    // Enough blocks for a few waves: the plane's vectors across x, the rows (capped) across y.
    const int64_t x_blocks = std::max<int64_t>(1, std::min<int64_t>((plane_vectors + kThreads - 1) / kThreads,
                                                                    int64_t(a.sm_count) * 8));
    const int64_t y_blocks = std::min<int64_t>(a.rows, std::max<int64_t>(1, int64_t(a.sm_count) * 16 / x_blocks));
    const dim3 grid(static_cast<unsigned>(x_blocks), static_cast<unsigned>(std::min<int64_t>(y_blocks, 65535)));
    auto stream = static_cast<cudaStream_t>(a.stream);
    auto* y = static_cast<T*>(a.y);
    const auto* bias = static_cast<const T*>(a.bias);
    const int64_t rows_per_bias = a.samples_per_bias * a.channels;
    if (vec)
        add_channel_bias<T, kVec><<<grid, kThreads, 0, stream>>>(y, bias, a.rows, plane_vectors, a.channels,
                                                                  rows_per_bias);
    else
        add_channel_bias<T, 1><<<grid, kThreads, 0, stream>>>(y, bias, a.rows, plane_vectors, a.channels,
                                                               rows_per_bias);
    return cudaGetLastError();
}

}  // namespace

std::string channel_bias_launch(const ChannelBiasArgs& a) {
    if (a.residual && !a.channels_inner) return "channel bias: a residual needs channels innermost";
    if (a.residual_bias && !a.residual) return "channel bias: a residual bias needs a residual";
    if (a.out && !(a.residual && a.out_width > 0 && a.out_height > 0 && a.rows % (a.out_width * a.out_height) == 0 &&
                   a.rows < (int64_t(1) << 32)))
        return "channel bias: a padded output needs a residual, its image size and fewer than 2^32 pixels";
    if (a.channels_inner ? (a.rows <= 0 || a.channels <= 0 || a.samples_per_bias != 0)
                         : (a.rows <= 0 || a.plane <= 0 || a.channels <= 0 || a.rows % a.channels != 0 ||
                            a.samples_per_bias < 0 ||
                            (a.samples_per_bias > 0 && (a.rows / a.channels) % a.samples_per_bias != 0)))
        return "channel bias: bad shape";
    // The grid is one dimension of at most 2^31 - 1 blocks (one block covers at least one row of vectors).
    if (a.channels_inner && a.channels > int64_t(INT_MAX) * kThreads) return "channel bias: too many channels";
    if (!a.y || !a.bias) return "channel bias: null pointer";
    cudaError_t err = cudaSuccess;
    switch (a.dtype) {
        case ElementType::Float32: err = launch<float>(a); break;
        case ElementType::Float16: err = launch<__half>(a); break;
        case ElementType::BFloat16: err = launch<__nv_bfloat16>(a); break;
    }
    if (err != cudaSuccess) return std::string("channel bias kernel: ") + cudaGetErrorString(err);
    return {};
}

}  // namespace lsync::kernels
