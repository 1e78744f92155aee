// `latentsync debug forward unet` (and `unet-trace`): one UNet3DConditionModel evaluation on tensors from a file.
// Tensor names are those of the golden fixture unet_golden.safetensors (docs/forward.md, section "unet").

#include "forward_stages.h"

#include "core/error.h"
#include "core/log.h"
#include "pipeline/mouth_mask.h"
#include "unet/unet_loader.h"

namespace lsync::app {

namespace {

struct LoadedUNet {
    models::UNet3DConditionModel unet{nullptr};
    torch::Device device = torch::kCPU;
};

LoadedUNet load(const ForwardArgs& args, const TensorMap& inputs) {
    LSYNC_CHECK(!args.weights.empty(), ErrorCode::Usage,
                "debug forward unet needs --weights (latentsync_unet.pt or its safetensors export)");
    const auto config = args.config.empty() ? models::UNet3DConfig{} : models::UNet3DConfig::from_file(args.config);
    LoadedUNet l;
    l.device = parse_device(args.device);
    const auto dtype = parse_dtype(args.dtype, l.device);
    l.unet = models::load_unet(args.weights, config, l.device, dtype);
    auto ctx = make_attention_context(args, l.device, dtype);
    if (args.lip_focus != 1.0) {
        // The mouth region: an optional `mouth` input [H, W] (1 = mouth), else the official mask's shape.
        auto it = inputs.find("mouth");
        const auto mouth = it != inputs.end() ? it->second : 1.0 - pipeline::procedural_mouth_mask(256);
        ctx->set_lip_focus(mouth, args.lip_focus);
        if (ctx->dispatcher() && ctx->dispatcher()->active() == ops::AttentionBackend::Flash)
            log::warn("--lip-focus has no effect with flash attention (use --attention flex or standard)");
    }
    l.unet->set_attention(ctx);
    return l;
}

/// The timestep inputs present: "timestep" -> "out", "timestep_a" -> "out_a", "timestep_b" -> "out_b".
std::vector<std::pair<std::string, torch::Tensor>> timesteps(const TensorMap& inputs) {
    std::vector<std::pair<std::string, torch::Tensor>> ts;
    for (const std::string s : {"", "_a", "_b"})
        if (auto it = inputs.find("timestep" + s); it != inputs.end()) ts.emplace_back("out" + s, it->second);
    LSYNC_CHECK(!ts.empty(), ErrorCode::Usage, "the inputs file needs 'timestep' (or 'timestep_a' / 'timestep_b')");
    return ts;
}

torch::Tensor to_host(const torch::Tensor& t) { return t.to(torch::kCPU, torch::kFloat).contiguous(); }

NamedTensors run_unet(const ForwardArgs& args, const TensorMap& inputs) {
    const auto& sample = need_input(inputs, "sample");
    const auto& audio = need_input(inputs, "encoder_hidden_states");
    const auto ts = timesteps(inputs);
    auto l = load(args, inputs);
    c10::InferenceMode guard;
    NamedTensors out;
    for (const auto& [name, t] : ts) out.emplace_back(name, to_host(l.unet->forward(sample, t, audio)));
    return out;
}

NamedTensors run_unet_trace(const ForwardArgs& args, const TensorMap& inputs) {
    const auto& sample = need_input(inputs, "sample");
    const auto& audio = need_input(inputs, "encoder_hidden_states");
    const auto ts = timesteps(inputs);
    auto l = load(args, inputs);
    c10::InferenceMode guard;
    models::UNetTrace trace;
    NamedTensors out;
    out.emplace_back(ts.front().first, to_host(l.unet->forward(sample, ts.front().second, audio,
                                                              diffusion::CachePhase::Off, &trace)));
    for (const auto& [name, t] : trace) out.emplace_back(name, to_host(t));
    return out;
}

}  // namespace

LSYNC_REGISTER_FORWARD_STAGE(ForwardStage{
    "unet", "UNet3D: sample, encoder_hidden_states, timestep[_a|_b] -> out[_a|_b]", run_unet});
LSYNC_REGISTER_FORWARD_STAGE(ForwardStage{
    "unet-trace", "UNet3D with per-block intermediates for the first timestep (time_proj, down0, mid, up3, ...)",
    run_unet_trace});

}  // namespace lsync::app
