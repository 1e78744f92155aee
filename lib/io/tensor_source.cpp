#include "io/tensor_source.h"

#include "core/error.h"
#include "core/files.h"
#include "io/safetensors.h"
#include "io/tfjs.h"
#include "io/torch_checkpoint.h"

#include <cctype>
#include <filesystem>
#include <fstream>
#include <iterator>

namespace lsync::io {

std::unique_ptr<TensorSource> open_tensor_source(const std::string& path) {
    check_input_file(path, "model");
    std::ifstream in(path, std::ios::binary);
    char head[16] = {0};
    in.read(head, sizeof head);
    const auto got = static_cast<size_t>(in.gcount());
    if (got >= 4 && head[0] == 'P' && head[1] == 'K' && head[2] == 3 && head[3] == 4)
        return std::make_unique<TorchCheckpoint>(path);
    // Pre-1.6 torch.save files are a bare pickle (protocol 2 starts with 0x80 0x02); TorchCheckpoint explains
    // that format is not supported.
    if (got >= 2 && static_cast<unsigned char>(head[0]) == 0x80 && head[1] == 2) return std::make_unique<TorchCheckpoint>(path);
    size_t i = 0;
    while (i < got && std::isspace(static_cast<unsigned char>(head[i]))) ++i;
    // A TF.js manifest is a JSON array; a TF.js model.json is an object with a "weightsManifest" array.
    if (i < got && head[i] == '[') return std::make_unique<TfjsWeights>(path);
    std::error_code ec;
    // Only JSON of a plausible size is read whole to look for the key (TfjsWeights refuses more than 64 MB).
    if (i < got && head[i] == '{' && !(got >= 9 && head[8] == '{') && std::filesystem::file_size(path, ec) <= (64u << 20) &&
        !ec) {
        std::ifstream json(path);
        std::string text((std::istreambuf_iterator<char>(json)), std::istreambuf_iterator<char>());
        if (text.find("\"weightsManifest\"") != std::string::npos) return std::make_unique<TfjsWeights>(path);
    }
    if (got >= 9 && head[8] == '{') return std::make_unique<SafetensorsFile>(path);
    if (std::string(head, got).rfind("version https://git-lfs", 0) == 0)
        throw_error(ErrorCode::Weights, path + " is a git-lfs pointer, not the model file (run `git lfs pull`)");
    throw_error(ErrorCode::Weights, path + " is not a supported model file (expected a PyTorch .pt archive, "
                                           "a .safetensors file or a TF.js weights manifest)");
}

std::string dtype_name(torch::ScalarType t) {
    switch (t) {
        case torch::kFloat: return "float32";
        case torch::kHalf: return "float16";
        case torch::kBFloat16: return "bfloat16";
        case torch::kDouble: return "float64";
        case torch::kLong: return "int64";
        case torch::kInt: return "int32";
        case torch::kShort: return "int16";
        case torch::kChar: return "int8";
        case torch::kByte: return "uint8";
        case torch::kBool: return "bool";
        default: return c10::toString(t);
    }
}

}  // namespace lsync::io
