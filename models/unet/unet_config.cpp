#include "unet/unet_config.h"

#include "core/error.h"
#include "core/json_file.h"
#include "core/json_limits.h"
#include "core/log.h"

#include <algorithm>
#include <set>

namespace lsync::models {

namespace {

using nlohmann::json;

[[noreturn]] void bad(const std::string& what, const std::string& key, const std::string& why) {
    throw_error(ErrorCode::Usage, what + ": '" + key + "' " + why);
}

template <class T>
void read(const json& j, const std::string& key, T& out, const std::string& what) {
    read_json_key(j, key, out, what, ErrorCode::Usage);
}

void require_value(const json& j, const std::string& key, const json& supported, const std::string& what) {
    auto it = j.find(key);
    if (it == j.end() || *it == supported) return;
    bad(what, key, "= " + json_excerpt(*it) + " is not implemented (LatentSync 1.5/1.6 use " + supported.dump() + ")");
}

}  // namespace

bool UNet3DConfig::down_has_motion(size_t i) const {
    const int res = 1 << i;
    return use_motion_module && !motion_module_decoder_only &&
           std::find(motion_module_resolutions.begin(), motion_module_resolutions.end(), res) !=
               motion_module_resolutions.end();
}

bool UNet3DConfig::up_has_motion(size_t i) const {
    const int res = 1 << (num_blocks() - 1 - i);
    return use_motion_module && std::find(motion_module_resolutions.begin(), motion_module_resolutions.end(), res) !=
                                    motion_module_resolutions.end();
}

UNet3DConfig UNet3DConfig::from_json(const json& doc, const std::string& what) {
    LSYNC_CHECK(doc.is_object(), ErrorCode::Usage, what + ": expected a JSON object");
    // A whole-yaml document keeps the network under "model".
    const json& j = (doc.contains("model") && doc["model"].is_object()) ? doc["model"] : doc;
    UNet3DConfig c;
    read(j, "in_channels", c.in_channels, what);
    read(j, "out_channels", c.out_channels, what);
    read(j, "block_out_channels", c.block_out_channels, what);
    read(j, "down_block_types", c.down_block_types, what);
    read(j, "up_block_types", c.up_block_types, what);
    read(j, "layers_per_block", c.layers_per_block, what);
    if (j.contains("attention_head_dim") && j["attention_head_dim"].is_number_integer())
        c.attention_head_dim.assign(c.block_out_channels.size(), j["attention_head_dim"].get<int>());
    else
        read(j, "attention_head_dim", c.attention_head_dim, what);
    if (!j.contains("attention_head_dim")) c.attention_head_dim.assign(c.block_out_channels.size(), 8);
    read(j, "cross_attention_dim", c.cross_attention_dim, what);
    read(j, "add_audio_layer", c.add_audio_layer, what);
    read(j, "norm_num_groups", c.norm_num_groups, what);
    read(j, "norm_eps", c.norm_eps, what);
    read(j, "downsample_padding", c.downsample_padding, what);
    read(j, "flip_sin_to_cos", c.flip_sin_to_cos, what);
    read(j, "freq_shift", c.freq_shift, what);
    read(j, "center_input_sample", c.center_input_sample, what);
    read(j, "mid_block_scale_factor", c.mid_block_scale_factor, what);
    read(j, "use_motion_module", c.use_motion_module, what);
    read(j, "motion_module_resolutions", c.motion_module_resolutions, what);
    read(j, "motion_module_mid_block", c.motion_module_mid_block, what);
    read(j, "motion_module_decoder_only", c.motion_module_decoder_only, what);
    if (auto it = j.find("motion_module_kwargs"); it != j.end() && !it->is_null()) {
        LSYNC_CHECK(it->is_object(), ErrorCode::Usage, what + ": 'motion_module_kwargs' must be an object");
        auto& m = c.motion_module;
        const std::string w = what + " motion_module_kwargs";
        read(*it, "num_attention_heads", m.num_attention_heads, w);
        read(*it, "num_transformer_block", m.num_transformer_block, w);
        read(*it, "attention_block_types", m.attention_block_types, w);
        read(*it, "temporal_position_encoding", m.temporal_position_encoding, w);
        read(*it, "temporal_position_encoding_max_len", m.temporal_position_encoding_max_len, w);
        read(*it, "temporal_attention_dim_div", m.temporal_attention_dim_div, w);
        require_value(*it, "cross_frame_attention_mode", nullptr, w);
        static const std::set<std::string> known{"num_attention_heads", "num_transformer_block",
                                                 "attention_block_types", "temporal_position_encoding",
                                                 "temporal_position_encoding_max_len", "temporal_attention_dim_div",
                                                 "zero_initialize", "cross_frame_attention_mode"};
        for (const auto& item : it->items())
            if (!known.count(item.key())) log::debug(w, ": ignoring unknown key '", item.key(), "'");
    }

    // Switches the official constructors have but no released LatentSync config turns on.
    require_value(j, "act_fn", "silu", what);
    require_value(j, "mid_block_type", "UNetMidBlock3DCrossAttn", what);
    require_value(j, "resnet_time_scale_shift", "default", what);
    require_value(j, "motion_module_type", "Vanilla", what);
    require_value(j, "use_linear_projection", false, what);
    require_value(j, "only_cross_attention", false, what);
    require_value(j, "upcast_attention", false, what);
    require_value(j, "dual_cross_attention", false, what);
    require_value(j, "use_inflated_groupnorm", false, what);
    require_value(j, "class_embed_type", nullptr, what);
    require_value(j, "num_class_embeds", nullptr, what);
    static const std::set<std::string> known{
        "in_channels", "out_channels", "block_out_channels", "down_block_types", "up_block_types",
        "layers_per_block", "attention_head_dim", "cross_attention_dim", "add_audio_layer", "norm_num_groups",
        "norm_eps", "downsample_padding", "flip_sin_to_cos", "freq_shift", "center_input_sample",
        "mid_block_scale_factor", "use_motion_module", "motion_module_resolutions", "motion_module_mid_block",
        "motion_module_decoder_only", "motion_module_kwargs", "act_fn", "mid_block_type", "resnet_time_scale_shift",
        "motion_module_type", "use_linear_projection", "only_cross_attention", "upcast_attention",
        "dual_cross_attention", "use_inflated_groupnorm", "class_embed_type", "num_class_embeds",
        "sample_size" /* unused by inference */};
    for (const auto& item : j.items())
        if (!known.count(item.key()) && item.key().rfind('_', 0) != 0)
            log::debug(what, ": ignoring unknown key '", item.key(), "'");
    c.validate(what);
    return c;
}

UNet3DConfig UNet3DConfig::from_file(const std::string& path) {
    return from_json(read_json_file(path, "UNet config", ErrorCode::Usage), path);
}

void UNet3DConfig::validate(const std::string& what) const {
    const size_t n = block_out_channels.size();
    if (n < 1) bad(what, "block_out_channels", "must not be empty");
    if (down_block_types.size() != n) bad(what, "down_block_types", "must have one entry per block_out_channels");
    if (up_block_types.size() != n) bad(what, "up_block_types", "must have one entry per block_out_channels");
    if (attention_head_dim.size() != n) bad(what, "attention_head_dim", "must be a number or one per block");
    if (in_channels < 1) bad(what, "in_channels", "must be positive");
    if (out_channels < 1) bad(what, "out_channels", "must be positive");
    if (layers_per_block < 1) bad(what, "layers_per_block", "must be positive");
    if (cross_attention_dim < 1) bad(what, "cross_attention_dim", "must be positive");
    if (norm_num_groups < 1) bad(what, "norm_num_groups", "must be positive");
    if (!(norm_eps > 0)) bad(what, "norm_eps", "must be positive");
    for (size_t i = 0; i < n; ++i) {
        const int ch = block_out_channels[i];
        const std::string idx = "[" + std::to_string(i) + "]";
        if (ch < 1 || ch % norm_num_groups != 0)
            bad(what, "block_out_channels" + idx, "= " + std::to_string(ch) + " must be a positive multiple of "
                                                   "norm_num_groups (" + std::to_string(norm_num_groups) + ")");
        if (attention_head_dim[i] < 1 || ch % attention_head_dim[i] != 0)
            bad(what, "attention_head_dim" + idx, "(the number of heads) must divide block_out_channels" + idx);
        if (down_block_types[i] != "CrossAttnDownBlock3D" && down_block_types[i] != "DownBlock3D")
            bad(what, "down_block_types" + idx, "= '" + down_block_types[i] + "' is not a known block type");
        if (up_block_types[i] != "CrossAttnUpBlock3D" && up_block_types[i] != "UpBlock3D")
            bad(what, "up_block_types" + idx, "= '" + up_block_types[i] + "' is not a known block type");
        if (use_motion_module && ch % 32 != 0)
            bad(what, "block_out_channels" + idx, "must be a multiple of 32 (the motion modules' GroupNorm groups)");
        if (use_motion_module && (ch % motion_module.num_attention_heads != 0 ||
                                  (ch / motion_module.num_attention_heads) % motion_module.temporal_attention_dim_div))
            bad(what, "motion_module_kwargs.num_attention_heads", "must divide every block's channels");
    }
    if (use_motion_module) {
        const auto& m = motion_module;
        if (m.num_attention_heads < 1) bad(what, "motion_module_kwargs.num_attention_heads", "must be positive");
        if (m.num_transformer_block < 1) bad(what, "motion_module_kwargs.num_transformer_block", "must be positive");
        if (m.temporal_attention_dim_div < 1)
            bad(what, "motion_module_kwargs.temporal_attention_dim_div", "must be positive");
        if (m.temporal_position_encoding_max_len < 1)
            bad(what, "motion_module_kwargs.temporal_position_encoding_max_len", "must be positive");
        if (m.attention_block_types.empty())
            bad(what, "motion_module_kwargs.attention_block_types", "must not be empty");
        for (const auto& t : m.attention_block_types)
            if (t != "Temporal_Self")
                bad(what, "motion_module_kwargs.attention_block_types",
                    "entry '" + t + "' is not implemented (only Temporal_Self exists in released configs)");
    }
}

nlohmann::json UNet3DConfig::to_json() const {
    const auto& m = motion_module;
    return json{{"in_channels", in_channels},
                {"out_channels", out_channels},
                {"block_out_channels", block_out_channels},
                {"down_block_types", down_block_types},
                {"mid_block_type", "UNetMidBlock3DCrossAttn"},
                {"up_block_types", up_block_types},
                {"layers_per_block", layers_per_block},
                {"attention_head_dim", attention_head_dim},
                {"cross_attention_dim", cross_attention_dim},
                {"add_audio_layer", add_audio_layer},
                {"act_fn", "silu"},
                {"norm_num_groups", norm_num_groups},
                {"norm_eps", norm_eps},
                {"downsample_padding", downsample_padding},
                {"flip_sin_to_cos", flip_sin_to_cos},
                {"freq_shift", freq_shift},
                {"center_input_sample", center_input_sample},
                {"mid_block_scale_factor", mid_block_scale_factor},
                {"use_motion_module", use_motion_module},
                {"motion_module_resolutions", motion_module_resolutions},
                {"motion_module_mid_block", motion_module_mid_block},
                {"motion_module_decoder_only", motion_module_decoder_only},
                {"motion_module_type", "Vanilla"},
                {"motion_module_kwargs",
                 {{"num_attention_heads", m.num_attention_heads},
                  {"num_transformer_block", m.num_transformer_block},
                  {"attention_block_types", m.attention_block_types},
                  {"temporal_position_encoding", m.temporal_position_encoding},
                  {"temporal_position_encoding_max_len", m.temporal_position_encoding_max_len},
                  {"temporal_attention_dim_div", m.temporal_attention_dim_div}}}};
}

}  // namespace lsync::models
