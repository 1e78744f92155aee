#pragma once
// Where model files live and which files each model needs. The layout (docs/models.md):
//   <model-dir>/latentsync-1.5/latentsync_unet.pt        LatentSync 1.5 UNet (256 px)
//   <model-dir>/latentsync-1.6/latentsync_unet.pt        LatentSync 1.6 UNet (512 px)
//   <model-dir>/whisper/tiny.pt                          OpenAI Whisper tiny (audio encoder)
//   <model-dir>/sd-vae-ft-mse/diffusion_pytorch_model.safetensors   the VAE
//   <model-dir>/face-api/*                               face detector + 68-point landmarks (TF.js)
//   <model-dir>/mask.png                                 optional; built procedurally when absent

#include <cstdint>
#include <string>
#include <vector>

namespace lsync::io {

/// --model-dir if given, else $LATENTSYNC_MODEL_DIR, else ~/.cache/latentsync.
std::string resolve_model_dir(const std::string& cli_value);

enum class FileFormat { TorchZip, Safetensors, TfjsManifest, Json, Png };

struct ModelFileSpec {
    std::string component;   ///< "unet-1.5", "whisper-tiny", ...
    std::string relative_path;
    FileFormat format;
    uint64_t min_bytes;      ///< smaller than this cannot be the real file (truncated download)
    bool required_for_render;  ///< false: alternatives exist (e.g. only one UNet version is needed)
    std::string source;      ///< where to get it
};

/// Every file the renderer can use.
const std::vector<ModelFileSpec>& model_manifest();

struct ModelFileStatus {
    ModelFileSpec spec;
    std::string path;
    bool present = false;
    bool ok = false;         ///< present and passes the format check
    uint64_t bytes = 0;
    std::string problem;     ///< empty when ok
};

/// Checks existence, size and the container format's signature of every manifest file in `dir`.
/// (Format-level checks only: whether the tensors inside match is the weight loader's job.)
std::vector<ModelFileStatus> check_model_files(const std::string& dir);

}  // namespace lsync::io
