#include "diagnostics/render_flops.h"

#include "diffusion/denoise_loop.h"
#include "diffusion/denoiser.h"

namespace lsync::diagnostics {

std::optional<NetworkGflop> network_gflop(int resolution) {
    // Source: the project's reference notes, latentsync-reference.md (shared/docs/), section 8.1 "Derived
    // FLOPs" (2 x multiply-accumulates of convolutions, linears and attention matmuls; per video frame and
    // guidance branch, temporal attention amortised over 16 frames). Its per-output-frame totals follow from
    // these: 20 steps with CFG and DeepCache (7 full + 13 shallow) 4.2 / 18.5 TFLOP, without DeepCache 10.1 /
    // 44.1 TFLOP, VAE 1.17 / 4.75 TFLOP (tests/unit/test_render.cpp checks them).
    if (resolution == 256) return NetworkGflop{253.0, 26.0, 273.0, 622.0};
    if (resolution == 512) return NetworkGflop{1102.0, 119.0, 1117.0, 2515.0};
    return std::nullopt;
}

std::optional<RenderFlops> render_flops(int resolution, int steps, double guidance, bool deepcache) {
    const auto g = network_gflop(resolution);
    if (!g) return std::nullopt;
    RenderFlops f;
    diffusion::DeepCacheSchedule schedule;
    schedule.enabled = deepcache;
    for (int step = 0; step < steps; ++step)
        ++(schedule.phase_for_step(step) == diffusion::CachePhase::Reuse ? f.shallow_steps : f.full_steps);
    f.branches = diffusion::uses_cfg(guidance) ? 2 : 1;
    f.unet_tflop = f.branches * (f.full_steps * g->unet_full + f.shallow_steps * g->unet_shallow) / 1000.0;
    f.vae_tflop = (2 * g->vae_encode + g->vae_decode) / 1000.0;
    return f;
}

}  // namespace lsync::diagnostics
