// `debug forward vae-encode|vae-decode`: the AutoencoderKL on tensors from a file (names as in the golden
// fixture vae_golden.safetensors; docs/forward.md).

#include "forward_stages.h"

#include "core/error.h"
#include "vae/vae_loader.h"

namespace lsync::app {

namespace {

models::AutoencoderKL load_for(const ForwardArgs& args) {
    LSYNC_CHECK(!args.weights.empty(), ErrorCode::Usage,
                "--weights is required: a diffusers VAE folder or its diffusion_pytorch_model.safetensors");
    models::VAELoadOptions opt;
    opt.config_path = args.config;
    opt.device = parse_device(args.device);
    opt.dtype = parse_dtype(args.dtype, opt.device);
    opt.attention = make_attention_context(args, opt.device, opt.dtype);
    return models::load_vae(args.weights, opt);
}

torch::Tensor out(const torch::Tensor& t) { return t.to(torch::kCPU, torch::kFloat).contiguous(); }

NamedTensors run_encode(const ForwardArgs& args, const TensorMap& inputs) {
    const auto& image = need_input(inputs, "image");
    auto vae = load_for(args);
    auto d = vae->encode(image);
    return {{"latent_mean", out(d.mean)}, {"latent_logvar", out(d.logvar)}, {"latent_std", out(d.std)}};
}

NamedTensors run_decode(const ForwardArgs& args, const TensorMap& inputs) {
    const auto& z = need_input(inputs, "decode_input");
    auto vae = load_for(args);
    return {{"decode_output", out(vae->decode(z))}};
}

}  // namespace

LSYNC_REGISTER_FORWARD_STAGE(ForwardStage{
    "vae-encode", "VAE encoder: image [B,3,H,W] in [-1,1] -> latent_mean, latent_logvar, latent_std (unscaled)",
    run_encode});
LSYNC_REGISTER_FORWARD_STAGE(ForwardStage{
    "vae-decode", "VAE decoder: decode_input [B,4,h,w] (unscaled) -> decode_output [B,3,8h,8w]", run_decode});

}  // namespace lsync::app
