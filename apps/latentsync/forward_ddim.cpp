// `debug forward ddim`: one DDIM step (names as in the golden fixture ddim_golden.safetensors; docs/forward.md).

#include "forward_stages.h"

#include "core/error.h"
#include "diffusion/ddim_scheduler.h"

namespace lsync::app {

namespace {

int64_t int_input(const TensorMap& inputs, const std::string& name, int64_t fallback) {
    auto it = inputs.find(name);
    if (it == inputs.end()) return fallback;
    LSYNC_CHECK(it->second.numel() == 1, ErrorCode::Usage, "input '" + name + "' must hold one number");
    return static_cast<int64_t>(it->second.to(torch::kDouble).item<double>());
}

NamedTensors run_ddim(const ForwardArgs& args, const TensorMap& inputs) {
    diffusion::DDIMScheduler scheduler(args.config.empty() ? diffusion::DDIMConfig{}
                                                           : diffusion::DDIMConfig::from_file(args.config));
    scheduler.set_timesteps(int_input(inputs, "num_inference_steps", 20));
    const auto& model_output = need_input(inputs, "model_output");
    const auto& sample = need_input(inputs, "sample");
    LSYNC_CHECK(model_output.sizes() == sample.sizes(), ErrorCode::Usage,
                "model_output " + c10::str(model_output.sizes()) + " and sample " + c10::str(sample.sizes()) +
                    " must have the same shape");
    const int64_t t = int_input(inputs, "timestep", -1);
    LSYNC_CHECK(inputs.count("timestep") != 0, ErrorCode::Usage, "the inputs file has no tensor 'timestep'");
    LSYNC_CHECK(t >= 0 && t < scheduler.config().num_train_timesteps, ErrorCode::Usage,
                "timestep " + std::to_string(t) + " is outside [0, " +
                    std::to_string(scheduler.config().num_train_timesteps) + ")");
    const auto device = parse_device(args.device);
    const auto dtype = parse_dtype(args.dtype, device);
    auto step = scheduler.step(model_output.to(device, dtype), t, sample.to(device, dtype));
    auto cpu = [](const torch::Tensor& x) { return x.to(torch::kCPU, torch::kFloat).contiguous(); };
    return {{"prev_sample", cpu(step.prev_sample)},
            {"pred_original_sample", cpu(step.pred_original_sample)},
            {"timesteps", scheduler.timesteps()},
            {"alphas_cumprod", scheduler.alphas_cumprod()}};
}

}  // namespace

LSYNC_REGISTER_FORWARD_STAGE(ForwardStage{
    "ddim",
    "one DDIM step: model_output, sample, timestep [, num_inference_steps=20] -> prev_sample, pred_original_sample, "
    "timesteps, alphas_cumprod",
    run_ddim});

}  // namespace lsync::app
