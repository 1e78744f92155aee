#include "vae/vae_config.h"

#include "core/error.h"
#include "core/json_file.h"
#include "core/json_limits.h"


namespace lsync::models {

namespace {

template <class T>
void read(const nlohmann::json& j, const char* key, T& out, const std::string& what) {
    read_json_key(j, key, out, what, ErrorCode::Weights);
}

void expect_all(const nlohmann::json& j, const char* key, const std::string& value, const std::string& what) {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) return;
    LSYNC_CHECK(it->is_array(), ErrorCode::Weights, what + ": config key '" + key + "' must be a list");
    for (const auto& v : *it)
        LSYNC_CHECK(v.is_string() && v.get<std::string>() == value, ErrorCode::Weights,
                    what + ": config '" + key + "' entry " + json_excerpt(v) + " is not supported (only " + value + ")");
}

void expect_value(const nlohmann::json& j, const char* key, const std::string& value, const std::string& what) {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) return;
    LSYNC_CHECK(it->is_string() && it->get<std::string>() == value, ErrorCode::Weights,
                what + ": config '" + key + "' = " + json_excerpt(*it) + " is not supported (only \"" + value + "\")");
}

}  // namespace

VAEConfig VAEConfig::from_json(const nlohmann::json& j, const std::string& what) {
    LSYNC_CHECK(j.is_object(), ErrorCode::Weights, what + ": the VAE config must be a JSON object");
    if (j.contains("_class_name") && j["_class_name"].is_string())
        LSYNC_CHECK(j["_class_name"].get<std::string>() == "AutoencoderKL", ErrorCode::Weights,
                    what + ": _class_name is " + json_excerpt(j["_class_name"]) + ", expected \"AutoencoderKL\"");
    VAEConfig c;
    read(j, "in_channels", c.in_channels, what);
    read(j, "out_channels", c.out_channels, what);
    read(j, "block_out_channels", c.block_out_channels, what);
    read(j, "layers_per_block", c.layers_per_block, what);
    read(j, "norm_num_groups", c.norm_num_groups, what);
    read(j, "latent_channels", c.latent_channels, what);
    read(j, "mid_block_add_attention", c.mid_block_add_attention, what);
    read(j, "use_quant_conv", c.use_quant_conv, what);
    read(j, "use_post_quant_conv", c.use_post_quant_conv, what);
    read(j, "scaling_factor", c.scaling_factor, what);
    read(j, "shift_factor", c.shift_factor, what);
    expect_all(j, "down_block_types", "DownEncoderBlock2D", what);
    expect_all(j, "up_block_types", "UpDecoderBlock2D", what);
    expect_value(j, "act_fn", "silu", what);
    expect_value(j, "norm_type", "group", what);
    for (const char* key : {"down_block_types", "up_block_types"}) {
        auto it = j.find(key);
        if (it != j.end() && it->is_array())
            LSYNC_CHECK(it->size() == c.block_out_channels.size(), ErrorCode::Weights,
                        what + ": '" + key + "' and 'block_out_channels' differ in length");
    }
    LSYNC_CHECK(!c.block_out_channels.empty(), ErrorCode::Weights, what + ": block_out_channels is empty");
    LSYNC_CHECK(c.layers_per_block >= 1 && c.norm_num_groups >= 1 && c.latent_channels >= 1 && c.in_channels >= 1 &&
                    c.out_channels >= 1,
                ErrorCode::Weights, what + ": layers_per_block, norm_num_groups and channel counts must be positive");
    for (auto ch : c.block_out_channels)
        LSYNC_CHECK(ch > 0 && ch % c.norm_num_groups == 0, ErrorCode::Weights,
                    what + ": block_out_channels entry " + std::to_string(ch) + " is not a positive multiple of " +
                        "norm_num_groups " + std::to_string(c.norm_num_groups));
    return c;
}

nlohmann::json VAEConfig::to_json() const {
    const auto blocks = block_out_channels.size();
    return {{"_class_name", "AutoencoderKL"},
            {"in_channels", in_channels},
            {"out_channels", out_channels},
            {"block_out_channels", block_out_channels},
            {"down_block_types", std::vector<std::string>(blocks, "DownEncoderBlock2D")},
            {"up_block_types", std::vector<std::string>(blocks, "UpDecoderBlock2D")},
            {"layers_per_block", layers_per_block},
            {"norm_num_groups", norm_num_groups},
            {"latent_channels", latent_channels},
            {"act_fn", "silu"},
            {"mid_block_add_attention", mid_block_add_attention},
            {"use_quant_conv", use_quant_conv},
            {"use_post_quant_conv", use_post_quant_conv},
            {"scaling_factor", scaling_factor},
            {"shift_factor", shift_factor}};
}

VAEConfig VAEConfig::from_file(const std::string& path) {
    return from_json(read_json_file(path, "VAE config", ErrorCode::Weights), path);
}

}  // namespace lsync::models
