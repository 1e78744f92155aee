#include "pipeline/render_models.h"

#include "core/error.h"
#include "unet/unet_layers.h"
#include "unet/unet_loader.h"
#include "vae/vae_loader.h"

#include <filesystem>

namespace lsync::pipeline {

namespace fs = std::filesystem;

namespace {

// Seeds of the random weights (--weights random): fixed, so --seed changes the noise and nothing else.
constexpr uint64_t kUNetWeightSeed = 1247 + 7, kVAEWeightSeed = 1247 + 5, kWhisperWeightSeed = 1247 + 2;

// test-tiny: the golden fixtures' tiny configurations (shared/golden/unet_tiny_config.json, vae_tiny, the 64-wide
// Whisper of whisper_tiny_random.pt), so the golden weights load into it unchanged.
models::UNet3DConfig tiny_unet_config() {
    const auto j = nlohmann::json::parse(R"({
        "attention_head_dim": 2, "block_out_channels": [32, 32, 64, 64], "cross_attention_dim": 64,
        "layers_per_block": 1, "norm_num_groups": 32,
        "motion_module_kwargs": {"num_attention_heads": 2, "num_transformer_block": 1,
                                 "attention_block_types": ["Temporal_Self", "Temporal_Self"],
                                 "temporal_position_encoding": true, "temporal_position_encoding_max_len": 24,
                                 "temporal_attention_dim_div": 1}})");
    return models::UNet3DConfig::from_json(j, "test-tiny UNet config");
}

// The variant's UNet configuration: 1.5 and 1.6 have the released one.
models::UNet3DConfig unet_config_for(ModelVariant variant) {
    return variant == ModelVariant::TestTiny ? tiny_unet_config() : models::UNet3DConfig{};
}

models::VAEConfig tiny_vae_config() {
    models::VAEConfig c;
    c.block_out_channels = {16, 32, 32, 32};
    c.layers_per_block = 1;
    c.norm_num_groups = 8;
    return c;
}

models::WhisperEncoderConfig tiny_whisper_config() {
    models::WhisperEncoderConfig c;
    c.n_state = 64;
    c.n_head = 2;
    return c;
}

std::string need_file(const std::string& explicit_path, const fs::path& default_path, const std::string& what) {
    const std::string path = explicit_path.empty() ? default_path.string() : explicit_path;
    std::error_code ec;  // an unreadable folder reads as "not found" here, not as an internal error
    LSYNC_CHECK(fs::exists(path, ec), ErrorCode::Weights,
                what + " not found: " + path +
                    (explicit_path.empty() ? " (run scripts/fetch-models.sh, pass the file, or try the pipeline with "
                                             "--weights random; `latentsync doctor` lists what is missing)"
                                           : ""));
    return path;
}

}  // namespace

ModelVariant parse_model_variant(const std::string& text) {
    if (text == "1.5") return ModelVariant::V15;
    if (text == "1.6") return ModelVariant::V16;
    if (text == "test-tiny") return ModelVariant::TestTiny;
    throw_error(ErrorCode::Usage, "--model must be 1.5, 1.6 or test-tiny (got '" + text + "')");
}

const char* model_variant_name(ModelVariant variant) {
    switch (variant) {
        case ModelVariant::V15: return "1.5";
        case ModelVariant::V16: return "1.6";
        case ModelVariant::TestTiny: return "test-tiny";
    }
    return "?";
}

int model_resolution(ModelVariant variant) {
    switch (variant) {
        case ModelVariant::V15: return 256;
        case ModelVariant::V16: return 512;
        case ModelVariant::TestTiny: return 128;
    }
    return 256;
}

models::VAEConfig vae_config_for(ModelVariant variant) {
    return variant == ModelVariant::TestTiny ? tiny_vae_config() : models::VAEConfig::sd_vae_ft_mse();
}

models::WhisperEncoderConfig whisper_config_for(ModelVariant variant) {
    return variant == ModelVariant::TestTiny ? tiny_whisper_config() : models::WhisperEncoderConfig::tiny();
}

models::UNet3DConditionModel random_unet_for(ModelVariant variant, const torch::Device& device, torch::ScalarType dtype,
                                             const models::UNetPlaced& on_placed) {
    return models::random_unet(unet_config_for(variant), device, dtype, kUNetWeightSeed, on_placed);
}

models::AutoencoderKL random_vae_for(ModelVariant variant, const torch::Device& device, torch::ScalarType dtype) {
    return models::random_vae(vae_config_for(variant), device, dtype, kVAEWeightSeed);
}

RenderModels load_render_models(const ModelRequest& r) {
    torch::NoGradGuard no_grad;
    RenderModels m;
    m.resolution = model_resolution(r.variant);
    const bool tiny = r.variant == ModelVariant::TestTiny;
    const auto unet_config = unet_config_for(r.variant);
    const auto whisper_config = whisper_config_for(r.variant);
    const std::string name = tiny ? std::string("test-tiny") : std::string("LatentSync ") + model_variant_name(r.variant);
    const fs::path root(r.model_dir);

    // Every file is found before anything loads (a missing one fails at once, the UNet's first); then the
    // Whisper loads first: it is small, and the render's audio windows need it long before the UNet runs.
    const bool random_unet = r.random_weights && r.unet_path.empty();
    const bool random_vae = r.random_weights && r.vae_path.empty();
    const bool random_whisper = r.random_weights && r.whisper_path.empty();
    const std::string unet_file =
        random_unet ? std::string()
                    : need_file(r.unet_path,
                                root / (r.variant == ModelVariant::V16 ? "latentsync-1.6" : "latentsync-1.5") /
                                    "latentsync_unet.pt",
                                "UNet checkpoint");
    const std::string vae_file = random_vae ? std::string() : need_file(r.vae_path, root / "sd-vae-ft-mse", "VAE");
    const std::string whisper_file =
        random_whisper ? std::string() : need_file(r.whisper_path, root / "whisper" / "tiny.pt", "Whisper");
    if (random_whisper) {
        m.whisper = models::WhisperEncoder(whisper_config);
        models::to_uninitialised(*m.whisper, r.device, r.dtype);
        models::init_random_parameters(*m.whisper, kWhisperWeightSeed);
    } else {
        m.whisper = models::load_whisper_encoder(whisper_file, r.device, r.dtype);
    }
    LSYNC_CHECK(m.whisper->config().n_state == unet_config.cross_attention_dim, ErrorCode::Weights,
                "the Whisper encoder is " + std::to_string(m.whisper->config().n_state) +
                    " wide but the UNet takes audio tokens of " +
                    std::to_string(unet_config.cross_attention_dim) + " (wrong Whisper file for this model?)");
    m.whisper->eval();
    if (r.on_whisper) r.on_whisper(m.whisper);
    if (random_unet)
        m.unet = random_unet_for(r.variant, r.device, r.dtype, r.on_unet_placed);
    else
        m.unet = models::load_unet(unet_file, unet_config, r.device, r.dtype, nullptr, r.on_unet_placed);
    if (random_vae) {
        m.vae = random_vae_for(r.variant, r.device, r.dtype);
    } else {
        models::VAELoadOptions vo;
        vo.device = r.device;
        vo.dtype = r.dtype;
        m.vae = models::load_vae(vae_file, vo);
    }
    m.unet->eval();
    m.vae->eval();
    m.vae->prepare_derived_weights();
    if (r.attention) {
        m.unet->set_attention(r.attention);
        m.vae->set_attention(r.attention);
        m.whisper->set_attention(r.attention);
    }
    m.description = name + (r.random_weights ? " (RANDOM weights: the mouth region is noise)" : "");
    return m;
}

RenderModels share_render_models(const RenderModels& from, const ops::AttentionContextPtr& attention) {
    torch::NoGradGuard no_grad;
    RenderModels m;
    m.resolution = from.resolution;
    m.description = from.description;
    m.unet = models::UNet3DConditionModel(from.unet->config());
    models::share_parameters(*m.unet, *from.unet);
    m.vae = models::AutoencoderKL(from.vae->config());
    models::share_parameters(*m.vae, *from.vae);
    m.unet->eval();
    m.vae->eval();
    m.vae->prepare_derived_weights();
    const auto context = attention ? attention : ops::default_attention_context();
    m.unet->set_attention(context);
    m.vae->set_attention(context);
    m.whisper = share_whisper(from.whisper, context);
    return m;
}

models::WhisperEncoder share_whisper(const models::WhisperEncoder& from, const ops::AttentionContextPtr& attention) {
    torch::NoGradGuard no_grad;
    models::WhisperEncoder w(from->config());
    models::share_parameters(*w, *from);
    w->eval();
    w->set_attention(attention ? attention : ops::default_attention_context());
    return w;
}

}  // namespace lsync::pipeline
