#pragma once
// The one-chunk pipeline fixture (tests/fixtures/golden/pipeline_tiny_golden.safetensors: LipsyncPipeline's
// per-chunk body with the tiny UNet and VAE, 4 frames of 64x64, 20 DDIM steps, guidance 1.5). This helper runs
// our loop with any Denoiser on the fixture's inputs and compares every intermediate the fixture has, so the
// real UNet can be plugged in with one call:
//     check_pipeline_golden(unet_denoiser, /*deepcache=*/false);
//     check_pipeline_golden(unet_denoiser, /*deepcache=*/true);

#include "golden_compare.h"

#include "diffusion/ddim_scheduler.h"
#include "diffusion/denoise_loop.h"
#include "diffusion/latents.h"
#include "faces/paste_back.h"
#include "vae/vae_loader.h"

#include <string>
#include <vector>

namespace lsync::test {

inline const GoldenFile& pipeline_golden() {
    static const GoldenFile file("pipeline_tiny_golden.safetensors");
    return file;
}

/// The chunk's conditioning as the loop takes it (not duplicated): the conditional halves of the fixture's
/// CFG tensors.
inline diffusion::ChunkConditioning pipeline_golden_conditioning() {
    const auto& g = pipeline_golden();
    diffusion::ChunkConditioning c;
    c.mask = g["mask_latents_cfg"].slice(0, 1, 2);
    c.masked_image_latents = g["masked_image_latents_cfg"].slice(0, 1, 2);
    c.ref_latents = g["ref_latents_cfg"].slice(0, 1, 2);
    const auto audio = g["audio_embeds_cfg"];
    c.audio = audio.slice(0, audio.size(0) / 2);
    return c;
}

/// Decodes `final_latents` [1, 4, F, h, w] with the tiny golden VAE: [F, 3, H, W].
inline torch::Tensor pipeline_golden_decode(const torch::Tensor& final_latents) {
    static auto vae = models::load_vae(golden_fixture("vae_tiny").string());
    return vae->decode(diffusion::video_latents_to_frames(final_latents));
}

/// Runs the fixture's loop with `denoiser` and checks latents_per_step, final_latents, decoded and (without
/// DeepCache) final_frames, or the deepcache_* tensors, at the fixture README's tolerances.
inline void check_pipeline_golden(const diffusion::Denoiser& denoiser, bool deepcache) {
    const auto& g = pipeline_golden();
    const std::string p = deepcache ? "deepcache_" : "";
    diffusion::DDIMScheduler scheduler;
    scheduler.set_timesteps(20);
    REQUIRE(torch::equal(scheduler.timesteps(), g["timesteps"]));
    diffusion::DenoiseOptions options;
    options.guidance_scale = 1.5;
    options.deepcache.enabled = deepcache;
    std::vector<torch::Tensor> per_step;
    options.on_step = [&](int, int, int64_t, const torch::Tensor& latents) {
        per_step.push_back(latents.clone());
        return true;
    };
    auto final_latents =
        diffusion::denoise_chunk(denoiser, scheduler, g["init_latents"], pipeline_golden_conditioning(), options);
    REQUIRE(per_step.size() == 20);
    // The loop amplifies summation-order differences (see check_close_to_scale): bounds relative to the largest
    // value, 1e-3 of it, about 4x the worst spread measured across thread settings (2.8e-4 of it).
    check_close_to_scale(p + "latents_per_step", torch::stack(per_step), g[p + "latents_per_step"], 1e-3);
    check_close_to_scale(p + "final_latents", final_latents, g[p + "final_latents"], 1e-3);
    auto decoded = pipeline_golden_decode(final_latents);
    check_close_to_scale(p + "decoded", decoded, g[p + "decoded"], 1e-3);
    if (!deepcache)
        check_close_to_scale("final_frames", faces::composite_crop(decoded, g["ref_pixel_values"], g["masks"]),
                             g["final_frames"], 1e-3);
}

}  // namespace lsync::test
