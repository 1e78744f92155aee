#pragma once
// Shared by the GPU test files (label gpu, one executable): the device check, a switch guard, a relative error,
// the launches of a profiled call by kernel name, and the full-size UNet call that the kernel switches are
// compared on.

#include "core/compat.h"
#include "catch_compat.h"
#include "diagnostics/kernel_profile.h"
#include "ops/attention_context.h"
#include "ops/conv.h"
#include "unet/unet_layers.h"
#include "unet/unet_loader.h"
#include "vae/autoencoder_kl.h"

#include <torch/torch.h>

#include <cstdint>
#include <cstdlib>
#include <string>

// Skips without a device, except where LSYNC_REQUIRE_GPU is set (scripts/gpu-check.sh): on the GPU host a
// missing device is a failure, not a quiet pass.
#define LSYNC_NEED_GPU()                                                                     \
    do {                                                                                      \
        if (!lsync::compat::cuda_available()) {                                                      \
            if (std::getenv("LSYNC_REQUIRE_GPU")) FAIL("no usable CUDA device (LSYNC_REQUIRE_GPU is set)"); \
            LSYNC_SKIP("no CUDA device");                                                     \
        }                                                                                     \
    } while (0)

/// Restores a kernel switch (its getter and setter) when the test case ends, whatever the case set.
template <bool (*Get)(), void (*Set)(bool)>
struct KeepSwitch {
    bool before = Get();
    ~KeepSwitch() { Set(before); }
};

/// How many launches of a profiled call went to kernels whose names contain `part`: which route a call took.
inline int64_t launches_named(const lsync::diagnostics::KernelProfile& p, const std::string& part) {
    int64_t n = 0;
    for (const auto& k : p.kernels)
        if (k.name.find(part) != std::string::npos) n += k.count;
    return n;
}

inline double rel(const torch::Tensor& a, const torch::Tensor& b) {
    return ((a.to(torch::kDouble) - b.to(torch::kDouble)).norm() / b.to(torch::kDouble).norm()).item<double>();
}

/// The released UNet config with random fp16 weights on cuda:0, strict flash attention, and the inputs of one
/// 256 px CFG call of 16 frames (batch 2).
struct UNet256Call {
    lsync::models::UNet3DConditionModel unet{nullptr};
    torch::Tensor sample, timestep, audio;
    torch::Tensor run() { return unet->forward(sample, timestep, audio).to(torch::kFloat); }
};

inline UNet256Call full_unet_256_call() {
    using namespace lsync::ops;
    const torch::Device dev(torch::kCUDA, 0);
    const auto opts = torch::TensorOptions().device(dev).dtype(torch::kHalf);
    UNet256Call c;
    c.unet = lsync::models::random_unet(lsync::models::UNet3DConfig{}, dev, torch::kHalf, 1247);
    c.unet->set_attention(std::make_shared<AttentionContext>(
        std::make_shared<AttentionDispatcher>(AttentionBackend::Flash, true, dev, torch::kHalf)));
    torch::manual_seed(3);
    c.sample = torch::randn({2, 13, 16, 32, 32}, opts);
    c.audio = torch::randn({2 * 16, 50, 384}, opts);
    c.timestep = torch::tensor(int64_t{501});
    return c;
}

/// The released VAE (sd-vae-ft-mse) with the golden fixtures' random weights of `seed`, in fp16 on cuda:0 with its
/// conv weights channels_last (as CUDA renders hold them): the VAE cases' model.
inline lsync::models::AutoencoderKL fp16_random_vae(uint64_t seed) {
    lsync::models::AutoencoderKL vae(lsync::models::VAEConfig::sd_vae_ft_mse());
    lsync::models::init_random_parameters(*vae, seed);
    vae->to(torch::Device(torch::kCUDA, 0), torch::kHalf);
    lsync::ops::use_channels_last_conv_weights(*vae);
    return vae;
}

/// The relative difference of the full-size 256 px UNet call with a kernel switch on against the same call with
/// it off (the ATen path); the switch is restored afterwards. Requires a finite output.
template <bool (*Get)(), void (*Set)(bool)>
double unet_switch_difference() {
    KeepSwitch<Get, Set> keep;
    auto call = full_unet_256_call();
    Set(false);
    const auto ref = call.run();
    Set(true);
    const auto on = call.run();
    REQUIRE(torch::isfinite(on).all().item<bool>());
    return rel(on, ref);
}
