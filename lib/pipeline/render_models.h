#pragma once
// The three networks of a render and the crop resolution they imply: LatentSync 1.5 (256 px), 1.6 (512 px), or
// `test-tiny`, small configurations of the same classes (the golden fixtures' tiny UNet, VAE and Whisper) that
// render a few seconds of video on a CPU in seconds, for tests and the demo. Weights come from the model folder
// (docs/models.md), from explicit files, or, with --weights random, from fixed seeds (the output then says so).

#include "ops/attention_context.h"
#include "unet/unet_3d.h"
#include "unet/unet_loader.h"
#include "vae/autoencoder_kl.h"
#include "whisper/whisper_encoder.h"

#include <torch/torch.h>

#include <functional>
#include <string>

namespace lsync::pipeline {

enum class ModelVariant { V15, V16, TestTiny };

/// "1.5", "1.6", "test-tiny"; Error(Usage) otherwise.
ModelVariant parse_model_variant(const std::string& text);
const char* model_variant_name(ModelVariant variant);
/// The face crop size R the variant's UNet was trained at: 256, 512, 128.
int model_resolution(ModelVariant variant);
/// The VAE configuration of the variant (1.5 and 1.6: sd-vae-ft-mse's; test-tiny: the golden fixtures').
models::VAEConfig vae_config_for(ModelVariant variant);
/// The Whisper encoder configuration the variant's audio windows come from (Whisper tiny; test-tiny: 64 wide).
models::WhisperEncoderConfig whisper_config_for(ModelVariant variant);

struct ModelRequest {
    ModelVariant variant = ModelVariant::V15;
    std::string model_dir;    ///< resolved model root (io::resolve_model_dir)
    std::string unet_path;    ///< explicit files; empty = the model folder's
    std::string vae_path;
    std::string whisper_path;
    bool random_weights = false;
    torch::Device device = torch::kCPU;
    torch::ScalarType dtype = torch::kFloat;
    ops::AttentionContextPtr attention;  ///< shared by all three networks; the default context when null
    /// Called on the loading thread with the Whisper encoder as soon as it is loaded and checked against the
    /// UNet's audio width, before the UNet and the VAE load (a render computes its first chunks' audio windows
    /// while they do). The encoder may not have `attention` set yet: share its weights, do not keep it. Optional.
    std::function<void(const models::WhisperEncoder&)> on_whisper;
    /// Called on the loading thread when the UNet's parameters have their places on the device and are about to
    /// be written (models::UNetPlaced): a GPU render's worker warms up on them (worker_warm_up.h). Optional.
    models::UNetPlaced on_unet_placed;
};

struct RenderModels {
    models::UNet3DConditionModel unet{nullptr};
    models::AutoencoderKL vae{nullptr};
    models::WhisperEncoder whisper{nullptr};
    int resolution = 256;
    std::string description;  ///< "LatentSync 1.5 (random weights)", for logs and the output's metadata
};

/// The UNet and the VAE that --weights random gives `variant` (the same configurations and seeds), drawn on
/// `device` in `dtype`. Written to files on the CPU in float32 (bench render --weights random-files), they load
/// into the values a CPU render with --weights random has; a GPU draws other values from the same seeds.
models::UNet3DConditionModel random_unet_for(ModelVariant variant, const torch::Device& device, torch::ScalarType dtype,
                                             const models::UNetPlaced& on_placed = nullptr);
models::AutoencoderKL random_vae_for(ModelVariant variant, const torch::Device& device, torch::ScalarType dtype);

/// Builds and loads the networks in eval mode on the request's device and dtype. Missing files are an
/// Error(Weights) naming the file and the fix; a Whisper whose width differs from the UNet's audio width is an
/// Error(Weights) too (a small.pt with a tiny-width UNet).
RenderModels load_render_models(const ModelRequest& request);

/// Networks on the device of `from` that hold `from`'s weights: new UNet, VAE and Whisper instances whose
/// parameters and buffers are `from`'s tensors (models::share_parameters: no copy, no load), with `attention` set
/// on them (the default context when null), so they carry their own attention context and DeepCache state. Two
/// workers on one GPU (--devices 0,0), or two batch jobs on one, then hold one set of weights, not two.
RenderModels share_render_models(const RenderModels& from, const ops::AttentionContextPtr& attention);

/// share_render_models for the Whisper encoder alone: a new instance over `from`'s weights, in eval mode, with
/// `attention` (the default context when null).
models::WhisperEncoder share_whisper(const models::WhisperEncoder& from, const ops::AttentionContextPtr& attention);

}  // namespace lsync::pipeline
