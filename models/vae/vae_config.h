#pragma once
// The AutoencoderKL hyper-parameters, read from a diffusers `config.json` (the keys `AutoencoderKL` takes).
// Only the SD-1.x layout is implemented (DownEncoderBlock2D / UpDecoderBlock2D, group norm, SiLU, one mid-block
// attention); any other block type, activation or norm in a config is rejected rather than silently ignored.

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace lsync::models {

struct VAEConfig {
    int64_t in_channels = 3;
    int64_t out_channels = 3;
    std::vector<int64_t> block_out_channels{128, 256, 512, 512};
    int64_t layers_per_block = 2;  ///< resnets per encoder block; decoder blocks have one more
    int64_t norm_num_groups = 32;
    int64_t latent_channels = 4;
    bool mid_block_add_attention = true;
    bool use_quant_conv = true;
    bool use_post_quant_conv = true;
    /// LatentSync forces 0.18215 and a zero shift whatever the file says (scripts/inference.py); these are only
    /// informational here, the pipeline applies the scaling (lib/diffusion/latents.h).
    double scaling_factor = 0.18215;
    double shift_factor = 0.0;

    /// `stabilityai/sd-vae-ft-mse` (the defaults above).
    static VAEConfig sd_vae_ft_mse() { return {}; }
    /// Parses a diffusers AutoencoderKL config; unknown keys are ignored, unsupported values are an
    /// Error(Weights) naming `what` (usually the file).
    static VAEConfig from_json(const nlohmann::json& j, const std::string& what);
    static VAEConfig from_file(const std::string& path);
    /// The diffusers config.json of this configuration (from_json reads it back unchanged).
    nlohmann::json to_json() const;

    /// Spatial down-sampling factor between pixels and latents (8 for four blocks).
    int64_t downscale() const { return int64_t{1} << (block_out_channels.size() - 1); }
};

}  // namespace lsync::models
