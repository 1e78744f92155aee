// GroupNorm (+ SiLU) on channels-last memory, [N, H, W, C] with the channels innermost.
//
// Every pixel is a row of C contiguous channels, so one group's elements are runs of C/G channels (8 bytes for
// the VAE's 128-channel fp16 layers), C apart. A block reading one group at a time would use a few bytes of every
// 32-byte sector; here a block owns a tile of whole groups (all C channels unless C passes 256 vectors) over a
// range of pixels instead. Its 256 threads are R pixel rows x TW vector columns: a thread keeps its column (VEC
// adjacent channels, one 16-byte load when C allows) for the whole chunk and steps down the pixels, so each
// warp reads whole contiguous pixel rows and every channel's weight and bias are read once per thread.
//
// Pass 1 (stats): each thread keeps per-channel Welford partials of its column (exact over a step of kUnroll
// pixels in registers, then Chan-merged), the block merges them per group through shared memory (a channel
// vector may straddle groups: C/G need not divide VEC) and writes one partial per (image, group, chunk) to the
// workspace. Pass 2 (apply): a block merges the chunk partials of its tile's groups, turns them into per-channel
// a = rstd * weight, b = bias - mean * a once per thread, then streams y = act(x * a + b). The numbers are those
// of the channels-outer kernel (fp32 statistics, biased variance, the same fmaf) but for SiLU's divide. An input
// bias (a VAE resnet's conv1 bias, GroupNormArgs::input_bias; or one row per image: a UNet resnet's conv1 bias
// plus its batch entry's time embedding) is added to every value as it is loaded, rounded to T as the separate
// bias pass would have stored it, in both passes: the norm of the biased tensor without writing it.

#include "group_norm_nhwc.h"

#include "element_types.cuh"
#include "welford.cuh"

#include <cuda_runtime.h>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <numeric>

namespace lsync::kernels::nhwc {

namespace {

constexpr int kThreads = 256;
constexpr int kWarps = kThreads / 32;
constexpr int kUnroll = 4;  // independent loads (pixel rows) in flight per thread
// The grid: about 4 blocks per multiprocessor, each a chunk of pixels: one wave of the statistics pass (4 blocks
// of 256 threads fit), and for the apply pass (3 fit) a wave and a third. 8 per multiprocessor (two waves, each
// block half the work) made a 256 px VAE's GroupNorm 9-10 % slower on an H200 (docs/performance-notes.md, section
// 24). Every block of pass 2 merges all chunk partials of its groups (tile groups x chunks reads from L2), so the
// chunk count is capped; at the VAE's batch of 16 the cap is not reached.
constexpr int64_t kBlocksPerSm = 4;
constexpr int64_t kMaxChunks = 128;

struct Geometry {
    int64_t pixels = 0;             // H * W: rows of one image
    int64_t channels = 0, groups = 0, cg = 0;
    int tile_vectors = 0;           // TW: vector columns of a full tile
    int rows_per_pass = 0;          // R = kThreads / TW
    int64_t tile_groups = 0;        // groups in a full tile (the last tile may hold fewer)
    int64_t tiles = 0, chunks = 0, chunk_rows = 0;
    int64_t input_bias_stride = 0;  // elements between images' input-bias rows: 0 (one row) or C
    const int32_t* valid_frames = nullptr;  // the statistics of image n cover its first valid_frames[n] frames
    int64_t frame_pixels = 0;               // of this many pixels each
};

// The part of the tensor one block covers: pixels [row0, row1) of `image`, groups [g0, g0 + groups).
struct Work {
    int64_t image, chunk, row0, row1, g0, groups;
};

__device__ inline Work block_work(const Geometry& geo) {
    int64_t b = blockIdx.x;
    Work w;
    w.chunk = b % geo.chunks;
    b /= geo.chunks;
    const int64_t tile = b % geo.tiles;
    w.image = b / geo.tiles;
    w.row0 = w.chunk * geo.chunk_rows;
    w.row1 = min(w.row0 + geo.chunk_rows, geo.pixels);
    w.g0 = tile * geo.tile_groups;
    w.groups = min(geo.tile_groups, geo.groups - w.g0);
    return w;
}

// Adds the input bias to a loaded vector in place, rounded to T as a separate add would have stored it
// (add_in_place: T's own add, which saves these conversion-bound passes two conversions per value).
template <typename T, int VEC, bool INBIAS>
__device__ inline void add_input_bias(Pack<T, VEC>& pk, const Pack<T, VEC>& ib) {
    if constexpr (INBIAS) add_in_place(pk, ib);
}

// The thread's VEC input-bias values (element loads: a bias row need not be 16-byte aligned); zeros without one.
template <typename T, int VEC, bool INBIAS>
__device__ inline Pack<T, VEC> load_input_bias(const T* __restrict__ in_bias, int64_t c) {
    Pack<T, VEC> ib;
#pragma unroll
    for (int i = 0; i < VEC; ++i) ib.v[i] = INBIAS ? in_bias[c + i] : from_float<T>(0.f);
    return ib;
}

// A thread's place in its block's tile: vector column `col` of pixel row `prow` (of R per pass).
struct Lane {
    int col, prow;
    bool active;  // false for threads past the tile's rows or its groups' channels
};

template <int VEC>
__device__ inline Lane thread_lane(const Work& wk, const Geometry& geo) {
    Lane l;
    l.col = threadIdx.x % geo.tile_vectors;
    l.prow = threadIdx.x / geo.tile_vectors;
    l.active = l.prow < geo.rows_per_pass && int64_t(l.col) * VEC < wk.groups * geo.cg;
    return l;
}

// A thread's running Welford partials over its vector of channels. All channels of a thread see the same pixels,
// so one count serves its VEC means and M2s.
template <int VEC>
struct ThreadPartials {
    float count = 0.f;
    float mean[VEC] = {};
    float m2[VEC] = {};
};

// The Chan merge of one step's rows into a thread's per-channel partials: the first n of pk are valid (a step's
// rows grow with u).
template <typename T, int VEC>
__device__ inline void accumulate_step(const Pack<T, VEC> (&pk)[kUnroll], int n, ThreadPartials<VEC>& part) {
    float& count = part.count;
    float(&mean)[VEC] = part.mean;
    float(&m2)[VEC] = part.m2;
    const float fn = float(n);
    const float total = count + fn;
    const float ratio = __fdividef(fn, total);
#pragma unroll
    for (int i = 0; i < VEC; ++i) {
        float s = 0.f;
#pragma unroll
        for (int u = 0; u < kUnroll; ++u)
            if (u < n) s += to_float(pk[u].v[i]);
        const float m = __fdividef(s, fn);
        float q = 0.f;
#pragma unroll
        for (int u = 0; u < kUnroll; ++u)
            if (u < n) {
                const float d = to_float(pk[u].v[i]) - m;
                q += d * d;
            }
        // Chan merge of (n, m, q) into (count, mean, m2), as merge() does with the count shared.
        const float delta = m - mean[i];
        mean[i] += delta * ratio;
        m2[i] += q + delta * delta * count * ratio;
    }
    count = total;
}

// Floats of shared memory the block's merge of its threads' partials takes: a count, VEC means and VEC M2s each.
template <int VEC>
constexpr int kPartialsFloats = (1 + 2 * VEC) * kThreads;

// The block merges its threads' partials per group and writes one (count, mean, M2) per (image, group, chunk).
// `sh` (kPartialsFloats<VEC> floats) is laid out [value][thread]: conflict-free stores, scattered reads.
template <int VEC>
__device__ inline void write_block_partials(const ThreadPartials<VEC>& part, const Work& wk, const Geometry& geo,
                                            float* sh, float* __restrict__ ws) {
    const float(&mean)[VEC] = part.mean;
    const float(&m2)[VEC] = part.m2;
    float* sh_count = sh;
    float* sh_mean = sh + kThreads;
    float* sh_m2 = sh + (1 + VEC) * kThreads;
    sh_count[threadIdx.x] = part.count;
#pragma unroll
    for (int i = 0; i < VEC; ++i) {
        sh_mean[i * kThreads + threadIdx.x] = mean[i];
        sh_m2[i * kThreads + threadIdx.x] = m2[i];
    }
    __syncthreads();

    // One warp per group: its R x C/G (thread row, channel) partials, then the warp's Chan reduction. A channel
    // vector may straddle groups (C/G need not divide VEC).
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const unsigned cg = static_cast<unsigned>(geo.cg);
    const unsigned contributors = static_cast<unsigned>(geo.rows_per_pass) * cg;
    for (int64_t gl = warp; gl < wk.groups; gl += kWarps) {
        Welford w{0.f, 0.f, 0.f};
        for (unsigned j = lane; j < contributors; j += 32) {
            const unsigned ch = static_cast<unsigned>(gl) * cg + j % cg;  // channel within the tile
            const unsigned t = (j / cg) * static_cast<unsigned>(geo.tile_vectors) + ch / VEC;
            const unsigned i = ch % VEC;
            merge(w, sh_count[t], sh_mean[i * kThreads + t], sh_m2[i * kThreads + t]);
        }
        w = warp_reduce(w);
        if (lane == 0) {
            float* out = ws + ((wk.image * geo.groups + wk.g0 + gl) * geo.chunks + wk.chunk) * 3;
            out[0] = w.n;
            out[1] = w.mean;
            out[2] = w.m2;
        }
    }
}

// Mean and 1/sigma of each of the tile's groups from their chunk partials (one warp a group), into shared memory.
__device__ inline void merge_tile_stats(const Work& wk, const Geometry& geo, const float* __restrict__ ws, float eps,
                                        float* sh_mean, float* sh_rstd) {
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    for (int64_t gl = warp; gl < wk.groups; gl += kWarps) {
        const float* pw = ws + (wk.image * geo.groups + wk.g0 + gl) * geo.chunks * 3;
        Welford w{0.f, 0.f, 0.f};
        for (int64_t k = lane; k < geo.chunks; k += 32) merge(w, pw[k * 3], pw[k * 3 + 1], pw[k * 3 + 2]);
        w = warp_reduce(w);
        if (lane == 0) {
            const float var = w.n > 0.f ? fmaxf(__fdividef(w.m2, w.n), 0.f) : 0.f;
            sh_mean[gl] = w.mean;
            sh_rstd[gl] = rsqrtf(var + eps);
        }
    }
}

// The per-channel affine of a thread's column (first channel c), once: y = x * a + b.
template <typename W, int VEC>
__device__ inline void channel_affine(const W* __restrict__ weight, const W* __restrict__ bias, int64_t c, int col,
                                      const Geometry& geo, const float* sh_mean, const float* sh_rstd,
                                      float (&a)[VEC], float (&b)[VEC]) {
#pragma unroll
    for (int i = 0; i < VEC; ++i) {
        const int64_t gl = (int64_t(col) * VEC + i) / geo.cg;
        a[i] = sh_rstd[gl] * (weight ? to_float(weight[c + i]) : 1.f);
        b[i] = (bias ? to_float(bias[c + i]) : 0.f) - sh_mean[gl] * a[i];
    }
}

template <typename T, int VEC, bool SILU>
__device__ inline Pack<T, VEC> normalize(const Pack<T, VEC>& pk, const float (&a)[VEC], const float (&b)[VEC]) {
    Pack<T, VEC> out;
#pragma unroll
    for (int i = 0; i < VEC; ++i) {
        float v = fmaf(to_float(pk.v[i]), a[i], b[i]);
        // SiLU with the approximate divide (2 ulp; 0 where exp(-v) overflows, as the limit is): the correctly
        // rounded reciprocal's extra steps cost 1-3 % of the passes. Rounded to fp16/bf16, the two differ by one
        // rounding step in a small fraction of the outputs.
        if (SILU) v = __fdividef(v, 1.f + __expf(-v));
        out.v[i] = from_float<T>(v);
    }
    return out;
}

template <typename T, int VEC, bool INBIAS>
__global__ void __launch_bounds__(kThreads)
    group_norm_nhwc_stats(const T* __restrict__ x, const T* __restrict__ in_bias, Geometry geo,
                          float* __restrict__ ws) {
    __shared__ float sh[kPartialsFloats<VEC>];
    const Work wk = block_work(geo);
    const Lane ln = thread_lane<VEC>(wk, geo);
    const int rows = geo.rows_per_pass;
    ThreadPartials<VEC> part;
    // Padding frames (ops/valid_frames.h) add nothing: a chunk past the real ones leaves empty partials, which
    // the merges skip.
    const int64_t row1 =
        geo.valid_frames ? min(wk.row1, int64_t(geo.valid_frames[wk.image]) * geo.frame_pixels) : wk.row1;
    if (ln.active) {
        const int64_t c0 = wk.g0 * geo.cg + int64_t(ln.col) * VEC;
        const auto ib = load_input_bias<T, VEC, INBIAS>(in_bias, wk.image * geo.input_bias_stride + c0);
        const T* p = x + wk.image * geo.pixels * geo.channels + c0;
        for (int64_t r = wk.row0 + ln.prow; r < row1; r += int64_t(rows) * kUnroll) {
            Pack<T, VEC> pk[kUnroll];
            int n = 0;
#pragma unroll
            for (int u = 0; u < kUnroll; ++u)
                if (r + int64_t(u) * rows < row1) {
                    pk[u] = *reinterpret_cast<const Pack<T, VEC>*>(p + (r + int64_t(u) * rows) * geo.channels);
                    ++n;
                }
#pragma unroll
            for (int u = 0; u < kUnroll; ++u) add_input_bias<T, VEC, INBIAS>(pk[u], ib);
            accumulate_step(pk, n, part);
        }
    }
    write_block_partials<VEC>(part, wk, geo, sh, ws);
}

template <typename T, typename W, int VEC, bool SILU, bool INBIAS>
__global__ void __launch_bounds__(kThreads)
    group_norm_nhwc_apply(const T* __restrict__ x, T* __restrict__ y, const W* __restrict__ weight,
                          const W* __restrict__ bias, const T* __restrict__ in_bias, Geometry geo,
                          const float* __restrict__ ws, float eps) {
    __shared__ float sh_stats[2][kThreads * VEC];  // mean and rstd per group of the tile (<= its channels)
    const Work wk = block_work(geo);
    const Lane ln = thread_lane<VEC>(wk, geo);
    const int rows = geo.rows_per_pass;
    const int64_t c = wk.g0 * geo.cg + int64_t(ln.col) * VEC;  // the thread's first channel
    const int64_t off = wk.image * geo.pixels * geo.channels + c;
    const T* px = x + off;
    T* py = y + off;

    // The first loads go out before the merge, so they overlap it.
    int64_t r = wk.row0 + ln.prow;
    Pack<T, VEC> pk[kUnroll];
    if (ln.active) {
#pragma unroll
        for (int u = 0; u < kUnroll; ++u)
            if (r + int64_t(u) * rows < wk.row1)
                pk[u] = *reinterpret_cast<const Pack<T, VEC>*>(px + (r + int64_t(u) * rows) * geo.channels);
    }
    merge_tile_stats(wk, geo, ws, eps, sh_stats[0], sh_stats[1]);
    __syncthreads();
    if (!ln.active) return;

    float a[VEC], b[VEC];
    channel_affine<W, VEC>(weight, bias, c, ln.col, geo, sh_stats[0], sh_stats[1], a, b);
    const auto ib = load_input_bias<T, VEC, INBIAS>(in_bias, wk.image * geo.input_bias_stride + c);
    while (r < wk.row1) {
#pragma unroll
        for (int u = 0; u < kUnroll; ++u) {
            const int64_t rr = r + int64_t(u) * rows;
            if (rr >= wk.row1) break;
            add_input_bias<T, VEC, INBIAS>(pk[u], ib);
            *reinterpret_cast<Pack<T, VEC>*>(py + rr * geo.channels) = normalize<T, VEC, SILU>(pk[u], a, b);
        }
        r += int64_t(rows) * kUnroll;
#pragma unroll
        for (int u = 0; u < kUnroll; ++u)
            if (r + int64_t(u) * rows < wk.row1)
                pk[u] = *reinterpret_cast<const Pack<T, VEC>*>(px + (r + int64_t(u) * rows) * geo.channels);
    }
}

// A VAE resnet's residual pass with the statistics pass of the norm that reads its output: y = (r + rbias) + (y +
// bias) in place (channel_bias.cu's sums, each rounded as its own add stores it), and the Welford partials of the
// stored sums over the statistics pass's own walk (same geometry, rows and order), so the workspace holds the
// bits group_norm_nhwc_stats would have written reading y back. Saves that pass's read of y.
template <typename T, int VEC, bool RESBIAS>
__global__ void __launch_bounds__(kThreads)
    residual_stats(T* __restrict__ y, const T* __restrict__ bias, const T* __restrict__ r,
                   const T* __restrict__ rbias, Geometry geo, float* __restrict__ ws) {
    __shared__ float sh[kPartialsFloats<VEC>];
    const Work wk = block_work(geo);
    const Lane ln = thread_lane<VEC>(wk, geo);
    const int rows = geo.rows_per_pass;
    ThreadPartials<VEC> part;
    if (ln.active) {
        const int64_t c0 = wk.g0 * geo.cg + int64_t(ln.col) * VEC;
        const auto b = load_input_bias<T, VEC, true>(bias, c0);
        const auto rb = load_input_bias<T, VEC, RESBIAS>(rbias, c0);
        const int64_t off = wk.image * geo.pixels * geo.channels + c0;
        T* py = y + off;
        const T* pr = r + off;
        for (int64_t row = wk.row0 + ln.prow; row < wk.row1; row += int64_t(rows) * kUnroll) {
            Pack<T, VEC> pk[kUnroll], res[kUnroll];
            int n = 0;
#pragma unroll
            for (int u = 0; u < kUnroll; ++u)
                if (row + int64_t(u) * rows < wk.row1) {
                    const int64_t at = (row + int64_t(u) * rows) * geo.channels;
                    pk[u] = *reinterpret_cast<const Pack<T, VEC>*>(py + at);
                    res[u] = *reinterpret_cast<const Pack<T, VEC>*>(pr + at);
                    ++n;
                }
#pragma unroll
            for (int u = 0; u < kUnroll; ++u)
                if (u < n) {
                    add_in_place(pk[u], b);
                    add_input_bias<T, VEC, RESBIAS>(res[u], rb);
                    add_in_place(res[u], pk[u]);  // r + (y + bias): the same sum in either operand order
                    pk[u] = res[u];
                    *reinterpret_cast<Pack<T, VEC>*>(py + (row + int64_t(u) * rows) * geo.channels) = pk[u];
                }
            accumulate_step(pk, n, part);
        }
    }
    write_block_partials<VEC>(part, wk, geo, sh, ws);
}

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }


int element_bytes(ElementType t) { return t == ElementType::Float32 ? 4 : 2; }

// 16-byte vectors along C when C is a multiple of the width and both tensors are aligned; else one element.
int vector_width(const GroupNormArgs& a) {
    const int vec = 16 / element_bytes(a.dtype);
    const bool aligned = reinterpret_cast<uintptr_t>(a.x) % 16 == 0 && reinterpret_cast<uintptr_t>(a.y) % 16 == 0;
    return aligned && a.channels % vec == 0 ? vec : 1;
}

// False when no tile of at most kThreads vectors holds whole groups (a group wider than 256 vectors).
bool make_geometry(const GroupNormArgs& a, int vec, Geometry& g) {
    g.pixels = a.plane;
    g.channels = a.channels;
    g.groups = a.groups;
    g.cg = a.channels / a.groups;
    g.input_bias_stride = a.input_bias_per_image ? a.channels : 0;
    g.valid_frames = a.valid_frames;
    g.frame_pixels = a.frame_pixels;
    const int64_t max_tile = int64_t(kThreads) * vec;
    int64_t tile_channels = a.channels;
    if (a.channels > max_tile) {
        // A tile must hold whole groups and whole vectors: a multiple of lcm(C/G, VEC).
        const int64_t unit = g.cg / std::gcd(g.cg, int64_t(vec)) * vec;
        if (unit > max_tile) return false;
        tile_channels = max_tile / unit * unit;
    }
    g.tile_vectors = static_cast<int>(tile_channels / vec);
    g.rows_per_pass = kThreads / g.tile_vectors;
    g.tile_groups = tile_channels / g.cg;
    g.tiles = ceil_div(a.channels, tile_channels);
    const int64_t want = int64_t(std::max(a.sm_count, 1)) * kBlocksPerSm;
    const int64_t most = std::min(kMaxChunks, ceil_div(g.pixels, g.rows_per_pass));
    g.chunks = std::clamp<int64_t>(ceil_div(want, a.batch * g.tiles), 1, std::max<int64_t>(most, 1));
    g.chunk_rows = ceil_div(g.pixels, g.chunks);
    g.chunks = ceil_div(g.pixels, g.chunk_rows);  // no empty chunk
    return true;
}

// Which of the two passes a launch runs: both, or the apply pass alone on statistics taken ahead (residual_stats).
enum class Passes { Both, ApplyOnly };

template <typename T, typename W, int VEC, bool INBIAS>
cudaError_t launch_typed(const GroupNormArgs& a, const Geometry& g, Passes passes) {
    const auto stream = static_cast<cudaStream_t>(a.stream);
    const auto blocks = static_cast<unsigned>(a.batch * g.tiles * g.chunks);
    const T* x = static_cast<const T*>(a.x);
    const T* ib = static_cast<const T*>(a.input_bias);
    T* y = static_cast<T*>(a.y);
    const W* w = static_cast<const W*>(a.weight);
    const W* b = static_cast<const W*>(a.bias);
    if (passes == Passes::Both)
        group_norm_nhwc_stats<T, VEC, INBIAS><<<blocks, kThreads, 0, stream>>>(x, ib, g, a.workspace);
    if (a.silu)
        group_norm_nhwc_apply<T, W, VEC, true, INBIAS>
            <<<blocks, kThreads, 0, stream>>>(x, y, w, b, ib, g, a.workspace, a.eps);
    else
        group_norm_nhwc_apply<T, W, VEC, false, INBIAS>
            <<<blocks, kThreads, 0, stream>>>(x, y, w, b, ib, g, a.workspace, a.eps);
    return cudaGetLastError();
}

template <typename T, typename W, int VEC>
cudaError_t launch_bias(const GroupNormArgs& a, const Geometry& g, Passes p) {
    return a.input_bias ? launch_typed<T, W, VEC, true>(a, g, p) : launch_typed<T, W, VEC, false>(a, g, p);
}

template <typename T, typename W>
cudaError_t launch_vec(const GroupNormArgs& a, const Geometry& g, int vec, Passes p) {
    constexpr int kVec = 16 / sizeof(T);
    return vec == kVec ? launch_bias<T, W, kVec>(a, g, p) : launch_bias<T, W, 1>(a, g, p);
}

template <typename T>
cudaError_t launch_affine(const GroupNormArgs& a, const Geometry& g, int vec, Passes p) {
    return a.affine_fp32 ? launch_vec<T, float>(a, g, vec, p) : launch_vec<T, T>(a, g, vec, p);
}

template <typename T, int VEC>
cudaError_t launch_residual_stats_vec(const GroupNormArgs& a, const Geometry& g, const ResidualSums& r) {
    const auto blocks = static_cast<unsigned>(a.batch * g.tiles * g.chunks);
    const auto stream = static_cast<cudaStream_t>(a.stream);
    auto* y = static_cast<T*>(r.sums);
    const auto* b = static_cast<const T*>(r.bias);
    const auto* res = static_cast<const T*>(r.residual);
    const auto* rb = static_cast<const T*>(r.residual_bias);
    if (rb)
        residual_stats<T, VEC, true><<<blocks, kThreads, 0, stream>>>(y, b, res, rb, g, a.workspace);
    else
        residual_stats<T, VEC, false><<<blocks, kThreads, 0, stream>>>(y, b, res, rb, g, a.workspace);
    return cudaGetLastError();
}

template <typename T>
cudaError_t launch_residual_stats(const GroupNormArgs& a, const Geometry& g, int vec, const ResidualSums& r) {
    constexpr int kVec = 16 / sizeof(T);
    return vec == kVec ? launch_residual_stats_vec<T, kVec>(a, g, r) : launch_residual_stats_vec<T, 1>(a, g, r);
}

// Both passes, or the apply pass alone, of a checked call (fused_group_norm.cu's launch has checked
// group_norm_unsupported() and the pointers).
std::string launch_passes(const GroupNormArgs& a, Passes passes) {
    const int vec = vector_width(a);
    Geometry g;
    if (!make_geometry(a, vec, g)) return "group_norm_nhwc: no tile holds a whole group";
    cudaError_t err = cudaSuccess;
    switch (a.dtype) {
        case ElementType::Float32: err = launch_vec<float, float>(a, g, vec, passes); break;
        case ElementType::Float16: err = launch_affine<__half>(a, g, vec, passes); break;
        case ElementType::BFloat16: err = launch_affine<__nv_bfloat16>(a, g, vec, passes); break;
    }
    if (err != cudaSuccess) return std::string("group_norm_nhwc kernel: ") + cudaGetErrorString(err);
    return {};
}

}  // namespace

std::string group_norm_unsupported(const GroupNormArgs& a) {
    if (a.batch <= 0 || a.channels <= 0 || a.groups <= 0 || a.plane <= 0) return "empty tensor or non-positive sizes";
    if (a.frames != 1) return "channels-last input must be 4-D (one frame)";
    if (a.valid_frames && (a.frame_pixels <= 0 || a.plane % a.frame_pixels != 0))
        return "valid frames need whole frames of frame_pixels pixels";
    if (a.channels % a.groups != 0) return "channels are not a multiple of groups";
    Geometry g;
    if (!make_geometry(a, vector_width(a), g)) return "a group spans more channels than one block holds";
    if (a.batch * g.tiles * g.chunks > INT_MAX) return "too many blocks";
    if (!(a.eps >= 0.f)) return "eps must be non-negative";
    return {};
}

int64_t group_norm_workspace_floats(const GroupNormArgs& a) {
    Geometry g;
    if (!make_geometry(a, vector_width(a), g)) return 0;
    return a.batch * a.groups * g.chunks * 3;
}

std::string group_norm_launch(const GroupNormArgs& a) { return launch_passes(a, Passes::Both); }

std::string group_norm_apply_launch(const GroupNormArgs& a) { return launch_passes(a, Passes::ApplyOnly); }

std::string residual_stats_launch(const GroupNormArgs& a, const ResidualSums& r) {
    if (!a.workspace || !r.sums || !r.bias || !r.residual || a.x != r.sums) return "residual statistics: null pointer";
    if (a.input_bias) return "residual statistics: the norm of the sums takes no input bias";
    if (a.valid_frames) return "residual statistics: no valid frames";
    // The apply pass's geometry: its vector width is that of x (the sums) and y (a fresh, aligned tensor); the
    // residual must allow the same width.
    const int vec = vector_width(a);
    if (vec > 1 && reinterpret_cast<uintptr_t>(r.residual) % 16 != 0) return "residual statistics: misaligned residual";
    Geometry g;
    if (!make_geometry(a, vec, g)) return "residual statistics: no tile holds a whole group";
    cudaError_t err = cudaSuccess;
    switch (a.dtype) {
        case ElementType::Float32: err = launch_residual_stats<float>(a, g, vec, r); break;
        case ElementType::Float16: err = launch_residual_stats<__half>(a, g, vec, r); break;
        case ElementType::BFloat16: err = launch_residual_stats<__nv_bfloat16>(a, g, vec, r); break;
    }
    if (err != cudaSuccess) return std::string("residual statistics kernel: ") + cudaGetErrorString(err);
    return {};
}

}  // namespace lsync::kernels::nhwc
