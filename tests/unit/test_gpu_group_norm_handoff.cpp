// GPU checks of a GroupNorm's statistics taken by the pass that writes its input (ops::add_bias_residual_with_stats
// and the apply-only ops::group_norm, kernels/group_norm_nhwc.cu): bit for bit the separate add and the full norm,
// since the statistics pass runs over the same elements in the same order; the apply-only route launches no
// statistics pass; whole VAE calls give the same bits with the switch on and off.
#include "catch_compat.h"

#include "diagnostics/kernel_profile.h"

#include "ops/bias_add.h"
#include "ops/conv.h"
#include "ops/group_norm.h"
#include "vae/autoencoder_kl.h"
#include "unit/gpu_checks.h"

#include <string>
#include <vector>

using namespace lsync;
using namespace lsync::ops;

namespace {

using KeepStatsInPass = KeepSwitch<group_norm_stats_in_pass_enabled, set_group_norm_stats_in_pass>;

const torch::Device kGpuDevice(torch::kCUDA, 0);

torch::Tensor channels_last_randn(std::vector<int64_t> sizes, const torch::TensorOptions& opts) {
    return torch::randn(sizes, opts).contiguous(at::MemoryFormat::ChannelsLast);
}

}  // namespace

TEST_CASE("GroupNorm statistics from the pass that writes the tensor: the separate add and norm exactly",
          "[gpu][group_norm][vae]") {
    LSYNC_NEED_GPU();
    torch::NoGradGuard no_grad;
    KeepStatsInPass keep;
    set_group_norm_stats_in_pass(true);
    // The VAE's levels at 256 px (4 images), and 4,096 channels: two channel tiles per block row.
    const std::vector<std::vector<int64_t>> shapes = {
        {4, 128, 64, 64}, {4, 256, 32, 32}, {2, 512, 16, 16}, {1, 4096, 4, 4}};
    for (auto dt : {torch::kFloat, torch::kHalf, torch::kBFloat16}) {
        for (const auto& shape : shapes) {
            INFO(c10::toString(dt) << " " << shape[0] << "x" << shape[1] << "x" << shape[2] << "x" << shape[3]);
            torch::manual_seed(46);
            const auto opts = torch::TensorOptions().device(kGpuDevice).dtype(dt);
            const auto y0 = channels_last_randn(shape, opts), r = channels_last_randn(shape, opts);
            const auto bias = torch::randn({shape[1]}, opts);
            const auto gw = torch::randn({shape[1]}, opts), gb = torch::randn({shape[1]}, opts);
            auto separate = y0.clone(at::MemoryFormat::ChannelsLast);
            add_channel_bias_residual_(separate, bias, r);
            const auto want = group_norm(separate, 32, gw, gb, 1e-6, /*silu=*/true);
            auto y = y0.clone(at::MemoryFormat::ChannelsLast);
            const auto [out, stats] = add_bias_residual_with_stats(y, bias, r, 32);
            REQUIRE(stats.workspace.defined());
            CHECK(out.is_contiguous(at::MemoryFormat::ChannelsLast));
            CHECK(torch::equal(out, separate));
            CHECK(torch::equal(group_norm(out, 32, gw, gb, 1e-6, true, stats), want));
            // Statistics of another tensor, or of another group count, are not used.
            CHECK(torch::equal(group_norm(separate, 32, gw, gb, 1e-6, true, stats), want));
        }
    }
    // The apply-only route: no statistics pass.
    const auto opts = torch::TensorOptions().device(kGpuDevice).dtype(torch::kHalf);
    auto y = channels_last_randn({4, 128, 64, 64}, opts);
    const auto r = channels_last_randn({4, 128, 64, 64}, opts);
    const auto bias = torch::randn({128}, opts), gw = torch::randn({128}, opts), gb = torch::randn({128}, opts);
    const auto handed = add_bias_residual_with_stats(y, bias, r, 32);
    const torch::Tensor out = handed.first;
    const GroupNormStats stats = handed.second;  // copies: a lambda cannot capture structured bindings in C++17
    (void)group_norm(out, 32, gw, gb, 1e-6, true, stats);
    const auto p = diagnostics::profile_kernels([&] { (void)group_norm(out, 32, gw, gb, 1e-6, true, stats); },
                                                kGpuDevice);
    REQUIRE(p.available);
    bool stats_pass = false, apply_pass = false;
    for (const auto& k : p.kernels) {
        stats_pass = stats_pass || k.name.find("group_norm_nhwc_stats") != std::string::npos;
        apply_pass = apply_pass || k.name.find("group_norm_nhwc_apply") != std::string::npos;
    }
    CHECK(apply_pass);
    CHECK_FALSE(stats_pass);
    // Switched off: the in-place add, no statistics.
    set_group_norm_stats_in_pass(false);
    auto z = y.clone(at::MemoryFormat::ChannelsLast);
    const auto [off, no_stats] = add_bias_residual_with_stats(z, bias, r, 32);
    CHECK_FALSE(no_stats.workspace.defined());
    CHECK(off.data_ptr() == z.data_ptr());
}

TEST_CASE("VAE in fp16 and bf16: statistics handed along the resnet chains give the same bits",
          "[gpu][group_norm][vae]") {
    LSYNC_NEED_GPU();
    torch::NoGradGuard no_grad;
    KeepStatsInPass keep;
    for (auto dt : {torch::kHalf, torch::kBFloat16}) {
        INFO(c10::toString(dt));
        models::AutoencoderKL vae(models::VAEConfig::sd_vae_ft_mse());
        models::init_random_parameters(*vae, 83);
        vae->to(kGpuDevice, dt);
        use_channels_last_conv_weights(*vae);
        torch::manual_seed(47);
        const auto opts = torch::TensorOptions().device(kGpuDevice).dtype(dt);
        const auto z = torch::randn({2, 4, 32, 32}, opts);
        const auto image = torch::rand({2, 3, 256, 256}, opts) * 2 - 1;
        set_group_norm_stats_in_pass(false);
        const auto decoded_off = vae->decode(z), encoded_off = vae->encode(image).mean;
        set_group_norm_stats_in_pass(true);
        const auto decoded_on = vae->decode(z), encoded_on = vae->encode(image).mean;
        REQUIRE(torch::isfinite(decoded_on).all().item<bool>());
        CHECK(torch::equal(decoded_on, decoded_off));
        CHECK(torch::equal(encoded_on, encoded_off));
    }
}
