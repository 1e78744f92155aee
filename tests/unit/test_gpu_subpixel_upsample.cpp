// GPU checks of the upsamplers in sub-pixel form (ops/upsample_conv.h, kernels/subpixel_shuffle.cu):
//   - the shuffle kernel against its ATen form (exact: the same bias add and rounding), vector and scalar paths;
//   - the whole upsampler (one 2x2 conv and the shuffle) against nearest x2 and the 3x3 conv, at the UNet's and
//     the VAE's shapes, and the kernels it launches (no upsampled copy);
//   - the VAE decode with the switch on and off.
// fp16 bound: the summed taps are rounded once to fp16 (about 2^-11 of each weight) and cuDNN sums in another
// order, both of the size of fp16's own rounding: 2e-3 for one layer, and for whole networks the fused
// GroupNorm's 5e-3 (section 1 of docs/performance-notes.md).
#include "catch_compat.h"

#include "diagnostics/kernel_profile.h"

#include "ops/conv.h"
#include "ops/upsample.h"
#include "ops/upsample_conv.h"
#include "unet/unet_layers.h"
#include "vae/autoencoder_kl.h"
#include "unit/gpu_checks.h"

#include <cmath>
#include <string>
#include <vector>

using namespace lsync;
using namespace lsync::ops;

namespace {

using KeepSubpixel = KeepSwitch<subpixel_upsample_enabled, set_subpixel_upsample>;

const torch::Device kGpu(torch::kCUDA, 0);

}  // namespace

TEST_CASE("sub-pixel shuffle kernel: its ATen form exactly", "[gpu][upsample]") {
    LSYNC_NEED_GPU();
    torch::NoGradGuard no_grad;
    struct Shape {
        int64_t n, k, h, w;
    };
    // 320 and 16 channels: whole 16-byte vectors (fp16 and fp32); 12: single elements in fp16; 5: in both.
    const std::vector<Shape> shapes = {{2, 320, 4, 4}, {3, 16, 7, 5}, {2, 12, 3, 6}, {1, 5, 2, 2}};
    for (auto dt : {torch::kFloat, torch::kHalf, torch::kBFloat16}) {
        for (const auto& s : shapes) {
            for (const bool with_bias : {true, false}) {
                INFO(c10::toString(dt) << " " << s.n << "x" << s.k << "x" << s.h << "x" << s.w << " bias "
                                       << with_bias);
                torch::manual_seed(41);
                const auto opts = torch::TensorOptions().device(kGpu).dtype(dt);
                const auto z = torch::randn({s.n, 4 * s.k, s.h + 1, s.w + 1}, opts)
                                   .contiguous(at::MemoryFormat::ChannelsLast);
                const auto bias = with_bias ? torch::randn({s.k}, opts) : torch::Tensor();
                REQUIRE(subpixel_shuffle_kernel_serves(z, bias));
                const auto got = subpixel_shuffle(z, bias);
                CHECK(got.is_contiguous(at::MemoryFormat::ChannelsLast));
                CHECK(torch::equal(got, subpixel_shuffle_reference(z, bias)));
            }
        }
    }
    // An NCHW z is not the kernel's: the reference serves it.
    const auto opts = torch::TensorOptions().device(kGpu).dtype(torch::kHalf);
    CHECK_FALSE(subpixel_shuffle_kernel_serves(torch::randn({1, 32, 3, 3}, opts), torch::Tensor()));
}

TEST_CASE("upsampler in sub-pixel form on CUDA: nearest x2 and the 3x3 conv, without the upsampled copy",
          "[gpu][upsample]") {
    LSYNC_NEED_GPU();
    torch::NoGradGuard no_grad;
    KeepSubpixel keep;
    set_subpixel_upsample(true);
    struct Shape {
        int64_t n, c, h;
    };
    // The VAE decoder's three at 256 px (4 images), and smaller, wider ones (the UNet's upsamplers at 256 px,
    // 64 frames: the op is general, though the UNet keeps the two-step form, ops/upsample_conv.h).
    const std::vector<Shape> shapes = {{64, 1280, 4}, {64, 1280, 8}, {64, 640, 16},
                                       {4, 512, 32},  {4, 512, 64},  {4, 256, 128}};
    for (auto dt : {torch::kHalf, torch::kFloat}) {
        for (const auto& s : shapes) {
            INFO(c10::toString(dt) << " " << s.n << "x" << s.c << "x" << s.h << "x" << s.h);
            torch::manual_seed(42);
            const auto opts = torch::TensorOptions().device(kGpu).dtype(dt);
            const auto x = torch::randn({s.n, s.c, s.h, s.h}, opts).contiguous(at::MemoryFormat::ChannelsLast);
            auto w = torch::randn({s.c, s.c, 3, 3}, opts) / std::sqrt(9.0 * double(s.c));
            if (dt == torch::kHalf) w = w.contiguous(at::MemoryFormat::ChannelsLast);  // as the loaders place it
            const auto bias = torch::randn({s.c}, opts);
            REQUIRE(subpixel_upsample_serves(x));
            DerivedWeight cache;
            const auto got = upsample2x_conv3x3(x, w, bias, cache);
            const auto want = conv2d(upsample_nearest2x(x), w, bias, 1, 1);
            REQUIRE(got.sizes() == want.sizes());
            CHECK(got.is_contiguous(at::MemoryFormat::ChannelsLast));
            const double e = rel(got.to(torch::kFloat), want.to(torch::kFloat));
            INFO("rel. difference " << e);
            // fp32: cuDNN may run both convs in TF32 (ATen's default for convolutions), so fp16's bound holds.
            CHECK(e < 2e-3);
        }
    }
    // The route: one convolution and the shuffle, no upsampled copy and no separate bias add.
    const auto opts = torch::TensorOptions().device(kGpu).dtype(torch::kHalf);
    const auto x = torch::randn({4, 256, 128, 128}, opts).contiguous(at::MemoryFormat::ChannelsLast);
    const auto w = (torch::randn({256, 256, 3, 3}, opts) / 48).contiguous(at::MemoryFormat::ChannelsLast);
    const auto bias = torch::randn({256}, opts);
    DerivedWeight cache;
    (void)upsample2x_conv3x3(x, w, bias, cache);  // first use: the weight is made outside the profile
    const auto p = diagnostics::profile_kernels([&] { (void)upsample2x_conv3x3(x, w, bias, cache); }, kGpu);
    REQUIRE(p.available);
    CHECK(launches_named(p, "shuffle_vectors") > 0);
    CHECK(launches_named(p, "upsample") == 0);
    CHECK(launches_named(p, "channel_bias") == 0);
    // Switched off: the two-step route.
    set_subpixel_upsample(false);
    CHECK_FALSE(subpixel_upsample_serves(x));
    CHECK(torch::equal(upsample2x_conv3x3(x, w, bias, cache), conv2d(upsample_nearest2x(x), w, bias, 1, 1)));
}

TEST_CASE("sub-pixel weight made ahead (a model's load): on CUDA in fp16 and fp32 with the switch on, then used as is",
          "[gpu][vae][upsample]") {
    LSYNC_NEED_GPU();
    torch::NoGradGuard no_grad;
    KeepSubpixel keep;
    set_subpixel_upsample(true);
    const auto opts = torch::TensorOptions().device(kGpu).dtype(torch::kHalf);
    const auto w = (torch::randn({64, 64, 3, 3}, opts) / 24).contiguous(at::MemoryFormat::ChannelsLast);
    DerivedWeight cache;
    prepare_subpixel_weight(w, cache);
    REQUIRE(cache.made());
    const void* made = cache.get(w, subpixel_weight).data_ptr();
    const auto x = torch::randn({2, 64, 16, 16}, opts).contiguous(at::MemoryFormat::ChannelsLast);
    const auto bias = torch::randn({64}, opts);
    const auto got = upsample2x_conv3x3(x, w, bias, cache);
    CHECK(cache.get(w, subpixel_weight).data_ptr() == made);  // the call found it current
    DerivedWeight lazy;
    CHECK(torch::equal(got, upsample2x_conv3x3(x, w, bias, lazy)));
    DerivedWeight fp32;
    prepare_subpixel_weight(w.to(torch::kFloat), fp32);
    CHECK(fp32.made());
    // Where no call would use it: bf16, or the switch off.
    DerivedWeight bf16, off;
    prepare_subpixel_weight(w.to(torch::kBFloat16), bf16);
    CHECK_FALSE(bf16.made());
    set_subpixel_upsample(false);
    prepare_subpixel_weight(w, off);
    CHECK_FALSE(off.made());
}

TEST_CASE("VAE decode in fp16: the sub-pixel upsamplers give the two-step decode", "[gpu][vae][upsample]") {
    LSYNC_NEED_GPU();
    torch::NoGradGuard no_grad;
    KeepSubpixel keep;
    auto vae = fp16_random_vae(81);
    torch::manual_seed(43);
    const auto z = torch::randn({2, 4, 32, 32}, torch::TensorOptions().device(kGpu).dtype(torch::kHalf));
    set_subpixel_upsample(false);
    const auto two_step = vae->decode(z);
    set_subpixel_upsample(true);
    const auto sub = vae->decode(z);
    REQUIRE(torch::isfinite(sub).all().item<bool>());
    const double d = rel(sub.to(torch::kFloat), two_step.to(torch::kFloat));
    INFO("VAE 256 decode, fp16: rel. difference sub-pixel vs two-step upsamplers " << d);
    CHECK(d > 0);  // the route really changed (summed taps round differently)
    CHECK(d < 5e-3);
    // The weights made ahead, as a render's load does, on a twin sharing the parameters: the same bits.
    auto twin = models::AutoencoderKL(vae->config());
    models::share_parameters(*twin, *vae);
    twin->eval();
    twin->prepare_derived_weights();
    CHECK(torch::equal(twin->decode(z), sub));
}
