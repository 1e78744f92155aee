#pragma once
// The tensor bookkeeping around the UNet that LipsyncPipeline does inline: the shared initial noise, moving
// between the VAE's image batches (F, C, h, w) and the UNet's video layout (1, C, F, h, w) with the 0.18215
// scaling, and the latent-size mask. (The crop-level composite of generated and original pixels is
// faces::composite_crop.)

#include <torch/torch.h>

#include <optional>

namespace lsync::diffusion {

/// LatentSync forces these whatever the VAE config says (scripts/inference.py).
constexpr double kVAEScalingFactor = 0.18215;
constexpr double kVAEShiftFactor = 0.0;

/// One N(0, 1) draw of shape [1, channels, 1, h, w] repeated over `frames`: every frame of the video starts
/// from the same noise (prepare_latents). Drawn on `generator`'s device (the default generator of `device`
/// when none) in `dtype`, then moved to `device`.
torch::Tensor initial_noise(int64_t channels, int64_t frames, int64_t h, int64_t w, torch::ScalarType dtype,
                            const torch::Device& device, c10::optional<at::Generator> generator = c10::nullopt);

/// VAE latents of F frames [F, C, h, w] (unscaled posterior samples or means) -> UNet layout [1, C, F, h, w],
/// (x - shift) * 0.18215.
torch::Tensor frames_to_video_latents(const torch::Tensor& vae_latents);
/// UNet layout [B, C, F, h, w] -> VAE decoder input [B*F, C, h, w], x / 0.18215 + shift.
torch::Tensor video_latents_to_frames(const torch::Tensor& latents);

/// Per-frame masks [F, 1, H, W] (1 = keep, 0 = generate) -> [1, 1, F, H/f, W/f] by nearest sampling
/// (F.interpolate's default), the mask channel of the UNet input.
torch::Tensor mask_to_latent(const torch::Tensor& masks, int64_t downscale = 8);

}  // namespace lsync::diffusion
