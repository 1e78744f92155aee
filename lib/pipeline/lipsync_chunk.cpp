#include "pipeline/lipsync_chunk.h"

#include "core/error.h"
#include "diffusion/latents.h"
#include "faces/align_batch.h"
#include "faces/paste_back.h"

namespace lsync::pipeline {

LipsyncChunk::LipsyncChunk(const RenderModels& models, torch::Tensor mask, DiffusionSettings settings,
                           NoiseSource noise)
    : models_(models),
      geometry_(faces::CropGeometry::for_resolution(models.resolution)),
      settings_(settings),
      noise_(std::move(noise)),
      denoiser_(models::make_denoiser(models.unet)) {
    LSYNC_CHECK(mask.dim() == 2 && mask.size(0) == models.resolution && mask.size(1) == models.resolution,
                ErrorCode::Internal, "LipsyncChunk: the mask must be R x R");
    LSYNC_CHECK(settings_.steps >= 1 && settings_.steps <= 1000, ErrorCode::Usage, "--steps must be from 1 to 1000");
    const auto device = models.unet->device();
    mask_ = mask.to(device, torch::kFloat);
    const int64_t f = models.vae->config().downscale();
    mask_latent_ = diffusion::mask_to_latent(mask_.view({1, 1, mask_.size(0), mask_.size(1)}), f)
                       .to(models.unet->dtype());
    const int64_t h = models.resolution / f;
    shared_noise_ = noise_.shared(models.vae->config().latent_channels, h, h);
    scheduler_.set_timesteps(settings_.steps);
}

torch::Tensor LipsyncChunk::encode(const torch::Tensor& images, int64_t chunk, int which) {
    const auto dist = models_.vae->encode(images);
    // mean + std * eps, the posterior sample diffusers draws, with eps from the chunk's own generator.
    const auto eps = noise_.posterior(chunk, which, dist.mean.sizes()).to(dist.mean.device(), dist.mean.scalar_type());
    return diffusion::frames_to_video_latents(dist.mean + dist.std * eps);
}

torch::Tensor LipsyncChunk::run(const ChunkFrames& in, const diffusion::StepCallback& on_step, ChunkTrace* trace) {
    torch::NoGradGuard no_grad;
    const int64_t n = in.frames.size(0);
    LSYNC_CHECK(n > 0 && in.matrices.size(0) == n && in.audio.size(0) == n, ErrorCode::Internal,
                "LipsyncChunk: frames, matrices and audio disagree");
    const auto dtype = models_.unet->dtype();
    // The official preprocessing: uint8 crops -> [0, 1] -> [-1, 1]; masked = crop * mask (mouth -> 0).
    const auto crops = faces::align_faces(in.frames, in.matrices, geometry_);
    const auto pixels = (crops / 255.0 - 0.5) / 0.5;
    const auto masked = pixels * mask_;

    diffusion::ChunkConditioning cond;
    cond.masked_image_latents = encode(masked.to(dtype), in.chunk, 0);
    cond.ref_latents = encode(pixels.to(dtype), in.chunk, 1);
    cond.mask = mask_latent_.expand({1, 1, n, mask_latent_.size(3), mask_latent_.size(4)});
    cond.audio = in.audio;
    const auto latents =
        shared_noise_.to(cond.ref_latents.device(), dtype).expand({-1, -1, n, -1, -1}).contiguous();

    diffusion::DenoiseOptions options;
    options.guidance_scale = settings_.guidance;
    options.deepcache.enabled = settings_.deepcache;
    options.on_step = on_step;
    const auto final_latents = diffusion::denoise_chunk(denoiser_, scheduler_, latents, cond, options);
    const auto decoded = models_.vae->decode(diffusion::video_latents_to_frames(final_latents)).to(torch::kFloat);
    const auto faces_out = faces::composite_crop(decoded, pixels, mask_);
    if (trace) {
        trace->crops = crops;
        trace->generated = faces_out;
    }
    return faces::paste_back(in.frames, faces_out, in.matrices, geometry_).frames;
}

}  // namespace lsync::pipeline
