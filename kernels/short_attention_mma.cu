#include "short_attention_mma.h"
#include "element_types.cuh"

#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>

namespace lsync::kernels {

namespace {

constexpr int kWarps = 4;  // (batch, head) problems per block, one per warp
constexpr float kLog2e = 1.4426950408889634f;

struct Shape {
    int64_t problems;  // batch * heads
    int heads, lq, lk, head_dim;
    int64_t q_b, q_h, q_l, k_b, k_h, k_l, v_b, v_h, v_l;
    float scale_log2;
    const int32_t* key_counts;  // null: every sequence has lk keys
};

// D += A B on tensor cores, m16n8k16 with fp32 accumulation. Fragment layouts (PTX ISA, "mma.m16n8k16"), with
// g = lane / 4 and t = lane % 4: A (16x16, row-major) a[0] = (g, 2t..2t+1), a[1] = (g + 8, 2t..), a[2] = (g,
// 2t + 8..), a[3] = (g + 8, 2t + 8..); B (16x8, column-major) b[0] = (k 2t..2t+1, n g), b[1] = (k 2t + 8.., n g);
// C (16x8) c[0..1] = (g, 2t..2t+1), c[2..3] = (g + 8, 2t..2t+1). Two elements per 32-bit register, the lower
// index in the lower half.
__device__ inline void mma_16816(float c[4], const uint32_t a[4], const uint32_t b[2], __half) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 800
    __trap();  // not reached: short_attention_unsupported() refuses devices before sm_80
#else
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
                 "{%0,%1,%2,%3};\n"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
#endif
}
__device__ inline void mma_16816(float c[4], const uint32_t a[4], const uint32_t b[2], __nv_bfloat16) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 800
    __trap();
#else
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
                 "{%0,%1,%2,%3};\n"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
#endif
}

// Two neighbouring elements as one register, or zeros (padding rows and columns).
template <typename T>
__device__ inline uint32_t load_pair(const T* p, bool ok) {
    return ok ? *reinterpret_cast<const uint32_t*>(p) : 0u;
}
template <typename T>
__device__ inline uint32_t load_one(const T* p, bool ok) {
    return ok ? uint32_t(*reinterpret_cast<const uint16_t*>(p)) : 0u;
}

__device__ inline uint32_t pack(float lo, float hi, __half) {
    const __half2 h = __floats2half2_rn(lo, hi);
    return *reinterpret_cast<const uint32_t*>(&h);
}
__device__ inline uint32_t pack(float lo, float hi, __nv_bfloat16) {
    const __nv_bfloat162 h = __floats2bfloat162_rn(lo, hi);
    return *reinterpret_cast<const uint32_t*>(&h);
}

template <typename T>
__global__ void __launch_bounds__(kWarps * 32)
short_attention_kernel(const T* __restrict__ q, const T* __restrict__ k, const T* __restrict__ v, T* __restrict__ out,
                       Shape p) {
    const int lane = threadIdx.x & 31;
    const int64_t w = int64_t(blockIdx.x) * kWarps + (threadIdx.x >> 5);
    if (w >= p.problems) return;  // whole warps leave together: the mma below needs all 32 lanes
    // Heads vary fastest over a block's warps: they read neighbouring slices of the same tokens' rows.
    const int h = int(w % p.heads);
    const int64_t b = w / p.heads;
    const int g = lane >> 2, t = lane & 3;
    const T* qb = q + b * p.q_b + h * p.q_h;
    const T* kb = k + b * p.k_b + h * p.k_h;
    const T* vb = v + b * p.v_b + h * p.v_h;
    // Keys past lk are padding frames (ops/valid_frames.h): never loaded, probability 0.
    const int lk = p.key_counts ? min(p.lk, int(p.key_counts[b])) : p.lk;
    const bool q_lo = g < p.lq, q_hi = g + 8 < p.lq;  // query rows g and g + 8
    const bool k_lo = g < lk, k_hi = g + 8 < lk;      // key rows g (tile 0) and g + 8 (tile 1) of K^T's columns

    // S = Q K^T: 16 queries x 16 keys as two 16x8 tiles, over the head dim 16 at a time (zeros past D).
    float s[2][4] = {{0.f, 0.f, 0.f, 0.f}, {0.f, 0.f, 0.f, 0.f}};
    for (int c = 0; c < p.head_dim; c += 16) {
        const int c0 = c + 2 * t, c1 = c + 8 + 2 * t;
        const bool upper = c + 8 < p.head_dim;  // D is a multiple of 8: the step's upper 8 columns exist or not
        const uint32_t a[4] = {load_pair(qb + g * p.q_l + c0, q_lo), load_pair(qb + (g + 8) * p.q_l + c0, q_hi),
                               load_pair(qb + g * p.q_l + c1, q_lo && upper),
                               load_pair(qb + (g + 8) * p.q_l + c1, q_hi && upper)};
        const uint32_t b0[2] = {load_pair(kb + g * p.k_l + c0, k_lo), load_pair(kb + g * p.k_l + c1, k_lo && upper)};
        const uint32_t b1[2] = {load_pair(kb + (g + 8) * p.k_l + c0, k_hi),
                                load_pair(kb + (g + 8) * p.k_l + c1, k_hi && upper)};
        mma_16816(s[0], a, b0, T());
        mma_16816(s[1], a, b1, T());
    }

    // Softmax of rows g (s[.][0..1]) and g + 8 (s[.][2..3]) in base 2; each row is spread over the 4 lanes of
    // a quad. Keys past lk get probability 0.
    float m[2] = {-INFINITY, -INFINITY};
#pragma unroll
    for (int tile = 0; tile < 2; ++tile)
#pragma unroll
        for (int e = 0; e < 4; ++e) {
            const int key = tile * 8 + 2 * t + (e & 1);
            const float x = key < lk ? __fmul_rn(s[tile][e], p.scale_log2) : -INFINITY;
            s[tile][e] = x;
            m[e >> 1] = fmaxf(m[e >> 1], x);
        }
    float l[2] = {0.f, 0.f};
#pragma unroll
    for (int r = 0; r < 2; ++r) {
        m[r] = fmaxf(m[r], __shfl_xor_sync(0xffffffffu, m[r], 1));
        m[r] = fmaxf(m[r], __shfl_xor_sync(0xffffffffu, m[r], 2));
    }
#pragma unroll
    for (int tile = 0; tile < 2; ++tile)
#pragma unroll
        for (int e = 0; e < 4; ++e) {
            s[tile][e] = exp2f(__fsub_rn(s[tile][e], m[e >> 1]));
            l[e >> 1] += s[tile][e];
        }
#pragma unroll
    for (int r = 0; r < 2; ++r) {
        l[r] += __shfl_xor_sync(0xffffffffu, l[r], 1);
        l[r] += __shfl_xor_sync(0xffffffffu, l[r], 2);
    }
    const float inv[2] = {1.f / l[0], 1.f / l[1]};

    // P as the A operand of P V: the two score tiles' accumulator layout is the A layout of one k = 16 step.
    const uint32_t pa[4] = {pack(s[0][0], s[0][1], T()), pack(s[0][2], s[0][3], T()), pack(s[1][0], s[1][1], T()),
                            pack(s[1][2], s[1][3], T())};
    // V's B fragments: keys 2t, 2t + 1 (b[0]) and 2t + 8, 2t + 9 (b[1]) of head-dim column n = 8u + g.
    const int key0 = 2 * t, key1 = 2 * t + 1, key2 = 2 * t + 8, key3 = 2 * t + 9;
    const bool v0 = key0 < lk, v1 = key1 < lk, v2 = key2 < lk, v3 = key3 < lk;
    T* out_lo = out + ((b * p.lq + g) * p.heads + h) * int64_t(p.head_dim);
    T* out_hi = out + ((b * p.lq + g + 8) * p.heads + h) * int64_t(p.head_dim);
#pragma unroll 2
    for (int n0 = 0; n0 < p.head_dim; n0 += 8) {
        const T* col = vb + n0 + g;
        const uint32_t bv[2] = {load_one(col + key0 * p.v_l, v0) | (load_one(col + key1 * p.v_l, v1) << 16),
                                load_one(col + key2 * p.v_l, v2) | (load_one(col + key3 * p.v_l, v3) << 16)};
        float o[4] = {0.f, 0.f, 0.f, 0.f};
        mma_16816(o, pa, bv, T());
        // o[0..1]: row g, columns n0 + 2t, + 1; o[2..3]: row g + 8.
        if (q_lo) *reinterpret_cast<uint32_t*>(out_lo + n0 + 2 * t) = pack(o[0] * inv[0], o[1] * inv[0], T());
        if (q_hi) *reinterpret_cast<uint32_t*>(out_hi + n0 + 2 * t) = pack(o[2] * inv[1], o[3] * inv[1], T());
    }
}

template <typename T>
cudaError_t launch_typed(const ShortAttentionArgs& a) {
    Shape p;
    p.problems = a.batch * a.heads;
    p.heads = int(a.heads);
    p.lq = int(a.lq);
    p.lk = int(a.lk);
    p.head_dim = int(a.head_dim);
    p.q_b = a.q_b, p.q_h = a.q_h, p.q_l = a.q_l;
    p.k_b = a.k_b, p.k_h = a.k_h, p.k_l = a.k_l;
    p.v_b = a.v_b, p.v_h = a.v_h, p.v_l = a.v_l;
    p.scale_log2 = a.scale * kLog2e;
    p.key_counts = a.key_counts;
    const int64_t blocks = (p.problems + kWarps - 1) / kWarps;
    short_attention_kernel<T><<<unsigned(blocks), kWarps * 32, 0, static_cast<cudaStream_t>(a.stream)>>>(
        static_cast<const T*>(a.q), static_cast<const T*>(a.k), static_cast<const T*>(a.v), static_cast<T*>(a.out), p);
    return cudaGetLastError();
}

// Whether the kernel in this binary was compiled for sm_80 or later: a build for older architectures only
// (CMAKE_CUDA_ARCHITECTURES=75) would JIT the sm_75 PTX, whose mma is a trap, on a newer device.
bool compiled_for_mma() {
    static const bool ok = [] {
        cudaFuncAttributes attr{};
        return cudaFuncGetAttributes(&attr, short_attention_kernel<__half>) == cudaSuccess && attr.ptxVersion >= 80;
    }();
    return ok;
}

}  // namespace

std::string short_attention_unsupported(const ShortAttentionArgs& a) {
    if (a.device_major < 8) return "needs compute capability >= 8.0 (fp16/bf16 tensor-core mma)";
    if (!compiled_for_mma()) return "this build's kernels target no architecture with the fp16/bf16 mma (sm_80+)";
    if (a.dtype == ElementType::Float32) return "fp32 (the kernel runs fp16/bf16 tensor cores)";
    if (a.batch <= 0 || a.heads <= 0 || a.lq <= 0 || a.lk <= 0 || a.head_dim <= 0) return "empty or non-positive sizes";
    if (a.lq > kShortAttentionMaxLength || a.lk > kShortAttentionMaxLength)
        return "sequences longer than " + std::to_string(kShortAttentionMaxLength);
    if (a.heads > INT32_MAX || a.head_dim > INT32_MAX) return "a size past 2^31";
    if (a.head_dim % 8 != 0) return "head dim not a multiple of 8";
    for (const void* ptr : {a.q, a.k, a.v, static_cast<const void*>(a.out)})
        if (!ptr || reinterpret_cast<uintptr_t>(ptr) % 16 != 0) return "a null or not 16-byte aligned pointer";
    for (int64_t stride : {a.q_b, a.q_h, a.q_l, a.k_b, a.k_h, a.k_l, a.v_b, a.v_h, a.v_l})
        if (stride % 8 != 0) return "a stride that is not a multiple of 16 bytes";
    if (a.batch > INT64_MAX / a.heads) return "too many sequences";
    if ((a.batch * a.heads + kWarps - 1) / kWarps > INT32_MAX) return "too many sequences for one grid";
    return {};
}

std::string short_attention_launch(const ShortAttentionArgs& a) {
    auto why = short_attention_unsupported(a);
    if (!why.empty()) return why;
    cudaError_t err = a.dtype == ElementType::Float16 ? launch_typed<__half>(a) : launch_typed<__nv_bfloat16>(a);
    if (err != cudaSuccess) return std::string("short attention kernel: ") + cudaGetErrorString(err);
    return {};
}

}  // namespace lsync::kernels
