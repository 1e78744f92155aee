#pragma once
// Recognises which LatentSync component a checkpoint holds, from tensor names and shapes alone, so
// `models inspect` can say "this is a Whisper checkpoint" and the loaders can refuse a VAE given as UNet with
// a message that names both.

#include "io/tensor_source.h"

#include <string>

namespace lsync::io {

struct Identification {
    std::string kind;    ///< "latentsync-unet", "whisper", "vae", "face-detector", "face-landmarks", "unknown"
    std::string detail;  ///< e.g. "LatentSync 1.5/1.6 UNet, 1246 entries, resolution from config" or why unknown
};

Identification identify_checkpoint(const TensorSource& source);

struct ModelFileStatus;

/// Deep check of one model file found by check_model_files(): opens it by content (whatever its name says),
/// validates the whole container and checks that it holds the component its slot expects. Updates ok/problem.
void verify_model_file(ModelFileStatus& status);

}  // namespace lsync::io
