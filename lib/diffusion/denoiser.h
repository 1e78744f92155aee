#pragma once
// The contract between the denoising loop (lib/diffusion) and the UNet (models/unet), kept free of either so
// the loop can be tested with any denoiser and the UNet with any schedule.
//
// DeepCache (horseee/DeepCache, as LatentSync's --enable_deepcache sets it: interval 3, branch 0): on "capture"
// steps the whole UNet runs and keeps the deep features; on "reuse" steps only the shallow branch (conv_in, time
// embedding, the last layer of the last up block, the output head) runs on top of the kept features.

#include <torch/torch.h>

#include <functional>

namespace lsync::diffusion {

enum class CachePhase {
    Off,      ///< plain full forward, nothing kept
    Capture,  ///< full forward that also stores the deep features for later reuse
    Reuse,    ///< shallow forward on the stored features
};

struct DeepCacheSchedule {
    bool enabled = true;
    int interval = 3;  ///< a full forward every `interval` steps, starting with step 0
    /// The phase for denoising step `step` (0-based).
    CachePhase phase_for_step(int step) const {
        if (!enabled) return CachePhase::Off;
        return step % interval == 0 ? CachePhase::Capture : CachePhase::Reuse;
    }
};

/// One UNet evaluation: x [B, 13, F, h, w] (noisy latents, mask, masked-image latents, reference latents),
/// timestep (0-d int64), audio [B*F, 50, C] -> predicted noise [B, 4, F, h, w]. With
/// DenoiseOptions::silent_cfg_audio a CFG call's audio comes in the silent-first form instead: [B*F/2, 50, C],
/// the rows of the second (conditional) half of the batch only, the first half's audio being all zeros.
using Denoiser = std::function<torch::Tensor(const torch::Tensor& x, const torch::Tensor& timestep,
                                             const torch::Tensor& audio, CachePhase phase)>;

}  // namespace lsync::diffusion
