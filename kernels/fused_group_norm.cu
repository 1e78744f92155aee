#include "fused_group_norm.h"
#include "element_types.cuh"
#include "group_norm_nhwc.h"
#include "welford.cuh"

#include <cuda_runtime.h>

#include <algorithm>
#include <climits>
#include <cstdint>

namespace lsync::kernels {

namespace {

constexpr int kThreads = 256;
constexpr int kWarps = kThreads / 32;
constexpr int kUnroll = 4;  // independent 16-byte loads in flight per thread
constexpr int kStepsPerBlock = 4;  // a block's chunk: kStepsPerBlock * kUnroll vectors per thread at most

// Where a (batch, group) lives: `nseg` contiguous segments of `seg_len` elements, `seg_stride` apart; inside a
// segment the channel changes every `chan_len` elements. Channels outer: one segment per group (its C/G channels
// of F*P elements each). Frames outer: one segment per frame (C/G planes of P elements each).
struct Geometry {
    int64_t groups = 0, cg = 0, nseg = 1, seg_len = 0, seg_stride = 0, chan_len = 0;
    int64_t batch_stride = 0, group_stride = 0;
    // y in frames-outer order while x is channels outer: y's offset is recomputed per vector.
    bool transpose_out = false;
    int64_t plane = 0, channels = 0;
    int64_t splits = 1, chunk = 0;  // blocks per segment and elements per block (a multiple of the vector)
};

// Chan merge over the block; the result is valid in thread 0.
__device__ inline Welford block_reduce(Welford w) {
    __shared__ float sh[3][kWarps];
    w = warp_reduce(w);
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    if (lane == 0) {
        sh[0][warp] = w.n;
        sh[1][warp] = w.mean;
        sh[2][warp] = w.m2;
    }
    __syncthreads();
    Welford r{0.f, 0.f, 0.f};
    if (threadIdx.x == 0)
        for (int i = 0; i < kWarps; ++i) merge(r, sh[0][i], sh[1][i], sh[2][i]);
    return r;
}

// Decomposes a block index into (group of the whole batch, segment, split) and returns the segment's offset.
__device__ inline int64_t segment_of(const Geometry& geo, int64_t& gi, int64_t& split) {
    const int64_t blk = blockIdx.x;
    split = blk % geo.splits;
    const int64_t rest = blk / geo.splits;
    const int64_t seg = rest % geo.nseg;
    gi = rest / geo.nseg;
    const int64_t b = gi / geo.groups, g = gi % geo.groups;
    return b * geo.batch_stride + g * geo.group_stride + seg * geo.seg_stride;
}

// Pass 1: Welford partial (count, mean, M2) of each block's chunk of a segment, into ws[block * 3 ...]. Each
// thread loads kUnroll independent vectors per step (enough bytes in flight to approach the memory bandwidth);
// their mean and M2 are exact in registers, then merged (Chan), so long groups lose no precision to a running
// sum of squares.
template <typename T, int VEC>
__global__ void __launch_bounds__(kThreads) group_norm_stats(const T* __restrict__ x, Geometry geo, float* __restrict__ ws) {
    int64_t gi, split;
    const T* p = x + segment_of(geo, gi, split);
    const int64_t start = split * geo.chunk;
    const int64_t end = start + geo.chunk < geo.seg_len ? start + geo.chunk : geo.seg_len;
    constexpr int64_t kStride = int64_t(kThreads) * VEC;
    Welford w{0.f, 0.f, 0.f};
    for (int64_t e0 = start + int64_t(threadIdx.x) * VEC; e0 < end; e0 += kStride * kUnroll) {
        Pack<T, VEC> pk[kUnroll];
#pragma unroll
        for (int u = 0; u < kUnroll; ++u)
            if (e0 + u * kStride < end) pk[u] = *reinterpret_cast<const Pack<T, VEC>*>(p + e0 + u * kStride);
        float s = 0.f;
        int n = 0;
#pragma unroll
        for (int u = 0; u < kUnroll; ++u)
            if (e0 + u * kStride < end) {
                n += VEC;
#pragma unroll
                for (int i = 0; i < VEC; ++i) s += to_float(pk[u].v[i]);
            }
        const float m = __fdividef(s, float(n));
        float q = 0.f;
#pragma unroll
        for (int u = 0; u < kUnroll; ++u)
            if (e0 + u * kStride < end) {
#pragma unroll
                for (int i = 0; i < VEC; ++i) {
                    const float d = to_float(pk[u].v[i]) - m;
                    q += d * d;
                }
            }
        merge(w, float(n), m, q);
    }
    const Welford r = block_reduce(w);
    if (threadIdx.x == 0) {
        float* out = ws + int64_t(blockIdx.x) * 3;
        out[0] = r.n;
        out[1] = r.mean;
        out[2] = r.m2;
    }
}

// Pass 2: each block merges its group's partials (nseg * splits of them, from L2), then normalises its chunk:
// y = act(x * a_c + b_c) with a_c = rstd * weight[c], b_c = bias[c] - mean * a_c (fp32). The first loads are
// issued before the merge so they overlap it.
template <typename T, typename W, int VEC, bool SILU>
__global__ void __launch_bounds__(kThreads)
group_norm_apply(const T* __restrict__ x, T* __restrict__ y, const W* __restrict__ weight, const W* __restrict__ bias,
                 Geometry geo, const float* __restrict__ ws, float eps) {
    __shared__ float stats[2];
    int64_t gi, split;
    const int64_t off = segment_of(geo, gi, split);
    const T* px = x + off;
    const int64_t start = split * geo.chunk;
    const int64_t end = start + geo.chunk < geo.seg_len ? start + geo.chunk : geo.seg_len;
    constexpr int64_t kStride = int64_t(kThreads) * VEC;
    int64_t e0 = start + int64_t(threadIdx.x) * VEC;
    Pack<T, VEC> pk[kUnroll];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u)
        if (e0 + u * kStride < end) pk[u] = *reinterpret_cast<const Pack<T, VEC>*>(px + e0 + u * kStride);

    const int64_t parts = geo.nseg * geo.splits;
    const float* pw = ws + gi * parts * 3;
    Welford w{0.f, 0.f, 0.f};
    for (int64_t i = threadIdx.x; i < parts; i += kThreads) merge(w, pw[i * 3], pw[i * 3 + 1], pw[i * 3 + 2]);
    const Welford r = block_reduce(w);
    if (threadIdx.x == 0) {
        const float var = r.n > 0.f ? fmaxf(__fdividef(r.m2, r.n), 0.f) : 0.f;
        stats[0] = r.mean;
        stats[1] = rsqrtf(var + eps);
    }
    __syncthreads();
    const float mean = stats[0], rstd = stats[1];
    const int64_t c0 = (gi % geo.groups) * geo.cg;
    const unsigned chan_len = static_cast<unsigned>(geo.chan_len);
    const unsigned plane = static_cast<unsigned>(geo.plane);
    T* py = y + off;
    const int64_t ybase = (gi / geo.groups) * geo.batch_stride;

    while (e0 < end) {
#pragma unroll
        for (int u = 0; u < kUnroll; ++u) {
            const int64_t e = e0 + u * kStride;
            if (e >= end) break;
            // A vector never straddles two channels: chan_len is a multiple of VEC.
            const int64_t c = c0 + static_cast<unsigned>(e) / chan_len;
            const float a = rstd * (weight ? to_float(weight[c]) : 1.f);
            const float b = (bias ? to_float(bias[c]) : 0.f) - mean * a;
            Pack<T, VEC> out;
#pragma unroll
            for (int i = 0; i < VEC; ++i) {
                float v = fmaf(to_float(pk[u].v[i]), a, b);
                if (SILU) v = v * __frcp_rn(1.f + __expf(-v));
                out.v[i] = from_float<T>(v);
            }
            if (geo.transpose_out) {
                // x: [B, C, F, P] -> y: [B, F, C, P]; a vector stays inside one plane (P is a multiple of VEC).
                const unsigned rr = static_cast<unsigned>(e) % chan_len;
                const unsigned f = rr / plane, pix = rr % plane;
                *reinterpret_cast<Pack<T, VEC>*>(y + ybase + (int64_t(f) * geo.channels + c) * geo.plane + pix) = out;
            } else {
                *reinterpret_cast<Pack<T, VEC>*>(py + e) = out;
            }
        }
        e0 += kStride * kUnroll;
#pragma unroll
        for (int u = 0; u < kUnroll; ++u)
            if (e0 + u * kStride < end) pk[u] = *reinterpret_cast<const Pack<T, VEC>*>(px + e0 + u * kStride);
    }
}

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

bool transposes(const GroupNormArgs& a) { return a.y_frames_outer && !a.frames_outer && a.frames > 1; }

int vector_width(const GroupNormArgs& a, int64_t chan_len) {
    const int elem = a.dtype == ElementType::Float32 ? 4 : 2;
    const int vec = 16 / elem;
    const bool aligned = reinterpret_cast<uintptr_t>(a.x) % 16 == 0 && reinterpret_cast<uintptr_t>(a.y) % 16 == 0;
    return aligned && chan_len % vec == 0 && (!transposes(a) || a.plane % vec == 0) ? vec : 1;
}

Geometry geometry(const GroupNormArgs& a) {
    Geometry g;
    g.groups = a.groups;
    g.cg = a.channels / a.groups;
    g.transpose_out = transposes(a);
    g.plane = a.plane;
    g.channels = a.channels;
    const int64_t P = a.plane, F = a.frames, C = a.channels;
    if (a.frames_outer) {  // memory [B, F, C, P]
        g.nseg = F;
        g.chan_len = P;
        g.seg_len = g.cg * P;
        g.seg_stride = C * P;
        g.batch_stride = F * C * P;
        g.group_stride = g.cg * P;
    } else {  // memory [B, C, F, P]
        g.nseg = 1;
        g.chan_len = F * P;
        g.seg_len = g.cg * F * P;
        g.seg_stride = 0;
        g.batch_stride = C * F * P;
        g.group_stride = g.cg * F * P;
    }
    // Many short blocks (up to 64 KiB of fp16 each) rather than one wave of long ones, so the last wave's tail
    // is short; halved down to one vector per thread while there are fewer than 8 blocks per multiprocessor.
    const int vec = vector_width(a, g.chan_len);
    const int64_t step = int64_t(kThreads) * vec;
    const int64_t segments = a.batch * a.groups * g.nseg;
    const int64_t want_blocks = int64_t(std::max(a.sm_count, 1)) * 8;
    g.chunk = step * kUnroll * kStepsPerBlock;
    while (g.chunk > step && segments * ceil_div(g.seg_len, g.chunk) < want_blocks) g.chunk /= 2;
    g.splits = ceil_div(g.seg_len, g.chunk);
    return g;
}

int64_t total_blocks(const GroupNormArgs& a, const Geometry& g) { return a.batch * a.groups * g.nseg * g.splits; }

template <typename T, typename W, int VEC>
cudaError_t launch_typed(const GroupNormArgs& a, const Geometry& g) {
    const auto stream = static_cast<cudaStream_t>(a.stream);
    const auto blocks = static_cast<unsigned>(total_blocks(a, g));
    const T* x = static_cast<const T*>(a.x);
    T* y = static_cast<T*>(a.y);
    group_norm_stats<T, VEC><<<blocks, kThreads, 0, stream>>>(x, g, a.workspace);
    const W* w = static_cast<const W*>(a.weight);
    const W* b = static_cast<const W*>(a.bias);
    if (a.silu)
        group_norm_apply<T, W, VEC, true><<<blocks, kThreads, 0, stream>>>(x, y, w, b, g, a.workspace, a.eps);
    else
        group_norm_apply<T, W, VEC, false><<<blocks, kThreads, 0, stream>>>(x, y, w, b, g, a.workspace, a.eps);
    return cudaGetLastError();
}

template <typename T, typename W>
cudaError_t launch_vec(const GroupNormArgs& a, const Geometry& g) {
    constexpr int kVec = 16 / sizeof(T);
    return vector_width(a, g.chan_len) == kVec ? launch_typed<T, W, kVec>(a, g) : launch_typed<T, W, 1>(a, g);
}

template <typename T>
cudaError_t launch_affine(const GroupNormArgs& a, const Geometry& g) {
    return a.affine_fp32 ? launch_vec<T, float>(a, g) : launch_vec<T, T>(a, g);
}

}  // namespace

std::string group_norm_unsupported(const GroupNormArgs& a) {
    if (a.channels_last) return nhwc::group_norm_unsupported(a);
    if (a.valid_frames) return "valid frames need the channels-last kernels";
    if (a.input_bias) return "an input bias needs the channels-last layout";
    if (a.batch <= 0 || a.channels <= 0 || a.groups <= 0 || a.frames <= 0 || a.plane <= 0)
        return "empty tensor or non-positive sizes";
    if (a.channels % a.groups != 0) return "channels are not a multiple of groups";
    const Geometry g = geometry(a);
    if (g.seg_len > INT_MAX) return "a group's contiguous run exceeds 2^31 elements";
    if (total_blocks(a, g) > INT_MAX) return "too many blocks";
    if (!(a.eps >= 0.f)) return "eps must be non-negative";
    return {};
}

int64_t group_norm_workspace_floats(const GroupNormArgs& a) {
    if (a.channels_last) return nhwc::group_norm_workspace_floats(a);
    const Geometry g = geometry(a);
    return total_blocks(a, g) * 3;
}

std::string group_norm_launch(const GroupNormArgs& a) {
    auto why = group_norm_unsupported(a);
    if (!why.empty()) return why;
    if (!a.x || !a.y || !a.workspace) return "group_norm_launch: null pointer";
    if (a.channels_last) return nhwc::group_norm_launch(a);
    const Geometry g = geometry(a);
    cudaError_t err = cudaSuccess;
    switch (a.dtype) {
        case ElementType::Float32: err = launch_vec<float, float>(a, g); break;
        case ElementType::Float16: err = launch_affine<__half>(a, g); break;
        case ElementType::BFloat16: err = launch_affine<__nv_bfloat16>(a, g); break;
    }
    if (err != cudaSuccess) return std::string("group_norm kernel: ") + cudaGetErrorString(err);
    return {};
}

}  // namespace lsync::kernels
