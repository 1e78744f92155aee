// GPU checks of the adds folded into the pass before or after them, and of the nearest x2 upsampling kernel:
//   - the transpose back from an NHWC conv with its bias and a residual (a UNet resnet's conv2 and shortcut),
//     and ops::conv2d_add on that route;
//   - the VAE resnet's conv2 bias with its shortcut in one pass (add_channel_bias_residual_) and its conv1 bias
//     folded into the GroupNorm after it (bias_group_norm_);
//   - ops::upsample_nearest2x on NCHW and channels_last tensors;
// each against the separate ATen ops it replaces (exact: the same roundings), the fused route shown to run by the
// kernels it launches (Kineto: no separate add or bias pass), and whole VAE/UNet calls with each switch on and off.
#include "catch_compat.h"

#include "diagnostics/kernel_profile.h"

#include "ops/bias_add.h"
#include "ops/conv.h"
#include "ops/group_norm.h"
#include "ops/memory_layout.h"
#include "ops/tile_transpose.h"
#include "ops/upsample.h"
#include "ops/upsample_conv.h"
#include "unet/unet_layers.h"
#include "vae/autoencoder_kl.h"
#include "vae/vae_blocks.h"
#include "unit/gpu_checks.h"

#include <functional>
#include <string>
#include <vector>

using namespace lsync;
using namespace lsync::ops;

namespace {

using KeepFusedBias = KeepSwitch<fused_bias_enabled, set_fused_bias>;
using KeepUpsample = KeepSwitch<fused_upsample_enabled, set_fused_upsample>;
using KeepSubpixel = KeepSwitch<subpixel_upsample_enabled, set_subpixel_upsample>;

const torch::Device kDev(torch::kCUDA, 0);

// A channels_last [n, c, h, w] tensor of random values; `misaligned` starts its data one element past a
// 16-byte boundary (the kernels' scalar paths).
torch::Tensor channels_last_random(int64_t n, int64_t c, int64_t h, int64_t w, bool misaligned,
                                   const torch::TensorOptions& opts) {
    const int64_t count = n * c * h * w;
    auto flat = torch::randn({count + (misaligned ? 1 : 0)}, opts).slice(0, misaligned ? 1 : 0);
    return flat.view({n, h, w, c}).permute({0, 3, 1, 2});
}

// The names of the kernels `fn` launches, from one profiled call: which route a call took.
std::vector<std::string> kernels_of(const std::function<void()>& fn) {
    fn();  // warm-up: first-call set-up stays out of the profile
    const auto p = diagnostics::profile_kernels(fn, kDev);
    REQUIRE(p.available);
    std::vector<std::string> names;
    for (const auto& k : p.kernels) names.push_back(k.name);
    return names;
}

bool any_named(const std::vector<std::string>& names, const std::string& part) {
    for (const auto& n : names)
        if (n.find(part) != std::string::npos) return true;
    return false;
}

// ATen's element-wise add: the kernel a separate residual or bias add would launch.
constexpr const char* kAtenAdd = "CUDAFunctor_add";

}  // namespace

TEST_CASE("transpose back with bias and residual: the two ATen adds exactly", "[gpu][transpose][bias]") {
    LSYNC_NEED_GPU();
    torch::NoGradGuard no_grad;
    KeepSwitch<fused_transpose_enabled, set_fused_transpose> keep;
    set_fused_transpose(true);
    const std::vector<std::vector<int64_t>> shapes = {{32, 1024, 320}, {6, 16, 1280}, {4, 200, 72}, {3, 45, 37},
                                                      {1, 33, 1},      {5, 1, 64}};
    for (auto dt : {torch::kFloat, torch::kHalf, torch::kBFloat16}) {
        for (const auto& shape : shapes) {
            INFO(c10::toString(dt) << " " << shape[0] << "x" << shape[1] << "x" << shape[2]);
            torch::manual_seed(31);
            const auto opts = torch::TensorOptions().device(kDev).dtype(dt);
            const auto x = torch::randn(shape, opts);
            const auto r = torch::randn({shape[0], shape[2], shape[1]}, opts);
            const auto bias = torch::randn({shape[2]}, opts);
            const auto got = transpose_last2_add_bias(x, bias, 0, r);
            // What the unfused code does: the biased conv output rounded, then ATen's add of the residual.
            const auto want = r + (x.transpose(1, 2) + bias.reshape({1, -1, 1}));
            CHECK(got.is_contiguous());
            CHECK(torch::equal(got, want));
            CHECK(torch::equal(got, transpose_last2_add_bias_reference(x, bias, 0, r)));
        }
    }
    // One launch of our transpose, no separate add.
    const auto opts = torch::TensorOptions().device(kDev).dtype(torch::kHalf);
    const auto x = torch::randn({32, 1024, 320}, opts), r = torch::randn({32, 320, 1024}, opts);
    const auto bias = torch::randn({320}, opts);
    const auto names = kernels_of([&] { (void)transpose_last2_add_bias(x, bias, 0, r); });
    CHECK(any_named(names, "transpose_tiles"));
    CHECK_FALSE(any_named(names, kAtenAdd));
}

TEST_CASE("conv2d_add: the NHWC route adds bias and residual on the way back, as `residual + conv2d`",
          "[gpu][conv][bias]") {
    LSYNC_NEED_GPU();
    torch::NoGradGuard no_grad;
    KeepSwitch<nhwc_conv_enabled, set_nhwc_conv> keep_nhwc;
    KeepSwitch<fused_transpose_enabled, set_fused_transpose> keep_transpose;
    KeepFusedBias keep_bias;
    set_nhwc_conv(true);
    set_fused_transpose(true);
    for (auto dt : {torch::kHalf, torch::kBFloat16}) {
        INFO(c10::toString(dt));
        torch::manual_seed(32);
        const auto opts = torch::TensorOptions().device(kDev).dtype(dt);
        const auto x = torch::randn({32, 320, 32, 32}, opts), r = torch::randn({32, 320, 32, 32}, opts);
        const auto w = (torch::randn({320, 320, 3, 3}, opts) / 54).contiguous(at::MemoryFormat::ChannelsLast);
        const auto b = torch::randn({320}, opts);
        REQUIRE(nhwc_conv_serves(x, w));
        set_fused_bias(true);
        const auto fused = conv2d_add(x, w, b, r, 1, 1);
        CHECK(fused.is_contiguous());
        CHECK_FALSE(any_named(kernels_of([&] { (void)conv2d_add(x, w, b, r, 1, 1); }), kAtenAdd));
        CHECK(torch::equal(fused, r + conv2d(x, w, b, 1, 1)));
        // LSYNC_FUSED_BIAS=0: ATen's adds after the transpose, the same values.
        set_fused_bias(false);
        CHECK(torch::equal(conv2d_add(x, w, b, r, 1, 1), fused));
        // NCHW weights (no NHWC route): exactly `residual + conv2d(...)`.
        const auto w_nchw = w.contiguous();
        CHECK(torch::equal(conv2d_add(x, w_nchw, b, r, 1, 1), r + conv2d(x, w_nchw, b, 1, 1)));
    }
    // A residual of the wrong shape is refused, not read out of bounds.
    const auto opts = torch::TensorOptions().device(kDev).dtype(torch::kHalf);
    const auto x = torch::randn({2, 16, 8, 8}, opts);
    const auto w = torch::randn({16, 16, 3, 3}, opts).contiguous(at::MemoryFormat::ChannelsLast);
    set_fused_bias(true);
    CHECK_THROWS(conv2d_add(x, w, torch::randn({16}, opts), torch::randn({2, 16, 4, 4}, opts), 1, 1));
    CHECK_THROWS(conv2d_add(x, w.contiguous(), torch::randn({16}, opts), torch::randn({2, 16, 4, 4}, opts), 1, 1));
}

TEST_CASE("VAE resnet adds: conv2 bias + shortcut in one pass, conv1 bias folded into the GroupNorm",
          "[gpu][vae][bias][groupnorm]") {
    LSYNC_NEED_GPU();
    torch::NoGradGuard no_grad;
    KeepFusedBias keep;
    KeepSwitch<fused_group_norm_enabled, set_fused_group_norm> keep_norm;
    set_fused_bias(true);
    set_fused_group_norm(true);
    struct Shape {
        int64_t n, c, h, w;
        bool misaligned;
    };
    for (const Shape s : {Shape{16, 128, 64, 64, false}, Shape{4, 512, 16, 16, false}, Shape{2, 256, 9, 7, false},
                          Shape{2, 64, 5, 6, true}, Shape{3, 24, 5, 7, false}}) {
        for (auto dt : {torch::kFloat, torch::kHalf, torch::kBFloat16}) {
            INFO(s.n << "x" << s.c << "x" << s.h << "x" << s.w << (s.misaligned ? " misaligned " : " ")
                     << c10::toString(dt));
            torch::manual_seed(33);
            const auto opts = torch::TensorOptions().device(kDev).dtype(dt);
            const auto y0 = channels_last_random(s.n, s.c, s.h, s.w, false, opts);
            const auto residual = channels_last_random(s.n, s.c, s.h, s.w, s.misaligned, opts);
            const auto bias = torch::randn({s.c}, opts);
            REQUIRE(is_channels_last_only(y0));
            // conv2's bias and the shortcut: y = residual + (y + bias), in place, channels_last kept.
            auto y = channels_last_random(s.n, s.c, s.h, s.w, s.misaligned, opts);
            y.copy_(y0);
            add_channel_bias_residual_(y, bias, residual);
            CHECK(is_channels_last_only(y));
            CHECK(torch::equal(y, residual + (y0 + bias.reshape({1, -1, 1, 1}))));
            // With the shortcut conv's bias too: (residual + its bias) + (y + bias), each sum rounded on its own;
            // the residual keeps its values.
            const auto residual_bias = torch::randn({s.c}, opts);
            const auto residual_before = residual.clone();
            y.copy_(y0);
            add_channel_bias_residual_(y, bias, residual, residual_bias);
            const auto rb = residual_bias.reshape({1, -1, 1, 1});
            CHECK(torch::equal(y, (residual + rb) + (y0 + bias.reshape({1, -1, 1, 1}))));
            CHECK(torch::equal(residual, residual_before));
            // conv1's bias read by the GroupNorm (+ SiLU) after it: the norm of the biased tensor, which is never
            // written (x keeps its values).
            const int64_t groups = s.c % 32 == 0 ? 32 : 8;
            const auto gw = torch::randn({s.c}, opts), gb = torch::randn({s.c}, opts);
            auto x = channels_last_random(s.n, s.c, s.h, s.w, s.misaligned, opts);
            x.copy_(y0);
            const auto normed = bias_group_norm_(x, bias, groups, gw, gb, 1e-6, true);
            CHECK(is_channels_last_only(normed));
            CHECK(torch::equal(x, y0));
            // The reference norm reads a tensor of x's alignment, so both take the same vector width and
            // reduction order.
            auto biased = channels_last_random(s.n, s.c, s.h, s.w, s.misaligned, opts);
            biased.copy_(y0 + bias.reshape({1, -1, 1, 1}));
            CHECK(torch::equal(normed, group_norm(biased, groups, gw, gb, 1e-6, true)));
        }
    }
    // The fused routes run as one pass each: no ATen add, no separate bias pass before the norm.
    {
        const auto opts = torch::TensorOptions().device(kDev).dtype(torch::kHalf);
        auto y = channels_last_random(4, 128, 32, 32, false, opts);
        const auto r = channels_last_random(4, 128, 32, 32, false, opts);
        const auto bias = torch::randn({128}, opts), gw = torch::randn({128}, opts), gb = torch::randn({128}, opts);
        const auto adds = kernels_of([&] { add_channel_bias_residual_(y, bias, r); });
        CHECK(any_named(adds, "add_channel_bias_inner"));
        CHECK_FALSE(any_named(adds, kAtenAdd));
        const auto norm = kernels_of([&] { (void)bias_group_norm_(y, bias, 32, gw, gb, 1e-6, true); });
        CHECK(any_named(norm, "group_norm_nhwc"));
        CHECK_FALSE(any_named(norm, "add_channel_bias"));
    }
    // The switch off: the bias lands in x first (the caller's tensor), then the same norm.
    set_fused_bias(false);
    const auto opts = torch::TensorOptions().device(kDev).dtype(torch::kHalf);
    const auto y0 = channels_last_random(2, 128, 16, 16, false, opts);
    const auto bias = torch::randn({128}, opts), gw = torch::randn({128}, opts), gb = torch::randn({128}, opts);
    auto x = y0.clone(at::MemoryFormat::ChannelsLast);
    const auto off = bias_group_norm_(x, bias, 32, gw, gb, 1e-6, true);
    CHECK(torch::equal(x, y0 + bias.reshape({1, -1, 1, 1})));
    set_fused_bias(true);
    auto x2 = y0.clone(at::MemoryFormat::ChannelsLast);
    CHECK(torch::equal(bias_group_norm_(x2, bias, 32, gw, gb, 1e-6, true), off));
}

TEST_CASE("nearest x2 upsampling: ATen's values in the input's memory order", "[gpu][upsample]") {
    LSYNC_NEED_GPU();
    torch::NoGradGuard no_grad;
    KeepUpsample keep;
    set_fused_upsample(true);
    struct Shape {
        int64_t n, c, h, w;
        bool channels_last, misaligned;
    };
    // The VAE decoder's (channels_last) and the UNet's (NCHW) shapes, odd ones for the element-wise path.
    for (const Shape s : {Shape{16, 256, 32, 32, true, false}, Shape{4, 512, 16, 16, true, false},
                          Shape{32, 640, 16, 16, false, false}, Shape{6, 1280, 4, 4, false, false},
                          Shape{2, 3, 5, 7, true, false}, Shape{2, 5, 3, 5, false, false},
                          Shape{2, 64, 5, 6, true, true}, Shape{2, 8, 4, 16, false, true}}) {
        for (auto dt : {torch::kFloat, torch::kHalf, torch::kBFloat16}) {
            INFO(s.n << "x" << s.c << "x" << s.h << "x" << s.w << (s.channels_last ? " channels_last" : " NCHW")
                     << (s.misaligned ? " misaligned " : " ") << c10::toString(dt));
            const auto opts = torch::TensorOptions().device(kDev).dtype(dt);
            torch::Tensor x;
            if (s.channels_last) {
                x = channels_last_random(s.n, s.c, s.h, s.w, s.misaligned, opts);
            } else {
                const int64_t count = s.n * s.c * s.h * s.w, skip = s.misaligned ? 1 : 0;
                x = torch::randn({count + skip}, opts).slice(0, skip).view({s.n, s.c, s.h, s.w});
            }
            REQUIRE(upsample_kernel_serves(x));
            const auto got = upsample_nearest2x(x);
            const auto want = torch::upsample_nearest2d(x.to(torch::kFloat), {2 * s.h, 2 * s.w}).to(dt);
            CHECK(torch::equal(got, want));
            CHECK((s.channels_last && s.c > 1 ? is_channels_last_only(got) : got.is_contiguous()));
        }
    }
    // Neither order (a transposed view) and the switch off: ATen's kernel.
    const auto opts = torch::TensorOptions().device(kDev).dtype(torch::kHalf);
    const auto odd = torch::randn({2, 8, 6, 4}, opts).transpose(2, 3);
    CHECK_FALSE(upsample_kernel_serves(odd));
    CHECK(torch::equal(upsample_nearest2x(odd), torch::upsample_nearest2d(odd, {8, 12})));
    set_fused_upsample(false);
    CHECK_FALSE(upsample_kernel_serves(torch::randn({2, 8, 4, 4}, opts)));
}

TEST_CASE("VAE resnet block in fp16: the folded adds give exactly the separate ops' output", "[gpu][vae][bias]") {
    LSYNC_NEED_GPU();
    torch::NoGradGuard no_grad;
    KeepFusedBias keep;
    set_fused_bias(true);
    const auto opts = torch::TensorOptions().device(kDev).dtype(torch::kHalf);
    // Without and with a 1x1 shortcut conv (the first resnet of an up block that halves the channels).
    for (const auto& [in, out] : std::vector<std::pair<int64_t, int64_t>>{{128, 128}, {256, 128}}) {
        INFO(in << " -> " << out << " channels");
        models::VAEResnetBlock block(in, out, 32);
        models::init_random_parameters(*block, 80);
        block->to(kDev, torch::kHalf);
        use_channels_last_conv_weights(*block);
        const auto p = block->named_parameters();
        torch::manual_seed(35);
        const auto x = torch::randn({4, in, 32, 32}, opts).contiguous(at::MemoryFormat::ChannelsLast);
        // The block as separate ops: conv, bias pass, norm; conv, bias pass, shortcut add.
        auto h = conv2d(group_norm(x, 32, p["norm1.weight"], p["norm1.bias"], 1e-6, true), p["conv1.weight"], {}, 1, 1);
        add_channel_bias_(h, p["conv1.bias"]);
        h = conv2d(group_norm(h, 32, p["norm2.weight"], p["norm2.bias"], 1e-6, true), p["conv2.weight"], {}, 1, 1);
        add_channel_bias_(h, p["conv2.bias"]);
        const auto shortcut = in == out ? x : conv2d(x, p["conv_shortcut.weight"], p["conv_shortcut.bias"], 1, 0);
        const auto want = shortcut + h;
        const auto got = block->forward(x);
        CHECK(is_channels_last_only(got));
        CHECK(torch::equal(got, want));
        // The input as a conv's output still without its bias (the encoder's conv_in): the block of the biased
        // input exactly. Without a shortcut conv the bias rides on norm1 and the residual pass (one channel-bias
        // launch: conv2's, with the residual), and the raw input is left as it was.
        const auto in_bias = torch::randn({in}, opts);
        const auto biased = (x + in_bias.reshape({1, -1, 1, 1})).contiguous(at::MemoryFormat::ChannelsLast);
        const auto of_biased = block->forward(biased);
        auto raw = x.clone(at::MemoryFormat::ChannelsLast);
        CHECK(torch::equal(block->forward(raw, in_bias), of_biased));
        if (in == out) {
            CHECK(torch::equal(raw, x));
            const auto p2 = diagnostics::profile_kernels([&] { (void)block->forward(raw, in_bias); }, kDev);
            REQUIRE(p2.available);
            CHECK(launches_named(p2, "add_channel_bias") == 1);
            CHECK_FALSE(any_named(kernels_of([&] { (void)block->forward(raw, in_bias); }), kAtenAdd));
        }
    }
}

TEST_CASE("VAE in fp16: the folded bias adds and the upsampling kernel give the unfused decode and encode",
          "[gpu][vae][bias][upsample]") {
    LSYNC_NEED_GPU();
    torch::NoGradGuard no_grad;
    KeepFusedBias keep_bias;
    KeepUpsample keep_up;
    KeepSubpixel keep_subpixel;
    set_subpixel_upsample(false);  // the upsampled copy is what this case compares (the sub-pixel form skips it)
    auto vae = fp16_random_vae(79);
    torch::manual_seed(34);
    const auto opts = torch::TensorOptions().device(kDev).dtype(torch::kHalf);
    const auto z = torch::randn({2, 4, 32, 32}, opts);
    const auto image = torch::rand({2, 3, 256, 256}, opts) * 2 - 1;
    set_fused_bias(false);
    set_fused_upsample(false);
    const auto ref_decoded = vae->decode(z), ref_encoded = vae->encode(image).mean;
    set_fused_bias(true);
    set_fused_upsample(true);
    const auto decoded = vae->decode(z), encoded = vae->encode(image).mean;
    REQUIRE(torch::isfinite(decoded).all().item<bool>());
    const double d = rel(decoded.to(torch::kFloat), ref_decoded.to(torch::kFloat));
    const double e = rel(encoded.to(torch::kFloat), ref_encoded.to(torch::kFloat));
    INFO("VAE 256, fp16: rel. difference fused vs unfused adds and upsampling: decode " << d << ", encode " << e);
    // Every folded add rounds as the separate one did and the upsampling copies: the same values, unless ATen
    // adds a conv's bias inside cuDNN on the unfused path (one rounding less: fp16-level differences, the bound
    // of the UNet's fused-bias check).
    CHECK(d < 5e-3);
    CHECK(e < 5e-3);
}

TEST_CASE("full-size UNet in fp16: the upsampling kernel gives ATen's output", "[gpu][unet][upsample]") {
    LSYNC_NEED_GPU();
    torch::NoGradGuard no_grad;
    const double e = unet_switch_difference<fused_upsample_enabled, set_fused_upsample>();
    INFO("UNet 256: rel. difference with and without the upsampling kernel " << e);
    // Nearest upsampling copies values: only a run-to-run difference of another op could tell the two apart.
    CHECK(e < 1e-6);
}
