#include "io/model_dir.h"

#include "core/json_limits.h"
#include "core/untrusted_text.h"
#include "io/tfjs.h"

#include <nlohmann/json.hpp>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>

namespace fs = std::filesystem;

namespace lsync::io {

std::string resolve_model_dir(const std::string& cli_value) {
    if (!cli_value.empty()) return cli_value;
    if (const char* env = std::getenv("LATENTSYNC_MODEL_DIR"); env && *env) return env;
    const char* home = std::getenv("HOME");
    return (fs::path(home && *home ? home : ".") / ".cache" / "latentsync").string();
}

const std::vector<ModelFileSpec>& model_manifest() {
    static const std::vector<ModelFileSpec> files = {
        // The UNets are not individually required: either version renders (doctor/verify check that one exists).
        {"unet-1.5", "latentsync-1.5/latentsync_unet.pt", FileFormat::TorchZip, 1000000000ull, false,
         "https://huggingface.co/ByteDance/LatentSync-1.5 (latentsync_unet.pt)"},
        {"unet-1.6", "latentsync-1.6/latentsync_unet.pt", FileFormat::TorchZip, 1000000000ull, false,
         "https://huggingface.co/ByteDance/LatentSync-1.6 (latentsync_unet.pt)"},
        {"whisper-tiny", "whisper/tiny.pt", FileFormat::TorchZip, 30000000ull, true,
         "https://huggingface.co/ByteDance/LatentSync-1.6 (whisper/tiny.pt)"},
        {"vae", "sd-vae-ft-mse/diffusion_pytorch_model.safetensors", FileFormat::Safetensors, 100000000ull, true,
         "https://huggingface.co/stabilityai/sd-vae-ft-mse"},
        {"vae-config", "sd-vae-ft-mse/config.json", FileFormat::Json, 100ull, false,
         "https://huggingface.co/stabilityai/sd-vae-ft-mse"},
        {"face-detector", "face-api/ssd_mobilenetv1_model-weights_manifest.json", FileFormat::TfjsManifest, 2ull,
         true, "scripts/fetch-face-models.sh (npm package @vladmandic/face-api, model/)"},
        {"face-landmarks", "face-api/face_landmark_68_model-weights_manifest.json", FileFormat::TfjsManifest, 2ull,
         true, "scripts/fetch-face-models.sh (npm package @vladmandic/face-api, model/)"},
        {"mouth-mask", "mask.png", FileFormat::Png, 100ull, false, "optional: built procedurally when absent"},
    };
    return files;
}

static std::string read_prefix(const std::string& path, size_t n) {
    std::ifstream in(path, std::ios::binary);
    std::string buf(n, '\0');
    in.read(buf.data(), static_cast<std::streamsize>(n));
    buf.resize(static_cast<size_t>(in.gcount()));
    return buf;
}

// Container signature checks: enough to catch an HTML error page saved as .pt, a truncated download, a
// git-lfs pointer file, or a file of the wrong kind.
static std::string format_problem(const std::string& path, FileFormat format, uint64_t bytes) {
    const std::string head = read_prefix(path, 64);
    if (head.rfind("version https://git-lfs", 0) == 0) return "is a git-lfs pointer, not the real file";
    switch (format) {
        case FileFormat::TorchZip:
            if (head.size() < 4 || std::memcmp(head.data(), "PK\x03\x04", 4) != 0)
                return "is not a PyTorch zip archive (torch.save format)";
            return {};
        case FileFormat::Safetensors: {
            if (head.size() < 9) return "is too short for safetensors";
            uint64_t n = 0;
            for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<unsigned char>(head[static_cast<size_t>(i)]);
            if (n == 0 || n > 100000000ull || 8 + n > bytes) return "has an invalid safetensors header length";
            if (head[8] != '{') return "has no JSON safetensors header";
            return {};
        }
        case FileFormat::TfjsManifest:
        case FileFormat::Json: {
            std::ifstream in(path, std::ios::binary);
            const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
            if (!json_depth_problem(text).empty()) return "is not valid JSON (nested too deep)";
            auto j = nlohmann::json::parse(text, nullptr, false);
            if (j.is_discarded()) return "is not valid JSON";
            if (format == FileFormat::TfjsManifest && !j.is_array()) return "is not a TF.js weights manifest";
            if (format == FileFormat::TfjsManifest) {
                const fs::path dir = fs::path(path).parent_path();
                for (const auto& group : j) {
                    if (!group.is_object()) return "is not a TF.js weights manifest";
                    for (const auto& shard : group.value("paths", nlohmann::json::array())) {
                        if (!shard.is_string()) return "has a shard path that is not a string";
                        const std::string rel = shard.get<std::string>();
                        if (const std::string why = tfjs_shard_path_problem(dir, rel); !why.empty())
                            return "has shard " + printable(rel) + " that " + why;
                        std::error_code ec;
                        if (!fs::exists(dir / rel, ec)) return "references a missing shard " + printable(rel);
                    }
                }
            }
            return {};
        }
        case FileFormat::Png:
            if (head.size() < 8 || std::memcmp(head.data(), "\x89PNG\r\n\x1a\n", 8) != 0) return "is not a PNG image";
            return {};
    }
    return {};
}

std::vector<ModelFileStatus> check_model_files(const std::string& dir) {
    std::vector<ModelFileStatus> out;
    for (const auto& spec : model_manifest()) {
        ModelFileStatus st;
        st.spec = spec;
        st.path = (fs::path(dir) / spec.relative_path).string();
        std::error_code ec;
        st.present = fs::is_regular_file(st.path, ec);
        if (!st.present) {
            st.problem = "missing";
            out.push_back(st);
            continue;
        }
        st.bytes = fs::file_size(st.path, ec);
        // The format check first: "git-lfs pointer" or "HTML page" says more than "too small".
        st.problem = format_problem(st.path, spec.format, st.bytes);
        if (st.problem.empty() && st.bytes < spec.min_bytes)
            st.problem = "too small (" + std::to_string(st.bytes) + " bytes; expected at least " +
                         std::to_string(spec.min_bytes) + "): truncated download?";
        st.ok = st.problem.empty();
        out.push_back(st);
    }
    return out;
}

}  // namespace lsync::io
