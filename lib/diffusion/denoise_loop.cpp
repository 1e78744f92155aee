#include "diffusion/denoise_loop.h"

#include "core/cancel.h"
#include "core/error.h"

#include <string>

namespace lsync::diffusion {

namespace {

void check_video(const torch::Tensor& t, const torch::Tensor& latents, int64_t channels, const char* what) {
    LSYNC_CHECK(t.defined() && t.dim() == 5 && t.size(0) == latents.size(0) && t.size(1) == channels &&
                    t.size(2) == latents.size(2) && t.size(3) == latents.size(3) && t.size(4) == latents.size(4),
                ErrorCode::Internal,
                std::string("denoise: ") + what + " must be [" + std::to_string(latents.size(0)) + ", " +
                    std::to_string(channels) + ", F, h, w] matching the latents " + c10::str(latents.sizes()) +
                    ", got " + (t.defined() ? c10::str(t.sizes()) : std::string("undefined")));
}

}  // namespace

torch::Tensor duplicate_for_cfg(const torch::Tensor& x) { return torch::cat({x, x}, 0); }

torch::Tensor cfg_audio(const torch::Tensor& audio) { return torch::cat({torch::zeros_like(audio), audio}, 0); }

torch::Tensor apply_guidance(const torch::Tensor& eps, double guidance_scale) {
    LSYNC_CHECK(eps.size(0) % 2 == 0, ErrorCode::Internal, "CFG: the denoiser output must hold both branches");
    auto halves = eps.chunk(2, 0);
    return halves[0] + guidance_scale * (halves[1] - halves[0]);
}

torch::Tensor unet_input(const torch::Tensor& latents, const torch::Tensor& mask,
                         const torch::Tensor& masked_image_latents, const torch::Tensor& ref_latents) {
    return torch::cat({latents, mask, masked_image_latents, ref_latents}, 1);
}

torch::Tensor denoise_chunk(const Denoiser& denoiser, const DDIMScheduler& scheduler, torch::Tensor latents,
                            const ChunkConditioning& cond, const DenoiseOptions& options) {
    LSYNC_CHECK(static_cast<bool>(denoiser), ErrorCode::Internal, "denoise: no denoiser");
    LSYNC_CHECK(latents.defined() && latents.dim() == 5 && latents.size(1) == 4, ErrorCode::Internal,
                "denoise: latents must be [B, 4, F, h, w]");
    LSYNC_CHECK(scheduler.num_inference_steps() > 0, ErrorCode::Internal, "denoise: scheduler has no timesteps");
    check_video(cond.mask, latents, 1, "mask");
    check_video(cond.masked_image_latents, latents, 4, "masked_image_latents");
    check_video(cond.ref_latents, latents, 4, "ref_latents");
    LSYNC_CHECK(cond.audio.defined() && cond.audio.dim() == 3 && cond.audio.size(0) == latents.size(0) * latents.size(2),
                ErrorCode::Internal, "denoise: audio must be [B*F, tokens, dim]");

    const bool cfg = uses_cfg(options.guidance_scale);
    const auto opts = latents.options();
    auto prepare = [&](const torch::Tensor& t) {
        auto x = t.to(opts);
        return cfg ? duplicate_for_cfg(x) : x;
    };
    const auto mask = prepare(cond.mask);
    const auto masked = prepare(cond.masked_image_latents);
    const auto ref = prepare(cond.ref_latents);
    const auto audio_in = cond.audio.to(opts);
    const auto audio = cfg && !options.silent_cfg_audio ? cfg_audio(audio_in) : audio_in;

    const auto timesteps = scheduler.timesteps();
    const int steps = static_cast<int>(timesteps.size(0));
    for (int i = 0; i < steps; ++i) {
        throw_if_interrupted();
        const int64_t t = timesteps[i].item<int64_t>();
        // DDIM's scale_model_input is the identity, so the noisy latents go in unchanged.
        const auto x = unet_input(cfg ? duplicate_for_cfg(latents) : latents, mask, masked, ref);
        // The timestep on the latents' device, made by a fill kernel that takes the value as an argument: a CPU
        // tensor would be copied to the GPU inside the UNet, and a copy from pageable memory waits for the
        // stream, so every step would stall the host until the GPU ran dry.
        const auto timestep = torch::full({}, t, latents.options().dtype(torch::kLong));
        auto eps = denoiser(x, timestep, audio, options.deepcache.phase_for_step(i));
        LSYNC_CHECK(eps.defined() && eps.size(0) == x.size(0) && eps.size(1) == 4, ErrorCode::Internal,
                    "denoise: the denoiser returned " + (eps.defined() ? c10::str(eps.sizes()) : std::string("nothing")) +
                        " for input " + c10::str(x.sizes()));
        if (cfg) eps = apply_guidance(eps, options.guidance_scale);
        latents = scheduler.step(eps, t, latents).prev_sample;
        if (options.on_step && !options.on_step(i, steps, t, latents))
            throw_error(ErrorCode::Interrupted, "denoising cancelled at step " + std::to_string(i + 1) + " of " +
                                                    std::to_string(steps));
    }
    return latents;
}

}  // namespace lsync::diffusion
