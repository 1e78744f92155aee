#pragma once
// The single attention entry point used by every attention site (spatial self-attention, audio cross-attention,
// temporal attention, VAE mid-block). Backends:
//   standard  explicit QK^T -> fp32 softmax -> V, chunked over queries so memory stays bounded; runs everywhere
//   flash     LibTorch's fused scaled_dot_product_attention (LibTorch >= 2.0); on CUDA fp16/bf16 a fused kernel
//   flex      attention with an additive per-key bias (the lip-focus score modification); SDPA + bias where
//             LibTorch has SDPA, standard + bias elsewhere
// Selection and fallback are described in docs/attention.md.

#include <torch/torch.h>

#include <atomic>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace lsync::ops {

enum class AttentionBackend { Auto, Flash, Flex, Standard };

std::string to_string(AttentionBackend b);
/// Parses "auto|flash|flex|standard"; throws Error(Usage) otherwise.
AttentionBackend parse_attention_backend(const std::string& name);

/// Whether `backend` can run on `device` with `dtype`, and why not.
struct BackendAvailability {
    bool available = false;
    std::string reason;          ///< why not, or how it runs ("SDPA + additive bias")
};
BackendAvailability attention_availability(AttentionBackend backend, const torch::Device& device,
                                           torch::ScalarType dtype);

/// Inputs to one attention call. q [B, H, Lq, D], k/v [B, H, Lk, D]. `key_bias` ([B or 1, Lk], fp32) is added
/// to the logits of every query for that key; only flex and standard use it.
struct AttentionInputs {
    torch::Tensor q, k, v;
    std::optional<torch::Tensor> key_bias;
    /// int32 [B] on q's device, or undefined: sequence b attends to its first key_counts[b] keys only (a padded
    /// chunk's real frames, ops/valid_frames.h). Unlike a lip-focus bias, every backend applies it.
    torch::Tensor key_counts;
};

/// Reference implementation: fp32 softmax, chunks of at most `query_chunk` queries (fewer when the chunk's
/// fp32 logits would pass 1 GiB), so memory stays bounded at any sequence length. CUDA fp16/bf16 calls without a
/// bias keep the logits in their dtype (the scale applied inside the GEMM, ATen's softmax computing in fp32):
/// fewer passes over them, one rounding of the logits as in the fp32 form (of the scaled ones here);
/// LSYNC_STANDARD_HALF_LOGITS=0 computes those in fp32 too.
torch::Tensor standard_attention(const AttentionInputs& in, int64_t query_chunk = 4096);
/// `in` with its key counts made an additive mask (0, or -inf past each sequence's count) in key_bias, added to
/// the bias it had; `in` itself when it has no counts.
AttentionInputs with_key_mask(const AttentionInputs& in);
bool standard_half_logits_enabled();
void set_standard_half_logits(bool enabled);
/// The half-precision form's slices: at most 64 Mi logits where the keys are at most 1,024, else 256 Mi (on;
/// LSYNC_STANDARD_SMALL_SLICES=0: 256 Mi always).
bool standard_small_slices_enabled();
void set_standard_small_slices(bool enabled);
/// Which fused kernel serves SDPA's calls without a bias, by their size (query tokens x keys, the logits of one
/// head):
///   ATen's choice  (on an H200 with PyTorch 2.11: cuDNN's attention, which builds and compiles a plan for every
///                  new shape the first time a thread meets it: 1-3 s of a 1.5 render's first chunks, 4-4.5 s of a
///                  1.6 render's) for calls of at least `aten_from_logits` logits per head
///   FlashAttention-2 (compat::flash2_attention) wherever it serves, for smaller calls: precompiled, no per-shape
///                  plans; 3-4 % slower than cuDNN's on the 256 px UNet's shapes, more on the 4,096-token
///                  self-attention with head dim 40 (which it pads to 64)
/// AtenChoice (threshold 0) and Flash2 (no threshold) are the two ends. The render's choice is pipeline::sdpa_kernel
/// (device_policy.h); the first-use journal's pre-warm builds cuDNN's plans of a render's shapes while the models load.
struct SdpaKernel {
    int64_t aten_from_logits = 0;

    static const SdpaKernel AtenChoice, Flash2;
    /// Whether a call of `query_tokens` x `keys` takes FlashAttention-2 (where it serves) rather than ATen's choice.
    bool flash2_for(int64_t query_tokens, int64_t keys) const { return query_tokens * keys < aten_from_logits; }
    bool operator==(const SdpaKernel& o) const { return aten_from_logits == o.aten_from_logits; }
    bool operator!=(const SdpaKernel& o) const { return !(*this == o); }
};
inline constexpr SdpaKernel SdpaKernel::AtenChoice{0};
inline constexpr SdpaKernel SdpaKernel::Flash2{INT64_MAX};
/// "aten", "flash2" or "flash2 below N logits per head", for tables and logs.
std::string to_string(const SdpaKernel& kernel);

/// Fused attention (no bias): on CUDA, sequences of at most 16 take our kernel (ops/short_attention.h), the
/// rest SDPA through `kernel`; with wide_head_gemms_enabled() on LibTorch >= 2.8, heads wider than 256 channels in
/// fp16/bf16 on CUDA (the VAE's) two GEMMs around a softmax of fp32 logits instead. Throws Error(Backend) when
/// LibTorch has no SDPA.
torch::Tensor flash_attention(const AttentionInputs& in, SdpaKernel kernel = SdpaKernel::AtenChoice);
/// Whether flash_attention() runs heads wider than 256 channels as two GEMMs and a softmax (where it can): on unless
/// LSYNC_WIDE_HEAD_GEMMS=0 (read once), or as last set.
bool wide_head_gemms_enabled();
void set_wide_head_gemms(bool enabled);
/// SDPA alone (no bias) through `kernel`, whatever the shape. Throws Error(Backend) when LibTorch has no SDPA.
torch::Tensor sdpa_attention(const AttentionInputs& in, SdpaKernel kernel = SdpaKernel::AtenChoice);
/// Biased attention: SDPA with an additive mask where available, else standard with the bias. Calls without a
/// bias are plain attention (flash_attention through `kernel`).
torch::Tensor flex_attention(const AttentionInputs& in, SdpaKernel kernel = SdpaKernel::AtenChoice);

/// Resolves a requested backend to the one that will run, following the chain flex -> flash -> standard and
/// flash -> standard, and keeps that decision (including runtime failures) for the whole process.
class AttentionDispatcher {
public:
    AttentionDispatcher(AttentionBackend requested, bool strict, torch::Device device, torch::ScalarType dtype);

    AttentionBackend requested() const { return requested_; }
    AttentionBackend active() const { return active_.load(); }
    /// Warnings produced while resolving (one per fallback), for the log and for `doctor`.
    const std::vector<std::string>& notes() const { return notes_; }

    /// The kernel of SDPA's calls without a bias (flash and flex); ATen's choice unless set.
    void set_sdpa_kernel(SdpaKernel kernel) { sdpa_kernel_ = kernel; }
    SdpaKernel sdpa_kernel() const { return sdpa_kernel_; }

    /// Runs attention on the active backend. A runtime failure of a fused backend (unsupported shape, launch
    /// error) falls back once along the chain and is remembered; with `strict` it is an Error(Backend).
    torch::Tensor operator()(const AttentionInputs& in);

private:
    AttentionBackend requested_;
    /// Flash's availability here, for a flex request's runtime fallback: found in the constructor, because a probe
    /// in fall_back would run GPU work inside a failed call's handler (a sticky CUDA error, a graph capture).
    BackendAvailability flash_ = {true, ""};
    /// Read by every call, from any thread that runs the networks (a worker's VAE beside the UNet's graph priming,
    /// the render thread's Whisper); changed under mutex_.
    std::atomic<AttentionBackend> active_;
    std::mutex mutex_;
    bool strict_;
    SdpaKernel sdpa_kernel_ = SdpaKernel::AtenChoice;
    std::vector<std::string> notes_;
    /// From `failed` to the next backend of the chain that is available here (flex -> flash -> standard: where
    /// flash is unavailable, as without SDPA or in fp32 on CUDA, flex goes straight to standard), unless another
    /// thread already left `failed`.
    void fall_back(AttentionBackend failed, const std::string& why);
};

/// The additive bias that makes keys inside `mouth` (bool/float [B or 1, Lk], 1 = mouth) receive `weight`
/// times the attention mass they would otherwise get: log(weight) inside, 0 outside.
torch::Tensor lip_focus_bias(const torch::Tensor& mouth, double weight);

}  // namespace lsync::ops
