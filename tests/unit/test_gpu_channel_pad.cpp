// GPU checks of the convolutions with channels padded to 8 (ops/conv_channel_pad.h): the VAE's first and last
// convolutions at a render's shapes against the plain cuDNN call, and whole VAE calls with the switch on and off.
// Zero channels add nothing, so only the kernels' summation order differs: 1e-3 for one layer (fp16's rounding),
// 5e-3 for a network (the fused GroupNorm's bound, docs/performance-notes.md section 1).
#include "catch_compat.h"

#include "ops/conv.h"
#include "ops/conv_channel_pad.h"
#include "vae/autoencoder_kl.h"
#include "unit/gpu_checks.h"

#include <vector>

using namespace lsync;
using namespace lsync::ops;

namespace {

using KeepChannelPad = KeepSwitch<channel_pad_conv_enabled, set_channel_pad_conv>;

const torch::Device kCuda(torch::kCUDA, 0);

}  // namespace

TEST_CASE("channel-padded convolutions on CUDA: the plain convolution's values", "[gpu][vae][conv]") {
    LSYNC_NEED_GPU();
    torch::NoGradGuard no_grad;
    KeepChannelPad keep;
    set_channel_pad_conv(true);
    struct Case {
        int64_t in, out, size;
    };
    // The encoder's conv_in and the decoder's conv_out at 256 px (4 images), the decoder's conv_in (latents).
    for (const auto& c : std::vector<Case>{{3, 128, 256}, {128, 3, 256}, {4, 512, 32}}) {
        for (auto dt : {torch::kHalf, torch::kBFloat16}) {
            INFO(c.in << " -> " << c.out << " at " << c.size << " " << c10::toString(dt));
            torch::manual_seed(44);
            const auto opts = torch::TensorOptions().device(kCuda).dtype(dt);
            const auto x = torch::randn({4, c.in, c.size, c.size}, opts).contiguous(at::MemoryFormat::ChannelsLast);
            const auto w = torch::randn({c.out, c.in, 3, 3}, opts) / std::sqrt(9.0 * double(c.in));
            const auto bias = torch::randn({c.out}, opts);
            REQUIRE(channel_pad_serves(x, w));
            ChannelPaddedWeights padded;
            const auto got = conv2d_channel_padded(x, w, bias, 1, 1, padded);
            const auto want = conv2d(x, w, bias, 1, 1);
            REQUIRE(got.sizes() == want.sizes());
            CHECK(got.is_contiguous(at::MemoryFormat::ChannelsLast));
            const double e = rel(got.to(torch::kFloat), want.to(torch::kFloat));
            INFO("rel. difference " << e);
            CHECK(e < (dt == torch::kHalf ? 1e-3 : 8e-3));
        }
    }
    const auto x = torch::randn({1, 3, 8, 8}, torch::TensorOptions().device(kCuda).dtype(torch::kHalf))
                       .contiguous(at::MemoryFormat::ChannelsLast);
    CHECK_FALSE(channel_pad_serves(x, torch::randn({8, 8, 3, 3}, x.options())));  // channels mismatch: 8 in
    set_channel_pad_conv(false);
    CHECK_FALSE(channel_pad_serves(x, torch::randn({16, 3, 3, 3}, x.options())));
}

TEST_CASE("VAE in fp16: channel-padded first and last convolutions give the plain encode and decode",
          "[gpu][vae][conv]") {
    LSYNC_NEED_GPU();
    torch::NoGradGuard no_grad;
    KeepChannelPad keep;
    models::AutoencoderKL vae(models::VAEConfig::sd_vae_ft_mse());
    models::init_random_parameters(*vae, 82);
    vae->to(kCuda, torch::kHalf);
    use_channels_last_conv_weights(*vae);
    torch::manual_seed(45);
    const auto opts = torch::TensorOptions().device(kCuda).dtype(torch::kHalf);
    const auto z = torch::randn({2, 4, 32, 32}, opts);
    const auto image = torch::rand({2, 3, 256, 256}, opts) * 2 - 1;
    set_channel_pad_conv(false);
    const auto plain_decoded = vae->decode(z), plain_encoded = vae->encode(image).mean;
    set_channel_pad_conv(true);
    const auto decoded = vae->decode(z), encoded = vae->encode(image).mean;
    REQUIRE(torch::isfinite(decoded).all().item<bool>());
    REQUIRE(torch::isfinite(encoded).all().item<bool>());
    const double d = rel(decoded.to(torch::kFloat), plain_decoded.to(torch::kFloat));
    const double e = rel(encoded.to(torch::kFloat), plain_encoded.to(torch::kFloat));
    INFO("VAE 256, fp16: rel. difference channel-padded vs plain: decode " << d << ", encode " << e);
    CHECK(d < 5e-3);
    CHECK(e < 5e-3);
    CHECK(decoded.sizes() == plain_decoded.sizes());
}
