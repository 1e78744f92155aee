// GPU checks of the graphed VAE (pipeline/graphed_vae.h): the eager calls' bits for every slice of a batch,
// including a short last slice, through eager first calls, captures and replays; eager on the default stream.
#include "catch_compat.h"

#include "ops/attention_context.h"
#include "pipeline/graphed_vae.h"
#include "unit/gpu_checks.h"
#include "vae/vae_loader.h"
#include "vae/vae_tiling.h"

#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

using namespace lsync;

namespace {

models::AutoencoderKL full_size_vae(const torch::Device& dev) {
    auto vae = models::random_vae(models::VAEConfig::sd_vae_ft_mse(), dev, torch::kHalf, 1247);
    vae->set_attention(std::make_shared<ops::AttentionContext>(
        std::make_shared<ops::AttentionDispatcher>(ops::AttentionBackend::Flash, false, dev, torch::kHalf)));
    return vae;
}

}  // namespace

TEST_CASE("graphed VAE: the eager calls' bits for every slice, through first calls, captures and replays",
          "[gpu][graphs][vae]") {
    LSYNC_NEED_GPU();
    torch::NoGradGuard no_grad;
    const torch::Device dev(torch::kCUDA, 0);
    auto vae = full_size_vae(dev);
    // Graphs are captured on a stream of the pool, as the render's workers run.
    const c10::cuda::CUDAStreamGuard stream(c10::cuda::getStreamFromPool(false, 0));
    auto counts = std::make_shared<pipeline::GraphCounts>();
    pipeline::GraphedVae graphed(vae, true, 4, counts);
    auto opts = torch::TensorOptions().device(dev).dtype(torch::kHalf);
    // 10 images in slices of 4: two shapes per kind (4 and the last 2).
    for (int pass = 0; pass < 3; ++pass) {
        torch::manual_seed(40 + pass);
        const auto images = torch::rand({10, 3, 256, 256}, opts) * 2 - 1;
        const auto z = torch::randn({10, 4, 32, 32}, opts);
        const auto want = models::encode_sliced(*vae, images, 4);
        const auto got = graphed.encode(images, 4);
        INFO("pass " << pass);
        REQUIRE(torch::isfinite(want.mean).all().item<bool>());
        CHECK(torch::equal(got.mean, want.mean));
        CHECK(torch::equal(got.logvar, want.logvar));
        CHECK(torch::equal(got.std, want.std));
        models::VAEDecodePlan plan;
        plan.batch_slice = 4;
        const auto want_image = models::decode_planned(*vae, z, plan);
        const auto got_image = graphed.decode(z, 4);
        REQUIRE(torch::isfinite(want_image).all().item<bool>());
        CHECK(got_image.sizes() == want_image.sizes());
        CHECK(torch::equal(got_image, want_image));
    }
    // Per kind: pass 1 runs the first 4-slice eagerly, captures the second and runs the 2-slice eagerly; pass 2
    // replays both 4-slices and captures the 2-slice; pass 3 replays all three.
    CHECK(counts->eager == 2 * 2);
    CHECK(counts->captures == 2 * 2);
    CHECK(counts->replays == 2 * (1 + 3 + 3));
}

TEST_CASE("graphed VAE: eager on the default stream and for shapes past the limit", "[gpu][graphs][vae]") {
    LSYNC_NEED_GPU();
    torch::NoGradGuard no_grad;
    const torch::Device dev(torch::kCUDA, 0);
    auto vae = full_size_vae(dev);
    auto opts = torch::TensorOptions().device(dev).dtype(torch::kHalf);
    const auto z = torch::randn({6, 4, 32, 32}, opts);
    models::VAEDecodePlan plan;
    plan.batch_slice = 4;
    const auto want = models::decode_planned(*vae, z, plan);
    {
        auto counts = std::make_shared<pipeline::GraphCounts>();
        pipeline::GraphedVae graphed(vae, true, 4, counts);
        for (int i = 0; i < 3; ++i) CHECK(torch::equal(graphed.decode(z, 4), want));
        CHECK(counts->captures == 0);
        CHECK(counts->eager == 3 * 2);
    }
    const c10::cuda::CUDAStreamGuard stream(c10::cuda::getStreamFromPool(false, 0));
    auto counts = std::make_shared<pipeline::GraphCounts>();
    pipeline::GraphedVae graphed(vae, true, 1, counts);  // the 4-slice gets graphs, the 2-slice never does
    for (int i = 0; i < 3; ++i) CHECK(torch::equal(graphed.decode(z, 4), want));
    CHECK(counts->captures == 1);
    CHECK(counts->replays == 2);
    CHECK(counts->eager == 1 + 3);
}

TEST_CASE("graphed VAE: short slices padded run the full slice's graph, the eager padded calls' bits",
          "[gpu][graphs][vae]") {
    LSYNC_NEED_GPU();
    torch::NoGradGuard no_grad;
    const torch::Device dev(torch::kCUDA, 0);
    auto vae = full_size_vae(dev);
    const c10::cuda::CUDAStreamGuard stream(c10::cuda::getStreamFromPool(false, 0));
    auto counts = std::make_shared<pipeline::GraphCounts>();
    auto eager_counts = std::make_shared<pipeline::GraphCounts>();
    pipeline::GraphedVae graphed(vae, true, 4, counts);
    pipeline::GraphedVae eager(vae, false, 4, eager_counts);
    graphed.pad_short_slices(true);
    eager.pad_short_slices(true);
    auto opts = torch::TensorOptions().device(dev).dtype(torch::kHalf);
    // 10 images in slices of 4: the last 2 padded to 4, so one shape per kind.
    for (int pass = 0; pass < 3; ++pass) {
        torch::manual_seed(60 + pass);
        const auto images = torch::rand({10, 3, 256, 256}, opts) * 2 - 1;
        const auto z = torch::randn({10, 4, 32, 32}, opts);
        INFO("pass " << pass);
        const auto want = eager.encode(images, 4);
        const auto got = graphed.encode(images, 4);
        REQUIRE(got.mean.size(0) == 10);
        REQUIRE(torch::isfinite(want.mean).all().item<bool>());
        CHECK(torch::equal(got.mean, want.mean));
        CHECK(torch::equal(got.std, want.std));
        const auto want_image = eager.decode(z, 4);
        const auto got_image = graphed.decode(z, 4);
        REQUIRE(got_image.size(0) == 10);
        CHECK(torch::equal(got_image, want_image));
    }
    // Per kind: pass 1 runs the first slice eagerly, captures (and replays) the second and replays the padded
    // third; passes 2 and 3 replay all three. Each pass pads 2 rows per kind.
    CHECK(counts->eager == 2);
    CHECK(counts->captures == 2);
    CHECK(counts->replays == 2 * (2 + 3 + 3));
    CHECK(counts->padded_rows == 2 * 2 * 3);
    CHECK(eager_counts->padded_rows == counts->padded_rows);
}
