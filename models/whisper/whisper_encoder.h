#pragma once
// OpenAI Whisper's audio encoder (whisper/model.py::AudioEncoder), the part of Whisper LatentSync uses: conv stem,
// sinusoidal positions, pre-LN residual attention blocks, final LayerNorm. Children are registered under the
// OpenAI attribute names, so named_parameters() equals the checkpoint's `encoder.*` keys without the prefix.
//
// Numerics follow the official module: LayerNorm runs in fp32 whatever the weights' dtype, the attention softmax
// runs in fp32 (the AttentionContext's backends do), convolutions and linears run in the input's dtype.

#include "audio/audio_features.h"
#include "io/tensor_source.h"
#include "ops/attention_context.h"

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <optional>
#include <string>

namespace lsync::models {

struct WhisperEncoderConfig {
    int64_t n_mels = 80;
    int64_t n_ctx = 1500;   ///< encoder frames per 30 s window (the conv stem halves 3000 mel frames)
    int64_t n_state = 384;  ///< width; also LatentSync's audio token size (cross_attention_dim)
    int64_t n_head = 6;
    int64_t n_layer = 4;

    /// Whisper-tiny, the model LatentSync ships.
    static WhisperEncoderConfig tiny() { return {}; }
    /// From the checkpoint's `dims` entry (OpenAI's ModelDimensions: n_mels, n_audio_ctx, n_audio_state,
    /// n_audio_head, n_audio_layer). Throws Error(Weights) naming `what` when a field is missing or invalid.
    static WhisperEncoderConfig from_dims(const nlohmann::json& dims, const std::string& what);
    /// From a checkpoint: its `dims` metadata (a JSON object, or a JSON string as `latentsync convert` stores it
    /// in safetensors); without one, from the tensor shapes with OpenAI's 64-wide heads.
    static WhisperEncoderConfig from_source(const io::TensorSource& source);
};

/// OpenAI's MultiHeadAttention as used in the encoder (self-attention, no mask): `key` has no bias.
class WhisperAttentionImpl : public torch::nn::Module {
public:
    WhisperAttentionImpl(int64_t n_state, int64_t n_head);
    torch::Tensor forward(const torch::Tensor& x);  ///< [B, T, C] -> [B, T, C]
    void set_attention(ops::AttentionContextPtr ctx) { ctx_ = std::move(ctx); }

    torch::nn::Linear query{nullptr}, key{nullptr}, value{nullptr}, out{nullptr};

private:
    int64_t n_head_;
    ops::AttentionContextPtr ctx_ = ops::default_attention_context();
};
TORCH_MODULE(WhisperAttention);

/// ResidualAttentionBlock without cross-attention: x + attn(attn_ln(x)), then x + mlp(mlp_ln(x)).
class WhisperBlockImpl : public torch::nn::Module {
public:
    WhisperBlockImpl(int64_t n_state, int64_t n_head);
    torch::Tensor forward(const torch::Tensor& x);
    void set_attention(ops::AttentionContextPtr ctx) { attn->set_attention(std::move(ctx)); }

    WhisperAttention attn{nullptr};
    torch::nn::LayerNorm attn_ln{nullptr};
    torch::nn::Sequential mlp{nullptr};  ///< 0: Linear(C, 4C), 1: GELU, 2: Linear(4C, C)
    torch::nn::LayerNorm mlp_ln{nullptr};
};
TORCH_MODULE(WhisperBlock);

class WhisperEncoderImpl : public torch::nn::Module {
public:
    /// Randomly initialised (LibTorch's default init) apart from the sinusoidal position buffer, which is
    /// computed: usable as is for benchmarks, or filled by load_weights.
    explicit WhisperEncoderImpl(const WhisperEncoderConfig& config = WhisperEncoderConfig::tiny());

    struct Output {
        torch::Tensor states;   ///< [B, n_layer + 1, n_ctx, C]: after the positions, then after each block
        torch::Tensor ln_post;  ///< [B, n_ctx, C], only when asked for (LatentSync does not use it)
    };
    /// mel [B, n_mels, 2 * n_ctx] (normalised log-mel, any float dtype; cast to the weights' dtype).
    Output forward(const torch::Tensor& mel, bool with_ln_post = false);

    void set_attention(ops::AttentionContextPtr ctx);
    const WhisperEncoderConfig& config() const { return config_; }
    /// The weights' dtype and device (those of conv1.weight).
    torch::ScalarType dtype() const { return conv1->weight.scalar_type(); }
    torch::Device device() const { return conv1->weight.device(); }

    torch::nn::Conv1d conv1{nullptr}, conv2{nullptr};
    torch::Tensor positional_embedding;  ///< buffer [n_ctx, C]
    torch::nn::ModuleList blocks{nullptr};
    torch::nn::LayerNorm ln_post{nullptr};

private:
    WhisperEncoderConfig config_;
};
TORCH_MODULE(WhisperEncoder);

/// Whisper's sinusoidal positions: [length, channels] = [sin | cos] over channels/2 timescales
/// exp(-k * ln(10000) / (channels/2 - 1)).
torch::Tensor whisper_sinusoids(int64_t length, int64_t channels);

/// Loads the encoder from an OpenAI checkpoint (`tiny.pt`: {"dims", "model_state_dict"}) or a safetensors
/// conversion of it. The decoder's tensors are ignored explicitly; everything under `encoder.` must match.
/// `dtype` casts the floating-point weights (nullopt keeps the stored dtype, fp16 for OpenAI's files).
WhisperEncoder load_whisper_encoder(const io::TensorSource& source, torch::Device device,
                                    std::optional<torch::ScalarType> dtype);
WhisperEncoder load_whisper_encoder(const std::string& path, torch::Device device,
                                    std::optional<torch::ScalarType> dtype);

/// The encoder as audio::AudioFeatureStream calls it: [1, 80, 3000] fp32 mel -> [1, 5, 1500, C] states in the
/// weights' dtype (no ln_post). The module is shared, not copied.
audio::FeatureEncoder whisper_feature_encoder(WhisperEncoder encoder);

}  // namespace lsync::models
