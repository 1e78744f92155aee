#include "flex_attention.h"
#include "element_types.cuh"
#include "launch_shape.h"

#include <cuda_runtime.h>
#include <mma.h>

#include <cmath>
#include <cstdint>

namespace lsync::kernels {

namespace {

using namespace nvcuda;

constexpr int kWarps = 4;
constexpr int kBlockQ = 16 * kWarps;  // each warp owns 16 query rows
constexpr int kBlockK = 64;           // keys per tile
constexpr float kLog2e = 1.4426950408889634f;

// Shared-memory row pitches (elements). WMMA wants 32-byte aligned fragment pointers: 16 rows of an even
// pitch of 2-byte elements are a multiple of 32 bytes, and the +8/+4 padding staggers banks.
template <int Dp> struct Layout {
    static constexpr int kv_pitch = Dp + 8;       // Q, K, V tiles (T)
    static constexpr int s_pitch = kBlockK + 4;   // scores (float)
    static constexpr int p_pitch = kBlockK + 8;   // probabilities (T)
    static constexpr int o_pitch = Dp + 4;        // output accumulator (float)
    static constexpr size_t q_bytes = size_t(kBlockQ) * kv_pitch * 2;
    static constexpr size_t kv_bytes = size_t(kBlockK) * kv_pitch * 2;
    static constexpr size_t s_bytes = size_t(kBlockQ) * s_pitch * 4;
    static constexpr size_t p_bytes = size_t(kBlockQ) * p_pitch * 2;
    static constexpr size_t o_bytes = size_t(kBlockQ) * o_pitch * 4;
    static constexpr size_t bias_bytes = kBlockK * 4;
    static constexpr size_t total = q_bytes + 2 * kv_bytes + s_bytes + p_bytes + o_bytes + bias_bytes;
};

// Copies rows [row0, row0 + rows) of a [L, D] slice into a [rows, pitch] tile, zero-filling the padding columns
// D..Dp and rows past L, 16 bytes (8 elements) at a time: D is a multiple of 8 and rows are 16-byte aligned.
template <typename T, int D, int Dp>
__device__ inline void load_tile(T* tile, const T* src, int64_t row_stride, int row0, int rows, int L) {
    constexpr int kVecPerRow = Dp / 8;
    constexpr int pitch = Dp + 8;
    for (int idx = threadIdx.x; idx < rows * kVecPerRow; idx += blockDim.x) {
        const int r = idx / kVecPerRow, c = (idx % kVecPerRow) * 8;
        uint4 val = make_uint4(0, 0, 0, 0);
        if (row0 + r < L && c < D) val = *reinterpret_cast<const uint4*>(src + (row0 + r) * row_stride + c);
        *reinterpret_cast<uint4*>(tile + r * pitch + c) = val;
    }
}

template <typename T, int D, int Dp>
__global__ void __launch_bounds__(kWarps * 32)
flex_attention_kernel(const T* __restrict__ q, const T* __restrict__ k, const T* __restrict__ v, T* __restrict__ out,
                      const float* __restrict__ key_bias, int bias_batch, int heads, int lq, int lk,
                      BHLStrides qs, BHLStrides ks, BHLStrides vs, float scale_log2) {
    using L = Layout<Dp>;
    extern __shared__ __align__(128) unsigned char smem[];
    T* q_tile = reinterpret_cast<T*>(smem);
    T* k_tile = reinterpret_cast<T*>(smem + L::q_bytes);
    T* v_tile = reinterpret_cast<T*>(smem + L::q_bytes + L::kv_bytes);
    float* s_tile = reinterpret_cast<float*>(smem + L::q_bytes + 2 * L::kv_bytes);
    T* p_tile = reinterpret_cast<T*>(smem + L::q_bytes + 2 * L::kv_bytes + L::s_bytes);
    float* o_acc = reinterpret_cast<float*>(smem + L::q_bytes + 2 * L::kv_bytes + L::s_bytes + L::p_bytes);
    float* bias_tile = reinterpret_cast<float*>(smem + L::total - L::bias_bytes);

    // (batch, head) on x, whose limit is 2^31 - 1; query tiles on y.
    const int bh = blockIdx.x;
    const int b = bh / heads, h = bh % heads;
    const int q0 = blockIdx.y * kBlockQ;
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const T* qp = q + b * qs.b + h * qs.h;
    const T* kp = k + b * ks.b + h * ks.h;
    const T* vp = v + b * vs.b + h * vs.h;
    const float* bias_row = key_bias ? key_bias + int64_t(bias_batch == 1 ? 0 : b) * lk : nullptr;

    load_tile<T, D, Dp>(q_tile, qp, qs.l, q0, kBlockQ, lq);
    for (int i = threadIdx.x; i < kBlockQ * L::o_pitch; i += blockDim.x) o_acc[i] = 0.f;

    // Softmax state: lane pair (2r, 2r+1) owns row r of the warp's 16 rows, each lane half of the key tile.
    const int row = lane / 2, half = lane % 2;
    float m_run = -INFINITY, l_run = 0.f;
    float* s_warp = s_tile + warp * 16 * L::s_pitch;
    T* p_warp = p_tile + warp * 16 * L::p_pitch;
    float* o_warp = o_acc + warp * 16 * L::o_pitch;
    const T* q_warp = q_tile + warp * 16 * L::kv_pitch;

    for (int k0 = 0; k0 < lk; k0 += kBlockK) {
        __syncthreads();  // previous tile fully consumed
        load_tile<T, D, Dp>(k_tile, kp, ks.l, k0, kBlockK, lk);
        load_tile<T, D, Dp>(v_tile, vp, vs.l, k0, kBlockK, lk);
        for (int j = threadIdx.x; j < kBlockK; j += blockDim.x) {
            const int key = k0 + j;
            bias_tile[j] = key >= lk ? -INFINITY : (bias_row ? bias_row[key] * kLog2e : 0.f);
        }
        __syncthreads();

        // S = Q K^T for this warp's 16 rows and the 64 keys (fp32 accumulators).
        for (int n = 0; n < kBlockK / 16; ++n) {
            wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc;
            wmma::fill_fragment(acc, 0.f);
            for (int d = 0; d < Dp / 16; ++d) {
                wmma::fragment<wmma::matrix_a, 16, 16, 16, T, wmma::row_major> a;
                wmma::fragment<wmma::matrix_b, 16, 16, 16, T, wmma::col_major> bk;
                wmma::load_matrix_sync(a, q_warp + d * 16, L::kv_pitch);
                wmma::load_matrix_sync(bk, k_tile + n * 16 * L::kv_pitch + d * 16, L::kv_pitch);
                wmma::mma_sync(acc, a, bk, acc);
            }
            wmma::store_matrix_sync(s_warp + n * 16, acc, L::s_pitch, wmma::mem_row_major);
        }
        __syncwarp();

        // Online softmax in base 2: logits scaled by log2(e)/sqrt(d), bias already in log2 units.
        const float* s_row = s_warp + row * L::s_pitch + half * 32;
        const float* b_half = bias_tile + half * 32;
        float tile_max = -INFINITY;
        for (int c = 0; c < 32; ++c) tile_max = fmaxf(tile_max, s_row[c] * scale_log2 + b_half[c]);
        tile_max = fmaxf(tile_max, __shfl_xor_sync(0xffffffffu, tile_max, 1));
        const float m_new = fmaxf(m_run, tile_max);
        // A row whose keys so far are all masked keeps m = -inf; exp2(-inf - -inf) would be NaN.
        const float alpha = m_new == -INFINITY ? 1.f : exp2f(m_run - m_new);
        float sum = 0.f;
        T* p_row = p_warp + row * L::p_pitch + half * 32;
        for (int c = 0; c < 32; ++c) {
            const float p = m_new == -INFINITY ? 0.f : exp2f(s_row[c] * scale_log2 + b_half[c] - m_new);
            sum += p;
            p_row[c] = from_float<T>(p);
        }
        sum += __shfl_xor_sync(0xffffffffu, sum, 1);
        l_run = l_run * alpha + sum;
        m_run = m_new;
        float* o_row = o_warp + row * L::o_pitch;
        for (int c = half; c < Dp; c += 2) o_row[c] *= alpha;
        __syncwarp();

        // O += P V.
        for (int n = 0; n < Dp / 16; ++n) {
            wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc;
            wmma::load_matrix_sync(acc, o_warp + n * 16, L::o_pitch, wmma::mem_row_major);
            for (int kk = 0; kk < kBlockK / 16; ++kk) {
                wmma::fragment<wmma::matrix_a, 16, 16, 16, T, wmma::row_major> a;
                wmma::fragment<wmma::matrix_b, 16, 16, 16, T, wmma::row_major> bv;
                wmma::load_matrix_sync(a, p_warp + kk * 16, L::p_pitch);
                wmma::load_matrix_sync(bv, v_tile + kk * 16 * L::kv_pitch + n * 16, L::kv_pitch);
                wmma::mma_sync(acc, a, bv, acc);
            }
            wmma::store_matrix_sync(o_warp + n * 16, acc, L::o_pitch, wmma::mem_row_major);
        }
        __syncwarp();
    }

    // Normalise and write this warp's rows (first D columns only).
    const float inv_l = l_run > 0.f ? 1.f / l_run : 0.f;
    const int q_row = q0 + warp * 16 + row;
    if (q_row < lq) {
        T* dst = out + (int64_t(bh) * lq + q_row) * D;
        const float* o_row = o_warp + row * L::o_pitch;
        for (int c = half; c < D; c += 2) dst[c] = from_float<T>(o_row[c] * inv_l);
    }
}

template <typename T, int D>
std::string launch_typed(const FlexAttentionArgs& a) {
    constexpr int Dp = (D + 15) / 16 * 16;
    const size_t smem = Layout<Dp>::total;
    auto kernel = flex_attention_kernel<T, D, Dp>;
    cudaError_t e = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem));
    if (e != cudaSuccess) return std::string("cudaFuncSetAttribute: ") + cudaGetErrorString(e);
    const dim3 grid(a.batch * a.heads, (a.lq + kBlockQ - 1) / kBlockQ);
    kernel<<<grid, kWarps * 32, smem, static_cast<cudaStream_t>(a.stream)>>>(
        static_cast<const T*>(a.q), static_cast<const T*>(a.k), static_cast<const T*>(a.v), static_cast<T*>(a.out),
        a.key_bias, a.bias_batch, a.heads, a.lq, a.lk, a.q_stride, a.k_stride, a.v_stride, a.scale * kLog2e);
    e = cudaGetLastError();
    return e == cudaSuccess ? std::string() : std::string("flex attention kernel: ") + cudaGetErrorString(e);
}

template <typename T>
std::string launch_dim(const FlexAttentionArgs& a) {
    switch (a.head_dim) {
        case 40: return launch_typed<T, 40>(a);
        case 64: return launch_typed<T, 64>(a);
        case 80: return launch_typed<T, 80>(a);
        case 160: return launch_typed<T, 160>(a);
        default: return "unsupported head dim";
    }
}

}  // namespace

std::string flex_attention_unsupported(const FlexAttentionArgs& a, int device_major) {
    if (device_major < 8) return "needs compute capability >= 8.0 (bf16/fp16 tensor cores)";
    if (a.head_dim != 40 && a.head_dim != 64 && a.head_dim != 80 && a.head_dim != 160)
        return "head dim " + std::to_string(a.head_dim) + " (kernel built for 40, 64, 80, 160)";
    if (a.lq <= 0 || a.lk <= 0 || a.batch <= 0 || a.heads <= 0) return "empty attention";
    if ((int64_t(a.lq) + kBlockQ - 1) / kBlockQ > 65535) return "too many queries for one launch";
    if (!aligned16(a.q) || !aligned16(a.k) || !aligned16(a.v) || !aligned16(a.out)) return "pointers not 16-byte aligned";
    for (const auto& s : {a.q_stride, a.k_stride, a.v_stride})
        if (s.b % 8 || s.h % 8 || s.l % 8) return "strides not multiples of 8 elements";
    if (a.key_bias && a.bias_batch != 1 && a.bias_batch != a.batch) return "bias batch must be 1 or B";
    return {};
}

std::string flex_attention_launch(const FlexAttentionArgs& a) {
    return a.dtype == FlexDType::Float16 ? launch_dim<__half>(a) : launch_dim<__nv_bfloat16>(a);
}

}  // namespace lsync::kernels
