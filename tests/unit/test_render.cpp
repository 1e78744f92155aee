// The render pipeline's pieces that do not need a video: the output -> source frame map of the loop modes, the
// per-chunk seed rule, and the frame source's backwards walk (ping-pong) with bounded memory.

#include "catch_compat.h"

#include "core/error.h"
#include "expect_error.h"
#include "media/video_writer.h"
#include "pipeline/chunk_noise.h"
#include "pipeline/frame_map.h"
#include "pipeline/frame_source.h"
#include "test_util.h"

#include <set>

using namespace lsync;
using namespace lsync::pipeline;

TEST_CASE("frame map: ping-pong repeats the turn frames, loop wraps, freeze holds", "[render]") {
    std::vector<int64_t> pp, loop, freeze;
    for (int64_t i = 0; i < 12; ++i) {
        pp.push_back(source_frame(i, 4, LoopMode::PingPong));
        loop.push_back(source_frame(i, 4, LoopMode::Loop));
        freeze.push_back(source_frame(i, 4, LoopMode::Freeze));
    }
    // The official loop_video: forward, reversed, forward, ... with the turn-around frame twice.
    CHECK(pp == std::vector<int64_t>{0, 1, 2, 3, 3, 2, 1, 0, 0, 1, 2, 3});
    CHECK(loop == std::vector<int64_t>{0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3});
    CHECK(freeze == std::vector<int64_t>{0, 1, 2, 3, 3, 3, 3, 3, 3, 3, 3, 3});
    for (auto mode : {LoopMode::PingPong, LoopMode::Loop, LoopMode::Freeze})
        for (int64_t i = 0; i < 5; ++i) CHECK(source_frame(i, 1, mode) == 0);  // a still image
    CHECK(parse_loop_mode("loop") == LoopMode::Loop);
    CHECK(test::contains(test::expect_error(ErrorCode::Usage, [] { parse_loop_mode("bounce"); }), "--loop"));
}

TEST_CASE("seed rule: each chunk's noise depends on the seed and its index only", "[render]") {
    const auto a = seeded_noise(1247), b = seeded_noise(1247), c = seeded_noise(1248);
    // Chunk 3's draws are the same whatever ran before them (resume, batching, another worker).
    b.posterior(0, 0, {2, 4, 8, 8});
    b.posterior(5, 1, {2, 4, 8, 8});
    CHECK(torch::equal(a.posterior(3, 0, {2, 4, 8, 8}), b.posterior(3, 0, {2, 4, 8, 8})));
    CHECK(torch::equal(a.posterior(3, 1, {2, 4, 8, 8}), b.posterior(3, 1, {2, 4, 8, 8})));
    CHECK_FALSE(torch::equal(a.posterior(3, 0, {2, 4, 8, 8}), a.posterior(3, 1, {2, 4, 8, 8})));
    CHECK_FALSE(torch::equal(a.posterior(3, 0, {2, 4, 8, 8}), a.posterior(4, 0, {2, 4, 8, 8})));
    CHECK_FALSE(torch::equal(a.posterior(3, 0, {2, 4, 8, 8}), c.posterior(3, 0, {2, 4, 8, 8})));
    CHECK(torch::equal(a.shared(4, 8, 8), b.shared(4, 8, 8)));
    CHECK_FALSE(torch::equal(a.shared(4, 8, 8), c.shared(4, 8, 8)));
    // Unrelated streams for neighbouring chunks and seeds.
    std::set<uint64_t> seeds;
    for (uint64_t s = 0; s < 50; ++s)
        for (int64_t k = 0; k < 50; ++k) seeds.insert(chunk_seed(s, k));
    CHECK(seeds.size() == 2500);
}

TEST_CASE("frame source: walking backwards re-decodes once per window and gives the same frames", "[render]") {
    test::ScratchDir dir("frame_source");
    const auto path = (dir.path() / "numbers.mkv").string();
    {
        // Frame i is a flat grey of level 4 i: every frame distinguishable after a lossless round trip.
        media::VideoWriterOptions o;
        o.path = path;
        o.width = 64;
        o.height = 48;
        o.crf = 0;
        o.preset = "ultrafast";
        media::VideoWriter w(o);
        for (int i = 0; i < 60; ++i) w.write(torch::full({48, 64, 3}, 4 * i, torch::kUInt8));
        w.finish();
    }
    FrameSource src(path, 25, /*cache_bytes=*/64 * 48 * 3 * 16);  // a window of 16 frames
    auto level = [&](int64_t i) {
        auto f = src.get(i);
        REQUIRE(f.has_value());
        return static_cast<int>(std::lround(f->to(torch::kFloat).mean().item<double>()));
    };
    for (int64_t i = 0; i < 60; ++i) CHECK(std::abs(level(i) - 4 * i) <= 1);
    CHECK(src.opens() == 1);
    CHECK_FALSE(src.get(60).has_value());
    for (int64_t i = 59; i >= 0; --i) CHECK(std::abs(level(i) - 4 * i) <= 1);
    // 60 frames backwards through a window of 16: the frames 44..59 were still held, then one re-decode per
    // 16 frames (43, 27, 11).
    CHECK(src.opens() == 4);
}
