// DDIM scheduler against diffusers 0.32.2 (tests/fixtures/golden/ddim_golden.safetensors): the tables, the
// 20-step "leading" timesteps and single steps at the start, middle and end of the schedule.

#include "catch_compat.h"
#include "expect_error.h"
#include "golden_compare.h"
#include "test_util.h"

#include "diffusion/ddim_scheduler.h"

#include <fstream>

using namespace lsync;
using lsync::diffusion::DDIMConfig;
using lsync::diffusion::DDIMScheduler;
using lsync::test::check_close;
using lsync::test::GoldenFile;

TEST_CASE("DDIM: tables and timesteps match diffusers", "[ddim][golden]") {
    GoldenFile g("ddim_golden.safetensors");
    DDIMScheduler s(DDIMConfig::from_file(test::golden_fixture("ddim_scheduler_config.json").string()));
    s.set_timesteps(20);
    CHECK(torch::equal(s.timesteps(), g["timesteps"]));
    CHECK(s.timesteps()[0].item<int64_t>() == 951);
    CHECK(s.timesteps()[19].item<int64_t>() == 1);
    check_close("ddim betas", s.betas(), g["betas"], 1e-6, 1e-5);
    check_close("ddim alphas_cumprod", s.alphas_cumprod(), g["alphas_cumprod"], 1e-6, 1e-5);
    check_close("ddim final_alpha_cumprod", s.final_alpha_cumprod().reshape({1}), g["final_alpha_cumprod"], 1e-6,
                1e-5);
}

TEST_CASE("DDIM: single steps match diffusers (eta 0)", "[ddim][golden]") {
    GoldenFile g("ddim_golden.safetensors");
    DDIMScheduler s;  // the defaults are LatentSync's configuration
    s.set_timesteps(20);
    for (int j : {0, 1, 10, 19}) {
        const std::string p = "step" + std::to_string(j) + ".";
        const int64_t t = s.timesteps()[j].item<int64_t>();
        auto out = s.step(g[p + "model_output"], t, g[p + "sample"]);
        check_close("ddim " + p + "prev_sample", out.prev_sample, g[p + "prev_sample"], 1e-6, 1e-5);
        check_close("ddim " + p + "pred_original_sample", out.pred_original_sample, g[p + "pred_original_sample"],
                    1e-6, 1e-5);
    }
}

TEST_CASE("DDIM: the last step uses alphas_cumprod[0], not 1", "[ddim]") {
    DDIMScheduler s;
    s.set_timesteps(20);
    auto x = torch::full({2}, 3.0), eps = torch::full({2}, 0.5);
    auto out = s.step(eps, 1, x);
    const double a1 = s.alphas_cumprod()[1].item<double>(), a0 = s.alphas_cumprod()[0].item<double>();
    const double x0 = (3.0 - std::sqrt(1 - a1) * 0.5) / std::sqrt(a1);
    const double prev = std::sqrt(a0) * x0 + std::sqrt(1 - a0) * 0.5;
    CHECK(out.pred_original_sample[0].item<double>() == Approx(x0).epsilon(1e-6));
    CHECK(out.prev_sample[0].item<double>() == Approx(prev).epsilon(1e-6));
    CHECK(s.final_alpha_cumprod().item<double>() == Approx(0.99915).epsilon(1e-6));
}

TEST_CASE("DDIM: other spacings and step counts", "[ddim]") {
    DDIMScheduler s;
    s.set_timesteps(1);
    CHECK(s.timesteps().sizes() == std::vector<int64_t>{1});
    CHECK(s.timesteps()[0].item<int64_t>() == 1);
    s.set_timesteps(50);
    CHECK(s.timesteps()[0].item<int64_t>() == 981);
    CHECK(s.timesteps()[49].item<int64_t>() == 1);

    DDIMConfig trailing;
    trailing.timestep_spacing = "trailing";
    DDIMScheduler t(trailing);
    t.set_timesteps(20);
    CHECK(t.timesteps()[0].item<int64_t>() == 999);
    CHECK(t.timesteps()[19].item<int64_t>() == 49);

    DDIMConfig lin;
    lin.timestep_spacing = "linspace";
    DDIMScheduler l(lin);
    l.set_timesteps(20);
    CHECK(l.timesteps()[0].item<int64_t>() == 999);
    CHECK(l.timesteps()[1].item<int64_t>() == 946);  // round(999 * 18 / 19 = 946.42)
    CHECK(l.timesteps()[19].item<int64_t>() == 0);
}

TEST_CASE("DDIM: dtype follows the sample", "[ddim]") {
    DDIMScheduler s;
    s.set_timesteps(20);
    auto x = torch::randn({1, 4, 2, 4, 4});
    auto eps = torch::randn({1, 4, 2, 4, 4});
    auto ref = s.step(eps, 951, x).prev_sample;
    auto bf = s.step(eps.to(torch::kBFloat16), 951, x.to(torch::kBFloat16)).prev_sample;
    CHECK(bf.scalar_type() == torch::kBFloat16);
    CHECK(torch::allclose(bf.to(torch::kFloat), ref, 5e-2, 5e-2));
}

TEST_CASE("DDIM: bad configs and arguments", "[ddim][errors]") {
    using test::contains;
    using test::expect_error;
    auto msg = expect_error(ErrorCode::Usage, [] {
        DDIMConfig::from_json(nlohmann::json{{"clip_sample", true}}, "cfg.json");
    });
    CHECK(contains(msg, "clip_sample"));
    msg = expect_error(ErrorCode::Usage, [] {
        DDIMConfig::from_json(nlohmann::json{{"prediction_type", "v_prediction"}}, "cfg.json");
    });
    CHECK(contains(msg, "v_prediction"));
    expect_error(ErrorCode::Usage,
                 [] { DDIMConfig::from_json(nlohmann::json{{"beta_schedule", "squaredcos_cap_v2"}}, "cfg.json"); });
    expect_error(ErrorCode::Usage, [] { DDIMConfig::from_json(nlohmann::json{{"steps_offset", "one"}}, "cfg.json"); });
    DDIMScheduler s;
    expect_error(ErrorCode::Usage, [&] { s.set_timesteps(0); });
    expect_error(ErrorCode::Usage, [&] { s.set_timesteps(1001); });
    expect_error(ErrorCode::Internal, [&] { s.step(torch::zeros({2}), 951, torch::zeros({2})); });
    // The released config (leading, steps_offset 1): 1,000 steps would start at timestep 1,000, past the table.
    CHECK(contains(expect_error(ErrorCode::Usage, [&] { s.set_timesteps(1000); }), "at most 999"));
    CHECK_NOTHROW(s.set_timesteps(999));
    CHECK(s.timesteps()[0].item<int64_t>() == 999);
}
