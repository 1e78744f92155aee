#include "whisper/whisper_encoder.h"

#include "core/error.h"
#include "core/json_limits.h"
#include "core/log.h"
#include "io/weight_loader.h"

#include <cmath>
#include <set>

namespace lsync::models {

namespace {

// OpenAI's LayerNorm subclass computes in fp32 and casts back, so fp16 weights keep fp32 statistics.
torch::Tensor layer_norm_fp32(const torch::nn::LayerNorm& ln, const torch::Tensor& x) {
    const auto& o = ln->options;
    return torch::layer_norm(x.to(torch::kFloat), o.normalized_shape(), ln->weight.to(torch::kFloat),
                             ln->bias.to(torch::kFloat), o.eps())
        .to(x.scalar_type());
}

torch::nn::LayerNorm make_ln(int64_t n) {
    return torch::nn::LayerNorm(torch::nn::LayerNormOptions({n}).eps(1e-5));
}

int64_t dims_int(const nlohmann::json& dims, const char* key, const std::string& what) {
    LSYNC_CHECK(dims.contains(key) && dims.at(key).is_number_integer() && dims.at(key).get<int64_t>() > 0,
                ErrorCode::Weights, what + ": the checkpoint's dims have no positive integer '" + key + "'");
    return dims.at(key).get<int64_t>();
}

}  // namespace

WhisperEncoderConfig WhisperEncoderConfig::from_dims(const nlohmann::json& dims, const std::string& what) {
    LSYNC_CHECK(dims.is_object(), ErrorCode::Weights, what + ": the checkpoint's dims entry is not a dict");
    WhisperEncoderConfig c;
    c.n_mels = dims_int(dims, "n_mels", what);
    c.n_ctx = dims_int(dims, "n_audio_ctx", what);
    c.n_state = dims_int(dims, "n_audio_state", what);
    c.n_head = dims_int(dims, "n_audio_head", what);
    c.n_layer = dims_int(dims, "n_audio_layer", what);
    LSYNC_CHECK(c.n_state % c.n_head == 0 && c.n_state % 2 == 0, ErrorCode::Weights,
                what + ": n_audio_state " + std::to_string(c.n_state) + " is not divisible by n_audio_head " +
                    std::to_string(c.n_head));
    return c;
}

WhisperEncoderConfig WhisperEncoderConfig::from_source(const io::TensorSource& source) {
    const std::string what = "Whisper encoder (" + source.path() + ")";
    const auto meta = source.metadata();
    if (meta.contains("dims")) {
        auto dims = meta.at("dims");
        if (dims.is_string()) {
            dims = parse_untrusted_json(dims.get<std::string>(), [&](const std::string& why) {
                throw_error(ErrorCode::Weights, what + ": the 'dims' metadata is " + why);
            });
        }
        return from_dims(dims, what);
    }
    // No dims (e.g. a bare encoder state dict): shapes give everything but the head count, which is 64-wide in
    // every released Whisper model.
    auto shape = [&](const std::string& name) {
        for (const auto& t : source.tensors())
            if (t.name == name) return t.shape;
        throw_error(ErrorCode::Weights, what + ": no 'dims' metadata and no tensor '" + name + "'");
    };
    WhisperEncoderConfig c;
    const auto conv1 = shape("encoder.conv1.weight");
    const auto pos = shape("encoder.positional_embedding");
    LSYNC_CHECK(conv1.size() == 3 && pos.size() == 2, ErrorCode::Weights, what + ": unexpected encoder shapes");
    c.n_state = conv1[0];
    c.n_mels = conv1[1];
    c.n_ctx = pos[0];
    std::set<std::string> blocks;
    for (const auto& t : source.tensors())
        if (t.name.rfind("encoder.blocks.", 0) == 0) blocks.insert(t.name.substr(15, t.name.find('.', 15) - 15));
    c.n_layer = static_cast<int64_t>(blocks.size());
    LSYNC_CHECK(c.n_state % 64 == 0 && c.n_layer > 0, ErrorCode::Weights,
                what + ": no 'dims' metadata, and the head count cannot be inferred");
    c.n_head = c.n_state / 64;
    log::warn(what, ": no 'dims' metadata; assuming ", c.n_head, " heads of 64");
    return c;
}

torch::Tensor whisper_sinusoids(int64_t length, int64_t channels) {
    LSYNC_CHECK(channels % 2 == 0 && channels >= 4, ErrorCode::Internal, "whisper_sinusoids: channels must be even");
    // Same float32 op order as OpenAI's sinusoids(): exp in float32 of a float64 increment times an int range.
    const double increment = std::log(10000.0) / static_cast<double>(channels / 2 - 1);
    const auto inv = torch::exp(-increment * torch::arange(channels / 2, torch::kFloat));
    const auto scaled = torch::arange(length, torch::kFloat).unsqueeze(1) * inv.unsqueeze(0);
    return torch::cat({torch::sin(scaled), torch::cos(scaled)}, 1);
}

WhisperAttentionImpl::WhisperAttentionImpl(int64_t n_state, int64_t n_head) : n_head_(n_head) {
    query = register_module("query", torch::nn::Linear(n_state, n_state));
    key = register_module("key", torch::nn::Linear(torch::nn::LinearOptions(n_state, n_state).bias(false)));
    value = register_module("value", torch::nn::Linear(n_state, n_state));
    out = register_module("out", torch::nn::Linear(n_state, n_state));
}

torch::Tensor WhisperAttentionImpl::forward(const torch::Tensor& x) {
    const int64_t b = x.size(0), t = x.size(1), c = x.size(2), d = c / n_head_;
    // [B, T, C] -> [B, H, T, D]. OpenAI scales q and k by d^-0.25 each; attend() applies d^-0.5 once, which is
    // the same product.
    auto heads = [&](const torch::Tensor& y) { return y.view({b, t, n_head_, d}).permute({0, 2, 1, 3}); };
    const auto o = ctx_->attend(heads(query(x)), heads(key(x)), heads(value(x)));
    return out(o.permute({0, 2, 1, 3}).reshape({b, t, c}));
}

WhisperBlockImpl::WhisperBlockImpl(int64_t n_state, int64_t n_head) {
    attn = register_module("attn", WhisperAttention(n_state, n_head));
    attn_ln = register_module("attn_ln", make_ln(n_state));
    mlp = register_module("mlp", torch::nn::Sequential(torch::nn::Linear(n_state, 4 * n_state), torch::nn::GELU(),
                                                       torch::nn::Linear(4 * n_state, n_state)));
    mlp_ln = register_module("mlp_ln", make_ln(n_state));
}

torch::Tensor WhisperBlockImpl::forward(const torch::Tensor& x) {
    auto y = x + attn(layer_norm_fp32(attn_ln, x));
    return y + mlp->forward(layer_norm_fp32(mlp_ln, y));
}

WhisperEncoderImpl::WhisperEncoderImpl(const WhisperEncoderConfig& config) : config_(config) {
    const int64_t c = config.n_state;
    conv1 = register_module("conv1", torch::nn::Conv1d(torch::nn::Conv1dOptions(config.n_mels, c, 3).padding(1)));
    conv2 = register_module("conv2", torch::nn::Conv1d(torch::nn::Conv1dOptions(c, c, 3).stride(2).padding(1)));
    positional_embedding = register_buffer("positional_embedding", whisper_sinusoids(config.n_ctx, c));
    blocks = register_module("blocks", torch::nn::ModuleList());
    for (int64_t i = 0; i < config.n_layer; ++i) blocks->push_back(WhisperBlock(c, config.n_head));
    ln_post = register_module("ln_post", make_ln(c));
}

void WhisperEncoderImpl::set_attention(ops::AttentionContextPtr ctx) {
    for (auto& b : *blocks) b->as<WhisperBlockImpl>()->set_attention(ctx);
}

WhisperEncoderImpl::Output WhisperEncoderImpl::forward(const torch::Tensor& mel, bool with_ln_post) {
    LSYNC_CHECK(mel.dim() == 3 && mel.size(1) == config_.n_mels && mel.size(2) == 2 * config_.n_ctx,
                ErrorCode::Internal,
                "Whisper encoder: input must be [B, " + std::to_string(config_.n_mels) + ", " +
                    std::to_string(2 * config_.n_ctx) + "] log-mel");
    auto x = torch::gelu(conv1(mel.to(dtype())));
    x = torch::gelu(conv2(x)).permute({0, 2, 1});  // [B, C, T] -> [B, T, C]
    // OpenAI adds the fp32 buffer and casts back to the activations' dtype.
    x = (x + positional_embedding.to(torch::kFloat)).to(x.scalar_type());
    std::vector<torch::Tensor> states{x};
    for (auto& b : *blocks) {
        x = b->as<WhisperBlockImpl>()->forward(x);
        states.push_back(x);
    }
    Output out;
    out.states = torch::stack(states, 1);
    if (with_ln_post) out.ln_post = layer_norm_fp32(ln_post, x);
    return out;
}

WhisperEncoder load_whisper_encoder(const io::TensorSource& source, torch::Device device,
                                    std::optional<torch::ScalarType> dtype) {
    WhisperEncoder encoder(WhisperEncoderConfig::from_source(source));
    io::LoadPolicy policy;
    policy.allow_unexpected = {R"(decoder\..*)"};  // the text decoder: LatentSync only runs the encoder
    policy.device = device;
    policy.dtype = dtype;
    io::load_weights(*encoder, source, {{"encoder.", ""}}, policy, "Whisper encoder");
    encoder->eval();
    return encoder;
}

WhisperEncoder load_whisper_encoder(const std::string& path, torch::Device device,
                                    std::optional<torch::ScalarType> dtype) {
    const auto source = io::open_tensor_source(path);
    return load_whisper_encoder(*source, device, dtype);
}

audio::FeatureEncoder whisper_feature_encoder(WhisperEncoder encoder) {
    return [encoder](const torch::Tensor& mel) mutable { return encoder->forward(mel).states; };
}

}  // namespace lsync::models
