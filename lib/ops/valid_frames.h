#pragma once
// Chunks of fewer frames inside a call of more. A UNet call of several chunks takes 5-D tensors [B, C, F, H, W]
// whose batch entries all have F frames; a chunk with fewer (a render's short last chunk, or one with frames
// whose face was not found) rides in such a call padded to F, and only its first `count` frames are real. Two
// things in the UNet look across frames: the 5-D GroupNorm statistics (over C/G channels x F x H x W: the
// resnets' and conv_norm_out's) and the motion modules' attention over the frames. Under a ValidFramesScope both
// see only the real frames, so the real frames come out as a call of their own length would give them (up to
// the summation order of fp32 statistics). The padding frames come out finite as long as they go in finite (the
// masked fallbacks multiply them by zero weights), and nobody reads them. Everything else in the UNet works per
// frame.
//
// The counts live on the call's device and are read by the kernels there, not by the host, so a CUDA graph
// captured under a scope replays with whatever counts its fixed tensor holds at replay time
// (pipeline/graphed_denoiser.cpp copies each call's counts in).

#include <torch/torch.h>

#include <cstdint>

namespace lsync::ops {

/// For its lifetime, the 5-D calls on the constructing thread treat frame f of batch entry b as padding when
/// f >= counts[b % n] (counts: int32 [n] on the device of the calls; entry b of a call of B = k n entries is
/// chunk b % n, the order of classifier-free guidance's duplicated batch). An undefined `counts` opens no
/// scope. Nested scopes restore the outer one.
class ValidFramesScope {
public:
    explicit ValidFramesScope(torch::Tensor counts);
    ~ValidFramesScope();
    ValidFramesScope(const ValidFramesScope&) = delete;
    ValidFramesScope& operator=(const ValidFramesScope&) = delete;

private:
    torch::Tensor previous_;
};

/// The innermost scope's counts on this thread; undefined outside any.
const torch::Tensor& valid_frames();

/// The counts for a call of `batch` entries ([batch] int32): the scope's own tensor when it has `batch`
/// entries (no new tensor: what a CUDA graph captures), else repeated to `batch`. Undefined outside a scope.
/// Error(Internal) when `batch` is not a multiple of the scope's entries.
torch::Tensor valid_frames_for(int64_t batch);

/// [batch * per_entry] int32: each entry's count repeated `per_entry` times (the motion modules' sequences, one
/// per pixel of each entry). Undefined outside a scope.
torch::Tensor valid_frames_per_sequence(int64_t batch, int64_t per_entry);

/// Whether a kernel can read `counts` as they are for a call of `batch` entries on `device`: contiguous int32
/// [batch] on that device.
bool counts_fit(const torch::Tensor& counts, int64_t batch, const torch::Device& device);

/// [B, L] fp32: 0 for keys j < counts[b], -inf past them (an additive key mask).
torch::Tensor key_mask_bias(const torch::Tensor& counts, int64_t keys);

/// GroupNorm (and SiLU) of a 5-D x [B, C, F, H, W] whose statistics per (entry, group) are taken over the first
/// counts[b] frames only (counts int32 [B] on x's device); every frame is normalised with them. fp32 statistics,
/// the result in x's dtype and memory format. Device operations only (no host read of the counts).
torch::Tensor group_norm_valid_frames_reference(const torch::Tensor& x, const torch::Tensor& counts, int64_t groups,
                                                const torch::Tensor& weight, const torch::Tensor& bias, double eps,
                                                bool silu);

}  // namespace lsync::ops
