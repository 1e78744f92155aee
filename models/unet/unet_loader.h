#pragma once
// Building a ready-to-run UNet: from a checkpoint (the LatentSync container {"global_step", "state_dict"}, a
// plain state dict, or our safetensors export), or with seeded random weights for tests and benchmarks.

#include "io/weight_loader.h"
#include "unet/unet_3d.h"
#include "unet/unet_config.h"

#include <functional>
#include <string>
#include <vector>

namespace lsync::models {

/// The historical spellings the loader accepts: LatentSync 1.0 stored the audio cross-attention as
/// `transformer_blocks.0.audio_cross_attn.{norm,attn}.*`, 1.5/1.6 as `norm2.*` / `attn2.*`.
const std::vector<io::RenameRule>& unet_renames();

/// Called once the UNet's parameters have their final places on the device (place_parameters), before any is
/// written: they are written in place after it returns (a render's worker warms up on them meanwhile:
/// pipeline/worker_warm_up.h). The buffers may still be on the host, and a checkpoint's replace them.
using UNetPlaced = std::function<void(const UNet3DConditionModel&)>;

/// Loads every tensor strictly by name (all 1,206 parameters and the 40 `pe` buffers of the released model
/// must be present, nothing unexpected). Error(Weights) naming the file and the offending keys otherwise.
UNet3DConditionModel load_unet(const std::string& path, const UNet3DConfig& config, const torch::Device& device,
                               torch::ScalarType dtype, io::LoadReport* report = nullptr,
                               const UNetPlaced& on_placed = nullptr);

/// A UNet with the golden fixtures' random scheme (see init_random_parameters), seeded; `pe` buffers keep
/// their computed values.
UNet3DConditionModel random_unet(const UNet3DConfig& config, const torch::Device& device, torch::ScalarType dtype,
                                 uint64_t seed, const UNetPlaced& on_placed = nullptr);

/// Number of parameter elements (not counting buffers).
int64_t count_parameters(const torch::nn::Module& module);

}  // namespace lsync::models
