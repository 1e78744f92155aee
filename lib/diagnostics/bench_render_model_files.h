#pragma once
// `bench render --weights random-files`: the full-size random networks of --weights random, written as files
// and read back through the loaders, so a benchmark's start is a user's: the UNet checkpoint is read, converted
// and copied to the device while the face pass, the first chunks' audio and the workers start, instead of being
// drawn on the device in a fraction of that time (docs/performance-notes.md section 33).

#include "pipeline/render_models.h"

#include <string>

namespace lsync::diagnostics {

struct BenchModelFiles {
    std::string unet;  ///< one float32 .safetensors file (the released checkpoint is float32 too)
    std::string vae;   ///< a diffusers folder: config.json and diffusion_pytorch_model.safetensors
};

/// Writes `variant`'s random UNet and VAE (pipeline::random_unet_for / random_vae_for, drawn on the CPU in
/// float32) into `folder`/full-size/ (1.5 and 1.6: the same networks) or `folder`/test-tiny/. A set written
/// before (its marker, written last, names the same set and format) is reused: a kept --work folder writes the
/// 4.8 GB UNet once.
BenchModelFiles write_bench_model_files(pipeline::ModelVariant variant, const std::string& folder);

}  // namespace lsync::diagnostics
