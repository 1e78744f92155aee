// GPU check of the graph priming (pipeline/graph_priming.h): a runner that makes its first group's UNet graphs on a
// thread and stream of their own, beside the group's align and encode, gives the frames of one that makes them on
// the worker's thread, bit for bit, and every UNet call of its groups is a graph replay.
#include "catch_compat.h"
#include "unit/chunk_worker_runs.h"
#include "test_util.h"

#include "unit/gpu_checks.h"

#include <map>
#include <memory>
#include <vector>

using namespace lsync;

TEST_CASE("graph priming: the frames of a worker that captures its own graphs, and only replays in its groups",
          "[gpu][graphs][render]") {
    LSYNC_NEED_GPU();
    torch::NoGradGuard no_grad;
    const torch::Device dev(torch::kCUDA, 0);
    const pipeline::RenderModels models = test::v15_random_models(dev);
    const auto mask = test::upper_half_mask(256);
    pipeline::DiffusionSettings settings;
    settings.steps = 4;  // F R R F: the worker alone captures F in its first group and R in its second
    const auto chunks = test::random_chunks(4, 256, models.unet->config().cross_attention_dim, true);

    std::map<bool, std::vector<torch::Tensor>> frames;
    std::map<bool, std::shared_ptr<const pipeline::GraphCounts>> counts;
    for (const bool primed : {false, true}) {
        std::vector<pipeline::ChunkWorkerSetup> one;
        one.push_back(test::worker_setup(models, mask, settings, 2));
        one.back().runner->set_graph_priming(primed);
        counts[primed] = one.back().runner->graph_counts();
        frames[primed] = test::run_through_workers(std::move(one), chunks, 2);  // two groups of two chunks
        REQUIRE(frames[primed].size() == 4);
    }
    for (size_t k = 0; k < 4; ++k) {
        INFO("chunk " << k << ": largest difference "
                      << (frames[true][k].to(torch::kInt) - frames[false][k].to(torch::kInt)).abs().max().item<int>());
        CHECK(torch::equal(frames[true][k], frames[false][k]));
    }
    // Without priming: group 1 runs steps 0-2 eagerly and captures step 3 (one replay), group 2 captures its
    // step 1 and replays all four.
    CHECK(counts[false]->eager == 3);
    CHECK(counts[false]->captures == 2);
    CHECK(counts[false]->replays == 1 + 4);
    INFO("the last capture failure, if any: without priming '" << counts[false]->last_failure << "', with it '"
                                                                 << counts[true]->last_failure << "'");
    // With it: the priming's five calls (three eager, two captured and replayed), then eight replays.
    CHECK(counts[true]->eager == 3);
    CHECK(counts[true]->captures == 2);
    CHECK(counts[true]->replays == 2 + 8);
}
