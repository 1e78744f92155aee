// GPU checks of flash attention's route for heads wider than any fused kernel holds (the VAE's mid-block
// attention, one head of 512 channels; ops::wide_head_gemms_enabled): standard attention's half-precision GEMMs
// instead of ATen's memory-efficient kernel, as accurate against fp32, the route really taken, and whole VAE calls
// that agree with the fused kernel's.
#include "catch_compat.h"

#include "ops/attention.h"
#include "ops/conv.h"
#include "vae/autoencoder_kl.h"
#include "unit/gpu_checks.h"

using namespace lsync;
using namespace lsync::ops;

namespace {
using KeepWideHead = KeepSwitch<wide_head_gemms_enabled, set_wide_head_gemms>;
}  // namespace

TEST_CASE("wide heads: flash's GEMM route is as accurate as the fused kernel and is the one taken",
          "[gpu][attention][vae]") {
    LSYNC_NEED_GPU();
    torch::NoGradGuard no_grad;
    KeepWideHead keep;
    const torch::Device dev(torch::kCUDA, 0);
    torch::manual_seed(41);
    // The VAE's mid block at 256 px (16 images, 1,024 tokens) and an odd one; the tokens as the VAE makes them.
    for (const auto& [b, l] : std::vector<std::pair<int64_t, int64_t>>{{16, 1024}, {3, 77}}) {
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
            CHECK(e_gemms <= 2 * e_fused + 1e-3);  // the bound standard attention's half form keeps (above)
            CHECK(torch::equal(gemms, standard_attention(in)));  // exactly standard attention's half form
            const auto p = diagnostics::profile_kernels([&] { (void)flash_attention(in); }, dev);
            REQUIRE(p.available);
            CHECK(launches_named(p, "fmha") == 0);
            CHECK(launches_named(p, "softmax") == 1);
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
