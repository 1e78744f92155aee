// GPU checks of the broadcast bias adds (ops/bias_add.h, kernels/channel_bias.cu): the per-(sample group, channel)
// bias of the UNet resnets (conv1 bias + time embedding) and the row bias of the motion modules' position table
// give ATen's add exactly; the full UNet with them on agrees with the ATen path.
#include "catch_compat.h"

#include "ops/bias_add.h"
#include "ops/conv.h"
#include "ops/group_norm.h"
#include "unit/gpu_checks.h"

#include <vector>

using namespace lsync;
using namespace lsync::ops;

namespace {

using FusedBiasSwitch = KeepSwitch<fused_bias_enabled, set_fused_bias>;

}  // namespace

TEST_CASE("per-sample-group bias: ATen's broadcast add exactly (fp32, fp16, bf16, odd planes)", "[gpu][conv][bias]") {
    LSYNC_NEED_GPU();
    torch::NoGradGuard no_grad;
    FusedBiasSwitch keep;
    set_fused_bias(true);
    struct Case { int64_t groups, samples, c, h, w; };
    const std::vector<Case> cases = {{2, 16, 320, 32, 32}, {4, 16, 1280, 8, 8}, {3, 5, 7, 3, 5}, {1, 1, 4, 1, 1}};
    for (auto dt : {torch::kFloat, torch::kHalf, torch::kBFloat16}) {
        for (const auto& c : cases) {
            INFO(c10::toString(dt) << " groups " << c.groups << " samples " << c.samples << " C " << c.c << " plane "
                                   << c.h << "x" << c.w);
            torch::manual_seed(8);
            const auto opts = torch::TensorOptions().device(torch::kCUDA, 0).dtype(dt);
            const auto y = torch::randn({c.groups * c.samples, c.c, c.h, c.w}, opts);
            const auto bias = torch::randn({c.groups, c.c}, opts);
            const auto want = (y.view({c.groups, c.samples, c.c, c.h, c.w}) + bias.view({c.groups, 1, c.c, 1, 1}))
                                  .view(y.sizes());
            auto got = y.clone();
            add_sample_bias_(got, bias, c.samples);
            CHECK(torch::equal(got, want));
        }
    }
}

TEST_CASE("row bias: ATen's broadcast add exactly (fp32, fp16, bf16, odd widths)", "[gpu][bias]") {
    LSYNC_NEED_GPU();
    torch::NoGradGuard no_grad;
    FusedBiasSwitch keep;
    set_fused_bias(true);
    for (auto dt : {torch::kFloat, torch::kHalf, torch::kBFloat16}) {
        for (auto shape : std::vector<std::vector<int64_t>>{{4096, 16 * 320}, {100, 16 * 1280}, {7, 3, 5}, {1, 1}}) {
            INFO(c10::toString(dt) << " " << c10::IntArrayRef(shape));
            torch::manual_seed(9);
            const auto opts = torch::TensorOptions().device(torch::kCUDA, 0).dtype(dt);
            const auto y = torch::randn(shape, opts);
            const auto bias = torch::randn({1, shape.back()}, opts);  // any shape of K elements
            auto got = y.clone();
            add_row_bias_(got, bias);
            CHECK(torch::equal(got, y + bias.view({shape.back()})));
        }
    }
}

TEST_CASE("full-size UNet in fp16: the fused bias adds give the ATen path's output", "[gpu][bias][unet]") {
    LSYNC_NEED_GPU();
    torch::NoGradGuard no_grad;
    const double e = unet_switch_difference<fused_bias_enabled, set_fused_bias>();
    INFO("UNet 256, 16 frames: rel. difference fused vs ATen bias adds " << e);
    // The resnets round conv1's bias plus the time embedding once instead of twice: fp16-level differences that
    // the random network carries to the output (2.7e-3 on an H200; the fused GroupNorm's check allows 5e-3).
    CHECK(e < 5e-3);
    CHECK(e > 0);  // the fused path really ran
}

TEST_CASE("mirrored walks: the GroupNorm apply pass and the channels-inner bias passes give the same bits",
          "[gpu][groupnorm][bias]") {
    LSYNC_NEED_GPU();
    torch::NoGradGuard no_grad;
    FusedBiasSwitch keep_bias;
    KeepSwitch<fused_group_norm_enabled, set_fused_group_norm> keep_norm;
    KeepSwitch<group_norm_mirror_apply_enabled, set_group_norm_mirror_apply> keep_mirror_norm;
    KeepSwitch<bias_mirror_rows_enabled, set_bias_mirror_rows> keep_mirror_rows;
    set_fused_bias(true);
    set_fused_group_norm(true);
    struct Case { int64_t n, c, h, w; };
    // The VAE's 256 px level (the grid's chunks), an odd plane, 3 channels per group (groups straddle vectors),
    // a channel count of the scalar path, and one pixel row per chunk.
    const std::vector<Case> cases = {{16, 128, 64, 64}, {2, 256, 33, 17}, {3, 96, 7, 9}, {2, 36, 5, 5}, {1, 64, 3, 2}};
    for (auto dt : {torch::kFloat, torch::kHalf, torch::kBFloat16}) {
        for (const auto& c : cases) {
            INFO(c10::toString(dt) << " " << c.n << "x" << c.c << "x" << c.h << "x" << c.w);
            torch::manual_seed(31);
            const auto opts = torch::TensorOptions().device(torch::kCUDA, 0).dtype(dt);
            const auto x = (torch::randn({c.n, c.c, c.h, c.w}, opts) * 2 + 1).contiguous(at::MemoryFormat::ChannelsLast);
            const auto r = torch::randn_like(x), bias = torch::randn({c.c}, opts), rbias = torch::randn({c.c}, opts);
            const auto w = 1 + 0.1 * torch::randn({c.c}, opts), b = 0.1 * torch::randn({c.c}, opts);
            const int64_t groups = c.c == 36 ? 4 : 32;
            auto run = [&](bool mirror) {
                set_group_norm_mirror_apply(mirror);
                set_bias_mirror_rows(mirror);
                REQUIRE(group_norm_mirror_apply_enabled() == mirror);
                REQUIRE(bias_mirror_rows_enabled() == mirror);
                std::vector<torch::Tensor> out;
                out.push_back(group_norm_fused(x, groups, w, b, 1e-6, true));
                auto xb = x.clone();
                out.push_back(bias_group_norm_(xb, bias, groups, w, b, 1e-6, false));
                auto y = x.clone();
                out.push_back(add_channel_bias_(y, bias).clone());
                auto y2 = x.clone();
                out.push_back(add_channel_bias_residual_(y2, bias, r, rbias).clone());
                return out;
            };
            const auto plain = run(false), mirrored = run(true);
            for (size_t i = 0; i < plain.size(); ++i) {
                INFO("output " << i);
                CHECK(torch::equal(plain[i], mirrored[i]));
            }
            // Not trivially equal: the plain walk's values are those of the separate ops.
            CHECK(torch::equal(plain[3], (r + rbias.reshape({1, -1, 1, 1})) + (x + bias.reshape({1, -1, 1, 1}))));
        }
    }
}
