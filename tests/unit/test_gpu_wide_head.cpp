// GPU checks of flash attention's route for heads wider than any fused kernel holds (the VAE's mid-block
// attention, one head of 512 channels; ops::wide_head_gemms_enabled): two GEMMs around a softmax of fp32 logits
// instead of ATen's memory-efficient kernel, as accurate against fp32 (with sharp attention too), the route really
// taken, our softmax kernel against ATen's, and whole VAE calls that agree with the fused kernel's.
#include "catch_compat.h"

#include "ops/attention.h"
#include "ops/conv.h"
#include "ops/softmax.h"
#include "vae/autoencoder_kl.h"
#include "unit/gpu_checks.h"

#include <limits>
#include <tuple>

using namespace lsync;
using namespace lsync::ops;

namespace {
using KeepWideHead = KeepSwitch<wide_head_gemms_enabled, set_wide_head_gemms>;
}  // namespace

TEST_CASE("wide heads: flash's GEMM route is as accurate as the fused kernel and is the one taken",
          "[gpu][attention][vae]") {
    LSYNC_NEED_GPU();
    if (!LSYNC_HAS_GEMM_FP32_OUT) LSYNC_SKIP("the GEMM route needs LibTorch >= 2.8");
    torch::NoGradGuard no_grad;
    KeepWideHead keep;
    const torch::Device dev(torch::kCUDA, 0);
    torch::manual_seed(41);
    // The VAE's mid block at 256 px (16 images, 1,024 tokens), at 512 px (4,096 tokens: 2^28 logits, two query
    // slices of at most 2^27) and an odd one; the tokens as the VAE makes them.
    for (const auto& [b, l, slices] :
         std::vector<std::tuple<int64_t, int64_t, int>>{{16, 1024, 1}, {16, 4096, 2}, {3, 77, 1}}) {
        const auto opts = torch::TensorOptions().device(dev);
        const auto q = torch::randn({b, 1, l, 512}, opts), k = torch::randn({b, 1, l, 512}, opts),
                   v = torch::randn({b, 1, l, 512}, opts);
        const auto ref = standard_attention({q, k, v, std::nullopt});  // fp32
        for (auto dt : {torch::kHalf, torch::kBFloat16}) {
            INFO(b << " x " << l << " tokens, " << c10::toString(dt));
            const AttentionInputs in{q.to(dt), k.to(dt), v.to(dt), std::nullopt};
            set_wide_head_gemms(false);
            const auto fused = flash_attention(in);
            set_wide_head_gemms(true);
            const auto gemms = flash_attention(in);
            REQUIRE(gemms.sizes() == fused.sizes());
            CHECK(gemms.scalar_type() == dt);
            const double e_gemms = rel(gemms, ref), e_fused = rel(fused, ref);
            INFO("rel. error vs fp32: GEMMs " << e_gemms << ", fused kernel " << e_fused);
            CHECK(e_gemms <= 2 * e_fused + 1e-4);
            const auto p = diagnostics::profile_kernels([&] { (void)flash_attention(in); }, dev);
            REQUIRE(p.available);
            CHECK(launches_named(p, "fmha") == 0);
            CHECK(launches_named(p, "softmax_rows") == slices);  // ours: no fp32 probabilities, no cast pass
        }
    }
    // Heads of 256 channels or fewer keep the fused kernel.
    set_wide_head_gemms(true);
    const auto o = torch::TensorOptions().device(dev).dtype(torch::kHalf);
    const auto q = torch::randn({2, 8, 256, 64}, o);
    const auto p = diagnostics::profile_kernels([&] { (void)flash_attention({q, q, q, std::nullopt}); }, dev);
    REQUIRE(p.available);
    CHECK(launches_named(p, "softmax") == 0);
}

TEST_CASE("wide heads: the GEMM route with large, peaked logits", "[gpu][attention][vae][logits]") {
    LSYNC_NEED_GPU();
    if (!LSYNC_HAS_GEMM_FP32_OUT) LSYNC_SKIP("the GEMM route needs LibTorch >= 2.8");
    torch::NoGradGuard no_grad;
    KeepWideHead keep;
    const torch::Device dev(torch::kCUDA, 0);
    torch::manual_seed(43);
    // The fused kernel keeps the logits in fp32 (as the official diffusers VAE's SDPA does), and so does the GEMM
    // route; rounding them to q's dtype before the softmax (as it once did) shows here, with logits of standard
    // deviation 6 and 16 (peaks of about 20 and 50), as a real model's sharp attention would show it.
    for (double sigma : {2.5, 4.0}) {
        const auto opts = torch::TensorOptions().device(dev);
        const auto q = torch::randn({4, 1, 1024, 512}, opts) * sigma, k = torch::randn({4, 1, 1024, 512}, opts) * sigma,
                   v = torch::randn({4, 1, 1024, 512}, opts);
        for (auto dt : {torch::kHalf, torch::kBFloat16}) {
            const AttentionInputs in{q.to(dt), k.to(dt), v.to(dt), std::nullopt};
            const AttentionInputs in32{in.q.to(torch::kFloat), in.k.to(torch::kFloat), in.v.to(torch::kFloat),
                                       std::nullopt};
            const auto ref = standard_attention(in32);  // fp32 throughout, from the same rounded inputs
            set_wide_head_gemms(false);
            const double e_fused = rel(flash_attention(in), ref);
            set_wide_head_gemms(true);
            const double e_gemms = rel(flash_attention(in), ref);
            INFO("logit sigma " << sigma * sigma << ", " << c10::toString(dt) << ": rel. error vs fp32: GEMMs "
                                << e_gemms << ", fused kernel " << e_fused);
            // With the logits rounded to fp16 this was 10x the fused kernel's error, in bf16 2 % (2.0e-3 / 2.4e-3
            // against 2.1e-4 / 1.9e-4, and 1.6e-2 / 1.9e-2 against 1.7e-3 / 1.5e-3, 2026-12-04).
            CHECK(e_gemms <= 2 * e_fused + 1e-4);
        }
    }
}

TEST_CASE("softmax of fp32 rows into fp16/bf16: ATen's softmax rounded once", "[gpu][attention]") {
    LSYNC_NEED_GPU();
    torch::NoGradGuard no_grad;
    const torch::Device dev(torch::kCUDA, 0);
    torch::manual_seed(47);
    // Rows of the VAE's sizes (1,024 and 4,096 keys), fewer vectors than threads (400), odd lengths (the scalar
    // path), one element, large and negative logits, and -inf entries (masked keys add nothing); each also from
    // a buffer one float off 16-byte alignment (the scalar path at any length).
    for (const auto& [rows, cols, sigma, offset] : std::vector<std::tuple<int64_t, int64_t, double, int64_t>>{
             {64, 1024, 1.0, 0}, {8, 4096, 30.0, 0}, {7, 400, 3.0, 0}, {33, 77, 5.0, 0}, {5, 1, 1.0, 0},
             {3, 4099, 100.0, 0}, {7, 400, 3.0, 1}, {2, 4096, 10.0, 1}}) {
        const auto buffer = torch::randn({rows * cols + offset}, torch::TensorOptions().device(dev));
        const auto x = buffer.slice(0, offset).view({rows, cols});  // contiguous, its data `offset` floats in
        x.mul_(sigma).sub_(40);
        if (cols > 8) x.select(1, 3).fill_(-std::numeric_limits<float>::infinity());
        const auto want = torch::softmax(x, -1);
        for (auto dt : {torch::kHalf, torch::kBFloat16}) {
            INFO(rows << " x " << cols << ", sigma " << sigma << ", offset " << offset << ", " << c10::toString(dt));
            const auto got = softmax_last_to(x, dt);
            REQUIRE(got.scalar_type() == dt);
            REQUIRE(torch::isfinite(got).all().item<bool>());
            // Within one rounding of the fp32 value (relative 2^-11 / 2^-8, plus the exponentials' last bits).
            const double ulp = dt == torch::kHalf ? 1.0 / 2048 : 1.0 / 256;
            const auto err = (got.to(torch::kFloat) - want).abs() - want * (ulp * 1.01) - 1e-7;
            CHECK(err.max().item<double>() <= 0);
            const auto p = diagnostics::profile_kernels([&] { (void)softmax_last_to(x, dt); }, dev);
            REQUIRE(p.available);
            CHECK(launches_named(p, "softmax_rows") == 1);
        }
    }
}

TEST_CASE("wide heads: a VAE encode and decode in fp16 agree with the fused kernel's", "[gpu][attention][vae]") {
    LSYNC_NEED_GPU();
    torch::NoGradGuard no_grad;
    KeepWideHead keep;
    const torch::Device dev(torch::kCUDA, 0);
    auto vae = fp16_random_vae(83);
    vae->set_attention(std::make_shared<AttentionContext>(
        std::make_shared<AttentionDispatcher>(AttentionBackend::Flash, true, dev, torch::kHalf)));
    torch::manual_seed(45);
    const auto image = torch::rand({2, 3, 256, 256}, torch::TensorOptions().device(dev).dtype(torch::kHalf)) * 2 - 1;
    set_wide_head_gemms(false);
    const auto z_fused = vae->encode(image).mean;
    const auto x_fused = vae->decode(z_fused);
    set_wide_head_gemms(true);
    const auto z = vae->encode(image).mean;
    const auto x = vae->decode(z_fused);
    REQUIRE(torch::isfinite(z).all().item<bool>());
    REQUIRE(torch::isfinite(x).all().item<bool>());
    const double ez = rel(z.to(torch::kFloat), z_fused.to(torch::kFloat));
    const double ex = rel(x.to(torch::kFloat), x_fused.to(torch::kFloat));
    INFO("rel. difference: latents " << ez << ", decoded images " << ex);
    // Two fp16 attentions that round differently, carried through the rest of a random-weight network: the size
    // of flash against standard on the full UNet (docs/performance-notes.md section 1).
    CHECK(ez < 5e-3);
    CHECK(ex < 5e-3);
}
