#include "ops/attention.h"

#include "core/compat.h"
#include "core/error.h"
#include "ops/kernel_switch.h"
#include "ops/short_attention.h"
#include "ops/valid_frames.h"
#include "ops/softmax.h"
#include "ops/flex_variants.h"

#include "core/log.h"

#include <cmath>
#include <functional>

namespace lsync::ops {

std::string to_string(AttentionBackend b) {
    switch (b) {
        case AttentionBackend::Auto: return "auto";
        case AttentionBackend::Flash: return "flash";
        case AttentionBackend::Flex: return "flex";
        case AttentionBackend::Standard: return "standard";
    }
    return "?";
}

AttentionBackend parse_attention_backend(const std::string& name) {
    for (auto b : {AttentionBackend::Auto, AttentionBackend::Flash, AttentionBackend::Flex, AttentionBackend::Standard})
        if (to_string(b) == name) return b;
    throw_error(ErrorCode::Usage, "unknown attention backend '" + name + "' (choose auto, flash, flex or standard)");
}

BackendAvailability attention_availability(AttentionBackend backend, const torch::Device& device,
                                           torch::ScalarType dtype) {
    switch (backend) {
        case AttentionBackend::Standard:
            return {true, "matmul + fp32 softmax, query-chunked"};
        case AttentionBackend::Flex: {
#if LSYNC_HAS_SDPA
            // Which implementation `auto` takes for a typical biased call (head dim 40, 1024 tokens).
            auto opts = torch::TensorOptions().device(device).dtype(dtype);
            auto q = torch::zeros({1, 8, 1024, 40}, opts);
            const AttentionInputs probe{q, q, q, torch::zeros({1, 1024}, opts.dtype(torch::kFloat))};
            for (auto impl : flex_preference(probe))
                if (flex_impl_unsupported(impl, probe).empty())
                    return {true, "additive per-key bias via " + to_string(impl)};
            return {true, "standard attention with an additive per-key bias"};
#else
            return {true, "standard attention with an additive per-key bias (LibTorch " + compat::torch_version() +
                              " has no SDPA)"};
#endif
        }
        case AttentionBackend::Flash: {
#if LSYNC_HAS_SDPA
            if (device.is_cpu()) return {true, "ATen CPU scaled_dot_product_attention"};
            if (dtype != torch::kHalf && dtype != torch::kBFloat16)
                return {false, "fused CUDA attention needs fp16 or bf16 (got " + std::string(c10::toString(dtype)) + ")"};
            // Ask ATen what it would dispatch to for a typical LatentSync shape (head dim 40, 1024 tokens).
            auto opts = torch::TensorOptions().device(device).dtype(dtype);
            auto q = torch::randn({1, 8, 1024, 40}, opts);
            const std::string kernel = compat::sdpa_kernel_choice(q, q, q, std::nullopt);
            if (kernel == "math" || kernel == "none")
                return {false, "no fused SDPA kernel for this device/dtype (ATen would use: " + kernel + ")"};
            // The motion modules' attention over 16 frames runs our kernel where it can (short_attention.h).
            auto t = torch::zeros({1, 8, 16, 40}, opts);
            // Renders call FlashAttention-2 itself where it serves for all but the self-attention of 1,024 tokens
            // and more (pipeline::sdpa_kernel).
            const bool flash2 = compat::flash2_serves(q, q, q);
            return {true, "fused SDPA kernel: " + kernel +
                              (flash2 ? " (renders: FlashAttention-2 below 1,024 tokens and for the audio)"
                                      : "") +
                              (short_attention_serves({t, t, t, std::nullopt})
                                   ? "; sequences of at most 16: our short-sequence kernel"
                                   : "") +
                              (wide_head_gemms_enabled() && LSYNC_HAS_GEMM_FP32_OUT
                                   ? "; heads wider than 256 (the VAE's): two GEMMs, fp32 logits"
                                   : "")};
#else
            (void)device;
            (void)dtype;
            return {false, "LibTorch " + compat::torch_version() +
                               " has no public scaled_dot_product_attention; needs LibTorch >= 2.0"};
#endif
        }
        case AttentionBackend::Auto: break;
    }
    return {true, "resolved at run time"};
}

namespace {

// Standard attention's half-precision form (below), on unless LSYNC_STANDARD_HALF_LOGITS=0: a 1.6 render with
// `--attention standard` went from 2.9x to 1.4-1.8x flash's time with it (docs/performance-notes.md section 9).
KernelSwitch g_half_logits("LSYNC_STANDARD_HALF_LOGITS");

// Its slices where the keys are at most 1,024: 64 Mi logits (256 MiB with the probabilities), unless
// LSYNC_STANDARD_SMALL_SLICES=0 keeps the 256 Mi of the fp32 form. At 256 px two chunks' self-attention (1,024
// keys) holds 512 Mi logits, and two slices of 1 GiB each put a 1.5 render with `--attention standard` 0.5-0.8 GiB
// over flash's peak, past 4 GB; 64 Mi slices (128 queries a GEMM there) cost no measurable time. Above 1,024 keys
// (the 4,096 of 512 px) 64 Mi would leave 64 queries a GEMM, and 1.6's peak has room: those stay 256 Mi. A limit
// in query rows instead (64 Ki) also sliced the audio cross-attention's 50-key calls and made a 1.6 render 16 %
// slower (docs/performance-notes.md section 49).
KernelSwitch g_small_slices("LSYNC_STANDARD_SMALL_SLICES");

// Whether standard attention takes its half-precision form: CUDA fp16/bf16 without a bias, the switch on.
bool half_logits_serve(const AttentionInputs& in) {
    const auto dt = in.q.scalar_type();
    return g_half_logits.enabled() && in.q.is_cuda() && !in.key_bias &&
           (dt == torch::kHalf || dt == torch::kBFloat16) && in.k.scalar_type() == dt && in.v.scalar_type() == dt;
}

// Runs `chunk(start, end)` over slices of the query rows of `in` and concatenates its results along `dim`: at most
// `query_chunk` queries per slice, fewer when a slice's logits would pass `max_logits` elements (256 Mi, 1 GiB in
// fp32, unless given), so memory stays bounded at any query count (one query's logits, batch x heads x keys,
// are the smallest slice).
torch::Tensor over_query_chunks(const AttentionInputs& in, int64_t query_chunk, int64_t dim,
                                const std::function<torch::Tensor(int64_t, int64_t)>& chunk,
                                int64_t max_logits = int64_t{1} << 28) {
    const int64_t lq = in.q.size(2);
    const int64_t rows_per_query = std::max<int64_t>(1, in.q.size(0) * in.q.size(1) * in.k.size(2));
    const int64_t step = std::max<int64_t>(1, std::min(query_chunk, max_logits / rows_per_query));
    std::vector<torch::Tensor> parts;
    parts.reserve(static_cast<size_t>((lq + step - 1) / step));
    for (int64_t s = 0; s < lq; s += step) parts.push_back(chunk(s, std::min(lq, s + step)));
    return parts.size() == 1 ? parts[0] : torch::cat(parts, dim);
}

// The same attention with the logits kept in q's dtype: the scale applied by the GEMM to its fp32 accumulator
// before the one rounding, and ATen's softmax, which computes in fp32 and writes q's dtype. The fp32 form rounds
// the logits to fp16 all the same (the fp16 GEMM's output) and then passes over them four more times (cast,
// scale, softmax, cast back) at twice the bytes; at 512 px that made `standard` 2.9x slower than flash.
torch::Tensor standard_attention_half_logits(const AttentionInputs& in, int64_t query_chunk) {
    const int64_t b = in.q.size(0), h = in.q.size(1), lq = in.q.size(2), d = in.q.size(3), lk = in.k.size(2);
    const double scale = 1.0 / std::sqrt(static_cast<double>(d));
    const auto q = in.q.reshape({b * h, lq, d});
    const auto kt = in.k.reshape({b * h, lk, d}).transpose(1, 2);
    const auto v = in.v.reshape({b * h, lk, in.v.size(3)});
    const int64_t max_logits = g_small_slices.enabled() && lk <= 1024 ? int64_t{1} << 26 : int64_t{1} << 28;
    const auto out = over_query_chunks(
        in, query_chunk, 1,
        [&](int64_t start, int64_t end) {
            const auto qc = q.slice(1, start, end);
            // beta = 0: the uninitialised input is ignored (not even its NaNs reach the result).
            const auto logits =
                torch::baddbmm(torch::empty({b * h, qc.size(1), lk}, q.options()), qc, kt, 0.0, scale);
            return torch::bmm(torch::softmax(logits, -1), v);
        },
        max_logits);
    return out.view({b, h, lq, in.v.size(3)});
}

// Heads wider than any fused kernel holds (FlashAttention-2 and cuDNN's stop at 256 channels): the VAE's mid-block
// attention, one head of 512. ATen then runs its memory-efficient kernel (0.24 ms of a 16-image 256 px encode on
// an H200); two batched GEMMs around a softmax made that encode 0.2 ms and the 512 px one 2.3 ms faster
// (docs/performance-notes.md section 26). The logits stay fp32, as in the fused kernel and the official diffusers
// VAE's SDPA: rounded to fp16 they gave 10x its error at logits of the order of 20-50, and bf16 2 % (section 27).
// LSYNC_WIDE_HEAD_GEMMS=0 keeps the fused kernel.
KernelSwitch g_wide_head_switch("LSYNC_WIDE_HEAD_GEMMS");

bool wide_head_gemms_serve(const AttentionInputs& in) {
    const auto dt = in.q.scalar_type();
    return LSYNC_HAS_GEMM_FP32_OUT && g_wide_head_switch.enabled() && in.q.is_cuda() && in.q.dim() == 4 &&
           in.q.size(-1) > 256 && !in.key_bias && (dt == torch::kHalf || dt == torch::kBFloat16) &&
           in.k.scalar_type() == dt && in.v.scalar_type() == dt;
}

// The route: fp32 logits (one GEMM, the scale applied to its fp32 accumulator), their softmax written in q's type
// (ops/softmax.h), the second GEMM. Slices of at most 128 Mi logits: 512 MiB in fp32 plus 256 MiB of
// probabilities, under the 1 GiB the fp16 form held at its 256 Mi.
torch::Tensor wide_head_gemms(const AttentionInputs& in) {
    const int64_t b = in.q.size(0), h = in.q.size(1), lq = in.q.size(2), d = in.q.size(3), lk = in.k.size(2);
    const double scale = 1.0 / std::sqrt(static_cast<double>(d));
    const auto q = in.q.reshape({b * h, lq, d});
    const auto kt = in.k.reshape({b * h, lk, d}).transpose(1, 2);
    const auto v = in.v.reshape({b * h, lk, in.v.size(3)});
    const auto out = over_query_chunks(
        in, lq, 1,
        [&](int64_t start, int64_t end) {
            const auto logits = compat::bmm_fp32_out(q.slice(1, start, end), kt, scale);
            return torch::bmm(softmax_last_to(logits, q.scalar_type()), v);
        },
        int64_t{1} << 27);
    return out.view({b, h, lq, in.v.size(3)});
}

}  // namespace

bool wide_head_gemms_enabled() { return g_wide_head_switch.enabled(); }

void set_wide_head_gemms(bool enabled) { g_wide_head_switch.set(enabled); }

bool standard_half_logits_enabled() { return g_half_logits.enabled(); }

void set_standard_half_logits(bool enabled) { g_half_logits.set(enabled); }

bool standard_small_slices_enabled() { return g_small_slices.enabled(); }

void set_standard_small_slices(bool enabled) { g_small_slices.set(enabled); }

AttentionInputs with_key_mask(const AttentionInputs& in) {
    if (!in.key_counts.defined()) return in;
    AttentionInputs out{in.q, in.k, in.v, in.key_bias, {}};
    auto mask = key_mask_bias(in.key_counts.to(in.q.device()), in.k.size(2));  // [B, Lk]
    if (in.key_bias) mask = mask + in.key_bias->to(mask.device(), torch::kFloat);
    out.key_bias = mask;
    return out;
}

torch::Tensor standard_attention(const AttentionInputs& in, int64_t query_chunk) {
    if (in.key_counts.defined()) return standard_attention(with_key_mask(in), query_chunk);
    if (half_logits_serve(in)) return standard_attention_half_logits(in, query_chunk);
    const auto& q = in.q;
    const double scale = 1.0 / std::sqrt(static_cast<double>(q.size(-1)));
    torch::Tensor bias;
    if (in.key_bias) bias = in.key_bias->to(q.device(), torch::kFloat).unsqueeze(1).unsqueeze(1);  // [B,1,1,Lk]
    const auto kt = in.k.transpose(-2, -1);
    return over_query_chunks(in, query_chunk, 2, [&](int64_t start, int64_t end) {
        auto logits = torch::matmul(q.slice(2, start, end), kt).to(torch::kFloat) * scale;
        if (bias.defined()) logits = logits + bias;
        auto probs = torch::softmax(logits, -1).to(in.v.scalar_type());
        return torch::matmul(probs, in.v);
    });
}

std::string to_string(const SdpaKernel& kernel) {
    if (kernel == SdpaKernel::AtenChoice) return "aten";
    if (kernel == SdpaKernel::Flash2) return "flash2";
    return "flash2 below " + std::to_string(kernel.aten_from_logits) + " logits per head";
}

torch::Tensor sdpa_attention(const AttentionInputs& in, SdpaKernel kernel) {
    if (in.q.dim() == 4 && in.k.dim() == 4 && kernel.flash2_for(in.q.size(2), in.k.size(2)))
        if (auto out = compat::flash2_attention(in.q, in.k, in.v)) return *out;
    return compat::sdpa(in.q, in.k, in.v, std::nullopt);
}

torch::Tensor flash_attention(const AttentionInputs& in, SdpaKernel kernel) {
    // Sequences of at most 16 (the motion modules' frames): our kernel; everything else: SDPA. Key counts (a
    // padded chunk's real frames) that the kernel does not take go to the standard path as a mask: the fused
    // SDPA kernels here take none, and unlike a lip-focus bias the counts must not be ignored.
    if (short_attention_serves(in)) return short_attention(in);
    if (in.key_counts.defined()) return standard_attention(in);
    if (wide_head_gemms_serve(in)) return wide_head_gemms(in);
    return sdpa_attention(in, kernel);
}

torch::Tensor flex_attention(const AttentionInputs& in, SdpaKernel kernel) {
    // Sites without a bias (cross, temporal, VAE) are plain attention: the fastest plain path serves them.
    if (!in.key_bias) return LSYNC_HAS_SDPA ? flash_attention(in, kernel) : standard_attention(in);
    if (in.key_counts.defined()) return standard_attention(in);  // a bias and counts: both as one mask
    return flex_attention_with(FlexImpl::Auto, in);
}

torch::Tensor lip_focus_bias(const torch::Tensor& mouth, double weight) {
    LSYNC_CHECK(weight > 0, ErrorCode::Usage, "--lip-focus must be positive");
    return mouth.to(torch::kFloat) * static_cast<float>(std::log(weight));
}

AttentionDispatcher::AttentionDispatcher(AttentionBackend requested, bool strict, torch::Device device,
                                         torch::ScalarType dtype)
    : requested_(requested), active_(requested), strict_(strict) {
    if (requested == AttentionBackend::Auto) {
        const auto flash = attention_availability(AttentionBackend::Flash, device, dtype);
        active_ = flash.available ? AttentionBackend::Flash : AttentionBackend::Standard;
        if (!flash.available) notes_.push_back("auto: using standard attention (flash: " + flash.reason + ")");
        return;
    }
    if (requested == AttentionBackend::Flex) flash_ = attention_availability(AttentionBackend::Flash, device, dtype);
    // Walk the fallback chain until a backend is available here.
    while (true) {
        const auto avail = attention_availability(active_, device, dtype);
        if (avail.available) break;
        const std::string why = to_string(active_) + " attention is unavailable: " + avail.reason;
        if (strict_) throw_error(ErrorCode::Backend, why + " (--strict-attention)");
        fall_back(active_, why);
    }
}

void AttentionDispatcher::fall_back(AttentionBackend failed, const std::string& why) {
    const std::lock_guard<std::mutex> lock(mutex_);
    if (active_ != failed) return;  // another thread's call failed on it first and moved on
    LSYNC_CHECK(failed != AttentionBackend::Standard, ErrorCode::Backend, why);
    AttentionBackend next = failed == AttentionBackend::Flex ? AttentionBackend::Flash : AttentionBackend::Standard;
    std::string skipped;
    if (next == AttentionBackend::Flash && !flash_.available) {
        // Not a backend this build or device lacks (the constructor would have walked past it for the same reason).
        skipped = " (flash: " + flash_.reason + ")";
        next = AttentionBackend::Standard;
    }
    notes_.push_back(why + "; falling back to " + to_string(next) + skipped);
    log::warn(notes_.back());
    active_ = next;
}

torch::Tensor AttentionDispatcher::operator()(const AttentionInputs& in) {
    while (true) {
        const AttentionBackend backend = active_;
        try {
            switch (backend) {
                case AttentionBackend::Flex: return flex_attention(in, sdpa_kernel_);
                case AttentionBackend::Flash: return flash_attention(in, sdpa_kernel_);
                default: return standard_attention(in);
            }
        } catch (const c10::OutOfMemoryError&) {
            // Not the backend's fault, and standard attention needs more memory: the caller's back-off decides.
            throw;
        } catch (const c10::Error& e) {
            if (backend == AttentionBackend::Standard) throw;
            const std::string why = to_string(backend) + " attention failed at run time: " + e.what_without_backtrace();
            if (strict_) throw_error(ErrorCode::Backend, why + " (--strict-attention)");
            fall_back(backend, why);
        }
    }
}

}  // namespace lsync::ops
