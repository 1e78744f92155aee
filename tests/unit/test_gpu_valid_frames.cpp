// GPU checks of padded chunks (ops/valid_frames.h): the channels-last GroupNorm kernel's statistics over each
// entry's real frames, the short-sequence attention kernel's key counts, and the full-size fp16 UNet with a short
// chunk padded beside a full one, eager and replayed from a CUDA graph captured under other counts.
#include "catch_compat.h"

#include "ops/attention.h"
#include "ops/group_norm.h"
#include "ops/memory_layout.h"
#include "ops/short_attention.h"
#include "ops/valid_frames.h"
#include "pipeline/graphed_denoiser.h"
#include "unit/gpu_checks.h"

#include <cstdio>
#include <vector>

using namespace lsync;

namespace {

torch::Tensor int_counts(const std::vector<int32_t>& counts) {
    return torch::tensor(counts, torch::kInt).to(torch::Device(torch::kCUDA, 0));
}

// t [B, ...] with dimension `dim` made `size` long by repeating its last slice.
torch::Tensor pad_to(const torch::Tensor& t, int64_t dim, int64_t size) {
    auto sizes = t.sizes().vec();
    sizes[static_cast<size_t>(dim)] = size - t.size(dim);
    return torch::cat({t, t.slice(dim, t.size(dim) - 1, t.size(dim)).expand(sizes)}, dim);
}

}  // namespace

TEST_CASE("valid frames: the channels-last GroupNorm kernel takes statistics over each entry's real frames",
          "[gpu][groupnorm][valid-frames]") {
    LSYNC_NEED_GPU();
    torch::NoGradGuard no_grad;
    const torch::Device dev(torch::kCUDA, 0);
    const std::vector<int32_t> counts{16, 4, 1, 9};
    for (auto dt : {torch::kFloat, torch::kHalf}) {
        torch::manual_seed(17);
        const auto opts = torch::TensorOptions().device(dev).dtype(dt);
        // The 256 px UNet's first level (320 channels, 32 groups) and the frames-channels-last layout it runs.
        const auto x = (torch::randn({4, 16, 8, 8, 320}, opts) * 2 + 1).permute({0, 4, 1, 2, 3});
        REQUIRE(ops::is_frames_channels_last(x));
        const auto w = torch::randn({320}, opts), b = torch::randn({320}, opts), table = torch::randn({4, 320}, opts);
        for (bool silu : {false, true}) {
            INFO("dtype " << c10::toString(dt) << ", silu " << silu);
            torch::Tensor got, got_biased, all_real;
            {
                const ops::ValidFramesScope scope(int_counts(counts));
                got = ops::group_norm(x, 32, w, b, 1e-5, silu);
                got_biased = ops::group_norm_sample_bias(x, table, 32, w, b, 1e-5, silu);
            }
            {
                const ops::ValidFramesScope scope(int_counts({16, 16, 16, 16}));
                all_real = ops::group_norm(x, 32, w, b, 1e-5, silu);
            }
            CHECK(ops::is_frames_channels_last(got));
            // All frames real: the kernel's own bits without a scope (so the counts went to the kernel, not to
            // the fp32 reference), which is what a render's full chunks keep getting.
            CHECK(torch::equal(all_real, ops::group_norm(x, 32, w, b, 1e-5, silu)));
            const auto want = ops::group_norm_valid_frames_reference(x, int_counts(counts), 32, w, b, 1e-5, silu);
            const auto biased = x + table.reshape({4, 320, 1, 1, 1});
            const auto want_biased =
                ops::group_norm_valid_frames_reference(biased, int_counts(counts), 32, w, b, 1e-5, silu);
            const double tol = dt == torch::kFloat ? 1e-5 : 2e-3;
            for (int64_t e = 0; e < 4; ++e) {
                const int64_t n = counts[static_cast<size_t>(e)];
                const auto real = [&](const torch::Tensor& t) {
                    return t.slice(0, e, e + 1).slice(2, 0, n).to(torch::kFloat);
                };
                INFO("entry " << e);
                CHECK(rel(real(got), real(want)) < tol);
                CHECK(rel(real(got_biased), real(want_biased)) < tol);
            }
            CHECK(torch::isfinite(got).all().item<bool>());
        }
    }
}

TEST_CASE("valid frames: the short-sequence attention kernel attends to each sequence's first keys only",
          "[gpu][attention][valid-frames]") {
    LSYNC_NEED_GPU();
    torch::NoGradGuard no_grad;
    const torch::Device dev(torch::kCUDA, 0);
    torch::manual_seed(19);
    // The motion modules' call at the 256 px UNet's deepest attention level: 64 pixels x 4 entries, 8 heads of 40.
    const int64_t b = 256, h = 8, l = 16, d = 40;
    const auto opts = torch::TensorOptions().device(dev).dtype(torch::kHalf);
    const auto q = torch::randn({b, h, l, d}, opts), k = torch::randn({b, h, l, d}, opts),
               v = torch::randn({b, h, l, d}, opts);
    const auto counts = torch::randint(1, l + 1, {b}, torch::TensorOptions().dtype(torch::kInt)).to(dev);
    ops::AttentionInputs in{q, k, v, std::nullopt, counts};
    REQUIRE(ops::short_attention_serves(in));
    ops::AttentionDispatcher flash(ops::AttentionBackend::Flash, true, dev, torch::kHalf);
    const auto got = flash(in).to(torch::kFloat);
    // fp32 standard attention with the counts as a mask (tested against separate calls on the CPU).
    const auto want = ops::standard_attention(ops::with_key_mask(
        {q.to(torch::kFloat), k.to(torch::kFloat), v.to(torch::kFloat), std::nullopt, counts}));
    const double e = rel(got, want);
    std::printf("[valid frames] short attention with key counts: rel. error %.3e\n", e);
    CHECK(e < 2e-3);
    // Every key real: the kernel's bits without counts.
    in.key_counts = torch::full({b}, l, counts.options());
    CHECK(torch::equal(flash(in), flash({q, k, v, std::nullopt, {}})));
}

TEST_CASE("valid frames: the full-size fp16 UNet runs a short chunk padded beside a full one as its own call",
          "[gpu][unet][valid-frames]") {
    LSYNC_NEED_GPU();
    torch::NoGradGuard no_grad;
    auto call = full_unet_256_call();  // one chunk of 16 frames, CFG batch 2
    const auto dev = call.sample.device();
    const int64_t f = 16, short_f = 4;
    const auto full = call.sample.slice(0, 0, 1), shorter = call.sample.slice(0, 1, 2).slice(2, 0, short_f);
    const auto full_audio = call.audio.slice(0, 0, f), short_audio = call.audio.slice(0, f, f + short_f);
    const auto cfg = [](const torch::Tensor& t) { return torch::cat({t, t}, 0); };
    const auto batch = cfg(torch::cat({full, pad_to(shorter, 2, f)}, 0));  // full, short, full, short
    const auto batch_audio = cfg(torch::cat({full_audio, pad_to(short_audio, 0, f)}, 0));
    const auto run = [&](const torch::Tensor& x, const torch::Tensor& audio) {
        return call.unet->forward(x, call.timestep, audio).to(torch::kFloat);
    };
    torch::Tensor got;
    {
        const ops::ValidFramesScope scope(int_counts({16, 4}));
        got = run(batch, batch_audio);
    }
    const auto want_full = run(cfg(full), cfg(full_audio)), want_short = run(cfg(shorter), cfg(short_audio));
    using torch::indexing::Slice;
    const double e_full = rel(got.index({Slice(0, 4, 2)}), want_full);
    const double e_short = rel(got.index({Slice(1, 4, 2)}).slice(2, 0, short_f), want_short);
    std::printf("[valid frames] padded call vs own calls: full chunk rel. %.3e, short chunk rel. %.3e\n", e_full,
                e_short);
    // fp16: the batched GEMMs' and the statistics' summation orders (the layout test's bound).
    CHECK(e_full < 5e-3);
    CHECK(e_short < 5e-3);

    // Graphed: captured under all-real counts, then replayed with the short chunk's.
    auto graph_counts = std::make_shared<pipeline::GraphCounts>();
    auto denoiser = pipeline::make_graphed_denoiser(call.unet, true, 3, graph_counts);
    torch::Tensor replayed, replayed_full;
    pipeline::run_on_side_stream(dev, [&] {
        const auto step = [&](const std::vector<int32_t>& counts) {
            const ops::ValidFramesScope scope(int_counts(counts));
            return denoiser(batch, call.timestep, batch_audio, diffusion::CachePhase::Off).to(torch::kFloat);
        };
        (void)step({16, 16});            // eager first call
        replayed_full = step({16, 16});  // captured, replayed
        replayed = step({16, 4});
    });
    CHECK(graph_counts->captures == 1);
    CHECK(graph_counts->replays == 2);
    // The replay read the new counts: the short chunk's frames differ from the all-real replay's.
    CHECK_FALSE(torch::equal(replayed.index({Slice(1, 4, 2)}), replayed_full.index({Slice(1, 4, 2)})));
    const double e_graph = rel(replayed, got);
    std::printf("[valid frames] graph replayed with new counts vs eager: rel. %.3e, bit-identical %s\n", e_graph,
                torch::equal(replayed, got) ? "yes" : "no");
    CHECK(e_graph < 1e-3);
}
