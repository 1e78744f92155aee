#pragma once
// DDIM as LatentSync configures it (diffusers 0.32.2 DDIMScheduler with configs/scheduler_config.json):
// scaled_linear betas 0.00085..0.012 over 1000 steps, "leading" timestep spacing with steps_offset 1,
// set_alpha_to_one false (the last step lands on alphas_cumprod[0], not 1), epsilon prediction, no clipping or
// thresholding, eta 0 (deterministic). The tables are computed with the same fp32 tensor operations as
// diffusers, so timesteps are identical and the per-step arithmetic matches to the last bits.

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <string>

namespace lsync::diffusion {

struct DDIMConfig {
    int64_t num_train_timesteps = 1000;
    double beta_start = 0.00085;
    double beta_end = 0.012;
    std::string beta_schedule = "scaled_linear";  ///< "scaled_linear" or "linear"
    bool set_alpha_to_one = false;
    int64_t steps_offset = 1;
    std::string timestep_spacing = "leading";     ///< "leading", "trailing" or "linspace"
    std::string prediction_type = "epsilon";      ///< only epsilon (what LatentSync trains)

    /// Reads the keys of a diffusers scheduler_config.json (missing keys keep the values above). Settings this
    /// port does not implement (clip_sample, thresholding, other prediction types, trained_betas,
    /// rescale_betas_zero_snr) are an Error(Usage) naming `what`.
    static DDIMConfig from_json(const nlohmann::json& j, const std::string& what);
    static DDIMConfig from_file(const std::string& path);
};

struct DDIMStepOutput {
    torch::Tensor prev_sample;           ///< x_{t-1}
    torch::Tensor pred_original_sample;  ///< x_0 predicted at this step
};

class DDIMScheduler {
public:
    explicit DDIMScheduler(DDIMConfig config = {});

    /// Chooses the `steps` timesteps of the inference schedule (descending, int64 on the CPU).
    void set_timesteps(int64_t steps);
    const torch::Tensor& timesteps() const { return timesteps_; }
    int64_t num_inference_steps() const { return num_inference_steps_; }

    /// One deterministic DDIM update (eta = 0) from timestep `t` to `t - 1000 / steps`. Runs in the sample's
    /// dtype on its device; model_output and sample must have the same shape.
    DDIMStepOutput step(const torch::Tensor& model_output, int64_t t, const torch::Tensor& sample) const;

    /// DDIM needs no input scaling and starts from unit-variance noise.
    static constexpr double init_noise_sigma = 1.0;

    const torch::Tensor& betas() const { return betas_; }
    const torch::Tensor& alphas_cumprod() const { return alphas_cumprod_; }
    const torch::Tensor& final_alpha_cumprod() const { return final_alpha_cumprod_; }
    const DDIMConfig& config() const { return config_; }

private:
    DDIMConfig config_;
    torch::Tensor betas_, alphas_cumprod_, final_alpha_cumprod_;  // fp32, CPU
    torch::Tensor timesteps_;
    int64_t num_inference_steps_ = 0;
};

}  // namespace lsync::diffusion
