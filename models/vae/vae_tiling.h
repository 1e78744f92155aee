#pragma once
// Decoding (and encoding) big batches within a memory budget. Two independent tools:
//   * batch slicing: the decoder runs on `batch_slice` images at a time. Every layer of the VAE works per image
//     (GroupNorm statistics are per sample), so a sliced result equals the one-call result exactly.
//   * spatial tiling: each image's latent is cut into overlapping tiles that are decoded separately and blended
//     with linear ramps across the overlaps. GroupNorm and the mid-block attention then see one tile at a
//     time, so the result is close to, not equal to, the whole-image decode; use it only when a single
//     image does not fit.

#include "vae/autoencoder_kl.h"

#include <cstdint>
#include <functional>

namespace lsync::models {

struct VAEDecodePlan {
    int64_t batch_slice = 0;   ///< images per decoder call; 0 = the whole batch at once
    int64_t tile = 0;          ///< latent tile edge; 0 = no tiling (tiling applies only when h or w exceeds it)
    int64_t tile_overlap = 4;  ///< latent rows/columns shared by neighbouring tiles (< tile)
};

/// One decoder or encoder call on a slice or tile; unset: `vae`'s own decode() / encode() (pipeline::GraphedVae
/// passes its CUDA-graph calls).
using VAEDecodeCall = std::function<torch::Tensor(const torch::Tensor&)>;
using VAEEncodeCall = std::function<LatentDistribution(const torch::Tensor&)>;

/// decode() following `plan`; same inputs and output as AutoencoderKLImpl::decode.
torch::Tensor decode_planned(AutoencoderKLImpl& vae, const torch::Tensor& z, const VAEDecodePlan& plan,
                             const VAEDecodeCall& call = nullptr);

/// encode() `batch_slice` images at a time (0 = all); the posterior is identical to one call's.
LatentDistribution encode_sliced(AutoencoderKLImpl& vae, const torch::Tensor& image, int64_t batch_slice,
                                 const VAEEncodeCall& call = nullptr);

/// Rough peak activation bytes of decoding one h x w latent (the largest feature maps of the up path, a few of
/// them alive at once). An estimate for planning, not a measurement.
int64_t decode_bytes_per_image(const VAEConfig& config, int64_t h, int64_t w, torch::ScalarType dtype);

/// A plan that keeps the estimated peak of decoding `batch` latents of h x w under `budget_bytes`: the largest
/// batch slice that fits, and tiles (overlap 4) when one image alone does not.
VAEDecodePlan plan_decode(const VAEConfig& config, int64_t batch, int64_t h, int64_t w, torch::ScalarType dtype,
                          int64_t budget_bytes);

}  // namespace lsync::models
