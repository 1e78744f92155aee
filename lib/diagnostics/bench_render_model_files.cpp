#include "diagnostics/bench_render_model_files.h"

#include "core/error.h"
#include "core/files.h"
#include "core/json_limits.h"
#include "io/safetensors.h"
#include "io/weight_loader.h"

#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>

namespace lsync::diagnostics {

namespace fs = std::filesystem;

namespace {

// The set's name: 1.5 and 1.6 have the same UNet and VAE configurations and seeds (render_models.cpp), so one
// set of files serves both.
std::string set_name(pipeline::ModelVariant variant) {
    return variant == pipeline::ModelVariant::TestTiny ? "test-tiny" : "full-size";
}

// Names what the marker vouches for; a change to the writer's format or seeds changes it, so old sets are redone.
std::string marker_text(pipeline::ModelVariant variant) {
    return "latentsync bench render random-files 1 " + set_name(variant) + "\n";
}

void write_text(const std::string& path, const std::string& text) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << text;
    LSYNC_CHECK(out.good(), ErrorCode::OutputUnwritable, "cannot write " + path);
}

bool holds(const fs::path& marker, const std::string& text) {
    std::ifstream in(marker, std::ios::binary);
    const std::string got((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    return in.is_open() && got == text;
}

}  // namespace

BenchModelFiles write_bench_model_files(pipeline::ModelVariant variant, const std::string& folder) {
    torch::NoGradGuard no_grad;
    const fs::path dir = fs::path(folder) / set_name(variant);
    BenchModelFiles files{(dir / "unet.safetensors").string(), (dir / "vae").string()};
    const fs::path marker = dir / "complete";
    const std::string text = marker_text(variant);
    std::error_code exists_ec;
    const bool complete = holds(marker, text) && fs::is_regular_file(files.unet, exists_ec) &&
                          fs::is_regular_file(fs::path(files.vae) / "config.json", exists_ec) &&
                          fs::is_regular_file(fs::path(files.vae) / "diffusion_pytorch_model.safetensors", exists_ec);
    if (complete) return files;

    remove_tree(dir.string());  // a set cut short, or another writer's
    std::error_code ec;
    fs::create_directories(dir / "vae", ec);
    LSYNC_CHECK(!ec, ErrorCode::OutputUnwritable, "cannot create " + (dir / "vae").string() + ": " + ec.message());
    const std::map<std::string, std::string> meta{{"generator", text.substr(0, text.size() - 1)}};
    {
        const auto unet = pipeline::random_unet_for(variant, torch::kCPU, torch::kFloat);
        io::write_safetensors(files.unet, io::module_tensors(*unet), meta, true);
    }
    const auto vae = pipeline::random_vae_for(variant, torch::kCPU, torch::kFloat);
    io::write_safetensors((dir / "vae" / "diffusion_pytorch_model.safetensors").string(), io::module_tensors(*vae),
                          meta, true);
    write_text((dir / "vae" / "config.json").string(), dump_json(vae->config().to_json(), 2) + "\n");
    write_text(marker.string(), text);
    return files;
}

}  // namespace lsync::diagnostics
