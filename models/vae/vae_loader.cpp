#include "vae/vae_loader.h"

#include "core/error.h"
#include "core/log.h"
#include "io/tensor_source.h"
#include "unet/unet_layers.h"

#include <filesystem>

namespace lsync::models {

namespace fs = std::filesystem;

VAEFiles resolve_vae_files(const std::string& path, const std::string& config_path) {
    std::error_code ec;
    LSYNC_CHECK(fs::exists(path, ec), ErrorCode::InputMissing, "VAE weights not found: " + path);
    VAEFiles files;
    files.config = config_path;
    if (fs::is_directory(path, ec)) {
        const fs::path dir(path);
        if (files.config.empty()) {
            const auto cfg = dir / "config.json";
            LSYNC_CHECK(fs::is_regular_file(cfg, ec), ErrorCode::Weights,
                        "VAE folder " + path + " has no config.json (a diffusers AutoencoderKL folder needs one; "
                        "or pass the weights file and --config)");
            files.config = cfg.string();
        }
        for (const char* name : {"diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin"}) {
            if (fs::is_regular_file(dir / name, ec)) {
                files.weights = (dir / name).string();
                break;
            }
        }
        LSYNC_CHECK(!files.weights.empty(), ErrorCode::Weights,
                    "VAE folder " + path + " has no diffusion_pytorch_model.safetensors (or .bin)");
        return files;
    }
    files.weights = path;
    if (files.config.empty()) {
        const auto beside = fs::path(path).parent_path() / "config.json";
        if (fs::is_regular_file(beside, ec)) files.config = beside.string();
    }
    return files;
}

const std::vector<io::RenameRule>& vae_renames() {
    // diffusers' _convert_deprecated_attention_blocks does the same on load; only mid blocks have attention.
    static const std::vector<io::RenameRule> rules = [] {
        std::vector<io::RenameRule> r;
        for (const char* part : {"encoder", "decoder"}) {
            const std::string p = std::string(part) + ".mid_block.attentions.0.";
            r.push_back({p + "query.", p + "to_q."});
            r.push_back({p + "key.", p + "to_k."});
            r.push_back({p + "value.", p + "to_v."});
            r.push_back({p + "proj_attn.", p + "to_out.0."});
        }
        return r;
    }();
    return rules;
}

AutoencoderKL load_vae(const std::string& path, const VAELoadOptions& options) {
    const auto files = resolve_vae_files(path, options.config_path);
    VAEConfig config;
    if (files.config.empty()) {
        log::info("VAE ", files.weights, ": no config.json, using the sd-vae-ft-mse configuration");
        config = VAEConfig::sd_vae_ft_mse();
    } else {
        config = VAEConfig::from_file(files.config);
    }
    AutoencoderKL vae(config);
    auto source = io::open_tensor_source(files.weights);
    place_parameters(*vae, options.device, options.dtype);  // one allocation, written in place by the load
    io::LoadPolicy policy;
    policy.device = options.device;
    policy.dtype = options.dtype;
    io::load_weights(*vae, *source, vae_renames(), policy, "VAE (" + files.weights + ")");
    vae->eval();
    vae->set_attention(options.attention ? options.attention : ops::default_attention_context());
    return vae;
}

AutoencoderKL random_vae(const VAEConfig& config, const torch::Device& device, torch::ScalarType dtype,
                         uint64_t seed) {
    AutoencoderKL vae(config);
    to_uninitialised(*vae, device, dtype);  // every parameter is drawn next, there
    init_random_parameters(*vae, seed);
    vae->eval();
    return vae;
}

}  // namespace lsync::models
