#include "diffusion/ddim_scheduler.h"

#include "core/error.h"
#include "core/json_file.h"

#include <cmath>

namespace lsync::diffusion {

namespace {

template <class T>
void read(const nlohmann::json& j, const char* key, T& out, const std::string& what) {
    read_json_key(j, key, out, what, ErrorCode::Usage);
}

void reject_true(const nlohmann::json& j, const char* key, const std::string& what) {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) return;
    LSYNC_CHECK(it->is_boolean() && !it->get<bool>(), ErrorCode::Usage,
                what + ": scheduler '" + key + "' = " + it->dump() + " is not supported (LatentSync uses false)");
}

}  // namespace

DDIMConfig DDIMConfig::from_json(const nlohmann::json& j, const std::string& what) {
    LSYNC_CHECK(j.is_object(), ErrorCode::Usage, what + ": the scheduler config must be a JSON object");
    DDIMConfig c;
    read(j, "num_train_timesteps", c.num_train_timesteps, what);
    read(j, "beta_start", c.beta_start, what);
    read(j, "beta_end", c.beta_end, what);
    read(j, "beta_schedule", c.beta_schedule, what);
    read(j, "set_alpha_to_one", c.set_alpha_to_one, what);
    read(j, "steps_offset", c.steps_offset, what);
    read(j, "timestep_spacing", c.timestep_spacing, what);
    read(j, "prediction_type", c.prediction_type, what);
    for (const char* key : {"clip_sample", "thresholding", "rescale_betas_zero_snr"}) reject_true(j, key, what);
    LSYNC_CHECK(!j.contains("trained_betas") || j["trained_betas"].is_null(), ErrorCode::Usage,
                what + ": scheduler 'trained_betas' is not supported");
    LSYNC_CHECK(c.beta_schedule == "scaled_linear" || c.beta_schedule == "linear", ErrorCode::Usage,
                what + ": beta_schedule '" + c.beta_schedule + "' is not supported (scaled_linear or linear)");
    LSYNC_CHECK(c.timestep_spacing == "leading" || c.timestep_spacing == "trailing" ||
                    c.timestep_spacing == "linspace",
                ErrorCode::Usage, what + ": timestep_spacing '" + c.timestep_spacing + "' is not supported");
    LSYNC_CHECK(c.prediction_type == "epsilon", ErrorCode::Usage,
                what + ": prediction_type '" + c.prediction_type + "' is not supported (epsilon only)");
    LSYNC_CHECK(c.num_train_timesteps >= 2, ErrorCode::Usage, what + ": num_train_timesteps must be >= 2");
    return c;
}

DDIMConfig DDIMConfig::from_file(const std::string& path) {
    return from_json(read_json_file(path, "scheduler config", ErrorCode::Usage), path);
}

DDIMScheduler::DDIMScheduler(DDIMConfig config) : config_(std::move(config)) {
    const auto n = config_.num_train_timesteps;
    const auto f32 = torch::TensorOptions().dtype(torch::kFloat);
    // Same expressions as diffusers (torch.linspace in fp32, then squared / cumprod in fp32 tensors).
    if (config_.beta_schedule == "scaled_linear")
        betas_ = torch::linspace(std::sqrt(config_.beta_start), std::sqrt(config_.beta_end), n, f32).pow(2);
    else
        betas_ = torch::linspace(config_.beta_start, config_.beta_end, n, f32);
    alphas_cumprod_ = torch::cumprod(1.0 - betas_, 0);
    final_alpha_cumprod_ = config_.set_alpha_to_one ? torch::ones({}, f32) : alphas_cumprod_[0].clone();
}

void DDIMScheduler::set_timesteps(int64_t steps) {
    const auto n = config_.num_train_timesteps;
    LSYNC_CHECK(steps >= 1 && steps <= n, ErrorCode::Usage,
                "DDIM: the number of steps must be in [1, " + std::to_string(n) + "], got " + std::to_string(steps));
    std::vector<int64_t> t(static_cast<size_t>(steps));
    if (config_.timestep_spacing == "leading") {
        const int64_t ratio = n / steps;
        for (int64_t i = 0; i < steps; ++i) t[i] = (steps - 1 - i) * ratio + config_.steps_offset;
    } else if (config_.timestep_spacing == "trailing") {
        // np.round(np.arange(n, 0, -n / steps)) - 1; np.round rounds halves to even, like nearbyint.
        const double ratio = static_cast<double>(n) / static_cast<double>(steps);
        for (int64_t i = 0; i < steps; ++i)
            t[i] = static_cast<int64_t>(std::nearbyint(static_cast<double>(n) - static_cast<double>(i) * ratio)) - 1;
    } else {  // linspace: np.linspace(0, n - 1, steps).round()[::-1]
        for (int64_t i = 0; i < steps; ++i) {
            const double v = steps == 1 ? 0.0
                                        : static_cast<double>(n - 1) * static_cast<double>(steps - 1 - i) /
                                              static_cast<double>(steps - 1);
            t[i] = static_cast<int64_t>(std::nearbyint(v));
        }
    }
    // "leading" spacing with steps_offset 1 (the released config) puts 1,000 steps' first timestep at 1,000, past
    // the table (diffusers fails there too): the step count is the user's, so this is a usage error.
    if (t.front() >= n) {
        int64_t most = steps;
        while (most > 1 && (most - 1) * (n / most) + config_.steps_offset >= n) --most;
        throw_error(ErrorCode::Usage, "--steps " + std::to_string(steps) + " is more than this scheduler takes (at most " +
                                          std::to_string(most) + ": its timesteps start at " +
                                          std::to_string(config_.steps_offset) + ")");
    }
    timesteps_ = torch::tensor(t, torch::kLong);
    num_inference_steps_ = steps;
}

DDIMStepOutput DDIMScheduler::step(const torch::Tensor& model_output, int64_t t, const torch::Tensor& sample) const {
    LSYNC_CHECK(num_inference_steps_ > 0, ErrorCode::Internal, "DDIM: step() before set_timesteps()");
    LSYNC_CHECK(model_output.sizes() == sample.sizes(), ErrorCode::Internal,
                "DDIM: model output " + c10::str(model_output.sizes()) + " and sample " + c10::str(sample.sizes()) +
                    " differ in shape");
    LSYNC_CHECK(t >= 0 && t < config_.num_train_timesteps, ErrorCode::Internal,
                "DDIM: timestep " + std::to_string(t) + " out of range");
    const int64_t prev_t = t - config_.num_train_timesteps / num_inference_steps_;
    // 0-d fp32 CPU tensors, as in diffusers: they act as scalars in ops on any device and dtype.
    const auto alpha_t = alphas_cumprod_[t];
    const auto alpha_prev = prev_t >= 0 ? alphas_cumprod_[prev_t] : final_alpha_cumprod_;
    const auto beta_t = 1 - alpha_t;
    const auto eps = model_output.to(sample.scalar_type());
    auto x0 = (sample - beta_t.pow(0.5) * eps) / alpha_t.pow(0.5);
    // eta = 0: no variance term (std_dev_t = 0), so the direction coefficient is sqrt(1 - alpha_prev).
    auto direction = (1 - alpha_prev).pow(0.5) * eps;
    auto prev = alpha_prev.pow(0.5) * x0 + direction;
    return {prev, x0};
}

}  // namespace lsync::diffusion
