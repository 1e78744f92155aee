#pragma once
// FLOPs of a render per lip-synced output frame, from the published per-network counts, so that a measured
// stage time becomes achieved TFLOP/s (`latentsync bench render`). Every constant lives in render_flops.cpp.

#include <optional>

namespace lsync::diagnostics {

/// One network pass per video frame (and per guidance branch for the UNet), GFLOP.
struct NetworkGflop {
    double unet_full = 0;     ///< whole UNet forward
    double unet_shallow = 0;  ///< DeepCache shallow step (reusing the cached deep features)
    double vae_encode = 0;
    double vae_decode = 0;
};

/// The published counts at crop size 256 (LatentSync 1.5) or 512 (1.6); nullopt for other sizes (test-tiny).
std::optional<NetworkGflop> network_gflop(int resolution);

/// What one lip-synced frame costs with these diffusion settings.
struct RenderFlops {
    int full_steps = 0;     ///< UNet calls that run the whole network
    int shallow_steps = 0;  ///< DeepCache steps that reuse the deep features
    int branches = 1;       ///< 2 with classifier-free guidance
    double unet_tflop = 0;  ///< the whole denoising loop
    double vae_tflop = 0;   ///< two encodes (masked and reference crops) and one decode
    double total_tflop() const { return unet_tflop + vae_tflop; }
};

/// Counts the steps as the denoising loop runs them (diffusion::DeepCacheSchedule, CFG when guidance > 1);
/// nullopt when the resolution has no published counts.
std::optional<RenderFlops> render_flops(int resolution, int steps, double guidance, bool deepcache);

}  // namespace lsync::diagnostics
