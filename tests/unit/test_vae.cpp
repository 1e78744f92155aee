// AutoencoderKL against the golden fixtures (tests/fixtures/golden/vae_tiny + vae_golden.safetensors, made by
// diffusers 0.32.2), its loader's error paths, batch slicing and tiled decoding.

#include "catch_compat.h"

#include <ATen/CPUGeneratorImpl.h>
#include "expect_error.h"
#include "golden_compare.h"
#include "test_util.h"

#include "io/safetensors.h"
#include "ops/bias_add.h"
#include "ops/group_norm.h"
#include "ops/pad.h"
#include "ops/upsample_conv.h"
#include "pipeline/graphed_vae.h"
#include "vae/autoencoder_kl.h"
#include "vae/vae_loader.h"
#include "vae/vae_tiling.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>

using namespace lsync;
using lsync::test::check_close;
using lsync::test::golden_fixture;
using lsync::test::GoldenFile;
namespace fs = std::filesystem;

namespace {

const std::string kVaeDir = golden_fixture("vae_tiny").string();

models::AutoencoderKL tiny_vae() { return models::load_vae(kVaeDir); }

}  // namespace

TEST_CASE("VAE: module parameter names equal the diffusers checkpoint keys", "[vae]") {
    auto cfg = models::VAEConfig::from_file(kVaeDir + "/config.json");
    CHECK(cfg.block_out_channels == std::vector<int64_t>{16, 32, 32, 32});
    CHECK(cfg.layers_per_block == 1);
    CHECK(cfg.norm_num_groups == 8);
    CHECK(cfg.downscale() == 8);
    models::AutoencoderKL vae(cfg);
    io::SafetensorsFile file(kVaeDir + "/diffusion_pytorch_model.safetensors");
    std::set<std::string> module_keys, file_keys;
    for (const auto& p : vae->named_parameters()) module_keys.insert(p.key());
    for (const auto& t : file.tensors()) file_keys.insert(t.name);
    CHECK(module_keys == file_keys);
    CHECK(module_keys.size() == 180);

    // The real sd-vae-ft-mse layout: 248 tensors, 83,653,863 parameters (diffusers' count for that model).
    models::AutoencoderKL big(models::VAEConfig::sd_vae_ft_mse());
    int64_t count = 0;
    for (const auto& p : big->parameters()) count += p.numel();
    CHECK(big->named_parameters().size() == 248);
    CHECK(count == 83653863);
}

TEST_CASE("VAE config: to_json is a diffusers config that from_json reads back unchanged", "[vae]") {
    const auto golden = models::VAEConfig::from_file(kVaeDir + "/config.json");
    models::VAEConfig odd = models::VAEConfig::sd_vae_ft_mse();
    odd.latent_channels = 8;
    odd.mid_block_add_attention = false;
    odd.use_quant_conv = false;
    odd.scaling_factor = 0.5;
    odd.shift_factor = 0.25;
    for (const auto& c : {golden, odd}) {
        const auto j = c.to_json();
        CHECK(j.at("_class_name") == "AutoencoderKL");
        CHECK(j.at("down_block_types").size() == c.block_out_channels.size());
        const auto back = models::VAEConfig::from_json(j, "round trip");
        CHECK(back.to_json() == j);
        CHECK(back.block_out_channels == c.block_out_channels);
        CHECK(back.latent_channels == c.latent_channels);
        CHECK(back.mid_block_add_attention == c.mid_block_add_attention);
        CHECK(back.use_quant_conv == c.use_quant_conv);
        CHECK(back.scaling_factor == c.scaling_factor);
        CHECK(back.shift_factor == c.shift_factor);
    }
}

TEST_CASE("VAE: encode matches diffusers (mean, logvar, std)", "[vae][golden]") {
    auto vae = tiny_vae();
    GoldenFile g("vae_golden.safetensors");
    auto d = vae->encode(g["image"]);
    check_close("vae latent_mean", d.mean, g["latent_mean"], 1e-4, 1e-3);
    check_close("vae latent_logvar", d.logvar, g["latent_logvar"], 1e-4, 1e-3);
    check_close("vae latent_std", d.std, g["latent_std"], 1e-4, 1e-3);
}

TEST_CASE("VAE: decode matches diffusers", "[vae][golden]") {
    auto vae = tiny_vae();
    GoldenFile g("vae_golden.safetensors");
    check_close("vae decode_output", vae->decode(g["decode_input"]), g["decode_output"], 1e-4, 1e-3);
}

TEST_CASE("VAE: the channels-last switch leaves the CPU path as it was (NCHW, bit for bit)", "[vae]") {
    // Channels-last runs on CUDA only (autoencoder_kl.h); on the CPU both settings are the same computation.
    auto vae = tiny_vae();
    GoldenFile g("vae_golden.safetensors");
    const bool before = models::vae_channels_last_enabled();
    models::set_vae_channels_last(true);
    const auto dec_on = vae->decode(g["decode_input"]);
    const auto enc_on = vae->encode(g["image"]);
    models::set_vae_channels_last(false);
    const auto dec_off = vae->decode(g["decode_input"]);
    const auto enc_off = vae->encode(g["image"]);
    models::set_vae_channels_last(before);
    CHECK(dec_on.is_contiguous());
    CHECK(torch::equal(dec_on, dec_off));
    CHECK(torch::equal(enc_on.mean, enc_off.mean));
    CHECK(torch::equal(enc_on.logvar, enc_off.logvar));
    CHECK(enc_on.mean.strides() == enc_off.mean.strides());
}

TEST_CASE("VAE resnet adds on the CPU: conv1's bias before the GroupNorm, conv2's bias and the shortcut", "[vae]") {
    // The CUDA path folds these into the norm and one pass (tests/unit/test_gpu_fused_epilogues.cpp); on the CPU
    // they are the separate adds, and the VAE itself keeps ATen's conv bias there.
    torch::manual_seed(21);
    const auto y0 = torch::randn({2, 64, 6, 5}), bias = torch::randn({64}), r = torch::randn({2, 64, 6, 5});
    const auto gw = torch::randn({64}), gb = torch::randn({64});
    auto x = y0.clone();
    const auto normed = lsync::ops::bias_group_norm_(x, bias, 32, gw, gb, 1e-6, true);
    const auto biased = y0 + bias.view({1, -1, 1, 1});
    CHECK(torch::equal(normed, torch::silu(torch::group_norm(biased, 32, gw, gb, 1e-6))));
    CHECK(torch::equal(x, biased));  // the fallback adds in place into the caller's tensor, as documented
    auto y = y0.clone();
    lsync::ops::add_channel_bias_residual_(y, bias, r);
    CHECK(torch::equal(y, r + biased));
    // The downsampler's pad and the next norm's statistics, which the CUDA residual pass takes in its stride: the
    // separate ops here, and no statistics to hand on (the norm then takes its own, the same values).
    auto yp = y0.clone();
    CHECK(torch::equal(lsync::ops::add_channel_bias_residual_padded(yp, bias, r), lsync::ops::pad_right_bottom(y)));
    auto ys = y0.clone();
    const auto stats = lsync::ops::add_channel_bias_residual_stats_(ys, bias, r, {}, 32);
    CHECK_FALSE(stats.workspace.defined());
    CHECK(torch::equal(ys, y));
    CHECK(torch::equal(lsync::ops::group_norm_with_stats(ys, stats, 32, gw, gb, 1e-6, true),
                       lsync::ops::group_norm(y, 32, gw, gb, 1e-6, true)));
}

TEST_CASE("upsampler in sub-pixel form: four 2x2 convs give nearest x2 and the 3x3 conv", "[vae][upsample]") {
    // The VAE decoder's and the UNet's upsamplers take this form on CUDA (ops/upsample_conv.h); here its algebra
    // and the ATen shuffle, in fp32 on the CPU, against the two-step form, for odd sizes and both memory orders.
    torch::manual_seed(23);
    const auto w = torch::randn({8, 16, 3, 3}) / 12, bias = torch::randn({8});
    const auto sub = lsync::ops::subpixel_weight(w);
    REQUIRE(sub.sizes() == torch::IntArrayRef({32, 16, 2, 2}));
    // Parity (0, 0): rows W0 | W1 + W2, columns the same; parity (1, 1) (channels 24..31): W0 + W1 | W2.
    using torch::indexing::Slice;
    const auto tap = [](const torch::Tensor& k, int64_t r, int64_t t) { return k.index({Slice(), r, t}); };
    CHECK(torch::allclose(tap(sub[0], 0, 1), tap(w[0], 0, 1) + tap(w[0], 0, 2)));
    CHECK(torch::allclose(tap(sub[24], 1, 0), tap(w[0], 2, 0) + tap(w[0], 2, 1)));
    for (const bool channels_last : {false, true}) {
        INFO("channels_last " << channels_last);
        auto x = torch::randn({2, 16, 5, 7});
        if (channels_last) x = x.contiguous(at::MemoryFormat::ChannelsLast);
        const auto want = torch::conv2d(torch::upsample_nearest2d(x, {10, 14}), w, bias, 1, 1);
        const auto got = lsync::ops::upsample2x_conv3x3(x, w, bias, sub);
        REQUIRE(got.sizes() == want.sizes());
        CHECK(((got - want).abs().max() / want.abs().max()).item<double>() < 1e-5);
        const auto unbiased = lsync::ops::upsample2x_conv3x3(x, w, torch::Tensor(), sub);
        CHECK(((unbiased + bias.view({1, -1, 1, 1}) - want).abs().max() / want.abs().max()).item<double>() < 1e-5);
    }
    // Without a sub-pixel weight: exactly the two-step form.
    const auto x = torch::randn({1, 16, 4, 4});
    CHECK(torch::equal(lsync::ops::upsample2x_conv3x3(x, w, bias, torch::Tensor()),
                       torch::conv2d(torch::upsample_nearest2d(x, {8, 8}), w, bias, 1, 1)));
    // Not served on the CPU: the models keep the two-step form there (the golden fixtures' path).
    CHECK_FALSE(lsync::ops::subpixel_upsample_serves(x.contiguous(at::MemoryFormat::ChannelsLast)));
}

TEST_CASE("downsampler pad: zeros on the right column and bottom row, in the input's memory order", "[vae]") {
    torch::manual_seed(12);
    const auto planes = torch::randn({2, 8, 5, 7});
    const auto cl = planes.contiguous(at::MemoryFormat::ChannelsLast);
    const auto want = torch::constant_pad_nd(planes, {0, 1, 0, 1}, 0);
    CHECK_FALSE(ops::pad_kernel_serves(cl));  // the kernel is CUDA's
    const auto got_planes = ops::pad_right_bottom(planes), got_cl = ops::pad_right_bottom(cl);
    CHECK(torch::equal(got_planes, want));
    CHECK(torch::equal(got_cl, want));
    CHECK(got_planes.is_contiguous());
    CHECK(got_cl.is_contiguous(at::MemoryFormat::ChannelsLast));
    CHECK(got_cl.select(2, 5).abs().sum().item<float>() == 0.f);
    CHECK(got_cl.select(3, 7).abs().sum().item<float>() == 0.f);
}

TEST_CASE("derived weights (the upsamplers' sub-pixel taps): made once, remade when the weight changes",
          "[vae][upsample]") {
    torch::manual_seed(24);
    auto w = torch::randn({4, 8, 3, 3});
    lsync::ops::DerivedWeight cache;
    const auto get = [&](const torch::Tensor& source) { return cache.get(source, lsync::ops::subpixel_weight); };
    const auto first = get(w);
    CHECK(get(w).data_ptr() == first.data_ptr());  // not remade
    CHECK(torch::equal(first, lsync::ops::subpixel_weight(w)));
    {
        torch::NoGradGuard no_grad;
        w.mul_(2);  // written in place: the version counter moves
    }
    const auto second = get(w);
    CHECK(torch::equal(second, lsync::ops::subpixel_weight(w)));
    CHECK(torch::allclose(second, first * 2));
    const auto other = torch::randn({4, 8, 3, 3});  // another tensor
    CHECK(torch::equal(get(other), lsync::ops::subpixel_weight(other)));
    CHECK(cache.made());
    // Made ahead only where a CUDA call would use it (tests/unit/test_gpu_subpixel_upsample.cpp): not on the CPU.
    lsync::ops::DerivedWeight ahead;
    lsync::ops::prepare_subpixel_weight(w, ahead);
    CHECK_FALSE(ahead.made());
}

TEST_CASE("VAE: posterior samples come from the caller's generator", "[vae]") {
    auto vae = tiny_vae();
    GoldenFile g("vae_golden.safetensors");
    auto d = vae->encode(g["image"]);
    auto gen1 = at::detail::createCPUGenerator(1247);
    auto gen2 = at::detail::createCPUGenerator(1247);
    auto a = d.sample(gen1), b = d.sample(gen2);
    CHECK(torch::equal(a, b));
    // sample = mean + std * eps with eps the generator's next N(0, 1) draw.
    auto gen3 = at::detail::createCPUGenerator(1247);
    auto eps = torch::randn(d.mean.sizes(), gen3, d.mean.options());
    CHECK(torch::allclose(a, d.mean + d.std * eps, 0, 0));
    CHECK_FALSE(torch::equal(a, d.sample(gen1)));
}

TEST_CASE("VAE: sliced decode and encode equal the one-call results (to 1e-5)", "[vae]") {
    auto vae = tiny_vae();
    auto gen = at::detail::createCPUGenerator(7);
    auto z = torch::randn({5, 4, 8, 8}, gen);
    auto whole = vae->decode(z);
    for (int64_t slice : {1, 2, 3}) {
        INFO("slice " << slice);
        models::VAEDecodePlan plan;
        plan.batch_slice = slice;
        // Not bit-equal in general: ATen picks conv algorithms by batch size (seen on a 16-thread host).
        CHECK((models::decode_planned(*vae, z, plan) - whole).abs().max().item<double>() <= 1e-5);
    }
    auto img = torch::rand({3, 3, 64, 64}, gen) * 2 - 1;
    auto one = vae->encode(img);
    auto sliced = models::encode_sliced(*vae, img, 1);
    CHECK((sliced.mean - one.mean).abs().max().item<double>() <= 1e-5);
    CHECK((sliced.logvar - one.logvar).abs().max().item<double>() <= 1e-5);
}

TEST_CASE("VAE: short slices padded with zeros to the slice give the unpadded values", "[vae]") {
    torch::NoGradGuard no_grad;
    auto vae = tiny_vae();
    auto gen = at::detail::createCPUGenerator(11);
    const auto img = torch::rand({6, 3, 64, 64}, gen) * 2 - 1;
    const auto z = torch::randn({6, 4, 8, 8}, gen);
    const auto max_diff = [](const torch::Tensor& a, const torch::Tensor& b) {
        REQUIRE(a.sizes() == b.sizes());
        return (a - b).abs().max().item<double>();
    };
    auto counts = std::make_shared<pipeline::GraphCounts>();
    pipeline::GraphedVae padded(vae, false, 4, counts);
    padded.pad_short_slices(true);
    // 6 images in slices of 4: the second slice's 2 images are padded to 4. Not bit-equal in general (ATen picks
    // conv algorithms by batch size), as for the slices themselves (above).
    const auto want = models::encode_sliced(*vae, img, 4);
    const auto got = padded.encode(img, 4);
    CHECK(counts->padded_rows == 2);
    CHECK(max_diff(got.mean, want.mean) <= 1e-5);
    CHECK(max_diff(got.logvar, want.logvar) <= 1e-5);
    CHECK(max_diff(got.std, want.std) <= 1e-5);
    models::VAEDecodePlan plan;
    plan.batch_slice = 4;
    CHECK(max_diff(padded.decode(z, 4), models::decode_planned(*vae, z, plan)) <= 1e-5);
    CHECK(counts->padded_rows == 4);
    // A batch smaller than its slice is padded to the most images an encode has had (4), not to the slice (8); a
    // call of the whole batch (slice 0) never is.
    CHECK(max_diff(padded.encode(img.slice(0, 0, 3), 8).mean, vae->encode(img.slice(0, 0, 3)).mean) <= 1e-5);
    CHECK(counts->padded_rows == 5);
    padded.decode(z.slice(0, 0, 1), 0);
    CHECK(counts->padded_rows == 5);
    // A first call is not padded (no shape met yet); with a slice of 4096 a later short call goes to the first's 6.
    auto wide_counts = std::make_shared<pipeline::GraphCounts>();
    pipeline::GraphedVae wide(vae, false, 4, wide_counts);
    wide.pad_short_slices(true);
    wide.encode(img, 4096);
    CHECK(wide_counts->padded_rows == 0);
    CHECK(wide.encode(img.slice(0, 0, 3), 4096).mean.size(0) == 3);
    CHECK(wide_counts->padded_rows == 3);
    // Off (a GraphedVae's default until a render asks), nothing is padded.
    auto plain_counts = std::make_shared<pipeline::GraphCounts>();
    pipeline::GraphedVae plain(vae, false, 4, plain_counts);
    CHECK(max_diff(plain.encode(img, 4).mean, want.mean) == 0);
    CHECK(plain_counts->padded_rows == 0);
    // A GPU render pads unless switched off; a CPU never does (it has no first use to spare).
    const char* name = "LSYNC_VAE_PAD_SLICES";
    const char* before = std::getenv(name);
    const std::string saved = before ? before : "";
    const torch::Device gpu(torch::kCUDA, 0), cpu(torch::kCPU);
    ::unsetenv(name);
    CHECK(pipeline::vae_pad_slices_wanted(gpu));
    CHECK_FALSE(pipeline::vae_pad_slices_wanted(cpu));
    ::setenv(name, "0", 1);
    CHECK_FALSE(pipeline::vae_pad_slices_wanted(gpu));
    ::setenv(name, "1", 1);
    CHECK(pipeline::vae_pad_slices_wanted(gpu));
    CHECK_FALSE(pipeline::vae_pad_slices_wanted(cpu));
    if (before) ::setenv(name, saved.c_str(), 1); else ::unsetenv(name);
}

TEST_CASE("VAE: tiled decode is close to the whole-image decode", "[vae]") {
    auto vae = tiny_vae();
    GoldenFile g("vae_golden.safetensors");
    auto z = g["decode_input"];  // 16 x 16 latents
    auto whole = g["decode_output"];
    models::VAEDecodePlan plan;
    plan.tile = 10;
    plan.tile_overlap = 4;  // tiles at 0 and 6 on each axis
    auto tiled = models::decode_planned(*vae, z, plan);
    REQUIRE(tiled.sizes() == whole.sizes());
    // Tiles normalise and attend over their own region only, so only closeness is expected: the mean error
    // is a small fraction of the output's spread, and the far-from-seam corners agree well.
    const double mean_err = (tiled - whole).abs().mean().item<double>();
    const double spread = whole.std().item<double>();
    std::printf("[tiling] mean abs err %.3e, max abs err %.3e, output std %.3f\n", mean_err,
                (tiled - whole).abs().max().item<double>(), spread);
    CHECK(mean_err < 0.25 * spread);
    CHECK(tiled.isfinite().all().item<bool>());
    // A tile as large as the image is the plain decode.
    plan.tile = 16;
    CHECK(torch::equal(models::decode_planned(*vae, z, plan), vae->decode(z)));
}

TEST_CASE("VAE: memory plan slices batches and tiles only when one image does not fit", "[vae]") {
    const auto cfg = models::VAEConfig::sd_vae_ft_mse();
    const int64_t one = models::decode_bytes_per_image(cfg, 32, 32, torch::kHalf);
    CHECK(one > 0);
    auto plan = models::plan_decode(cfg, 16, 32, 32, torch::kHalf, 0);
    CHECK((plan.batch_slice == 0 && plan.tile == 0));
    plan = models::plan_decode(cfg, 16, 32, 32, torch::kHalf, 4 * one + one / 2);
    CHECK(plan.batch_slice == 4);
    CHECK(plan.tile == 0);
    plan = models::plan_decode(cfg, 16, 64, 64, torch::kHalf, one);
    CHECK(plan.batch_slice == 1);
    CHECK(plan.tile > 0);
    CHECK(plan.tile < 64);
    CHECK(models::decode_bytes_per_image(cfg, plan.tile, plan.tile, torch::kHalf) <= one);
}

TEST_CASE("VAE: old attention spelling (query/key/value/proj_attn) loads to the same numbers", "[vae]") {
    test::ScratchDir dir("vae_old_names");
    io::SafetensorsFile src(kVaeDir + "/diffusion_pytorch_model.safetensors");
    std::vector<std::pair<std::string, torch::Tensor>> renamed;
    for (const auto& info : src.tensors()) {
        std::string n = info.name;
        const std::vector<std::pair<std::string, std::string>> old_names = {
            {".to_q.", ".query."}, {".to_k.", ".key."}, {".to_v.", ".value."}, {".to_out.0.", ".proj_attn."}};
        for (const auto& [from, to] : old_names) {
            auto pos = n.find(from);
            if (pos != std::string::npos) n.replace(pos, from.size(), to);
        }
        renamed.emplace_back(n, src.load(info.name));
    }
    const auto file = (dir.path() / "old.safetensors").string();
    io::write_safetensors(file, renamed, {}, false);
    models::VAELoadOptions opt;
    opt.config_path = kVaeDir + "/config.json";
    auto old_vae = models::load_vae(file, opt);
    GoldenFile g("vae_golden.safetensors");
    check_close("vae decode (old names)", old_vae->decode(g["decode_input"]), g["decode_output"], 1e-4, 1e-3);
}

TEST_CASE("VAE: bad inputs give one clear error", "[vae][errors]") {
    using test::contains;
    using test::expect_error;
    test::ScratchDir dir("vae_bad");
    // A folder with weights but no config.json.
    const auto no_cfg = dir.path() / "no_config";
    fs::create_directories(no_cfg);
    fs::copy_file(kVaeDir + "/diffusion_pytorch_model.safetensors", no_cfg / "diffusion_pytorch_model.safetensors");
    auto msg = expect_error(ErrorCode::Weights, [&] { models::load_vae(no_cfg.string()); });
    CHECK(contains(msg, "config.json"));
    // A folder with a config but no weights.
    const auto no_w = dir.path() / "no_weights";
    fs::create_directories(no_w);
    fs::copy_file(kVaeDir + "/config.json", no_w / "config.json");
    msg = expect_error(ErrorCode::Weights, [&] { models::load_vae(no_w.string()); });
    CHECK(contains(msg, "diffusion_pytorch_model"));
    // Missing path.
    expect_error(ErrorCode::InputMissing, [&] { models::load_vae((dir.path() / "nope").string()); });
    // The wrong network: a UNet checkpoint given as the VAE.
    models::VAELoadOptions opt;
    opt.config_path = kVaeDir + "/config.json";
    msg = expect_error(ErrorCode::Weights,
                       [&] { models::load_vae(golden_fixture("unet_tiny_latentsync_unet.pt").string(), opt); });
    CHECK(contains(msg, "does not fit the VAE"));
    // The right file with a config of another size: shape mismatches are named.
    {
        std::ofstream(dir.path() / "wide.json") << R"({"block_out_channels": [32, 32, 32, 32], "layers_per_block": 1,
                                                      "norm_num_groups": 8})";
    }
    opt.config_path = (dir.path() / "wide.json").string();
    msg = expect_error(ErrorCode::Weights,
                       [&] { models::load_vae(kVaeDir + "/diffusion_pytorch_model.safetensors", opt); });
    CHECK(contains(msg, "with the wrong shape"));
    // Unsupported configs.
    {
        std::ofstream(dir.path() / "bad.json") << R"({"_class_name": "AutoencoderKL", "up_block_types": ["UpBlock2D"],
                                                     "block_out_channels": [64]})";
    }
    msg = expect_error(ErrorCode::Weights, [&] { models::VAEConfig::from_file((dir.path() / "bad.json").string()); });
    CHECK(contains(msg, "UpBlock2D"));
    // Wrong input shapes.
    auto vae = tiny_vae();
    expect_error(ErrorCode::Usage, [&] { vae->encode(torch::zeros({1, 4, 64, 64})); });
    expect_error(ErrorCode::Usage, [&] { vae->encode(torch::zeros({1, 3, 60, 64})); });
    expect_error(ErrorCode::Usage, [&] { vae->decode(torch::zeros({1, 3, 8, 8})); });
}
