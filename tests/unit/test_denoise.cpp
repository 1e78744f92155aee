// The per-chunk denoising loop (lib/diffusion/denoise_loop.h) and the latent bookkeeping around it
// (lib/diffusion/latents.h): a fake denoiser against a hand-computed loop, CFG order and skipping, DeepCache
// phases, chunk batching, cancellation; the pipeline fixture's VAE decode / composite, and its loop replayed.

#include "catch_compat.h"

#include <ATen/CPUGeneratorImpl.h>
#include "expect_error.h"
#include "golden_compare.h"
#include "pipeline_golden.h"

#include "diffusion/ddim_scheduler.h"
#include "diffusion/denoise_loop.h"
#include "diffusion/latents.h"
#include "faces/paste_back.h"

#include <cmath>
#include <vector>

using namespace lsync;
using namespace lsync::diffusion;
using lsync::test::check_close;

namespace {

// eps = 0.1 x + 0.2 mask - 0.05 masked + 0.03 ref + mean(audio of that frame) + t / 1000, per element. Every
// channel group has its own coefficient, so a wrong concat order or CFG order changes the result.
torch::Tensor fake_eps(const torch::Tensor& x, const torch::Tensor& t, const torch::Tensor& audio) {
    const auto b = x.size(0), f = x.size(2);
    auto a = audio.mean({1, 2}).reshape({b, 1, f, 1, 1});
    return 0.1 * x.slice(1, 0, 4) + 0.2 * x.slice(1, 4, 5) - 0.05 * x.slice(1, 5, 9) + 0.03 * x.slice(1, 9, 13) + a +
           t.item<double>() / 1000.0;
}

struct Chunk {
    torch::Tensor latents;
    ChunkConditioning cond;
};

Chunk random_chunk(int64_t b, int64_t f, int64_t h, int64_t w, uint64_t seed) {
    auto gen = at::detail::createCPUGenerator(seed);
    Chunk c;
    c.latents = torch::randn({b, 4, f, h, w}, gen);
    c.cond.mask = (torch::rand({b, 1, f, h, w}, gen) > 0.5).to(torch::kFloat);
    c.cond.masked_image_latents = torch::randn({b, 4, f, h, w}, gen);
    c.cond.ref_latents = torch::randn({b, 4, f, h, w}, gen);
    c.cond.audio = torch::randn({b * f, 5, 3}, gen);
    return c;
}

// The loop written out element by element in double precision, straight from the formulas.
std::vector<double> hand_loop(const Chunk& c, const DDIMScheduler& s, double g) {
    const auto lat = c.latents.contiguous();
    const int64_t F = lat.size(2), HW = lat.size(3) * lat.size(4);
    std::vector<double> x(lat.data_ptr<float>(), lat.data_ptr<float>() + lat.numel());
    auto value = [&](const torch::Tensor& t, int64_t ch, int64_t f, int64_t i) {
        return t[0][ch][f].reshape({-1})[i].item<double>();
    };
    const auto ac = s.alphas_cumprod();
    const int n = static_cast<int>(s.timesteps().size(0));
    for (int step = 0; step < n; ++step) {
        const int64_t t = s.timesteps()[step].item<int64_t>();
        const int64_t prev = t - 1000 / n;
        const double a_t = ac[t].item<double>();
        const double a_p = prev >= 0 ? ac[prev].item<double>() : ac[0].item<double>();
        for (int64_t ch = 0; ch < 4; ++ch)
            for (int64_t f = 0; f < F; ++f)
                for (int64_t i = 0; i < HW; ++i) {
                    double& v = x[(ch * F + f) * HW + i];
                    const double common = 0.1 * v + 0.2 * value(c.cond.mask, 0, f, i) -
                                          0.05 * value(c.cond.masked_image_latents, ch, f, i) +
                                          0.03 * value(c.cond.ref_latents, ch, f, i) + t / 1000.0;
                    const double eps_u = common;  // zero audio
                    const double eps_c = common + c.cond.audio[f].mean().item<double>();
                    const double eps = g > 1 ? eps_u + g * (eps_c - eps_u) : eps_c;
                    const double x0 = (v - std::sqrt(1 - a_t) * eps) / std::sqrt(a_t);
                    v = std::sqrt(a_p) * x0 + std::sqrt(1 - a_p) * eps;
                }
    }
    return x;
}

}  // namespace

TEST_CASE("denoise: fake denoiser matches the hand-computed loop (CFG on and off)", "[denoise]") {
    const auto chunk = random_chunk(1, 2, 2, 3, 11);
    DDIMScheduler s;
    s.set_timesteps(20);
    for (double g : {1.5, 1.0}) {
        INFO("guidance " << g);
        DenoiseOptions opt;
        opt.guidance_scale = g;
        int calls = 0;
        Denoiser d = [&](const torch::Tensor& x, const torch::Tensor& t, const torch::Tensor& audio, CachePhase) {
            ++calls;
            CHECK(x.size(1) == 13);
            CHECK(x.size(0) == (g > 1 ? 2 : 1));
            CHECK(audio.size(0) == x.size(0) * 2);
            CHECK(t.scalar_type() == torch::kLong);
            CHECK(t.dim() == 0);
            return fake_eps(x, t, audio);
        };
        auto out = denoise_chunk(d, s, chunk.latents, chunk.cond, opt).contiguous();
        CHECK(calls == 20);
        const auto want = hand_loop(chunk, s, g);
        double err = 0;
        for (size_t i = 0; i < want.size(); ++i) err = std::max(err, std::abs(out.data_ptr<float>()[i] - want[i]));
        std::printf("[denoise] fake loop guidance %.1f: max abs err vs hand loop %.3e\n", g, err);
        CHECK(err < 1e-4);
    }
}

TEST_CASE("denoise: silent-first CFG audio hands the denoiser the conditional rows alone", "[denoise]") {
    const auto chunk = random_chunk(2, 3, 2, 2, 17);
    DDIMScheduler s;
    s.set_timesteps(4);
    for (double g : {1.5, 1.0}) {
        INFO("guidance " << g);
        DenoiseOptions opt;
        opt.guidance_scale = g;
        opt.silent_cfg_audio = true;
        int calls = 0;
        Denoiser d = [&](const torch::Tensor& x, const torch::Tensor& t, const torch::Tensor& audio, CachePhase) {
            ++calls;
            CHECK(x.size(0) == (g > 1 ? 4 : 2));
            // With CFG or without it, the rows of the conditional chunks only: [B*F, tokens, dim].
            CHECK(audio.sizes() == chunk.cond.audio.sizes());
            CHECK(torch::equal(audio, chunk.cond.audio));
            return torch::zeros({x.size(0), 4, x.size(2), x.size(3), x.size(4)}) + t.to(torch::kFloat) / 1000;
        };
        denoise_chunk(d, s, chunk.latents, chunk.cond, opt);
        CHECK(calls == 4);
    }
}

TEST_CASE("denoise: CFG pieces (order, zero audio, guidance formula)", "[denoise]") {
    auto a = torch::arange(6, torch::kFloat).reshape({2, 3});
    auto ca = cfg_audio(a);
    CHECK(torch::equal(ca.slice(0, 0, 2), torch::zeros({2, 3})));
    CHECK(torch::equal(ca.slice(0, 2, 4), a));
    CHECK(torch::equal(duplicate_for_cfg(a), torch::cat({a, a})));
    auto eps = torch::tensor({1.0f, 3.0f});  // [uncond; cond]
    CHECK(apply_guidance(eps, 1.5).item<float>() == Approx(1 + 1.5 * 2));
    CHECK(uses_cfg(1.5));
    CHECK_FALSE(uses_cfg(1.0));
    auto x = unet_input(torch::zeros({1, 4, 2, 1, 1}), torch::ones({1, 1, 2, 1, 1}), torch::full({1, 4, 2, 1, 1}, 2.0),
                        torch::full({1, 4, 2, 1, 1}, 3.0));
    CHECK(x.size(1) == 13);
    CHECK(x[0].select(1, 0).reshape({-1}).slice(0, 0, 13).equal(
        torch::tensor({0.f, 0.f, 0.f, 0.f, 1.f, 2.f, 2.f, 2.f, 2.f, 3.f, 3.f, 3.f, 3.f})));
}

TEST_CASE("denoise: the pipeline fixture's CFG tensors are our duplication of the conditioning", "[denoise][golden]") {
    const auto& g = test::pipeline_golden();
    const auto cond = test::pipeline_golden_conditioning();
    CHECK(torch::equal(duplicate_for_cfg(cond.mask), g["mask_latents_cfg"]));
    CHECK(torch::equal(duplicate_for_cfg(cond.masked_image_latents), g["masked_image_latents_cfg"]));
    CHECK(torch::equal(duplicate_for_cfg(cond.ref_latents), g["ref_latents_cfg"]));
    CHECK(torch::equal(cfg_audio(cond.audio), g["audio_embeds_cfg"]));
    // The latent mask is the pixel mask sampled at (8i, 8j).
    CHECK(torch::equal(mask_to_latent(g["masks"]), cond.mask));
    // One noise map for all frames.
    const auto init = g["init_latents"];
    for (int64_t f = 1; f < init.size(2); ++f) CHECK(torch::equal(init.select(2, f), init.select(2, 0)));
}

TEST_CASE("denoise: DeepCache phases per step, restarting every chunk", "[denoise]") {
    const auto chunk = random_chunk(1, 2, 2, 2, 5);
    DDIMScheduler s;
    s.set_timesteps(20);
    std::vector<CachePhase> phases;
    Denoiser d = [&](const torch::Tensor& x, const torch::Tensor& t, const torch::Tensor& audio, CachePhase ph) {
        phases.push_back(ph);
        return fake_eps(x, t, audio);
    };
    DenoiseOptions opt;
    denoise_chunk(d, s, chunk.latents, chunk.cond, opt);
    denoise_chunk(d, s, chunk.latents, chunk.cond, opt);  // a second chunk
    REQUIRE(phases.size() == 40);
    for (int i = 0; i < 40; ++i) {
        INFO("call " << i);
        CHECK(phases[i] == ((i % 20) % 3 == 0 ? CachePhase::Capture : CachePhase::Reuse));
    }
    phases.clear();
    opt.deepcache.enabled = false;
    denoise_chunk(d, s, chunk.latents, chunk.cond, opt);
    for (auto ph : phases) CHECK(ph == CachePhase::Off);
}

TEST_CASE("denoise: two chunks in one batch equal two separate runs", "[denoise]") {
    const auto a = random_chunk(1, 3, 2, 2, 21), b = random_chunk(1, 3, 2, 2, 22);
    DDIMScheduler s;
    s.set_timesteps(10);
    Denoiser d = [](const torch::Tensor& x, const torch::Tensor& t, const torch::Tensor& audio, CachePhase) {
        return fake_eps(x, t, audio);
    };
    DenoiseOptions opt;
    ChunkConditioning both;
    both.mask = torch::cat({a.cond.mask, b.cond.mask});
    both.masked_image_latents = torch::cat({a.cond.masked_image_latents, b.cond.masked_image_latents});
    both.ref_latents = torch::cat({a.cond.ref_latents, b.cond.ref_latents});
    both.audio = torch::cat({a.cond.audio, b.cond.audio});
    auto batched = denoise_chunk(d, s, torch::cat({a.latents, b.latents}), both, opt);
    CHECK(torch::allclose(batched[0], denoise_chunk(d, s, a.latents, a.cond, opt)[0], 1e-6, 1e-6));
    CHECK(torch::allclose(batched[1], denoise_chunk(d, s, b.latents, b.cond, opt)[0], 1e-6, 1e-6));
}

TEST_CASE("denoise: progress callback sees every step and can cancel", "[denoise]") {
    const auto chunk = random_chunk(1, 2, 2, 2, 9);
    DDIMScheduler s;
    s.set_timesteps(20);
    int calls = 0;
    Denoiser d = [&](const torch::Tensor& x, const torch::Tensor& t, const torch::Tensor& audio, CachePhase) {
        ++calls;
        return fake_eps(x, t, audio);
    };
    std::vector<int64_t> seen;
    DenoiseOptions opt;
    opt.on_step = [&](int step, int steps, int64_t t, const torch::Tensor&) {
        CHECK(steps == 20);
        CHECK(step == static_cast<int>(seen.size()));
        seen.push_back(t);
        return step < 5;
    };
    test::expect_error(ErrorCode::Interrupted, [&] { denoise_chunk(d, s, chunk.latents, chunk.cond, opt); });
    CHECK(calls == 6);
    CHECK(seen == std::vector<int64_t>{951, 901, 851, 801, 751, 701});
}

TEST_CASE("denoise: mismatched conditioning is an internal error", "[denoise][errors]") {
    auto chunk = random_chunk(1, 2, 2, 2, 3);
    DDIMScheduler s;
    s.set_timesteps(2);
    Denoiser d = [](const torch::Tensor& x, const torch::Tensor& t, const torch::Tensor& audio, CachePhase) {
        return fake_eps(x, t, audio);
    };
    chunk.cond.ref_latents = chunk.cond.ref_latents.slice(2, 0, 1);
    auto msg = test::expect_error(ErrorCode::Internal, [&] { denoise_chunk(d, s, chunk.latents, chunk.cond, {}); });
    CHECK(test::contains(msg, "ref_latents"));
    Denoiser wrong = [](const torch::Tensor& x, const torch::Tensor&, const torch::Tensor&, CachePhase) {
        return x.slice(1, 0, 1);
    };
    chunk = random_chunk(1, 2, 2, 2, 3);
    test::expect_error(ErrorCode::Internal, [&] { denoise_chunk(wrong, s, chunk.latents, chunk.cond, {}); });
}

TEST_CASE("latents: shared initial noise, layouts and scaling", "[denoise]") {
    auto g1 = at::detail::createCPUGenerator(1247), g2 = at::detail::createCPUGenerator(1247);
    auto noise = initial_noise(4, 5, 8, 8, torch::kFloat, torch::kCPU, g1);
    CHECK(noise.sizes() == std::vector<int64_t>{1, 4, 5, 8, 8});
    auto first = torch::randn({1, 4, 1, 8, 8}, g2);
    for (int64_t f = 0; f < 5; ++f) CHECK(torch::equal(noise.slice(2, f, f + 1), first));
    auto frames = torch::randn({3, 4, 2, 2});
    auto video = frames_to_video_latents(frames);
    CHECK(video.sizes() == std::vector<int64_t>{1, 4, 3, 2, 2});
    CHECK(torch::allclose(video[0].select(1, 2), frames[2] * 0.18215));
    CHECK(torch::allclose(video_latents_to_frames(video), frames, 1e-6, 1e-6));
}

TEST_CASE("pipeline fixture: VAE decode of final latents and the mouth composite", "[denoise][golden]") {
    const auto& g = test::pipeline_golden();
    for (std::string p : {"", "deepcache_"}) {
        auto decoded = test::pipeline_golden_decode(g[p + "final_latents"]);
        check_close(p + "decoded (from golden final latents)", decoded, g[p + "decoded"], 1e-4, 1e-3);
    }
    auto frames = faces::composite_crop(test::pipeline_golden_decode(g["final_latents"]), g["ref_pixel_values"], g["masks"]);
    check_close("final_frames (from golden final latents)", frames, g["final_frames"], 1e-4, 1e-3);
    // The fixture's own composite of its decoded tensor, to pin the formula independently of our VAE.
    check_close("final_frames (from golden decoded)", faces::composite_crop(g["decoded"], g["ref_pixel_values"], g["masks"]),
                g["final_frames"], 1e-6, 1e-6);
}
