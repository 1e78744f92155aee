#include "diffusion/latents.h"

#include "core/error.h"

namespace lsync::diffusion {

torch::Tensor initial_noise(int64_t channels, int64_t frames, int64_t h, int64_t w, torch::ScalarType dtype,
                            const torch::Device& device, c10::optional<at::Generator> generator) {
    LSYNC_CHECK(channels > 0 && frames > 0 && h > 0 && w > 0, ErrorCode::Internal, "initial_noise: empty shape");
    const torch::Device draw_on = generator ? generator->device() : device;
    auto noise = torch::randn({1, channels, 1, h, w}, generator, torch::TensorOptions().dtype(dtype).device(draw_on));
    return noise.to(device).repeat({1, 1, frames, 1, 1});
}

torch::Tensor frames_to_video_latents(const torch::Tensor& vae_latents) {
    LSYNC_CHECK(vae_latents.dim() == 4, ErrorCode::Internal, "frames_to_video_latents: expected [F, C, h, w]");
    return ((vae_latents - kVAEShiftFactor) * kVAEScalingFactor).permute({1, 0, 2, 3}).unsqueeze(0);
}

torch::Tensor video_latents_to_frames(const torch::Tensor& latents) {
    LSYNC_CHECK(latents.dim() == 5, ErrorCode::Internal, "video_latents_to_frames: expected [B, C, F, h, w]");
    auto x = latents / kVAEScalingFactor + kVAEShiftFactor;
    // (b c f h w) -> ((b f) c h w)
    return x.permute({0, 2, 1, 3, 4}).reshape({-1, latents.size(1), latents.size(3), latents.size(4)});
}

torch::Tensor mask_to_latent(const torch::Tensor& masks, int64_t downscale) {
    LSYNC_CHECK(masks.dim() == 4 && masks.size(1) == 1, ErrorCode::Internal, "mask_to_latent: expected [F, 1, H, W]");
    namespace F = torch::nn::functional;
    auto small = F::interpolate(masks, F::InterpolateFuncOptions()
                                           .size(std::vector<int64_t>{masks.size(2) / downscale, masks.size(3) / downscale})
                                           .mode(torch::kNearest));
    return small.permute({1, 0, 2, 3}).unsqueeze(0);
}

}  // namespace lsync::diffusion
