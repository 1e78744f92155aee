// GPU checks of the right-and-bottom zero pad (ops::pad_right_bottom, kernels/pad_right_bottom.cu): its ATen form
// bit for bit at the VAE encoder's shapes and odd ones, every element size; the kernel's route really taken (no
// ATen copy kernel) and the ATen route where the kernel does not serve; the resnet's residual pass writing into
// the padded buffer itself (ops::add_channel_bias_residual_padded); a whole VAE encode with each on and off.
#include "catch_compat.h"

#include "diagnostics/kernel_profile.h"

#include "ops/bias_add.h"
#include "ops/conv.h"
#include "ops/pad.h"
#include "vae/autoencoder_kl.h"
#include "unit/gpu_checks.h"

#include <cmath>
#include <string>
#include <vector>

using namespace lsync;
using namespace lsync::ops;

namespace {

using KeepPad = KeepSwitch<fused_pad_enabled, set_fused_pad>;
using KeepResidualPad = KeepSwitch<residual_pad_enabled, set_residual_pad>;

const torch::Device kPadDevice(torch::kCUDA, 0);

torch::Tensor channels_last_randn(const std::vector<int64_t>& shape, torch::ScalarType dt) {
    return torch::randn(shape, torch::TensorOptions().device(kPadDevice).dtype(dt))
        .contiguous(at::MemoryFormat::ChannelsLast);
}

}  // namespace

TEST_CASE("pad kernel: the ATen pad exactly, zeros on the new row and column", "[gpu][pad]") {
    LSYNC_NEED_GPU();
    torch::NoGradGuard no_grad;
    KeepPad keep;
    set_fused_pad(true);
    // The encoder's three pads (16 images at 256 px), odd sizes, one pixel, and rows enough that each block row
    // loops over many of them.
    const std::vector<std::vector<int64_t>> shapes = {{16, 128, 256, 256}, {16, 256, 128, 128}, {16, 512, 64, 64},
                                                      {3, 8, 7, 5},        {1, 16, 1, 1},       {2, 64, 70000, 1}};
    for (auto dt : {torch::kFloat, torch::kHalf, torch::kBFloat16}) {
        for (const auto& shape : shapes) {
            INFO(c10::toString(dt) << " " << c10::str(at::IntArrayRef(shape)));
            torch::manual_seed(5);
            const auto x = channels_last_randn(shape, dt);
            REQUIRE(pad_kernel_serves(x));
            // The output buffer starts as garbage: fill the allocator's cache with NaNs so a skipped element shows.
            (void)torch::full({shape[0], shape[1], shape[2] + 1, shape[3] + 1}, NAN, x.options());
            const auto got = pad_right_bottom(x);
            CHECK(got.is_contiguous(at::MemoryFormat::ChannelsLast));
            const auto want = torch::constant_pad_nd(x, {0, 1, 0, 1}, 0);
            CHECK(torch::equal(got, want));
            CHECK(torch::equal(got, pad_right_bottom_reference(x)));
        }
    }
}

TEST_CASE("pad: the kernel runs where it serves, ATen's copy elsewhere, same values", "[gpu][pad]") {
    LSYNC_NEED_GPU();
    torch::NoGradGuard no_grad;
    KeepPad keep;
    set_fused_pad(true);
    const auto x = channels_last_randn({4, 128, 64, 64}, torch::kHalf);
    (void)pad_right_bottom(x);
    auto p = diagnostics::profile_kernels([&] { (void)pad_right_bottom(x); }, kPadDevice);
    REQUIRE(p.available);
    CHECK(launches_named(p, "pad_rows") > 0);
    CHECK(p.launches == 1);  // the zeros too: no fill kernels
    // Not served: planes (NCHW), a pixel that is not whole 16-byte vectors, a misaligned start, the switch off.
    const auto planes = x.contiguous();
    const auto thin = channels_last_randn({4, 3, 64, 64}, torch::kHalf);
    auto flat = torch::randn({4 * 64 * 64 * 128 + 1}, x.options()).slice(0, 1);
    const auto misaligned = flat.view({4, 64, 64, 128}).permute({0, 3, 1, 2});
    for (const auto& t : {planes, thin, misaligned}) {
        CHECK_FALSE(pad_kernel_serves(t));
        CHECK(torch::equal(pad_right_bottom(t), torch::constant_pad_nd(t, {0, 1, 0, 1}, 0)));
    }
    set_fused_pad(false);
    CHECK_FALSE(pad_kernel_serves(x));
    p = diagnostics::profile_kernels([&] { (void)pad_right_bottom(x); }, kPadDevice);
    REQUIRE(p.available);
    CHECK(launches_named(p, "pad_rows") == 0);
}

TEST_CASE("residual pass into the padded buffer: the pad of the separate sum exactly", "[gpu][pad][bias]") {
    LSYNC_NEED_GPU();
    torch::NoGradGuard no_grad;
    KeepResidualPad keep;
    KeepSwitch<fused_bias_enabled, set_fused_bias> keep_bias;
    set_fused_bias(true);
    set_residual_pad(true);
    // The encoder's three downsampler inputs (16 images at 256 px), odd sizes (a 5-pixel row, 12 channels: the
    // scalar path in fp16), one pixel.
    const std::vector<std::vector<int64_t>> shapes = {{16, 128, 256, 256}, {16, 256, 128, 128}, {16, 512, 64, 64},
                                                      {3, 8, 7, 5},        {2, 12, 9, 4},       {1, 16, 1, 1}};
    for (auto dt : {torch::kFloat, torch::kHalf, torch::kBFloat16}) {
        for (const auto& shape : shapes) {
            for (bool with_residual_bias : {false, true}) {
                INFO(c10::toString(dt) << " " << c10::str(at::IntArrayRef(shape)) << " residual bias "
                                       << with_residual_bias);
                torch::manual_seed(6);
                const auto y = channels_last_randn(shape, dt), r = channels_last_randn(shape, dt);
                const auto o = y.options().memory_format(at::MemoryFormat::Contiguous);
                const auto bias = torch::randn({shape[1]}, o);
                const auto rbias = with_residual_bias ? torch::randn({shape[1]}, o) : torch::Tensor();
                auto y1 = y.clone(), r1 = r.clone();
                const auto want = pad_right_bottom_reference(add_channel_bias_residual_(y1, bias, r1, rbias));
                (void)torch::full({shape[0], shape[1], shape[2] + 1, shape[3] + 1}, NAN, y.options());
                auto y2 = y.clone();
                const auto got = add_channel_bias_residual_padded(y2, bias, r.clone(), rbias);
                CHECK(got.is_contiguous(at::MemoryFormat::ChannelsLast));
                CHECK(torch::equal(got, want));
            }
        }
    }
    // The route: one residual pass and the two small zero fills, no pad kernel; the same values from the scalar
    // form of that pass (a misaligned residual) and from the separate pass and pad kernel (the switch off).
    const auto y = channels_last_randn({4, 128, 64, 64}, torch::kHalf), r = channels_last_randn({4, 128, 64, 64},
                                                                                                 torch::kHalf);
    const auto bias = torch::randn({128}, torch::TensorOptions().device(kPadDevice).dtype(torch::kHalf));
    const auto run = [&](const torch::Tensor& res) {
        auto yc = y.clone();
        return add_channel_bias_residual_padded(yc, bias, res.clone(), torch::Tensor());
    };
    const auto want = run(r);
    auto p = diagnostics::profile_kernels([&] { (void)run(r); }, kPadDevice);
    REQUIRE(p.available);
    CHECK(launches_named(p, "add_channel_bias_inner") == 1);
    CHECK(launches_named(p, "pad_rows") == 0);
    auto flat = torch::empty({4 * 64 * 64 * 128 + 1}, y.options().memory_format(at::MemoryFormat::Contiguous));
    const auto misaligned = flat.slice(0, 1).view({4, 64, 64, 128}).permute({0, 3, 1, 2});
    misaligned.copy_(r);
    CHECK(torch::equal(run(misaligned), want));
    set_residual_pad(false);
    p = diagnostics::profile_kernels([&] { (void)run(r); }, kPadDevice);
    CHECK(launches_named(p, "pad_rows") == 1);
    CHECK(torch::equal(run(r), want));
}

TEST_CASE("VAE encode in fp16: the same latents with the pad kernel on and off", "[gpu][pad][vae]") {
    LSYNC_NEED_GPU();
    torch::NoGradGuard no_grad;
    KeepPad keep;
    KeepResidualPad keep_residual;
    auto vae = fp16_random_vae(82);
    torch::manual_seed(44);
    const auto opts = torch::TensorOptions().device(kPadDevice).dtype(torch::kHalf);
    const auto image = torch::rand({2, 3, 256, 256}, opts) * 2 - 1;
    set_fused_pad(false);
    set_residual_pad(false);
    const auto aten = vae->encode(image).mean;
    set_fused_pad(true);
    const auto fused = vae->encode(image).mean;
    REQUIRE(torch::isfinite(fused).all().item<bool>());
    CHECK(torch::equal(fused, aten));  // a copy either way: the convolutions see the same bytes
    set_residual_pad(true);  // the pad written by the last resnet's residual pass
    const auto in_residual = vae->encode(image).mean;
    CHECK(torch::equal(in_residual, aten));
    auto p = diagnostics::profile_kernels([&] { (void)vae->encode(image); }, kPadDevice);
    REQUIRE(p.available);
    CHECK(launches_named(p, "pad_rows") == 0);
}
