// GPU checks of the few-input-channel convolution as a GEMM over its patches (ops/im2col_conv.h,
// kernels/im2col_3x3.cu): the patch matrix equals its ATen construction bit for bit (both memory orders of the
// input, odd sizes, fp16 and bf16); the convolution agrees with cuDNN's within fp16 rounding (bit for bit on an H200) and its route really
// runs (no cuDNN kernel); the shapes it does not take go to cuDNN; a whole VAE encode with it on and off.
#include "catch_compat.h"

#include "diagnostics/kernel_profile.h"

#include "ops/conv.h"
#include "ops/im2col_conv.h"
#include "vae/autoencoder_kl.h"
#include "unit/gpu_checks.h"

#include <cmath>
#include <vector>

using namespace lsync;
using namespace lsync::ops;

namespace {

using KeepIm2col = KeepSwitch<im2col_conv_enabled, set_im2col_conv>;

const torch::Device kIm2colDevice(torch::kCUDA, 0);

// The patches built from ATen ops: the padded input's nine shifted windows, taps outer and channels inner.
torch::Tensor patches_reference(const torch::Tensor& x, int64_t k_padded) {
    const int64_t n = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3);
    const auto xp = torch::constant_pad_nd(x, {1, 1, 1, 1}, 0);
    std::vector<torch::Tensor> taps;
    for (int64_t kh = 0; kh < 3; ++kh)
        for (int64_t kw = 0; kw < 3; ++kw) taps.push_back(xp.narrow(2, kh, h).narrow(3, kw, w));
    const auto stacked = torch::stack(taps, 1);  // [N, 9, C, H, W]
    const auto rows = stacked.permute({0, 3, 4, 1, 2}).reshape({n * h * w, 9 * c});
    return torch::constant_pad_nd(rows, {0, k_padded - 9 * c}, 0);
}

}  // namespace

TEST_CASE("im2col: the patch matrix of ATen's windows exactly (fp16, bf16, both memory orders, odd sizes)",
          "[gpu][conv][im2col]") {
    LSYNC_NEED_GPU();
    torch::NoGradGuard no_grad;
    struct Shape {
        int64_t n, c, h, w, k_padded;
    };
    // The VAE's conv_in at 256 px (27 taps in 32 columns), odd planes, one pixel, 7 channels (63 of 64 columns),
    // and extra zero columns.
    for (const Shape s : {Shape{16, 3, 256, 256, 32}, Shape{2, 3, 33, 17, 32}, Shape{3, 1, 1, 1, 16},
                          Shape{2, 7, 5, 9, 64}, Shape{1, 4, 6, 3, 48}}) {
        for (auto dt : {torch::kHalf, torch::kBFloat16}) {
            for (bool channels_last : {true, false}) {
                INFO(c10::toString(dt) << " " << s.n << "x" << s.c << "x" << s.h << "x" << s.w << " k " << s.k_padded
                                       << (channels_last ? " channels_last" : " NCHW"));
                torch::manual_seed(9);
                auto x = torch::randn({s.n, s.c, s.h, s.w}, torch::TensorOptions().device(kIm2colDevice).dtype(dt));
                if (channels_last) x = x.contiguous(at::MemoryFormat::ChannelsLast);
                // Garbage in the allocator's cache, so an element the kernel skipped shows.
                (void)torch::full({s.n * s.h * s.w, s.k_padded}, NAN, x.options());
                const auto got = im2col_3x3(x, s.k_padded);
                REQUIRE(got.sizes() == torch::IntArrayRef({s.n * s.h * s.w, s.k_padded}));
                CHECK(torch::equal(got, patches_reference(x, s.k_padded)));
            }
        }
    }
}

TEST_CASE("im2col conv: cuDNN's values within rounding, the route taken where it serves", "[gpu][conv][im2col]") {
    LSYNC_NEED_GPU();
    torch::NoGradGuard no_grad;
    KeepIm2col keep;
    set_im2col_conv(true);
    struct Case {
        int64_t n, c, k, h, w;
    };
    for (const Case s :
         {Case{16, 3, 128, 64, 64}, Case{2, 3, 128, 33, 17}, Case{3, 5, 16, 7, 9}, Case{1, 2, 8, 2, 3}}) {
        for (auto dt : {torch::kHalf, torch::kBFloat16}) {
            INFO(c10::toString(dt) << " " << s.n << "x" << s.c << "x" << s.h << "x" << s.w << " -> " << s.k);
            torch::manual_seed(10);
            const auto opts = torch::TensorOptions().device(kIm2colDevice).dtype(dt);
            const auto x = torch::randn({s.n, s.c, s.h, s.w}, opts).contiguous(at::MemoryFormat::ChannelsLast);
            const auto weight = torch::randn({s.k, s.c, 3, 3}, opts) / std::sqrt(9.0 * double(s.c));
            const auto bias = torch::randn({s.k}, opts);
            REQUIRE(im2col_conv_serves(x, weight, 1, 1));
            const auto ours = conv2d(x, weight, bias, 1, 1);
            const auto ref = torch::conv2d(x.to(torch::kFloat), weight.to(torch::kFloat), bias.to(torch::kFloat),
                                           {1, 1}, {1, 1});
            REQUIRE(ours.sizes() == ref.sizes());
            CHECK(ours.is_contiguous(at::MemoryFormat::ChannelsLast));
            // fp32 sums, one rounding to the output type (and the bias add's): about one unit in the last place.
            const double tol = dt == torch::kHalf ? 2e-3 : 1.6e-2;
            const auto err = (ours.to(torch::kFloat) - ref).abs();
            INFO("max |ours - fp32| " << err.max().item<double>());
            CHECK((err - tol * ref.abs()).max().item<double>() <= tol);
        }
    }
    // The route runs: the patch kernel and a GEMM, no cuDNN convolution.
    const auto opts = torch::TensorOptions().device(kIm2colDevice).dtype(torch::kHalf);
    const auto x = torch::randn({4, 3, 64, 64}, opts).contiguous(at::MemoryFormat::ChannelsLast);
    const auto weight = torch::randn({128, 3, 3, 3}, opts);
    (void)conv2d(x, weight, torch::Tensor(), 1, 1);
    auto p = diagnostics::profile_kernels([&] { (void)conv2d(x, weight, torch::Tensor(), 1, 1); }, kIm2colDevice);
    REQUIRE(p.available);
    CHECK(launches_named(p, "im2col_rows") == 1);
    CHECK(launches_named(p, "implicit_gemm") == 0);
    // Not taken: NCHW input, stride 2, 8 input channels, 12 output channels, fp32, the switch off.
    const auto planes = torch::randn({2, 3, 16, 16}, opts);
    const auto wide = torch::randn({2, 8, 16, 16}, opts).contiguous(at::MemoryFormat::ChannelsLast);
    const auto x32 = x.to(torch::kFloat);
    CHECK_FALSE(im2col_conv_serves(planes, weight, 1, 1));
    CHECK_FALSE(im2col_conv_serves(x, weight, 2, 1));
    CHECK_FALSE(im2col_conv_serves(wide, torch::randn({128, 8, 3, 3}, opts), 1, 1));
    CHECK_FALSE(im2col_conv_serves(x, torch::randn({12, 3, 3, 3}, opts), 1, 1));
    CHECK_FALSE(im2col_conv_serves(x32, weight.to(torch::kFloat), 1, 1));
    set_im2col_conv(false);
    CHECK_FALSE(im2col_conv_serves(x, weight, 1, 1));
    p = diagnostics::profile_kernels([&] { (void)conv2d(x, weight, torch::Tensor(), 1, 1); }, kIm2colDevice);
    REQUIRE(p.available);
    CHECK(launches_named(p, "im2col_rows") == 0);
}

TEST_CASE("VAE encode in fp16: the im2col conv_in gives cuDNN's latents within rounding", "[gpu][conv][im2col][vae]") {
    LSYNC_NEED_GPU();
    torch::NoGradGuard no_grad;
    KeepIm2col keep;
    auto vae = fp16_random_vae(83);
    torch::manual_seed(45);
    const auto opts = torch::TensorOptions().device(kIm2colDevice).dtype(torch::kHalf);
    const auto image = torch::rand({2, 3, 256, 256}, opts) * 2 - 1;
    set_im2col_conv(false);
    const auto cudnn = vae->encode(image).mean.to(torch::kFloat);
    set_im2col_conv(true);
    auto p = diagnostics::profile_kernels([&] { (void)vae->encode(image); }, kIm2colDevice);
    REQUIRE(p.available);
    CHECK(launches_named(p, "im2col_rows") == 1);
    const auto ours = vae->encode(image).mean.to(torch::kFloat);
    REQUIRE(torch::isfinite(ours).all().item<bool>());
    // H200 (2026-12-04): the same latents bit for bit, as cuDNN's NHWC kernel sums the taps in the patches' order
    // (k, r, s, c); the bound allows another summation order elsewhere.
    CHECK(rel(ours, cudnn) < 5e-3);
}
