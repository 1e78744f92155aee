#pragma once
// Building an AutoencoderKL from files: a diffusers folder (config.json + diffusion_pytorch_model.safetensors,
// or the older .bin), or a single checkpoint file (config from --config, else a config.json beside it, else
// the sd-vae-ft-mse defaults). Loading is strict: every parameter must be in the file and every tensor of the
// file must be used, so a UNet or Whisper file given as the VAE is an Error(Weights), not a silent half-load.

#include "vae/autoencoder_kl.h"

#include "io/weight_loader.h"
#include "ops/attention_context.h"

#include <string>
#include <vector>

namespace lsync::models {

struct VAELoadOptions {
    std::string config_path;  ///< optional explicit config.json
    torch::Device device = torch::kCPU;
    torch::ScalarType dtype = torch::kFloat;
    ops::AttentionContextPtr attention;  ///< default context when null
};

/// Where the config and weights of `path` are (a folder or a file; see the header comment).
struct VAEFiles {
    std::string config;   ///< empty: use the sd-vae-ft-mse defaults
    std::string weights;
};
VAEFiles resolve_vae_files(const std::string& path, const std::string& config_path = "");

/// The old diffusers attention spelling (query/key/value/proj_attn) -> to_q/to_k/to_v/to_out.0.
const std::vector<io::RenameRule>& vae_renames();

/// Loads the VAE at `path` in eval mode on the requested device and dtype. Errors: InputMissing for absent
/// paths, Weights for a folder without config.json or weights, a malformed config or mismatched tensors.
AutoencoderKL load_vae(const std::string& path, const VAELoadOptions& options = {});

/// A VAE of `config` with random weights (the golden fixtures' scheme, init_random_parameters), drawn where they
/// live on `device` in `dtype` and laid out as the loader lays them (channels_last conv weights on CUDA): the
/// render's --weights random and `bench vae`.
AutoencoderKL random_vae(const VAEConfig& config, const torch::Device& device, torch::ScalarType dtype,
                         uint64_t seed);

}  // namespace lsync::models
