// GPU check of the silent-first CFG audio (diffusion::DenoiseOptions::silent_cfg_audio): the full-size UNet in
// fp16, handed only the conditional half's audio, gives the output of the same call with the unconditional
// half's zero audio run the long way (its audio layer's output is to_out's bias: models/unet/transformer_3d.h).
#include "catch_compat.h"

#include "unit/gpu_checks.h"

#include <cstdio>

using namespace lsync;

TEST_CASE("silent-first CFG audio: the full-size UNet's output of the zero rows run the long way", "[gpu][unet][cfg]") {
    LSYNC_NEED_GPU();
    torch::NoGradGuard no_grad;
    auto call = full_unet_256_call();
    // A CFG batch as the loop makes it: one input twice, [zero audio; audio].
    const auto half = call.sample.slice(0, 0, 1);
    const auto sample = torch::cat({half, half}, 0);
    const auto audio = call.audio.slice(0, 0, 16);
    const auto zeros_first = torch::cat({torch::zeros_like(audio), audio}, 0);
    for (auto phase : {diffusion::CachePhase::Off, diffusion::CachePhase::Capture, diffusion::CachePhase::Reuse}) {
        INFO("phase " << static_cast<int>(phase));
        models::DeepCacheState long_way, short_way;
        if (phase == diffusion::CachePhase::Reuse) {
            call.unet->forward_cached(sample, call.timestep, zeros_first, diffusion::CachePhase::Capture, long_way);
            call.unet->forward_cached(sample, call.timestep, audio, diffusion::CachePhase::Capture, short_way);
        }
        const auto want =
            call.unet->forward_cached(sample, call.timestep, zeros_first, phase, long_way).to(torch::kFloat);
        const auto got = call.unet->forward_cached(sample, call.timestep, audio, phase, short_way).to(torch::kFloat);
        REQUIRE(torch::isfinite(got).all().item<bool>());
        const double e = rel(got, want);
        std::printf("[silent cfg] phase %d: rel. difference %.3e, bit-identical %s\n", static_cast<int>(phase), e,
                    torch::equal(got, want) ? "yes" : "no");
        // The silent rows exactly (to_out's bias either way, and every later op keeps batch rows apart); the
        // conditional rows' GEMMs have half the rows, which cuBLAS may sum in another order (an H200 gave the same
        // bits: docs/performance-notes.md section 18).
        CHECK(torch::equal(got.slice(0, 0, 1), want.slice(0, 0, 1)));
        CHECK(e < 1e-3);
        CHECK(rel(want.slice(0, 0, 1), want.slice(0, 1, 2)) > 1e-3);  // the audio matters
    }
}
