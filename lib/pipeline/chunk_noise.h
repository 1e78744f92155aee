#pragma once
// Where a render's randomness comes from (docs/diffusion.md, "Seed rule").
//
// The official pipeline draws one initial noise map for the whole video, then, chunk after chunk, the VAE's
// posterior samples (masked crops, then reference crops) from one global generator: chunk k's noise depends on
// how many draws came before it. Ours keeps the shared initial noise (every frame starts from the same map,
// as the model expects) but gives every chunk its own generator seeded from (seed, chunk index), so a chunk
// renders the same whether it runs first, after a resume, in a batch of several chunks, or on another GPU.
// All draws are made on the CPU in float32 and then moved, so CPU and GPU renders start from the same numbers.

#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <string>

namespace lsync::pipeline {

/// What a chunk's sampling needs. Tests replace it to replay another implementation's noise.
struct NoiseSource {
    /// The initial latent noise shared by every frame: [1, C, 1, h, w] float32 on the CPU.
    std::function<torch::Tensor(int64_t channels, int64_t h, int64_t w)> shared;
    /// The posterior noise of chunk `chunk`: `which` 0 for the masked crops, 1 for the reference crops;
    /// float32 on the CPU in `shape`.
    std::function<torch::Tensor(int64_t chunk, int which, at::IntArrayRef shape)> posterior;
};

/// The default rule above for `seed`.
NoiseSource seeded_noise(uint64_t seed);

/// Replays recorded draws from a safetensors file: `init_noise` (the shared map) and, per chunk k,
/// `chunk{k}.vae_noise_masked` and `chunk{k}.vae_noise_ref` (the layout of shared/golden/render_tiny). A missing
/// tensor or a shape that differs from what the render asks for is an Error(Usage) naming it.
NoiseSource noise_from_file(const std::string& path);

/// The 64-bit seed of chunk `chunk`'s generator (splitmix64 of seed and index: neighbouring chunks and
/// neighbouring seeds get unrelated streams).
uint64_t chunk_seed(uint64_t seed, int64_t chunk);

}  // namespace lsync::pipeline
