#pragma once
// The per-chunk denoising loop of LipsyncPipeline, cut into pieces that can be tested one at a time:
//   * CFG: the unconditional branch is the same input with all-zero audio; both run in one denoiser call in
//     the batch order [uncond, cond]; eps = eps_u + g * (eps_c - eps_u). guidance <= 1 runs the conditional
//     branch alone, as the official code does.
//   * the UNet input: channels [noisy latents (4), mask (1), masked-image latents (4), reference latents (4)].
//   * DeepCache: the phase of each step comes from DeepCacheSchedule and is handed to the denoiser; the
//     schedule restarts at every chunk (the official helper is reset per chunk too).
// The denoiser is a std::function, so the loop knows nothing about the UNet.
//
// Batching several chunks: every tensor may carry B > 1 chunks along the batch axis (audio then has B*F rows,
// chunk-major); the CFG duplication keeps the [all uncond, all cond] order the official code would produce.

#include "diffusion/ddim_scheduler.h"
#include "diffusion/denoiser.h"

#include <torch/torch.h>

#include <functional>

namespace lsync::diffusion {

/// What stays fixed for a chunk during denoising, in the UNet layout, *not* duplicated for CFG.
struct ChunkConditioning {
    torch::Tensor mask;                  ///< [B, 1, F, h, w] (1 = keep)
    torch::Tensor masked_image_latents;  ///< [B, 4, F, h, w], scaled by 0.18215
    torch::Tensor ref_latents;           ///< [B, 4, F, h, w], scaled
    torch::Tensor audio;                 ///< [B*F, tokens, dim] conditional audio embeddings
};

/// Called after every step with the 0-based step index, the step count, the timestep and the new latents.
/// Returning false cancels the loop (it throws Error(Interrupted)).
using StepCallback = std::function<bool(int step, int steps, int64_t timestep, const torch::Tensor& latents)>;

struct DenoiseOptions {
    double guidance_scale = 1.5;  ///< > 1 enables CFG
    DeepCacheSchedule deepcache;  ///< enabled, interval 3 by default
    StepCallback on_step;         ///< optional progress / cancel hook
    /// Hand the denoiser a CFG call's audio in the silent-first form (denoiser.h): the conditional rows alone.
    /// The UNet takes that form and skips the audio layer's work for the silent half, whose output it knows
    /// (models/unet/transformer_3d.h); a denoiser that wants all rows leaves this off.
    bool silent_cfg_audio = false;
};

/// Whether this guidance scale runs the unconditional branch.
inline bool uses_cfg(double guidance_scale) { return guidance_scale > 1.0; }

/// cat([x, x]) along the batch axis: the same tensor for both CFG branches.
torch::Tensor duplicate_for_cfg(const torch::Tensor& x);
/// cat([zeros_like(audio), audio]): the unconditional (silent) branch first.
torch::Tensor cfg_audio(const torch::Tensor& audio);
/// eps_u + g * (eps_c - eps_u) from the denoiser's [uncond; cond] output.
torch::Tensor apply_guidance(const torch::Tensor& eps, double guidance_scale);
/// The 13-channel UNet input: cat([latents, mask, masked_image_latents, ref_latents], dim 1). All [B', ., F, h, w]
/// with the same B' (already duplicated when CFG is on).
torch::Tensor unet_input(const torch::Tensor& latents, const torch::Tensor& mask,
                         const torch::Tensor& masked_image_latents, const torch::Tensor& ref_latents);

/// Runs every step of `scheduler` (set_timesteps already called) from `latents` [B, 4, F, h, w] and returns the
/// final latents. The conditioning is moved to the latents' device and dtype once.
torch::Tensor denoise_chunk(const Denoiser& denoiser, const DDIMScheduler& scheduler, torch::Tensor latents,
                            const ChunkConditioning& cond, const DenoiseOptions& options);

}  // namespace lsync::diffusion
