#pragma once
// The UNet3DConditionModel hyper-parameters, read from the same keys as the official config (the `model:`
// section of configs/unet/stage2*.yaml, or the diffusers-style resolved config). Defaults are the LatentSync
// 1.5/1.6 values, so an empty JSON object describes the released model.

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace lsync::models {

struct MotionModuleConfig {
    int num_attention_heads = 8;
    int num_transformer_block = 1;
    /// Only "Temporal_Self" entries exist in released configs; one attention block (and one norm) per entry.
    std::vector<std::string> attention_block_types{"Temporal_Self", "Temporal_Self"};
    bool temporal_position_encoding = true;
    int temporal_position_encoding_max_len = 24;
    int temporal_attention_dim_div = 1;
};

struct UNet3DConfig {
    int in_channels = 13;   ///< noisy latents 4 | mask 1 | masked-image latents 4 | reference latents 4
    int out_channels = 4;
    std::vector<int> block_out_channels{320, 640, 1280, 1280};
    std::vector<std::string> down_block_types{"CrossAttnDownBlock3D", "CrossAttnDownBlock3D",
                                              "CrossAttnDownBlock3D", "DownBlock3D"};
    std::vector<std::string> up_block_types{"UpBlock3D", "CrossAttnUpBlock3D", "CrossAttnUpBlock3D",
                                            "CrossAttnUpBlock3D"};
    int layers_per_block = 2;  ///< up blocks have one more
    /// Per down block, in order. LatentSync passes this as the NUMBER of heads (head size = channels / value).
    std::vector<int> attention_head_dim{8, 8, 8, 8};
    int cross_attention_dim = 384;  ///< audio token width (Whisper tiny)
    bool add_audio_layer = true;    ///< audio cross-attention (attn2/norm2) in every transformer block
    int norm_num_groups = 32;
    double norm_eps = 1e-5;
    int downsample_padding = 1;
    bool flip_sin_to_cos = true;
    int freq_shift = 0;
    bool center_input_sample = false;
    double mid_block_scale_factor = 1.0;
    bool use_motion_module = true;
    std::vector<int> motion_module_resolutions{1, 2, 4, 8};
    bool motion_module_mid_block = false;
    bool motion_module_decoder_only = false;
    MotionModuleConfig motion_module;

    /// Time-embedding width: 4 x the first block's channels (1280).
    int time_embed_dim() const { return block_out_channels.at(0) * 4; }
    size_t num_blocks() const { return block_out_channels.size(); }
    /// Whether down block i / up block i / the mid block have motion modules (resolution 2^i, 2^(n-1-i)).
    bool down_has_motion(size_t i) const;
    bool up_has_motion(size_t i) const;

    /// Reads a config: either the model section itself (flat keys) or a document with a "model" object
    /// (e.g. a yaml converted to JSON). Unknown keys are ignored with a debug log; keys whose values the
    /// port does not implement (use_linear_projection: true, ...) are Error(Usage) naming the key and `what`.
    static UNet3DConfig from_json(const nlohmann::json& j, const std::string& what = "UNet config");
    static UNet3DConfig from_file(const std::string& path);
    /// Checks internal consistency (list lengths, channel/group/head divisibility); Error(Usage) naming the key.
    void validate(const std::string& what = "UNet config") const;
    nlohmann::json to_json() const;
};

}  // namespace lsync::models
