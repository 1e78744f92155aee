// GPU checks of the NHWC convolutions (ops/conv.h): conv weights laid out channels_last with NCHW activations
// give the NCHW weights' result in NCHW memory (stride 1 and 2, with and without bias, odd planes), the switch
// off takes the NCHW call, and the full UNet's loaders lay its weights out that way and agree with NCHW; the
// channels_last VAE with channels_last weights gives the NCHW weights' decode.
#include "catch_compat.h"

#include "ops/bias_add.h"
#include "ops/conv.h"
#include "ops/memory_layout.h"
#include "unet/unet_layers.h"
#include "vae/autoencoder_kl.h"
#include "unit/gpu_checks.h"

#include <vector>

using namespace lsync;
using namespace lsync::ops;

namespace {

using KeepNhwcConv = KeepSwitch<nhwc_conv_enabled, set_nhwc_conv>;

}  // namespace

TEST_CASE("NHWC conv: channels_last weights with NCHW activations give the NCHW call's values", "[gpu][conv]") {
    LSYNC_NEED_GPU();
    torch::NoGradGuard no_grad;
    KeepNhwcConv keep;
    set_nhwc_conv(true);
    struct Case { int64_t n, c, k, h, w, stride, padding; bool bias; };
    const std::vector<Case> cases = {{32, 320, 320, 32, 32, 1, 1, true}, {32, 640, 1280, 8, 8, 1, 1, false},
                                     {4, 64, 128, 9, 7, 2, 0, true}, {2, 16, 8, 5, 5, 1, 1, true}};
    for (auto dt : {torch::kHalf, torch::kBFloat16}) {
        for (const auto& c : cases) {
            INFO(c10::toString(dt) << " " << c.n << "x" << c.c << "x" << c.h << "x" << c.w << " -> " << c.k
                                   << " stride " << c.stride << " padding " << c.padding);
            torch::manual_seed(14);
            const auto opts = torch::TensorOptions().device(torch::kCUDA, 0).dtype(dt);
            const auto x = torch::randn({c.n, c.c, c.h, c.w}, opts);
            const auto w = torch::randn({c.k, c.c, 3, 3}, opts) / std::sqrt(9.0 * c.c);
            const auto b = c.bias ? torch::randn({c.k}, opts) : torch::Tensor();
            REQUIRE(nhwc_conv_weight_eligible(w));
            const auto w_cl = w.contiguous(at::MemoryFormat::ChannelsLast);
            REQUIRE(is_channels_last_only(w_cl));
            CHECK(nhwc_conv_serves(x, w_cl));
            const auto got = conv2d(x, w_cl, b, c.stride, c.padding);
            CHECK(got.is_contiguous());
            const auto want = torch::conv2d(x.to(torch::kFloat), w.to(torch::kFloat),
                                            c.bias ? b.to(torch::kFloat) : torch::Tensor(), {c.stride, c.stride},
                                            {c.padding, c.padding});
            REQUIRE(got.sizes() == want.sizes());
            const double e = rel(got, want);
            INFO("rel. error vs fp32 " << e);
            // fp16/bf16 inputs and output rounding, fp32 accumulation: what cuDNN's own NCHW call gives.
            const double own = rel(torch::conv2d(x, w, b, {c.stride, c.stride}, {c.padding, c.padding}), want);
            CHECK(e <= 2 * own + 1e-4);
        }
    }
    // A resnet's conv1: bias + time embedding per batch entry's frames, added on the way back to NCHW; the same
    // table added after the NCHW call (one rounding of conv output + table either way).
    {
        const auto opts = torch::TensorOptions().device(torch::kCUDA, 0).dtype(torch::kHalf);
        const auto x = torch::randn({2 * 16, 320, 32, 32}, opts), w = torch::randn({320, 320, 3, 3}, opts) / 54;
        const auto table = torch::randn({2, 320}, opts);
        const auto w_cl = w.contiguous(at::MemoryFormat::ChannelsLast);
        REQUIRE(nhwc_conv_serves(x, w_cl));
        const auto got = conv2d_sample_bias(x, w_cl, table, 16, 1, 1);
        auto want = conv2d(x, w_cl, {}, 1, 1);
        CHECK(torch::equal(got, add_sample_bias_(want, table, 16)));
        // Against the NCHW weight's call (cuDNN may pick another algorithm: fp16-level agreement).
        auto nchw = torch::conv2d(x, w, {}, {1, 1}, {1, 1});
        CHECK(rel(got, add_sample_bias_(nchw, table, 16)) < 2e-3);
        // LSYNC_FUSED_BIAS=0 sends the add to ATen after the transpose: the same values (one rounding either way).
        KeepSwitch<fused_bias_enabled, set_fused_bias> keep_bias;
        set_fused_bias(false);
        CHECK(torch::equal(conv2d_sample_bias(x, w_cl, table, 16, 1, 1), got));
        const auto b = torch::randn({320}, opts);
        const auto aten_bias = conv2d(x, w_cl, b, 1, 1);
        set_fused_bias(true);
        CHECK(torch::equal(conv2d(x, w_cl, b, 1, 1), aten_bias));
    }
    // The switch off: the NCHW call exactly (the weight made NCHW first).
    set_nhwc_conv(false);
    const auto opts = torch::TensorOptions().device(torch::kCUDA, 0).dtype(torch::kHalf);
    const auto x = torch::randn({8, 64, 16, 16}, opts), w = torch::randn({64, 64, 3, 3}, opts) / 24;
    const auto off = conv2d(x, w.contiguous(at::MemoryFormat::ChannelsLast), {}, 1, 1);
    CHECK(off.is_contiguous());
    CHECK(torch::equal(off, torch::conv2d(x, w, {}, {1, 1}, {1, 1})));
}

TEST_CASE("NHWC conv: the UNet's loaders lay out its 3x3 weights channels_last and the output agrees with NCHW",
          "[gpu][conv][unet]") {
    LSYNC_NEED_GPU();
    torch::NoGradGuard no_grad;
    KeepNhwcConv keep;
    set_nhwc_conv(true);
    auto call = full_unet_256_call();
    int converted = 0, nchw_3x3 = 0;
    for (const auto& p : call.unet->named_parameters(true)) {
        const auto& t = p.value();
        if (t.dim() != 4 || t.size(2) == 1) continue;
        (is_channels_last_only(t) ? converted : nchw_3x3) += 1;
    }
    INFO(converted << " channels_last 3x3 weights, " << nchw_3x3 << " NCHW (conv_in: 13 input channels, conv_out: 4 outputs)");
    CHECK(converted > 40);
    CHECK(nchw_3x3 == 2);
    const auto nhwc = call.run();
    set_nhwc_conv(false);  // the same weights through NCHW calls
    const auto nchw = call.run();
    REQUIRE(torch::isfinite(nhwc).all().item<bool>());
    const double e = rel(nhwc, nchw);
    INFO("UNet 256, 16 frames: rel. difference NHWC vs NCHW convolutions " << e);
    CHECK(e < 5e-3);
    CHECK(e > 0);  // the NHWC route really ran (2.0e-3 on an H200)
}

TEST_CASE("NHWC conv: the channels_last VAE with channels_last weights decodes and encodes as with NCHW weights",
          "[gpu][conv][vae]") {
    LSYNC_NEED_GPU();
    torch::NoGradGuard no_grad;
    KeepNhwcConv keep;
    set_nhwc_conv(true);
    const torch::Device dev(torch::kCUDA, 0);
    models::AutoencoderKL vae(models::VAEConfig::sd_vae_ft_mse());
    models::init_random_parameters(*vae, 78);
    vae->to(dev, torch::kHalf);
    torch::manual_seed(15);
    const auto opts = torch::TensorOptions().device(dev).dtype(torch::kHalf);
    const auto z = torch::randn({2, 4, 32, 32}, opts);
    const auto image = torch::rand({2, 3, 256, 256}, opts) * 2 - 1;
    const auto ref_decoded = vae->decode(z).to(torch::kFloat), ref_encoded = vae->encode(image).mean.to(torch::kFloat);
    use_channels_last_conv_weights(*vae);
    int converted = 0;
    for (const auto& p : vae->parameters(true)) converted += is_channels_last_only(p) ? 1 : 0;
    CHECK(converted > 20);
    const double d = rel(vae->decode(z).to(torch::kFloat), ref_decoded), e = rel(vae->encode(image).mean.to(torch::kFloat), ref_encoded);
    INFO("VAE 256, fp16: rel. difference channels_last vs NCHW weights: decode " << d << ", encode " << e);
    CHECK(d < 5e-3);
    CHECK(e < 5e-3);
}
