// GPU checks of the residual pass that takes the next GroupNorm's statistics as it writes
// (ops::add_channel_bias_residual_stats_, kernels/group_norm_nhwc.cu residual_stats, LSYNC_RESIDUAL_STATS): the
// sums and the norm after them bit for bit those of the separate passes, at the VAE's shapes and odd ones, the
// route really taken, the plain pass where it does not serve, and whole VAE calls with it on and off.
#include "catch_compat.h"

#include "ops/bias_add.h"
#include "ops/conv.h"
#include "ops/group_norm.h"
#include "vae/autoencoder_kl.h"
#include "unit/gpu_checks.h"

#include <cmath>
#include <vector>

using namespace lsync;
using namespace lsync::ops;

namespace {

using KeepResidualStats = KeepSwitch<residual_stats_enabled, set_residual_stats>;

const torch::Device kStatsDevice(torch::kCUDA, 0);

torch::Tensor cl_randn(const std::vector<int64_t>& shape, torch::ScalarType dt) {
    return (torch::randn(shape, torch::TensorOptions().device(kStatsDevice).dtype(dt)) * 2 + 1)
        .contiguous(at::MemoryFormat::ChannelsLast);
}

}  // namespace

TEST_CASE("residual pass with the next norm's statistics: the separate passes' bits", "[gpu][groupnorm][bias]") {
    LSYNC_NEED_GPU();
    torch::NoGradGuard no_grad;
    KeepResidualStats keep;
    set_residual_stats(true);
    struct Case {
        std::vector<int64_t> shape;
        int64_t groups;
    };
    // The encoder's and decoder's resnet outputs (16 images at 256 px: 128 channels at 256 px, 512 at 64), groups
    // straddling vectors (96 / 32), an odd plane, several tiles (2560 channels), two pixels.
    const std::vector<Case> cases = {{{16, 128, 256, 256}, 32}, {{16, 512, 64, 64}, 32}, {{3, 96, 7, 9}, 32},
                                     {{2, 256, 33, 17}, 32},    {{2, 2560, 4, 4}, 32},   {{3, 8, 1, 2}, 4}};
    for (auto dt : {torch::kFloat, torch::kHalf, torch::kBFloat16}) {
        for (const auto& k : cases) {
            for (bool with_residual_bias : {false, true}) {
                INFO(c10::toString(dt) << " " << c10::str(at::IntArrayRef(k.shape)) << " / " << k.groups
                                       << ", residual bias " << with_residual_bias);
                torch::manual_seed(8);
                const auto c = k.shape[1];
                const auto y = cl_randn(k.shape, dt), r = cl_randn(k.shape, dt);
                const auto o = torch::TensorOptions().device(kStatsDevice).dtype(dt);
                const auto bias = torch::randn({c}, o), rbias = with_residual_bias ? torch::randn({c}, o)
                                                                                    : torch::Tensor();
                const auto w = 1 + 0.1 * torch::randn({c}, o), b = 0.1 * torch::randn({c}, o);
                auto want_sum = y.clone();
                add_channel_bias_residual_(want_sum, bias, r.clone(), rbias);
                auto got_sum = y.clone();
                const auto stats = add_channel_bias_residual_stats_(got_sum, bias, r, rbias, k.groups);
                REQUIRE(stats.workspace.defined());
                CHECK(torch::equal(got_sum, want_sum));
                for (bool silu : {false, true}) {
                    const auto want = group_norm(want_sum, k.groups, w, b, 1e-6, silu);
                    const auto got = group_norm_with_stats(got_sum, stats, k.groups, w, b, 1e-6, silu);
                    CHECK(got.is_contiguous(at::MemoryFormat::ChannelsLast));
                    CHECK(torch::equal(got, want));
                }
                // An fp32 affine (the VAE's norms may keep theirs in fp32) reads the same statistics.
                const auto w32 = w.to(torch::kFloat), b32 = b.to(torch::kFloat);
                CHECK(torch::equal(group_norm_with_stats(got_sum, stats, k.groups, w32, b32, 1e-6, true),
                                   group_norm(want_sum, k.groups, w32, b32, 1e-6, true)));
            }
        }
    }
}

TEST_CASE("residual pass with statistics: the route taken where it serves, the plain pass elsewhere",
          "[gpu][groupnorm][bias]") {
    LSYNC_NEED_GPU();
    torch::NoGradGuard no_grad;
    KeepResidualStats keep;
    set_residual_stats(true);
    const auto y = cl_randn({4, 128, 64, 64}, torch::kHalf), r = cl_randn({4, 128, 64, 64}, torch::kHalf);
    const auto o = torch::TensorOptions().device(kStatsDevice).dtype(torch::kHalf);
    const auto bias = torch::randn({128}, o), w = torch::ones({128}, o), b = torch::zeros({128}, o);
    auto want = y.clone();
    add_channel_bias_residual_(want, bias, r.clone(), {});
    const auto want_norm = group_norm(want, 32, w, b, 1e-6, true);
    const auto p = diagnostics::profile_kernels(
        [&] {
            auto s = y.clone();
            const auto st = add_channel_bias_residual_stats_(s, bias, r, {}, 32);
            (void)group_norm_with_stats(s, st, 32, w, b, 1e-6, true);
        },
        kStatsDevice);
    REQUIRE(p.available);
    CHECK(launches_named(p, "residual_stats") == 1);
    CHECK(launches_named(p, "group_norm_nhwc_stats") == 0);
    CHECK(launches_named(p, "group_norm_nhwc_apply") == 1);
    // Statistics of another tensor are not used: the norm of a tensor with other values takes its own (with s's
    // statistics its mean and spread would be wrong by about 1 and 2x).
    auto s = y.clone();
    const auto st = add_channel_bias_residual_stats_(s, bias, r, {}, 32);
    const auto other = s * 2 + 1;
    CHECK(torch::equal(group_norm_with_stats(other, st, 32, w, b, 1e-6, true),
                       group_norm(other, 32, w, b, 1e-6, true)));
    // Not served: a misaligned residual, the switch off. The plain pass, no statistics, the same sums.
    auto flat = torch::empty({4 * 64 * 64 * 128 + 1}, o);
    const auto misaligned = flat.slice(0, 1).view({4, 64, 64, 128}).permute({0, 3, 1, 2});
    misaligned.copy_(r);
    auto s1 = y.clone();
    CHECK_FALSE(add_channel_bias_residual_stats_(s1, bias, misaligned, {}, 32).workspace.defined());
    CHECK(torch::equal(s1, want));
    set_residual_stats(false);
    auto s2 = y.clone();
    const auto none = add_channel_bias_residual_stats_(s2, bias, r, {}, 32);
    CHECK_FALSE(none.workspace.defined());
    CHECK(torch::equal(s2, want));
    CHECK(torch::equal(group_norm_with_stats(s2, none, 32, w, b, 1e-6, true), want_norm));
}

TEST_CASE("VAE in fp16: the same latents and images with the residual pass taking the norms' statistics",
          "[gpu][groupnorm][vae]") {
    LSYNC_NEED_GPU();
    torch::NoGradGuard no_grad;
    KeepResidualStats keep;
    auto vae = fp16_random_vae(84);
    torch::manual_seed(46);
    const auto opts = torch::TensorOptions().device(kStatsDevice).dtype(torch::kHalf);
    const auto image = torch::rand({2, 3, 256, 256}, opts) * 2 - 1;
    const auto z = torch::randn({2, 4, 32, 32}, opts);
    set_residual_stats(false);
    const auto latents = vae->encode(image).mean;
    const auto decoded = vae->decode(z);
    set_residual_stats(true);
    CHECK(torch::equal(vae->encode(image).mean, latents));
    CHECK(torch::equal(vae->decode(z), decoded));
    // One fused pass per pair of resnets in a block: the encoder's 4 blocks of 2, the decoder's 4 blocks of 3.
    auto p = diagnostics::profile_kernels([&] { (void)vae->encode(image); }, kStatsDevice);
    REQUIRE(p.available);
    CHECK(launches_named(p, "residual_stats") == 4);
    p = diagnostics::profile_kernels([&] { (void)vae->decode(z); }, kStatsDevice);
    CHECK(launches_named(p, "residual_stats") == 8);
}
