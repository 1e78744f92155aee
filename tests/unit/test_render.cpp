// The render pipeline's pieces that do not need a model: the output -> source frame map of the loop modes, the
// per-chunk seed rule, the frame source's backwards walk (ping-pong) with bounded memory, and what --resume
// relies on: segments that join without a second encode, and face plans that read back bit for bit; and the FLOP
// accounting of `bench render`.

#include "catch_compat.h"

#include "core/error.h"
#include "diagnostics/device_busy.h"
#include "diagnostics/device_idle.h"
#include "diagnostics/group_host_time.h"
#include "diagnostics/kernel_profile.h"
#include "diagnostics/render_flops.h"
#include "expect_error.h"
#include "io/safetensors.h"
#include "io/weight_loader.h"
#include "media/video_writer.h"
#include "pipeline/async_writer.h"
#include "pipeline/chunk_noise.h"
#include "pipeline/chunk_queue.h"
#include "pipeline/chunk_workers.h"
#include "pipeline/face_pass.h"
#include "pipeline/first_use_journal.h"
#include "pipeline/frame_map.h"
#include "pipeline/frame_source.h"
#include "pipeline/graph_priming.h"
#include "pipeline/graphed_denoiser.h"
#include "pipeline/lipsync_chunk.h"
#include "pipeline/render_models.h"
#include "pipeline/batch_planner.h"
#include "pipeline/render_workdir.h"
#include "pipeline/segment_joiner.h"
#include "pipeline/segment_writer.h"
#include "pipeline/worker_warm_up.h"
#include "unet/unet_layers.h"
#include "faces/face_plan_file.h"
#include "faces/face_track_file.h"
#include "test_util.h"
#include "unit/chunk_worker_runs.h"
#include "unit/synthetic_faces.h"

#include <atomic>
#include <chrono>
#include <filesystem>
#include <functional>
#include <fstream>
#include <future>
#include <mutex>
#include <set>
#include <thread>

using namespace lsync;
using namespace lsync::pipeline;
namespace fs = std::filesystem;

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

TEST_CASE("graph priming: nothing primed off a GPU, the runner's graph counts stay zero there", "[render]") {
    // The priming itself runs on CUDA only (test_gpu_graph_priming.cpp); here what a CPU render must see of it.
    CHECK_FALSE(pipeline::graphs_replay_here(torch::kCPU));
    pipeline::GraphPriming priming;
    bool ran = false;
    priming.start(torch::kCPU, [&] { ran = true; });
    CHECK(priming.started());
    priming.start(torch::kCPU, [&] { ran = true; });  // once only
    priming.wait();
    CHECK_FALSE(ran);
    const auto models = test::tiny_random_models();
    pipeline::DiffusionSettings settings;
    settings.steps = 2;
    pipeline::LipsyncChunk runner(models, test::upper_half_mask(128), settings, pipeline::seeded_noise(7));
    const auto counts = runner.graph_counts();
    const auto chunks = test::random_chunks(1, 128, models.unet->config().cross_attention_dim, false);
    REQUIRE(runner.run_batch(chunks).size() == 1);
    CHECK(counts->eager == 0);
    CHECK(counts->captures == 0);
    CHECK(counts->replays == 0);
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

// A clip of `frames` flat grey frames, frame i of level `step` i (distinguishable after a lossless round trip),
// in x264 (one key frame) or FFV1 (every frame a key frame).
static std::string write_grey_levels(const fs::path& dir, const std::string& name, int frames, int step,
                                     bool every_frame_key) {
    const auto path = (dir / name).string();
    media::VideoWriterOptions o;
    o.path = path;
    o.width = 64;
    o.height = 48;
    o.crf = 0;
    o.preset = "ultrafast";
    o.lossless_rgb = every_frame_key;
    media::VideoWriter w(o);
    for (int i = 0; i < frames; ++i) w.write(torch::full({48, 64, 3}, step * i, torch::kUInt8));
    w.finish();
    return path;
}

// The grey level of frame `i` of `src` (which must have it).
static int grey_level(FrameSource& src, int64_t i) {
    auto f = src.get(i);
    REQUIRE(f.has_value());
    return static_cast<int>(std::lround(f->to(torch::kFloat).mean().item<double>()));
}

// A face pass over `video` with no face models: frame 0's landmarks come from a track file, the other frames
// have no entry (no face), so every frame gets a plan without a detector.
static FacePassOptions trackless_face_pass(const fs::path& dir, const std::string& video, int64_t frames) {
    const auto track = (dir / "track.json").string();
    const faces::Face f = test::synthetic_face(32, 24, 30);
    std::string lmk = "[";
    for (size_t i = 0; i < f.landmarks.size(); ++i)
        lmk += (i ? ",[" : "[") + std::to_string(f.landmarks[i].x) + "," + std::to_string(f.landmarks[i].y) + "]";
    lmk += "]";
    std::ofstream(track) << R"({"version": 1, "scheme": "ibug68", "frames": [{"frame": 0, "landmarks": )" << lmk
                         << "}]}";
    FacePassOptions o;
    o.video = video;
    o.face.track_file = track;
    o.geometry = faces::CropGeometry::for_resolution(64);
    o.max_frames = frames;
    return o;
}

// Waits (up to 8 s: a loaded machine may take a while) until `pass` has published `n` frames.
static void wait_for_frames(const FacePass& pass, int64_t n) {
    for (int i = 0; i < 4000 && pass.frames() < n; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(2));
}

TEST_CASE("face pass: a hold stops it before a frame until released, or until the render waits past it",
          "[render]") {
    test::ScratchDir dir("face_pass_hold");
    const auto video = write_grey_levels(dir.path(), "grey.mp4", 40, 4, false);
    SECTION("released by its predicate") {
        std::atomic<bool> release{false};
        auto o = trackless_face_pass(dir.path(), video, 40);
        o.hold_from = 20;
        o.hold = [&release] { return !release.load(); };
        FacePass pass(o);
        wait_for_frames(pass, 20);
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        // Everything before the hold is published (a partial batch too), nothing after it.
        CHECK(pass.frames() == 20);
        CHECK_FALSE(pass.finished());
        release = true;
        CHECK(pass.all().size() == 40);
        CHECK(pass.held_seconds() >= 0.09);
    }
    SECTION("a wait for a frame it has not published ends the hold") {
        auto o = trackless_face_pass(dir.path(), video, 40);
        o.hold_from = 20;
        o.hold = [] { return true; };  // never released by the predicate
        FacePass pass(o);
        wait_for_frames(pass, 20);
        CHECK(pass.wait(19));  // published: the hold stays
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        CHECK(pass.frames() == 20);
        CHECK(pass.wait(25));  // past it: the pass goes on
        CHECK(pass.all().size() == 40);
    }
    SECTION("without a hold it runs to the end") {
        FacePass pass(trackless_face_pass(dir.path(), video, 40));
        CHECK(pass.all().size() == 40);
        CHECK(pass.held_seconds() == 0.0);
    }
}

TEST_CASE("face pass: a lead keeps it that many frames past what the render asked for, until all()", "[render]") {
    test::ScratchDir dir("face_pass_lead");
    const auto video = write_grey_levels(dir.path(), "grey.mp4", 60, 4, false);
    // The pass must reach `n` frames and then go no further.
    const auto stops_at = [](const FacePass& pass, int64_t n) {
        wait_for_frames(pass, n);
        std::this_thread::sleep_for(std::chrono::milliseconds(300));
        return pass.frames() == n;
    };
    auto o = trackless_face_pass(dir.path(), video, 60);
    o.lead = 8;
    FacePass pass(o);
    // Nothing asked for yet (wanted -1): a batch may start at frames up to 7. The first 16 frames go in batches of
    // 4 (face_pass.cpp), so the batches at 0 and 4 run and the one at 8 waits.
    CHECK(stops_at(pass, 8));
    CHECK_FALSE(pass.finished());
    CHECK(pass.wait(19));
    // Asked for 19: batches may start up to frame 27: those at 8 and 12, then 16-31 (batches of 16 from frame 16);
    // the one at 32 waits.
    CHECK(stops_at(pass, 32));
    CHECK_FALSE(pass.finished());
    CHECK(pass.all().size() == 60);  // all() lifts the bound
}

TEST_CASE("frame source: walking backwards re-decodes once per window and gives the same frames", "[render]") {
    test::ScratchDir dir("frame_source");
    // x264 (one key frame: a step back decodes from the top) and FFV1 (every frame a key frame: a step back
    // decodes from just before the window).
    const bool every_frame_key = GENERATE(false, true);
    INFO((every_frame_key ? "FFV1" : "x264"));
    const auto path = write_grey_levels(dir.path(), every_frame_key ? "numbers-ffv1.mkv" : "numbers.mkv", 60, 4,
                                        every_frame_key);
    FrameSource src(path, 25, /*cache_bytes=*/64 * 48 * 3 * 16);  // a window of 16 frames
    for (int64_t i = 0; i < 60; ++i) CHECK(std::abs(grey_level(src, i) - 4 * i) <= 1);
    CHECK(src.opens() == 1);
    CHECK_FALSE(src.get(60).has_value());
    for (int64_t i = 59; i >= 0; --i) CHECK(std::abs(grey_level(src, i) - 4 * i) <= 1);
    // 60 frames backwards through a window of 16: the frames 44..59 were still held, then one re-decode per
    // 16 frames (43, 27, 11).
    CHECK(src.opens() == 4);
    // A jump back from the end of a 120-frame clip to frame 100: with key frames everywhere only about the window
    // before it is decoded (the seek lands at the container's index entry at or before frame 83; the decoder
    // then runs up to its queue, 8 frames, ahead of what was asked), not the 101 frames from the top.
    const auto long_path = write_grey_levels(dir.path(), every_frame_key ? "long-ffv1.mkv" : "long.mkv", 120, 2,
                                             every_frame_key);
    FrameSource jump(long_path, 25, 64 * 48 * 3 * 16);
    CHECK(std::abs(grey_level(jump, 119) - 238) <= 1);
    const int64_t before = jump.decoded_frames();
    for (int64_t i = 100; i >= 85; --i) CHECK(std::abs(grey_level(jump, i) - 2 * i) <= 1);
    CHECK(jump.opens() == 2);
    if (every_frame_key)
        CHECK(jump.decoded_frames() - before <= 60);
    else
        CHECK(jump.decoded_frames() - before >= 101);
}

namespace {

// Segments of small lossless frames, quick to encode (the segment and joiner tests).
media::VideoWriterOptions small_segment_encoder() {
    media::VideoWriterOptions o;
    o.width = 64;
    o.height = 48;
    o.crf = 0;
    o.preset = "ultrafast";
    return o;
}

/// The video at `path` holds exactly `frames` frames, frame i of value 4 i (as the segment tests write them).
void check_ramp_frames(const std::string& path, int64_t frames) {
    FrameSource joined(path, 25);
    for (int64_t i = 0; i < frames; ++i) {
        auto f = joined.get(i);
        REQUIRE(f.has_value());
        CHECK(std::abs(std::lround(f->to(torch::kFloat).mean().item<double>()) - 4 * i) <= 1);
    }
    CHECK_FALSE(joined.get(frames).has_value());
}

}  // namespace

TEST_CASE("segments: joined without re-encoding, every frame in order, other settings refused", "[render]") {
    test::ScratchDir dir("segments");
    const std::string folder = dir.path().string();
    media::VideoWriterOptions o = small_segment_encoder();
    {
        SegmentWriter w(folder, o, /*segment_frames=*/16, /*first_frame=*/0);
        for (int i = 0; i < 40; ++i) {
            // A cut inside a segment ends it there; the next segment still ends at the next multiple of 16. A cut
            // at a boundary, or twice, adds nothing.
            if (i == 20 || i == 32) w.cut();
            if (i == 20) w.cut();
            w.write(torch::full({48, 64, 3}, 4 * i, torch::kUInt8));
        }
        w.finish();
    }
    const auto segments = SegmentWriter::existing(folder);
    REQUIRE(segments.size() == 4);  // 16 + 4 + 12 + 8
    const std::vector<std::pair<int64_t, int64_t>> ranges = {{0, 16}, {16, 20}, {20, 32}, {32, 40}};
    for (size_t k = 0; k < ranges.size(); ++k) {
        CHECK(segments[k].first_frame == ranges[k].first);
        CHECK(segments[k].end_frame == ranges[k].second);
        CHECK(segments[k].path == SegmentWriter::segment_path(folder, ranges[k].first, ranges[k].second));
    }
    CHECK(std::distance(fs::directory_iterator(dir.path()), fs::directory_iterator()) == 4);  // nothing else
    o.path = folder + "/joined.mkv";
    {
        media::VideoWriter out(o);
        int64_t n = 0;
        for (const auto& s : segments) {
            const int64_t got = out.append_segment(s.path);
            CHECK(got == s.end_frame - s.first_frame);
            n += got;
        }
        CHECK(n == 40);
        out.finish();
    }
    check_ramp_frames(o.path, 40);

    // Full segments close on a thread of their own: a writer dropped without finish() (an interrupted render)
    // keeps the full segment it was closing and removes the partial one after it.
    {
        test::ScratchDir dropped("segments-dropped");
        {
            SegmentWriter w(dropped.path().string(), o, 16, 0);
            for (int i = 0; i < 20; ++i) w.write(torch::full({48, 64, 3}, 4 * i, torch::kUInt8));
        }
        const auto kept = SegmentWriter::existing(dropped.path().string());
        REQUIRE(kept.size() == 1);
        CHECK(kept[0].end_frame == 16);
        CHECK(FrameSource(kept[0].path, 25).get(15).has_value());
        CHECK(std::distance(fs::directory_iterator(dropped.path()), fs::directory_iterator()) == 1);
    }

    // A segment from another preset has other parameter sets: refused instead of a broken stream.
    o.preset = "veryslow";
    o.path = folder + "/other.mkv";
    media::VideoWriter other(o);
    const auto why = test::expect_error(ErrorCode::InputCorrupt, [&] { other.append_segment(segments[0].path); });
    CHECK(why.find("other settings") != std::string::npos);
}

TEST_CASE("segment joiner: segments joined as they close give the file of a join at the end, and errors surface",
          "[render]") {
    test::ScratchDir dir("segment-joiner");
    const std::string folder = dir.path().string();
    media::VideoWriterOptions o = small_segment_encoder();
    o.overwrite = true;
    const auto frame = [](int i) { return torch::full({48, 64, 3}, 5 * i, torch::kUInt8); };
    // As a render does it: each segment goes to the joiner the moment it is closed. (MP4 outputs: Matroska's
    // muxer writes a random segment UID into every file.)
    o.path = folder + "/progressive.mp4";
    auto joiner = std::make_unique<SegmentJoiner>(o, "");
    {
        SegmentWriter w(folder, o, /*segment_frames=*/16, /*first_frame=*/0,
                        [&](const SegmentFile& seg) { joiner->add(seg); });
        for (int i = 0; i < 40; ++i) {
            if (i == 36) w.cut();
            w.write(frame(i));
        }
        w.finish();
    }
    CHECK(joiner->drain() == 40);
    joiner->commit();
    joiner.reset();
    // And all at the end, as LSYNC_PROGRESSIVE_JOIN=0 does.
    o.path = folder + "/at_end.mp4";
    {
        SegmentJoiner at_end(o, "");
        for (const auto& seg : SegmentWriter::existing(folder)) at_end.add(seg);
        CHECK(at_end.drain() == 40);
        at_end.commit();
    }
    CHECK(test::file_bytes(folder + "/progressive.mp4") == test::file_bytes(folder + "/at_end.mp4"));
    FrameSource joined(folder + "/progressive.mp4", 25);
    CHECK(joined.get(39).has_value());
    CHECK_FALSE(joined.get(40).has_value());

    // A segment that is not what its name says fails the join, naming it, and no output is left behind.
    const auto segments = SegmentWriter::existing(folder);
    REQUIRE(segments.size() == 4);  // 16 + 16 + 4 + 4
    o.path = folder + "/broken.mp4";
    {
        SegmentJoiner broken(o, " (hint)");
        SegmentFile lying = segments[0];
        lying.end_frame = 17;
        broken.add(lying);
        const auto why = test::expect_error(ErrorCode::InputCorrupt, [&] { broken.drain(); });
        CHECK(why.find("not the 17 its name says (hint)") != std::string::npos);
    }
    CHECK_FALSE(fs::exists(folder + "/broken.mp4"));
}

TEST_CASE("work folder: the segments that follow each other from frame 0, by their names", "[render]") {
    test::ScratchDir dir("segment-names");
    const std::string folder = dir.path().string();
    for (const char* name : {"segment-00000000-00000016.mp4", "segment-00000000-00000008.mp4",  // the longer one
                             "segment-00000016-00000020.mkv", "segment-00000020-00000032.mp4",
                             "segment-00000020-00000020.mp4", "segment-00000032-x.mp4", "segment-+0000032-00000040.mp4",
                             "segment-00000032-00000040.avi", "open-00000032.mp4", "segment-00000032-00000040.mp4.tmp",
                             "segment-0000000000000032-40.mp4", "segment-00000048-00000064.mp4"})  // after a gap
        std::ofstream(dir.path() / name) << "x";
    fs::create_directory(dir.path() / "segment-00000032-00000048.mp4");  // not a file
    const auto chain = SegmentWriter::existing(folder);
    REQUIRE(chain.size() == 3);
    CHECK(chain[0].end_frame == 16);
    CHECK(chain[1].path == SegmentWriter::segment_path(folder, 16, 20, /*lossless=*/true));
    CHECK(chain[2].first_frame == 20);
    CHECK(chain[2].end_frame == 32);
    CHECK(SegmentWriter::existing(folder + "/missing").empty());

    // A segment that would end where it starts is no link of the chain (the walk would never end).
    test::ScratchDir loop("segment-names-loop");
    for (const char* name : {"segment-00000000-00000016.mp4", "segment-00000016-00000016.mp4"})
        std::ofstream(loop.path() / name) << "x";
    CHECK(SegmentWriter::existing(loop.path().string()).size() == 1);
}

TEST_CASE("segments: a writer that starts inside a segment (a resume at a cut) still ends them at the multiples",
          "[render]") {
    test::ScratchDir dir("segments-resumed");
    const std::string folder = dir.path().string();
    media::VideoWriterOptions o;
    o.width = 32;
    o.height = 32;
    o.preset = "ultrafast";
    {
        SegmentWriter w(folder, o, /*segment_frames=*/16, /*first_frame=*/20);
        for (int i = 0; i < 30; ++i) w.write(torch::zeros({32, 32, 3}, torch::kUInt8));  // frames 20-49
        w.finish();
    }
    std::set<std::string> names;
    for (const auto& entry : fs::directory_iterator(dir.path())) names.insert(entry.path().string());
    CHECK(names == std::set<std::string>{SegmentWriter::segment_path(folder, 20, 32),
                                         SegmentWriter::segment_path(folder, 32, 48),
                                         SegmentWriter::segment_path(folder, 48, 50)});
    CHECK(FrameSource(SegmentWriter::segment_path(folder, 32, 48), 25).get(15).has_value());
}

TEST_CASE("segments: after a cut, short tail segments close side by side and still reach the joiner in order",
          "[render]") {
    test::ScratchDir dir("segments-tail");
    const std::string folder = dir.path().string();
    media::VideoWriterOptions o = small_segment_encoder();
    std::mutex mutex;
    std::vector<std::pair<int64_t, int64_t>> handed_on;
    {
        SegmentWriter w(folder, o, /*segment_frames=*/16, /*first_frame=*/0,
                        [&](const SegmentFile& seg) {
                            std::lock_guard<std::mutex> lock(mutex);
                            handed_on.emplace_back(seg.first_frame, seg.end_frame);
                        },
                        TailSegments{/*frames=*/6, /*end_frame=*/39});
        for (int i = 0; i < 39; ++i) {
            if (i == 20) w.cut();
            w.write(torch::full({48, 64, 3}, 4 * i, torch::kUInt8));
        }
        w.finish();
    }
    // Before the cut as without a tail; after it 6 frames each, and a multiple of 16 still ends one. The last (a
    // single frame) closes quicker than the ones before it and is still handed on last.
    const std::vector<std::pair<int64_t, int64_t>> ranges = {{0, 16},  {16, 20}, {20, 26}, {26, 32},
                                                             {32, 38}, {38, 39}};
    CHECK(handed_on == ranges);
    const auto segments = SegmentWriter::existing(folder);
    REQUIRE(segments.size() == ranges.size());
    o.path = folder + "/joined.mkv";
    {
        media::VideoWriter out(o);
        for (const auto& seg : segments) out.append_segment(seg.path);
        out.finish();
    }
    check_ramp_frames(o.path, 39);

    // Segments of at least tail length / TailSegments::kMaxSegments frames (where `frames` would make more), and
    // the frames past the tail's end (a video's kept tail) in ordinary segments again.
    test::ScratchDir kept("segments-tail-end");
    {
        SegmentWriter w(kept.path().string(), o, /*segment_frames=*/16, /*first_frame=*/0, nullptr,
                        TailSegments{/*frames=*/2, /*end_frame=*/30});
        for (int i = 0; i < 50; ++i) {
            if (i == 10) w.cut();
            w.write(torch::full({48, 64, 3}, 4 * i, torch::kUInt8));
        }
        w.finish();
    }
    std::vector<std::pair<int64_t, int64_t>> got;
    for (const auto& seg : SegmentWriter::existing(kept.path().string()))
        got.emplace_back(seg.first_frame, seg.end_frame);
    // 20 tail frames in at most 4: 5 each, and a multiple of 16 still ends one.
    CHECK(got == std::vector<std::pair<int64_t, int64_t>>{{0, 10},  {10, 15}, {15, 16}, {16, 21}, {21, 26},
                                                          {26, 30}, {30, 32}, {32, 48}, {48, 50}});

    // Tail segments are encoded with x264's threads sharing each frame: at a render's own preset and CRF their
    // parameter sets are those of an output encoded without, so they join it.
    test::ScratchDir sliced("segments-sliced");
    media::VideoWriterOptions render_like = o;
    render_like.preset = "medium";
    render_like.crf = 18;
    render_like.threads = 4;
    render_like.width = 128;
    render_like.height = 96;
    render_like.sliced_threads = true;
    const auto encode = [&](const std::string& name) {
        render_like.path = (sliced.path() / name).string();
        media::VideoWriter tail(render_like);
        for (int i = 0; i < 5; ++i) tail.write(torch::full({96, 128, 3}, 4 * i, torch::kUInt8));
        tail.finish();
        return test::file_bytes(render_like.path);
    };
    const std::string with_slices = encode("tail.mp4");
    render_like.sliced_threads = false;
    CHECK(encode("frames.mp4") != with_slices);  // the option is taken: another bitstream
    render_like.path = (sliced.path() / "joined.mp4").string();
    {
        media::VideoWriter out(render_like);
        CHECK(out.append_segment((sliced.path() / "tail.mp4").string()) == 5);
        out.finish();
    }
    CHECK(FrameSource(render_like.path, 25).get(4).has_value());
}

TEST_CASE("work folder: a resume among tail segments starts at the last chunk boundary", "[render]") {
    test::ScratchDir dir("workdir-tail");
    const std::string output = (dir.path() / "out.mp4").string();
    const RenderIdentity id{"v", "a", {{"--seed", "1"}}};
    {
        RenderWorkDir work(output, id, /*resume=*/false, /*overwrite=*/false);
        media::VideoWriterOptions o = small_segment_encoder();
        SegmentWriter w(work.path(), o, /*segment_frames=*/16, /*first_frame=*/0, nullptr,
                        TailSegments{/*frames=*/5, /*end_frame=*/42});
        for (int i = 0; i < 42; ++i) {  // 0-16, then 7 frames each (26 in at most 4): 16-23, 23-30, 30-32, 32-39, 39-42
            if (i == 16) w.cut();
            w.write(torch::zeros({48, 64, 3}, torch::kUInt8));
        }
        w.finish();
        faces::save_face_plans(work.faces_path(), std::vector<faces::FramePlan>(3), 256);
        work.keep();
    }
    {
        RenderWorkDir work(output, id, /*resume=*/true, /*overwrite=*/false);
        REQUIRE(work.done_segments().size() == 6);
        // The render's end at 42: nothing to make again.
        CHECK(work.keep_segments_to_chunk_boundary(16, 42) == 42);
        // A longer render stopped there: 32-39 and 39-42 end inside a chunk and go, files and all.
        CHECK(work.keep_segments_to_chunk_boundary(16, 100) == 32);
        CHECK(work.done_segments().size() == 4);
        const auto left = SegmentWriter::existing(work.path());
        REQUIRE(left.size() == 4);
        CHECK(left.back().end_frame == 32);
        CHECK(work.keep_segments_to_chunk_boundary(16, 100) == 32);  // nothing more
        work.keep();
    }
}

TEST_CASE("work folder: segments count for --resume only once the face plans are saved", "[render]") {
    // The render overlaps the face pass and saves its plans when the pass ends: segments made before then
    // came from plans that are lost, so a resume makes them again.
    test::ScratchDir dir("workdir");
    const std::string output = (dir.path() / "out.mp4").string();
    const RenderIdentity id{"v", "a", {{"--seed", "1"}}};
    auto fake_segments = [](const std::string& folder) {
        media::VideoWriterOptions o;
        o.width = 32;
        o.height = 32;
        o.preset = "ultrafast";
        SegmentWriter w(folder, o, /*segment_frames=*/16, /*first_frame=*/0);
        for (int i = 0; i < 32; ++i) w.write(torch::zeros({32, 32, 3}, torch::kUInt8));
        w.finish();
    };
    {
        RenderWorkDir work(output, id, /*resume=*/false, /*overwrite=*/false);
        fake_segments(work.path());
        work.keep();  // as after an interruption
    }
    {
        RenderWorkDir work(output, id, /*resume=*/true, /*overwrite=*/false);
        CHECK(work.resumed());
        CHECK(work.done_segments().empty());
        CHECK(SegmentWriter::existing(work.path()).empty());  // the stale ones are gone
        fake_segments(work.path());
        faces::save_face_plans(work.faces_path(), std::vector<faces::FramePlan>(3), 256);
        work.keep();
    }
    RenderWorkDir work(output, id, /*resume=*/true, /*overwrite=*/false);
    REQUIRE(work.done_segments().size() == 2);
    CHECK(work.done_segments().back().end_frame == 32);
    CHECK(work.has_faces());
}

TEST_CASE("work folder: one that a render is writing now is named so, not as an interrupted one", "[render]") {
    test::ScratchDir dir("workdir_busy");
    const std::string output = (dir.path() / "out.mp4").string();
    const RenderIdentity id{"v", "a", {{"--seed", "1"}}};
    RenderWorkDir running(output, id, /*resume=*/false, /*overwrite=*/false);  // holds the lock
    for (const bool resume : {false, true}) {
        const auto msg = test::expect_error(ErrorCode::OutputExists, [&] {
            RenderWorkDir second(output, id, resume, /*overwrite=*/false);
        });
        CHECK(test::contains(msg, "another render is writing this output now"));
    }
}

TEST_CASE("face plans: saved and read back bit for bit, and readable as a face track", "[render]") {
    test::ScratchDir dir("face_plans");
    const std::string path = (dir.path() / "faces.json").string();
    std::vector<faces::FramePlan> plans(3);
    plans[0].align = true;
    plans[0].status = faces::FaceStatus::Found;
    plans[0].face.box = {10.25f, 20.5f, 100.125f, 120.0625f};
    plans[0].face.score = 0.987654f;
    for (int k = 0; k < 68; ++k) plans[0].face.landmarks.push_back({k * 1.1f + 0.3f, k * 0.7f - 0.1f});
    plans[0].face.scheme = "ibug68";
    plans[0].anchors = {{1.5f, 2.5f}, {3.25f, 4.75f}, {5.0f, 6.0f}};
    plans[0].matrix = {0.1234567890123, -1e-7, 3.0 / 7.0, 1.0 / 3.0, 0.999999999, -12.345678901234567};
    plans[1].status = faces::FaceStatus::TooSmall;
    plans[2] = plans[0];
    plans[2].matrix[5] = 1e-300;
    faces::save_face_plans(path, plans, 256);

    const auto back = faces::load_face_plans(path, 256);
    REQUIRE(back.size() == 3);
    for (size_t i = 0; i < 3; ++i) {
        CHECK(back[i].frame == static_cast<int64_t>(i));
        CHECK(back[i].align == plans[i].align);
        CHECK(back[i].status == plans[i].status);
        CHECK(back[i].matrix == plans[i].matrix);  // exactly: a resumed render must align as the first run did
        CHECK(back[i].face.landmarks.size() == plans[i].face.landmarks.size());
    }
    CHECK(back[0].face.landmarks[67].x == plans[0].face.landmarks[67].x);
    CHECK(back[0].anchors.right_brow.y == plans[0].anchors.right_brow.y);
    CHECK(back[0].face.box.w == plans[0].face.box.w);
    CHECK(faces::count_plans(back).summary() == "2 aligned, 1 passed through (face too small 1)");
    CHECK(test::expect_error(ErrorCode::Usage, [&] { faces::load_face_plans(path, 512); }).find("crop") !=
          std::string::npos);

    const auto track = faces::load_face_track(path);  // the same file is a --face-track
    CHECK(track.frames.size() == 2);
    CHECK(track.at(0).has_value());
    CHECK_FALSE(track.at(1).has_value());
}

TEST_CASE("batch planner: the measured cost of a chunk, and the CPU keeps what was asked", "[render]") {
    const double gib = 1024.0 * 1024.0 * 1024.0;
    CHECK(std::abs(chunk_memory_bytes(256, torch::kHalf) / gib - 0.4) < 0.01);
    CHECK(std::abs(chunk_memory_bytes(512, torch::kHalf) / gib - 1.6) < 0.01);
    CHECK(chunk_memory_bytes(256, torch::kFloat) == 2 * chunk_memory_bytes(256, torch::kHalf));
    CHECK(chunk_memory_bytes(128, torch::kHalf) < chunk_memory_bytes(256, torch::kHalf) / 3);  // by pixels
    // The hard caps of calls CB and CC (H200, 1.5 models 2.74 GiB): one chunk failed under 4.5 GiB and two under
    // 5.0, where one ran; 1.6 (the same networks) failed with one chunk under 5.0 GiB.
    const auto fits = [&](double budget, double models, int res) {
        return chunks_fitting(static_cast<int64_t>((budget - models) * gib), chunk_memory_bytes(res, torch::kHalf));
    };
    CHECK(fits(4.5, 2.74, 256) == 0);
    CHECK(fits(5.0, 2.74, 256) == 1);
    CHECK(fits(5.0, 2.74, 512) == 0);
    CHECK(fits(8.0, 2.74, 256) >= 2);  // an 8 GiB budget keeps the default 2 chunks at 256 px
    CHECK(chunks_fitting(0, chunk_memory_bytes(256, torch::kHalf)) == 0);
    CHECK(plan_chunk_batch(0, torch::kCPU, 128, torch::kFloat, 0).batch == 1);
    CHECK(plan_chunk_batch(3, torch::kCPU, 128, torch::kFloat, 1).batch == 3);  // no budget on the CPU
}

TEST_CASE("CUDA graphs: on by default for the 256 px UNet only, never without CUDA", "[render]") {
    CHECK(cuda_graphs_by_default(256));
    CHECK(cuda_graphs_by_default(128));  // the test model's size
    CHECK_FALSE(cuda_graphs_by_default(512));
#if !LSYNC_WITH_CUDA
    CHECK_FALSE(cuda_graphs_wanted(256, torch::kCPU));
#endif
}

TEST_CASE("lip-sync chunk: the callers' frames stay as they were, in either memory layout", "[render]") {
    // The runner pastes into a copy of the frames it made itself (lipsync_chunk.cpp): a lone chunk already on the
    // device must not be written into, and a render's frames (channels-last views of [A, H, W, 3] host memory)
    // give the frames of contiguous ones.
    const RenderModels models = test::tiny_random_models();
    const int64_t r = models.resolution;
    DiffusionSettings settings;
    settings.steps = 2;
    LipsyncChunk runner(models, test::upper_half_mask(r), settings, seeded_noise(7));
    const auto chunks = test::random_chunks(2, r, models.unet->config().cross_attention_dim, false);
    const ChunkFrames& a = chunks[0];
    const ChunkFrames& b = chunks[1];
    const auto a_before = a.frames.clone(), b_before = b.frames.clone();
    std::vector<ChunkTrace> traces;
    const auto alone = runner.run_batch({a}, nullptr, &traces);
    const auto pair = runner.run_batch({a, b});
    CHECK(torch::equal(a.frames, a_before));
    CHECK(torch::equal(b.frames, b_before));
    REQUIRE(alone.size() == 1);
    CHECK_FALSE(torch::equal(alone[0], a_before));  // the mouth was pasted, into the copy
    // The crops are kept as uint8 while the UNet runs: whole values in [0, 255], as the official uint8 images.
    REQUIRE(traces.size() == 1);
    const auto& crops = traces[0].crops;
    CHECK(crops.scalar_type() == torch::kFloat);
    CHECK(torch::equal(crops, crops.round().clamp(0, 255)));

    ChunkFrames a_nhwc = a, b_nhwc = b;
    a_nhwc.frames = a.frames.permute({0, 2, 3, 1}).contiguous().permute({0, 3, 1, 2});
    b_nhwc.frames = b.frames.permute({0, 2, 3, 1}).contiguous().permute({0, 3, 1, 2});
    REQUIRE(a_nhwc.frames.is_contiguous(torch::MemoryFormat::ChannelsLast));
    const auto pair_nhwc = runner.run_batch({a_nhwc, b_nhwc});
    CHECK(torch::equal(pair_nhwc[0], pair[0]));
    CHECK(torch::equal(pair_nhwc[1], pair[1]));
}

TEST_CASE("lip-sync chunk: a short batch padded to the UNet's batch gives each chunk its own frames", "[render]") {
    const RenderModels models = test::tiny_random_models();
    const int64_t r = models.resolution;
    const auto mask = test::upper_half_mask(r);
    DiffusionSettings settings;
    settings.steps = 2;  // a DeepCache capture step and a reuse step
    LipsyncChunk runner(models, mask, settings, seeded_noise(7));
    CHECK_FALSE(runner.pads_batches());  // on the CPU the UNet runs eagerly: no padding unless asked
    torch::manual_seed(3);
    const auto chunk = [&](int64_t id) {
        ChunkFrames c;
        c.chunk = id;
        c.frames = (torch::rand({kFramesPerChunk, 3, r + 32, r + 32}) * 255).to(torch::kByte);
        c.matrices = torch::tensor({1.0f, 0.0f, -16.0f, 0.0f, 1.0f, -16.0f}).view({1, 2, 3}).repeat({kFramesPerChunk, 1, 1});
        c.audio = torch::randn({kFramesPerChunk, 10, models.unet->config().cross_attention_dim});
        return c;
    };
    const ChunkFrames a = chunk(0), b = chunk(1);
    std::vector<int64_t> unet_rows;  // the UNet batch each step ran
    const auto rows = [&](int, int, int64_t, const torch::Tensor& latents) {
        unet_rows.push_back(latents.size(0));
        return true;
    };
    const auto pair = runner.run_batch({a, b});
    const auto alone = runner.run_batch({a}, rows, nullptr, nullptr, 2);
    CHECK(unet_rows == std::vector<int64_t>(2, 1));  // padding off: one chunk's rows
    // Levels of rounding apart at most: the frames of both chunks differ far more than that, so a padded call
    // that handed back another chunk's frames fails here.
    const auto levels = [](const torch::Tensor& x, const torch::Tensor& y) {
        return (x.to(torch::kInt) - y.to(torch::kInt)).abs().max().item<int>();
    };
    REQUIRE(levels(pair[0], pair[1]) > 50);
    CHECK(levels(alone[0], pair[0]) <= 2);

    runner.set_batch_padding(true);
    unet_rows.clear();
    std::vector<ChunkTrace> traces;
    const auto padded = runner.run_batch({a}, rows, &traces, nullptr, 2);
    CHECK(unet_rows == std::vector<int64_t>(2, 2));  // the copy rode along
    REQUIRE(padded.size() == 1);
    REQUIRE(traces.size() == 1);
    CHECK(traces[0].final_latents.size(0) == 1);
    CHECK(levels(padded[0], alone[0]) <= 2);
    unet_rows.clear();
    const auto three = runner.run_batch({b, a}, rows, nullptr, nullptr, 3);  // padded with copies of `a`
    CHECK(unet_rows == std::vector<int64_t>(2, 3));
    REQUIRE(three.size() == 2);
    CHECK(levels(three[0], pair[1]) <= 2);
    CHECK(levels(three[1], pair[0]) <= 2);
    // A chunk of fewer frames rides padded to 16 with its real frames marked (ops/valid_frames.h), alone or
    // beside a full chunk: the frames of its own call (the UNet test checks that the marks matter).
    ChunkFrames tail = b;
    tail.frames = b.frames.slice(0, 0, 4);
    tail.matrices = b.matrices.slice(0, 0, 4);
    tail.audio = b.audio.slice(0, 0, 4);
    runner.set_batch_padding(false);
    const auto tail_alone = runner.run_batch({tail});
    test::expect_error(ErrorCode::Internal, [&] { runner.run_batch({a, tail}); });  // unpadded: one length a call
    runner.set_batch_padding(true);
    // On the CPU the masked kernels do not serve, so short chunks keep calls of their own unless asked (the
    // reference paths give the same frames, slower).
    CHECK_FALSE(runner.pads_short_chunks());
    test::expect_error(ErrorCode::Internal, [&] { runner.run_batch({a, tail}); });
    runner.set_short_chunk_padding(true);
    CHECK(runner.pads_short_chunks());
    unet_rows.clear();
    std::vector<ChunkTrace> mixed_traces;
    const auto mixed = runner.run_batch({a, tail}, rows, &mixed_traces, nullptr, 2);
    CHECK(unet_rows == std::vector<int64_t>(2, 2));
    REQUIRE(mixed.size() == 2);
    REQUIRE(mixed_traces.size() == 2);
    CHECK(mixed[1].size(0) == 4);
    CHECK(mixed_traces[1].final_latents.size(2) == 4);
    CHECK(mixed_traces[1].masked_latents.size(2) == 4);
    CHECK(mixed_traces[1].crops.size(0) == 4);
    CHECK(levels(mixed[0], pair[0]) <= 2);
    CHECK(levels(mixed[1], tail_alone[0]) <= 2);
    unet_rows.clear();
    const auto lone_tail = runner.run_batch({tail}, rows, nullptr, nullptr, 2);
    CHECK(unet_rows == std::vector<int64_t>(2, 2));
    CHECK(levels(lone_tail[0], tail_alone[0]) <= 2);

    // A LibTorch error inside the call (here raised by the step hook at the second step) comes out as one line
    // naming the chunks, the stage and the step; an out-of-memory error stays one, for the worker's retry.
    const auto fail_at = [](int at, bool oom) {
        return [at, oom](int i, int, int64_t, const torch::Tensor&) {
            TORCH_CHECK_WITH(OutOfMemoryError, !(oom && i == at), "planted out-of-memory error");
            TORCH_CHECK(i != at, "planted error\nwith a second line");
            return true;
        };
    };
    try {
        runner.run_batch({a, b}, fail_at(1, false));
        FAIL("no error");
    } catch (const Error& e) {
        const std::string what = e.what();
        INFO(what);
        CHECK(e.code() == ErrorCode::Backend);
        CHECK(what.rfind("LibTorch: planted error", 0) == 0);
        CHECK(what.find('\n') == std::string::npos);
        CHECK(what.find("(denoising, chunks 0-1 (16 frames each), after step 2 of 2)") != std::string::npos);
    }
    CHECK_THROWS_AS(runner.run_batch({a}, fail_at(0, true)), c10::OutOfMemoryError);
}

TEST_CASE("a second worker's networks share the first's weights and give its frames", "[render]") {
    const RenderModels first = test::tiny_random_models();
    const auto attention = ops::default_attention_context();
    const RenderModels second = share_render_models(first, attention);
    // Other instances (their own DeepCache state and attention context) over the very same tensors.
    CHECK(second.unet.ptr() != first.unet.ptr());
    CHECK(second.vae.ptr() != first.vae.ptr());
    CHECK(second.whisper.ptr() != first.whisper.ptr());
    CHECK(second.whisper->parameters(true).front().data_ptr() == first.whisper->parameters(true).front().data_ptr());
    const auto ours = second.unet->named_parameters(true), theirs = first.unet->named_parameters(true);
    REQUIRE(ours.size() == theirs.size());
    for (const auto& p : ours) CHECK(p.value().data_ptr() == theirs[p.key()].data_ptr());
    const auto vae_ours = second.vae->named_parameters(true), vae_theirs = first.vae->named_parameters(true);
    REQUIRE(vae_ours.size() == vae_theirs.size());
    for (const auto& p : vae_ours) CHECK(p.value().data_ptr() == vae_theirs[p.key()].data_ptr());

    const int64_t r = first.resolution;
    const auto mask = test::upper_half_mask(r);
    DiffusionSettings settings;
    settings.steps = 2;  // a DeepCache capture step and a reuse step
    LipsyncChunk a(first, mask, settings, seeded_noise(7)), b(second, mask, settings, seeded_noise(7));
    const ChunkFrames c = test::random_chunks(1, r, first.unet->config().cross_attention_dim, false)[0];
    const auto from_first = a.run_batch({c});
    CHECK(torch::equal(b.run_batch({c})[0], from_first[0]));
    CHECK(torch::equal(a.run_batch({c})[0], from_first[0]));  // the second's calls left the first's state alone

    // Networks of another shape cannot share: the names or sizes differ.
    models::UNet3DConfig other = first.unet->config();
    other.cross_attention_dim *= 2;
    models::UNet3DConditionModel wider(other);
    CHECK_THROWS_AS(models::share_parameters(*wider, *first.unet), Error);
}

TEST_CASE("chunk workers: two workers sharing one set of weights give one worker's frames", "[render]") {
    const RenderModels first = test::tiny_random_models();
    const int64_t r = first.resolution;
    const auto mask = test::upper_half_mask(r);
    DiffusionSettings settings;
    settings.steps = 2;
    const auto chunks = test::random_chunks(3, r, first.unet->config().cross_attention_dim, false);
    std::vector<ChunkWorkerSetup> one;
    one.push_back(test::worker_setup(first, mask, settings, 1));
    const auto alone = test::run_through_workers(std::move(one), chunks, 1);
    std::vector<ChunkWorkerSetup> two;
    two.push_back(test::worker_setup(first, mask, settings, 1));
    two.push_back(test::worker_setup(share_render_models(first, nullptr), mask, settings, 1));
    const auto shared = test::run_through_workers(std::move(two), chunks, 1);
    REQUIRE(alone.size() == 3);
    REQUIRE(shared.size() == 3);
    for (size_t k = 0; k < 3; ++k) CHECK(torch::equal(shared[k], alone[k]));
    CHECK_FALSE(torch::equal(alone[0], alone[1]));  // the chunks' frames differ: a mixed-up order would show
}

TEST_CASE("chunk workers: a group with a short chunk runs split by length, or as one call where the runner pads",
          "[render][valid-frames]") {
    const RenderModels models = test::tiny_random_models();
    const int64_t r = models.resolution;
    const auto mask = test::upper_half_mask(r);
    DiffusionSettings settings;
    settings.steps = 2;
    auto chunks = test::random_chunks(2, r, models.unet->config().cross_attention_dim, false);
    auto& tail = chunks[1];  // the render's short last chunk
    tail.frames = tail.frames.slice(0, 0, 4);
    tail.matrices = tail.matrices.slice(0, 0, 4);
    tail.audio = tail.audio.slice(0, 0, 4);
    const auto setup = [&](bool pad) {
        std::vector<ChunkWorkerSetup> one;
        one.push_back(test::worker_setup(models, mask, settings, 2));
        one.back().runner->set_batch_padding(pad);
        one.back().runner->set_short_chunk_padding(pad);
        return one;
    };
    const auto alone = test::run_through_workers(setup(false), chunks, 1);
    const auto split = test::run_through_workers(setup(false), chunks, 2);  // one group, two calls
    const auto padded = test::run_through_workers(setup(true), chunks, 2);  // one group, one call
    REQUIRE(alone.size() == 2);
    REQUIRE(split.size() == 2);
    REQUIRE(padded.size() == 2);
    CHECK(alone[1].size(0) == 4);
    for (size_t k = 0; k < 2; ++k) {
        CHECK(torch::equal(split[k], alone[k]));
        CHECK(padded[k].sizes() == alone[k].sizes());
        CHECK((padded[k].to(torch::kInt) - alone[k].to(torch::kInt)).abs().max().item<int>() <= 2);
    }
}

TEST_CASE("chunk queue: a submitted group's inputs go to the workers, none stay with the render thread", "[render]") {
    // The worker must free the pinned frames itself (chunk_queue.cpp: freed on the render thread during one of
    // the worker's CUDA graph captures, they break the worker's next pinned allocation). The worker's models
    // are still loading, so the group waits in the workers' queue, which then holds the only other reference.
    std::promise<pipeline::ChunkWorkerSetup> loaded;
    std::vector<std::future<pipeline::ChunkWorkerSetup>> loading;
    loading.push_back(loaded.get_future());
    auto workers = std::make_unique<pipeline::ChunkWorkers>(std::move(loading), false, false, [](const std::string&) {});
    const auto frames = torch::zeros({2, 3, 8, 8}, torch::kUInt8);
    {
        pipeline::ChunkQueue queue(*workers, 1, false, [](pipeline::PendingChunk&, const pipeline::ChunkTrace*) {});
        pipeline::PendingChunk p;
        // Not views of `frames`: a view counts as a reference to its base.
        p.frames = {torch::zeros({8, 8, 3}, torch::kUInt8), torch::zeros({8, 8, 3}, torch::kUInt8)};
        p.rows = {0, 1};
        p.in.frames = frames;
        p.in.matrices = torch::zeros({2, 2, 3});
        p.in.audio = torch::zeros({2, 4, 4});
        queue.add(std::move(p));  // one chunk per call: submitted at once
        CHECK(frames.use_count() == 2);  // this test's and the queued group's
    }
    loaded.set_exception(std::make_exception_ptr(Error(ErrorCode::Weights, "not loaded (test)")));
    workers.reset();  // stops the worker; its queued group goes with it
    CHECK(frames.use_count() == 1);
}

// The order in which a one-worker queue of single-chunk groups writes `count` chunks of the tiny models, as events
// ("chunk K"), with what the hooks add: `before_add(queue, k)` before chunk k is added (the render's packing), and
// `at_cut` as the render's cut. Chunk k has faces if `has_faces(k)`.
static std::string queue_events(int64_t count, const std::function<bool(int64_t)>& has_faces,
                                const std::function<void(ChunkQueue&, int64_t, std::vector<std::string>&)>& before_add,
                                bool cut) {
    const RenderModels models = test::tiny_random_models();
    const int64_t r = models.resolution;
    DiffusionSettings settings;
    settings.steps = 1;
    const auto chunks = test::random_chunks(count, r, models.unet->config().cross_attention_dim, false);
    std::vector<std::future<ChunkWorkerSetup>> ready;
    ready.push_back(ChunkWorkers::ready(test::worker_setup(models, test::upper_half_mask(r), settings, 1)));
    ChunkWorkers workers(std::move(ready), false, false, [](const std::string&) {});
    std::vector<std::string> events;
    ChunkQueue queue(workers, 1, false, [&](PendingChunk& p, const ChunkTrace*) {
        events.push_back("chunk " + std::to_string(p.first / kFramesPerChunk));
    });
    for (int64_t k = 0; k < count; ++k) {
        if (before_add) before_add(queue, k, events);
        PendingChunk p;
        p.first = k * kFramesPerChunk;
        p.frames.assign(kFramesPerChunk, torch::zeros({r + 32, r + 32, 3}, torch::kUInt8));
        if (has_faces(k)) {
            for (int64_t row = 0; row < kFramesPerChunk; ++row) p.rows.push_back(row);
            p.in = chunks[static_cast<size_t>(k)];
        }
        queue.add(std::move(p));
    }
    if (cut)
        queue.finish([&] { events.push_back("cut"); });
    else
        queue.finish();
    std::string all;
    for (const auto& e : events) all += (all.empty() ? "" : ", ") + e;
    return all;
}

TEST_CASE("chunk queue: the render's cut comes after every group but the last, if the last has faces", "[render]") {
    // The render ends its segment there (x264 drains while the GPU renders the last group): after the earlier
    // groups' frames, before the last group's, and not at all when the last group is only passed through.
    CHECK(queue_events(3, [](int64_t) { return true; }, {}, true) == "chunk 0, chunk 1, cut, chunk 2");
    CHECK(queue_events(3, [](int64_t k) { return k < 2; }, {}, true) == "chunk 0, chunk 1, chunk 2");
}

TEST_CASE("chunk queue: a quiet first group is written before the third group is packed, and only the first",
          "[render]") {
    // LSYNC_QUIET_FIRST_GROUP: with one worker two groups may be in flight; until the first has come back, the
    // render waits for it before packing another (here: before adding chunk 2), then packs ahead as before.
    const auto faces = [](int64_t) { return true; };
    const auto packing = [](bool quiet) {
        return [quiet](ChunkQueue& queue, int64_t k, std::vector<std::string>& events) {
            if (quiet) queue.make_room_before_first_result();
            events.push_back("pack " + std::to_string(k));
        };
    };
    CHECK(queue_events(4, faces, packing(false), false) ==
          "pack 0, pack 1, pack 2, chunk 0, pack 3, chunk 1, chunk 2, chunk 3");
    CHECK(queue_events(4, faces, packing(true), false) ==
          "pack 0, pack 1, chunk 0, pack 2, pack 3, chunk 1, chunk 2, chunk 3");
}

TEST_CASE("chunk workers: a device whose models fail to load fails the render instead of hanging it", "[render]") {
    // Both workers' models fail (as a second GPU's would, loading after the render started): no worker ever
    // runs the group, and take() must return with the load's error, not wait for a result.
    std::vector<std::future<pipeline::ChunkWorkerSetup>> loading;
    for (int k = 0; k < 2; ++k) {
        std::promise<pipeline::ChunkWorkerSetup> p;
        p.set_exception(std::make_exception_ptr(Error(ErrorCode::Weights, "UNet checkpoint not found (test)")));
        loading.push_back(p.get_future());
    }
    pipeline::ChunkWorkers workers(std::move(loading), false, false, [](const std::string&) {});
    CHECK(workers.workers() == 2);
    workers.submit({pipeline::ChunkFrames{}});
    try {
        workers.take();
        FAIL("take() returned without the load error");
    } catch (const Error& e) {
        CHECK(e.code() == ErrorCode::Weights);
        CHECK(std::string(e.what()).find("not found (test)") != std::string::npos);
    }
    // With no group submitted at all (a video without faces), the end of the render still sees the error.
    std::vector<std::future<pipeline::ChunkWorkerSetup>> failing;
    std::promise<pipeline::ChunkWorkerSetup> p;
    p.set_exception(std::make_exception_ptr(Error(ErrorCode::Weights, "VAE not found (test)")));
    failing.push_back(p.get_future());
    pipeline::ChunkWorkers idle(std::move(failing), false, false, [](const std::string&) {});
    CHECK_THROWS_AS(idle.wait_loaded(), Error);
}

TEST_CASE("worker warm-up: a kit offered is taken once, withdrawn if closed first, waited for if taken",
          "[render]") {
    SECTION("offered, taken, done") {
        WorkerWarmUp w;
        w.offer(WarmUpKit{});
        const auto kit = w.take();
        CHECK(kit.has_value());
        CHECK_FALSE(w.ran());
        w.done(true);
        w.close();  // returns at once: the warm-up is over
        CHECK(w.ran());
    }
    SECTION("closed before an offer: the worker gets nothing, a later offer is dropped") {
        WorkerWarmUp w;
        w.close();
        w.offer(WarmUpKit{});
        CHECK_FALSE(w.take().has_value());
        w.done(true);  // nothing was taken: no effect
        CHECK_FALSE(w.ran());
    }
    SECTION("offered but closed before the worker took it: withdrawn") {
        WorkerWarmUp w;
        w.offer(WarmUpKit{});
        w.close();
        CHECK_FALSE(w.take().has_value());
    }
    SECTION("close waits for the worker that took the kit") {
        WorkerWarmUp w;
        w.offer(WarmUpKit{});
        REQUIRE(w.take().has_value());
        std::atomic<bool> finished{false};
        bool finished_seen_by_close = false;
        std::thread loading([&] {
            w.close();
            finished_seen_by_close = finished.load();
        });
        std::this_thread::sleep_for(std::chrono::milliseconds(50));  // a close that did not wait returns here
        finished = true;
        w.done(false);
        loading.join();
        CHECK(finished_seen_by_close);
        CHECK_FALSE(w.ran());  // done(false): the warm-up failed
    }
}

TEST_CASE("worker warm-up: a worker runs the stages without a UNet before its models, then its groups",
          "[render]") {
    const RenderModels models = test::tiny_random_models();
    const int64_t r = models.resolution;
    const auto mask = test::upper_half_mask(r);
    // The stages without a UNet: every frame of the group comes back, with the frame's size.
    RenderModels vae_only;
    vae_only.vae = models.vae;
    vae_only.resolution = r;
    LipsyncChunk stages(vae_only, mask, DiffusionSettings{}, seeded_noise(0));
    CHECK_FALSE(stages.pads_batches());
    const auto chunks = test::random_chunks(2, r, models.unet->config().cross_attention_dim, false);
    const auto out = stages.run_batch(chunks);
    REQUIRE(out.size() == 2);
    CHECK(out[0].sizes() == chunks[0].frames.sizes());
    CHECK(out[0].scalar_type() == torch::kUInt8);

    // Through ChunkWorkers: the kit offered before the setup is ready is run first, on the worker's thread, with a
    // VAE of its own.
    auto warm = std::make_shared<WorkerWarmUp>();
    WarmUpKit kit;
    kit.vae = vae_config_for(ModelVariant::TestTiny);
    kit.resolution = static_cast<int>(r);
    kit.mask = mask;
    kit.chunks = 2;
    kit.frame_height = 96;  // smaller than the crop: the align and the paste still work on whole frames
    kit.frame_width = 160;
    CHECK_NOTHROW(run_warm_up(kit));
    std::promise<ChunkWorkerSetup> setup;
    std::vector<std::future<ChunkWorkerSetup>> loading;
    loading.push_back(setup.get_future());
    DiffusionSettings settings;
    settings.steps = 2;
    ChunkWorkers workers(std::move(loading), false, false, [](const std::string&) {}, false, {warm});
    CHECK_FALSE(workers.first_loaded());
    warm->offer(kit);
    // The loading thread closes the offer once the UNet is loaded; here once the worker took the kit (a kit not
    // taken by then is withdrawn: the handshake test above).
    for (int i = 0; i < 2000 && !warm->taken(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    REQUIRE(warm->taken());
    warm->close();  // waits for the warm-up under way
    CHECK(warm->ran());
    setup.set_value(test::worker_setup(models, mask, settings, 1));
    const FirstSetup first = workers.first_setup();
    CHECK(first.batch == 1);
    CHECK(workers.first_loaded());
    CHECK(workers.warmed_up() == 1);
    auto group = test::random_chunks(1, r, models.unet->config().cross_attention_dim, false);
    workers.submit(group);
    const auto result = workers.take();
    REQUIRE(result.frames.size() == 1);
    CHECK(result.frames[0].size(0) == kFramesPerChunk);
}

TEST_CASE("worker warm-up: the UNet's twin is taken after the kit, before the close, or not at all", "[render]") {
    const auto tiny = test::tiny_random_models();
    const auto twin = [&] { return unet_twin_parts(tiny.unet, torch::kCPU, torch::kFloat); };
    SECTION("offered while the worker runs the first part: taken, run, done") {
        WorkerWarmUp w;
        w.offer(WarmUpKit{});
        REQUIRE(w.take().has_value());
        w.offer_unet(twin());
        const auto unet = w.take_unet();
        CHECK(unet.has_value());
        w.unet_done(true);
        w.done(true);
        w.close();
        CHECK(w.ran());
        CHECK(w.ran_unet());
    }
    SECTION("offered before the worker took the kit: kept for it") {
        WorkerWarmUp w;
        w.offer(WarmUpKit{});
        w.offer_unet(twin());
        REQUIRE(w.take().has_value());
        CHECK(w.take_unet().has_value());
    }
    SECTION("the close comes first: the worker stops waiting for a twin") {
        WorkerWarmUp w;
        w.offer(WarmUpKit{});
        REQUIRE(w.take().has_value());
        std::optional<UNetTwinParts> taken = twin();
        std::thread worker([&] {
            taken = w.take_unet();  // waits: nothing offered yet
            w.done(true);
        });
        std::this_thread::sleep_for(std::chrono::milliseconds(30));
        w.close();  // wakes the worker, then waits for its done()
        worker.join();
        CHECK_FALSE(taken.has_value());
        CHECK_FALSE(w.ran_unet());
    }
    SECTION("offered, then closed before the worker asked: not run (the loading thread would wait for it)") {
        WorkerWarmUp w;
        w.offer(WarmUpKit{});
        REQUIRE(w.take().has_value());
        w.offer_unet(twin());
        std::thread loading([&] { w.close(); });
        for (int i = 0; i < 4000 && !w.closing(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
        REQUIRE(w.closing());
        CHECK_FALSE(w.take_unet().has_value());
        w.done(true);
        loading.join();
    }
    SECTION("no kit: no twin") {
        WorkerWarmUp w;
        w.offer_unet(twin());
        w.close();
        CHECK_FALSE(w.take().has_value());
        CHECK_FALSE(w.take_unet().has_value());
    }
}

TEST_CASE("worker warm-up: the UNet's twin shares the placed weights, and a loader fills them under it", "[render]") {
    // The hook sees the UNet between its placement and the writing of its weights, once, for random weights and
    // for a checkpoint alike; the twin made there reads the same memory and has buffers of its own.
    const test::ScratchDir dir("warm_up_twin");
    for (const bool from_file : {false, true}) {
        CAPTURE(from_file);
        const std::string file = (dir.path() / "unet.safetensors").string();
        if (from_file) {
            const auto unet = random_unet_for(ModelVariant::TestTiny, torch::kCPU, torch::kFloat);
            io::write_safetensors(file, io::module_tensors(*unet), {}, true);
        }
        ModelRequest request;
        request.variant = ModelVariant::TestTiny;
        request.random_weights = true;
        if (from_file) request.unet_path = file;
        int calls = 0;
        models::UNet3DConditionModel twin{nullptr};
        request.on_unet_placed = [&](const models::UNet3DConditionModel& placed) {
            ++calls;
            twin = make_warm_up_twin(unet_twin_parts(placed, torch::kCPU, torch::kFloat));
        };
        const auto loaded = load_render_models(request);
        CHECK(calls == 1);
        REQUIRE(twin);
        const auto mine = twin->named_parameters(true);
        const auto theirs = loaded.unet->named_parameters(true);
        REQUIRE(mine.size() == theirs.size());
        for (const auto& p : theirs) {
            const auto& t = mine[p.key()];
            CHECK(t.data_ptr() == p.value().data_ptr());  // the same memory: the loader's writes are the twin's
            CHECK(torch::equal(t, p.value()));
        }
        for (const auto& b : loaded.unet->named_buffers(true)) {
            const auto& t = twin->named_buffers(true)[b.key()];
            CHECK(t.data_ptr() != b.value().data_ptr());  // its own: the loader may replace the placed module's
            CHECK(torch::equal(t, b.value()));  // pe: computed, and the file holds the same values
        }
        CHECK(twin.ptr() != loaded.unet.ptr());
        CHECK(twin_holds_loaded_weights(twin, loaded.unet));
        // The parts hold handles of their own: the loader replacing one of its tensors does not reach them.
        const auto parts = unet_twin_parts(loaded.unet, torch::kCPU, torch::kFloat);
        REQUIRE(!parts.parameters.empty());
        CHECK(parts.parameters.front().second.unsafeGetTensorImpl() !=
              loaded.unet->named_parameters(true)[parts.parameters.front().first].unsafeGetTensorImpl());
        // A parameter the loader had replaced instead of writing it in place, a buffer of another shape, another
        // UNet: the twin's graphs would read other memory, so they are not adopted.
        auto moved = make_warm_up_twin(unet_twin_parts(loaded.unet, torch::kCPU, torch::kFloat));
        CHECK(twin_holds_loaded_weights(moved, loaded.unet));
        moved->conv_in->weight.set_data(moved->conv_in->weight.clone());
        CHECK_FALSE(twin_holds_loaded_weights(moved, loaded.unet));
        auto odd_buffer = make_warm_up_twin(unet_twin_parts(loaded.unet, torch::kCPU, torch::kFloat));
        auto buffers = odd_buffer->named_buffers(true);
        REQUIRE(buffers.size() > 0);
        buffers.begin()->value().set_data(torch::zeros({1}));
        CHECK_FALSE(twin_holds_loaded_weights(odd_buffer, loaded.unet));
        CHECK_FALSE(twin_holds_loaded_weights(twin, test::tiny_random_models().unet));
        // On the CPU nothing runs as graphs: nothing to adopt, and the runner keeps its own denoiser.
        PrimedUNet primed{twin, make_graphed_denoiser(twin, false), std::make_shared<GraphCounts>(), 1};
        LipsyncChunk runner(loaded, test::upper_half_mask(loaded.resolution), DiffusionSettings{}, seeded_noise(0));
        CHECK_FALSE(adopt_primed_unet(primed, runner, loaded.unet, 1));
    }
}

TEST_CASE("worker warm-up: a worker runs the UNet's twin too, and its groups are as a cold worker's", "[render]") {
    const RenderModels models = test::tiny_random_models();
    const int64_t r = models.resolution;
    const auto mask = test::upper_half_mask(r);
    DiffusionSettings settings;
    settings.steps = 3;
    const auto audio_dim = models.unet->config().cross_attention_dim;
    WarmUpKit kit;
    kit.vae = vae_config_for(ModelVariant::TestTiny);
    kit.resolution = static_cast<int>(r);
    kit.mask = mask;
    kit.chunks = 2;
    kit.frame_height = 96;
    kit.frame_width = 160;
    kit.diffusion = settings;
    kit.audio_dim = audio_dim;
    const auto group = test::random_chunks(2, r, audio_dim, false);
    const auto run = [&](bool warm_up) {
        auto warm = std::make_shared<WorkerWarmUp>();
        std::promise<ChunkWorkerSetup> setup;
        std::vector<std::future<ChunkWorkerSetup>> loading;
        loading.push_back(setup.get_future());
        ChunkWorkers workers(std::move(loading), false, false, [](const std::string&) {}, false, {warm});
        if (warm_up) {
            warm->offer(kit);
            // As the loading thread does: the twin once the weights are placed (here: over the loaded ones).
            warm->offer_unet(unet_twin_parts(models.unet, torch::kCPU, torch::kFloat));
            for (int i = 0; i < 4000 && !warm->ran_unet(); ++i)
                std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
        warm->close();
        CHECK(warm->ran() == warm_up);
        CHECK(warm->ran_unet() == warm_up);
        setup.set_value(test::worker_setup(models, mask, settings, 2));
        CHECK(workers.warmed_up_unets() == (warm_up ? 1 : 0));
        auto g = group;
        for (auto& c : g) c.frames = c.frames.clone();
        workers.submit(g);
        return workers.take().frames;
    };
    const auto cold = run(false);
    const auto warm = run(true);
    REQUIRE(cold.size() == 2);
    REQUIRE(warm.size() == 2);
    // The twin's DeepCache state and attention context are its own: the loaded UNet's first group is unchanged.
    CHECK(torch::equal(cold[0], warm[0]));
    CHECK(torch::equal(cold[1], warm[1]));
}

TEST_CASE("worker warm-up: a kit without the UNet's part ends after the stages around it, not at the close",
          "[render]") {
    const RenderModels models = test::tiny_random_models();
    const int64_t r = models.resolution;
    WarmUpKit kit;
    kit.vae = vae_config_for(ModelVariant::TestTiny);
    kit.resolution = static_cast<int>(r);
    kit.mask = test::upper_half_mask(r);
    kit.chunks = 2;
    kit.frame_height = 96;
    kit.frame_width = 160;
    kit.audio_dim = models.unet->config().cross_attention_dim;
    kit.unet = false;  // LSYNC_WARM_UP_UNET=0
    auto warm = std::make_shared<WorkerWarmUp>();
    std::promise<ChunkWorkerSetup> setup;
    std::vector<std::future<ChunkWorkerSetup>> loading;
    loading.push_back(setup.get_future());
    ChunkWorkers workers(std::move(loading), false, false, [](const std::string&) {}, false, {warm});
    warm->offer(kit);
    // With the UNet's part the worker would wait here for a twin or the close; without it, it is done on its own.
    for (int i = 0; i < 4000 && !warm->ran(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    CHECK(warm->ran());
    CHECK_FALSE(warm->closing());
    // A twin offered now finds no worker waiting for it.
    warm->offer_unet(unet_twin_parts(models.unet, torch::kCPU, torch::kFloat));
    warm->close();
    CHECK_FALSE(warm->ran_unet());
    setup.set_value(test::worker_setup(models, kit.mask, DiffusionSettings{}, 2));
    CHECK(workers.warmed_up() == 1);
    CHECK(workers.warmed_up_unets() == 0);
}

TEST_CASE("worker warm-up: a worker whose kit never comes goes on to its setup, and its load error", "[render]") {
    auto warm = std::make_shared<WorkerWarmUp>();
    std::promise<ChunkWorkerSetup> setup;
    std::vector<std::future<ChunkWorkerSetup>> loading;
    loading.push_back(setup.get_future());
    ChunkWorkers workers(std::move(loading), false, false, [](const std::string&) {}, false, {warm});
    warm->close();  // the load failed before the VAE: nothing offered
    setup.set_exception(std::make_exception_ptr(Error(ErrorCode::Weights, "VAE not found (test)")));
    CHECK_THROWS_AS(workers.first_setup(), Error);
    CHECK(workers.warmed_up() == 0);
}

TEST_CASE("GPU busy: the union of activity intervals, overlaps counted once", "[bench]") {
    using diagnostics::covered_seconds;
    CHECK(covered_seconds({}) == 0.0);
    CHECK(covered_seconds({{0, 1000000000}}) == Approx(1.0));
    // Two streams overlapping (0-3 and 2-5 s), a gap, one inside another, given out of order.
    const std::vector<std::pair<int64_t, int64_t>> spans = {
        {7000000000, 8000000000}, {2000000000, 5000000000}, {0, 3000000000}, {7200000000, 7300000000}};
    CHECK(covered_seconds(spans) == Approx(6.0));
    // Touching intervals join; empty and inverted ones add nothing.
    CHECK(covered_seconds({{0, 10}, {10, 20}, {30, 30}, {50, 40}}) == Approx(20e-9));
    // The second window (after the first frames): only the parts inside it count.
    CHECK(diagnostics::covered_seconds_between(spans, 2500000000, 7250000000) == Approx(2.5 + 0.25));
    CHECK(diagnostics::covered_seconds_between(spans, 5000000000, 7000000000) == 0.0);
    // Nothing to record without a GPU: the recorder is inert and reports no device.
    diagnostics::DeviceBusyRecorder idle(false);
    idle.mark_start();
    idle.mark_first_output();
    idle.mark_end();
    CHECK(idle.stop().empty());
    diagnostics::DeviceBusy b;
    b.busy_seconds = 9;
    b.window_seconds = 10;
    CHECK(b.fraction() == Approx(0.9));
    CHECK(diagnostics::DeviceBusy{}.fraction() == 0.0);
    b.busy_after_first_seconds = 7.6;
    b.after_first_window_seconds = 8;
    CHECK(b.fraction_after_first() == Approx(0.95));
    CHECK(diagnostics::DeviceBusy{}.fraction_after_first() == 0.0);
}

TEST_CASE("GPU idle: each gap charged to its launching thread's stage and op", "[bench]") {
    using diagnostics::attribute_idle;
    const int64_t us = 1000;
    // Thread 1 launches everything but one copy; thread 2 runs ops of its own at the same times.
    const std::vector<diagnostics::DeviceActivity> acts = {
        {0, 100 * us, 1},          // the window opens busy
        {300 * us, 400 * us, 1},   // after a 180 us gap (the busy reach is 120 us) while thread 1 concatenated
        {50 * us, 120 * us, 1},    // another stream, overlapping the first: no gap
        {405 * us, 450 * us, 1},   // 5 us after: a short gap
        {800 * us, 900 * us, 1},   // after a 350 us gap with no op on thread 1
        {950 * us, 960 * us, 0},   // launched by a thread the profiler did not name
        {985 * us, 990 * us, 1, 500 * us},  // launched long before: it waited on something else
    };
    const std::vector<diagnostics::HostSpan> spans = {
        {1, 0, 460 * us, "lsync::unet"},
        {1, 150 * us, 250 * us, "aten::cat"},
        {1, 190 * us, 210 * us, "aten::empty"},  // innermost at the gap's middle (210 us)
        {1, 470 * us, 1000 * us, "lsync::vae_decode"},
        {2, 0, 1000 * us, "lsync::align"},
        {2, 500 * us, 700 * us, "aten::copy_"},
    };
    const auto idle = attribute_idle(acts, spans, 0, 1000 * us);
    std::map<std::string, double> by;
    double total = 0;
    for (const auto& s : idle) {
        by[s.where] = s.seconds;
        total += s.seconds;
    }
    CHECK(by.at("lsync::unet > aten::empty") == Approx(180e-6));
    CHECK(by.at("(gaps under 20 us)") == Approx(5e-6));
    CHECK(by.at("lsync::vae_decode > (between ops)") == Approx(350e-6));
    CHECK(by.at("(launching thread unknown)") == Approx(50e-6));
    CHECK(by.at("(queued before the gap: waiting on another stream or a copy)") == Approx(25e-6));
    CHECK(by.at("(no later activity in the window)") == Approx(10e-6));
    CHECK(by.size() == 6);
    // Idle and busy fill the window exactly.
    std::vector<std::pair<int64_t, int64_t>> busy;
    for (const auto& a : acts) busy.push_back({a.start_ns, a.end_ns});
    CHECK(total + diagnostics::covered_seconds(busy) == Approx(1000e-6));
    CHECK(idle.front().where == "lsync::vae_decode > (between ops)");  // largest first
    // Activities and spans outside the window count only inside it; an empty window has no idle time.
    const auto inside = attribute_idle(acts, spans, 300 * us, 420 * us);
    double inside_total = 0;
    for (const auto& s : inside) inside_total += s.seconds;
    CHECK(inside_total == Approx(5e-6));
    CHECK(attribute_idle(acts, spans, 500 * us, 500 * us).empty());
    CHECK(attribute_idle({}, {}, 0, 10 * us).front().where == "(no later activity in the window)");
}

TEST_CASE("first group's host time: each op's own time by stage, against a later group's average", "[bench]") {
    using diagnostics::HostSpan;
    const int64_t us = 1000;
    // Worker thread 1: a pre-warm before any group, then three groups (upload ... download). The first group's
    // convolution takes 300 us of its own (a nested op 100 of them), the later ones 30 and 50; the first group's
    // UNet stage has 40 us of its own code, the later ones 10. Thread 2's ops are not the worker's.
    std::vector<HostSpan> spans = {
        {1, 0, 500 * us, "aten::cudnn_convolution"},  // the pre-warm: outside every group
        {2, 1000 * us, 2000 * us, "aten::copy_"},
    };
    const auto group = [&](int64_t at, int64_t conv_own, int64_t stage_own, bool nested) {
        spans.push_back({1, at, at + 10 * us, "lsync::upload"});
        const int64_t conv = conv_own + (nested ? 100 * us : 0);
        spans.push_back({1, at + 10 * us, at + 10 * us + conv + stage_own, "lsync::unet"});
        spans.push_back({1, at + 10 * us, at + 10 * us + conv, "aten::cudnn_convolution"});
        if (nested) spans.push_back({1, at + 20 * us, at + 120 * us, "aten::empty"});
        const int64_t end = at + 10 * us + conv + stage_own;
        spans.push_back({1, end, end + 5 * us, "lsync::download"});
    };
    group(1000 * us, 200 * us, 40 * us, true);
    group(2000 * us, 30 * us, 10 * us, false);
    group(3000 * us, 50 * us, 10 * us, false);
    const auto shares = diagnostics::first_group_host_time(spans, 1);
    std::map<std::string, diagnostics::GroupHostShare> by;
    for (const auto& s : shares) by[s.where] = s;
    CHECK(by.at("lsync::unet > aten::cudnn_convolution").first_seconds == Approx(200e-6));
    CHECK(by.at("lsync::unet > aten::cudnn_convolution").later_seconds == Approx(40e-6));
    CHECK(by.at("lsync::unet > aten::empty").first_seconds == Approx(100e-6));
    CHECK(by.at("lsync::unet > aten::empty").later_seconds == 0.0);
    CHECK(by.at("lsync::unet > (between ops)").first_seconds == Approx(40e-6));
    CHECK(by.at("lsync::unet > (between ops)").later_seconds == Approx(10e-6));
    CHECK(by.at("lsync::upload > (between ops)").excess() == Approx(0.0));
    CHECK(by.count("(no stage) > aten::cudnn_convolution") == 0);  // the pre-warm is before the first group
    CHECK(by.count("(no stage) > aten::copy_") == 0);             // another thread
    CHECK(shares.front().where == "lsync::unet > aten::cudnn_convolution");  // the largest excess first
    // One group alone has nothing to compare with; nor has a thread without groups.
    const std::vector<HostSpan> one(spans.begin(), spans.begin() + 7);
    CHECK(diagnostics::first_group_host_time(one, 1).empty());
    CHECK(diagnostics::first_group_host_time(spans, 2).empty());
}

TEST_CASE("kernel profile: kernel names fall into the families the benchmarks sum", "[bench]") {
    using diagnostics::kernel_family;
    // Names as CUPTI reports them on an H200 (cuBLAS, cuDNN, FlashAttention, ATen, ours).
    CHECK(kernel_family("nvjet_hsh_256x128_64x4_1x2_h_bz_coopA_NTT") == "gemm");
    CHECK(kernel_family("sm90_xmma_gemm_f16f16_f16f32_f32_tn_n_tilesize128x256x64") == "gemm");
    CHECK(kernel_family("sm90_xmma_fprop_implicit_gemm_f16f16_f16f32_f32_nhwckrsc_nhwc") == "conv");
    CHECK(kernel_family("void pytorch_flash::flash_fwd_kernel<Flash_fwd_kernel_traits<64>>") == "attention");
    CHECK(kernel_family("fmha_cutlassF_f16_aligned_64x64_rf_sm80") == "attention");
    CHECK(kernel_family("void lsync::kernels::group_norm_apply<__half>") == "group_norm");
    CHECK(kernel_family("void lsync::kernels::nhwc::residual_stats<__half, 8, true>(__half*)") == "group_norm");
    CHECK(kernel_family("void lsync::kernels::im2col_rows<__half>(__half const*)") == "conv");
    CHECK(kernel_family("void at::native::(anonymous namespace)::vectorized_layer_norm_kernel<c10::Half>") ==
          "layer_norm");
    CHECK(kernel_family("void at::native::elementwise_kernel<128, 4, direct_copy_kernel_cuda>") == "copy");
    CHECK(kernel_family("void at::native::vectorized_elementwise_kernel<4, GeluCUDAKernelImpl>") == "elementwise");
    CHECK(kernel_family("void at::native::reduce_kernel<512, 1>") == "reduce");
    CHECK(kernel_family("cudnn::engines_precompiled::nchwToNhwcKernel<__half, __half, float, false, true>") ==
          "conv_layout");
    CHECK(kernel_family("void lsync::kernels::geglu_kernel<__half, 8, unsigned int>") == "elementwise");
    CHECK(kernel_family("lsync::kernels::transpose_tiles<__half, true>") == "copy");
    CHECK(kernel_family("something_else") == "other");
    // Off the GPU the profile says why it has nothing, instead of an empty table.
    const auto p = diagnostics::profile_kernels([] {}, torch::kCPU);
    CHECK_FALSE(p.available);
    CHECK(diagnostics::format_kernel_profile(p, "x").find("no kernel profile") != std::string::npos);
}

TEST_CASE("bench render: FLOPs per frame follow the steps as the loop runs them (DeepCache, CFG, size)", "[render][bench]") {
    using diagnostics::render_flops;
    // The reference's per-output-frame totals (section 8.1): 20 steps, CFG, DeepCache 7 full + 13 shallow.
    const auto dc256 = render_flops(256, 20, 1.5, true), dc512 = render_flops(512, 20, 1.5, true);
    REQUIRE(dc256);
    REQUIRE(dc512);
    CHECK(dc256->full_steps == 7);
    CHECK(dc256->shallow_steps == 13);
    CHECK(dc256->branches == 2);
    CHECK(dc256->unet_tflop == Approx(4.2).margin(0.05));
    CHECK(dc512->unet_tflop == Approx(18.5).margin(0.05));
    CHECK(dc256->vae_tflop == Approx(1.17).margin(0.005));
    CHECK(dc512->vae_tflop == Approx(4.75).margin(0.005));
    // Without DeepCache every step is a full forward: 10.1 / 44.1 TFLOP.
    const auto full256 = render_flops(256, 20, 1.5, false), full512 = render_flops(512, 20, 1.5, false);
    REQUIRE(full256);
    REQUIRE(full512);
    CHECK(full256->full_steps == 20);
    CHECK(full256->shallow_steps == 0);
    CHECK(full256->unet_tflop == Approx(10.1).margin(0.05));
    CHECK(full512->unet_tflop == Approx(44.1).margin(0.05));
    CHECK(full512->vae_tflop == Approx(dc512->vae_tflop));  // the VAE does not depend on the schedule
    CHECK(full256->total_tflop() == Approx(full256->unet_tflop + full256->vae_tflop));
    // Guidance 1 runs the conditional branch alone: half the UNet.
    const auto no_cfg = render_flops(256, 20, 1.0, true);
    REQUIRE(no_cfg);
    CHECK(no_cfg->branches == 1);
    CHECK(no_cfg->unet_tflop == Approx(dc256->unet_tflop / 2));
    // A full forward every 3 steps from step 0: 10 steps give 4 full and 6 shallow.
    const auto ten = render_flops(256, 10, 1.5, true);
    REQUIRE(ten);
    CHECK(ten->full_steps == 4);
    CHECK(ten->shallow_steps == 6);
    // No published counts for the test model's size.
    CHECK_FALSE(render_flops(128, 20, 1.5, true));
}

TEST_CASE("first-use journal: kept and read back under its key, damaged or hostile files are ignored", "[render]") {
    test::ScratchDir dir("first_use");
    ops::ConvShape a;
    a.input = {64, 320, 32, 32};
    a.weight = {320, 320, 3, 3};
    a.input_channels_last = a.weight_channels_last = true;
    a.dtype = torch::kHalf;
    a.padding = 1;
    ops::ConvShape b = a;
    b.input = {8, 4, 256, 256};
    b.weight = {128, 4, 1, 1};
    b.input_channels_last = false;
    b.dtype = torch::kBFloat16;
    b.stride = 2;
    b.padding = 0;
    const std::string key = first_use_key("1.5", torch::kHalf, torch::kCPU);
    CHECK(key.find("1.5") != std::string::npos);
    CHECK(first_use_key("1.6", torch::kHalf, torch::kCPU) != key);
    // Renders whose first groups meet other shapes keep journals of their own: other chunks per call, attention,
    // guidance, DeepCache, or a measurement switch set; the journal's folder is not one of them.
    const auto settings = first_use_settings("flash", 2, true, true);
    CHECK(first_use_key("1.5", torch::kHalf, torch::kCPU, settings) != key);
    for (const auto& other : {first_use_settings("standard", 2, true, true), first_use_settings("flash", 1, true, true),
                              first_use_settings("flash", 2, false, true), first_use_settings("flash", 2, true, false)})
        CHECK(first_use_key("1.5", torch::kHalf, torch::kCPU, other) != first_use_key("1.5", torch::kHalf, torch::kCPU, settings));
    ::setenv("LSYNC_VAE_IMAGES", "4", 1);
    CHECK(first_use_settings("flash", 2, true, true) != settings);
    CHECK(first_use_settings("flash", 2, true, true).find("LSYNC_VAE_IMAGES=4") != std::string::npos);
    ::unsetenv("LSYNC_VAE_IMAGES");
    ::setenv("LSYNC_FIRST_USE_DIR", dir.path().c_str(), 1);
    CHECK(first_use_settings("flash", 2, true, true) == settings);
    ::unsetenv("LSYNC_FIRST_USE_DIR");
    const auto path = first_use_path((dir.path() / "sub").string(), key);  // its folder is made
    CHECK(path == first_use_path((dir.path() / "sub").string(), key));
    CHECK(read_first_use_journal(path, key).empty());  // none yet
    ops::OpCall addmm;
    addmm.name = "aten::addmm";
    addmm.cuda = true;
    addmm.args = {{{"sizes", {320}}, {"strides", {1}}, {"offset", 0}, {"dtype", "float16"}},
                  {{"sizes", {65536, 320}}, {"strides", {320, 1}}, {"offset", 0}, {"dtype", "float16"}},
                  {{"sizes", {320, 320}}, {"strides", {1, 320}}, {"offset", 0}, {"dtype", "float16"}},
                  1,
                  1.0};
    ops::OpCall sum;
    sum.name = "aten::sum";
    sum.overload = "dim_IntList";
    sum.args = {{{"sizes", {2, 3}}, {"strides", {3, 1}}, {"offset", 4}, {"dtype", "float32"}}, {-1}, false, nullptr};
    REQUIRE(write_first_use_journal(path, key, {{a, b}, {addmm, sum}}));
    const auto back = read_first_use_journal(path, key);
    REQUIRE(back.convs.size() == 2);
    CHECK((back.convs[0] == a));
    CHECK((back.convs[1] == b));
    REQUIRE(back.ops.size() == 2);
    CHECK((back.ops[0] == addmm));
    CHECK((back.ops[1] == sum));
    CHECK(back.ops[0].args[4].is_number_float());  // a float stays a float (a Scalar's kind)
    CHECK(read_first_use_journal(path, key + " other").empty());  // another machine's or model's

    const auto with_text = [&](const std::string& text) {
        std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
        return read_first_use_journal(path, key);  // never throws
    };
    const std::string head = R"({"format":"latentsync-first-use","version":1,"key":)" + nlohmann::json(key).dump();
    const auto one = [&](const std::string& conv) { return with_text(head + R"(,"convs":[)" + conv + "]}").convs; };
    const std::string good =
        R"({"input":[2,8,16,16],"weight":[4,8,3,3],"layout":["nchw","nhwc"],"dtype":"float32","geometry":[1,1]})";
    CHECK(one(good).size() == 1);
    // The operations: a journal without them (the first version's) has none; one bad call and none are used.
    const auto with_op = [&](const std::string& op) {
        return with_text(head + R"(,"convs":[)" + good + R"(],"ops":[)" + op + "]}");
    };
    const std::string good_op = R"({"op":"aten::mm","overload":"","device":"cuda","args":[)"
                                R"({"sizes":[3,5],"strides":[5,1],"offset":0,"dtype":"float16"},)"
                                R"({"sizes":[5,7],"strides":[1,5],"offset":0,"dtype":"float16"}]})";
    CHECK(with_op(good_op).ops.size() == 1);
    CHECK(with_op(good_op).convs.size() == 1);
    for (const char* bad : {
             R"({"op":"aten::index_select","overload":"","device":"cuda","args":[)"
             R"({"sizes":[3],"strides":[1],"offset":0,"dtype":"float16"},0,)"
             R"({"sizes":[3],"strides":[1],"offset":0,"dtype":"int64"}]})",  // reads indices: not journaled
             R"({"op":"aten::mm","overload":"","device":"tpu","args":[)"
             R"({"sizes":[3,5],"strides":[5,1],"offset":0,"dtype":"float16"}]})",
             R"({"op":"aten::mm","overload":"","device":"cuda","args":[)"
             R"({"sizes":[65536,65536],"strides":[65536,1],"offset":0,"dtype":"float16"}]})",  // 2^32 elements
             R"({"op":"aten::mm","overload":"","device":"cuda","args":[)"
             R"({"sizes":[3,5],"strides":[5,-1],"offset":0,"dtype":"float16"}]})",
             R"({"op":"aten::mm","overload":"","device":"cuda","args":[)"
             R"({"sizes":[3,5],"strides":[5,1],"offset":268435455,"dtype":"float16"}]})",  // past the bound
             R"({"op":"aten::mm","overload":"","device":"cuda","args":[)"
             R"({"sizes":[3,5],"strides":[5,1],"offset":0,"dtype":"complex64"}]})",
             R"({"op":"aten::mm","overload":"","device":"cuda","args":[)"
             R"({"sizes":[1,1,1,1,1,1,1,1,1],"strides":[1,1,1,1,1,1,1,1,1],"offset":0,"dtype":"float16"}]})",
             R"({"op":"aten::mm","overload":"","device":"cuda","args":["a string"]})",
             R"({"op":"aten::mm","overload":"","device":"cuda","args":[99999999]})",
             R"({"op":"aten::mm","overload":"","device":"cuda","args":[[1,2.5]]})",
             R"({"op":"aten::mm","overload":"","device":"cuda","args":[3]})",  // no tensor
             R"({"op":"aten::mm","overload":"","device":"cuda"})"}) {
        INFO(bad);
        CHECK(with_op(good_op + "," + bad).empty());
    }
    std::string many_ops;
    for (size_t i = 0; i <= ops::OpJournal::kMaxCalls; ++i) many_ops += (i ? "," : "") + good_op;
    CHECK(with_op(many_ops).empty());
    CHECK(with_text("").empty());
    CHECK(with_text("not json").empty());
    CHECK(with_text(std::string(100000, '[')).empty());
    CHECK(with_text(R"({"format":"something else","version":1})").empty());
    CHECK(with_text(head + R"(,"convs":{}})").empty());
    CHECK(with_text(std::string(2 << 20, ' ')).empty());  // larger than 1 MiB
    for (const char* bad : {
             R"({"input":[2,8,16],"weight":[4,8,3,3],"layout":["nchw","nchw"],"dtype":"float32","geometry":[1,1]})",
             R"({"input":[2,9,16,16],"weight":[4,8,3,3],"layout":["nchw","nchw"],"dtype":"float32","geometry":[1,1]})",
             R"({"input":[0,8,16,16],"weight":[4,8,3,3],"layout":["nchw","nchw"],"dtype":"float32","geometry":[1,1]})",
             R"({"input":[65536,65536,16,16],"weight":[4,65536,3,3],"layout":["nchw","nchw"],"dtype":"float32",)"
             R"("geometry":[1,1]})",
             R"({"input":[2,8,16,16],"weight":[4,8,3,3],"layout":["nchw","nchw"],"dtype":"int8","geometry":[1,1]})",
             R"({"input":[2,8,16,16],"weight":[4,8,3,3],"layout":["nchw","nhwc?"],"dtype":"float32","geometry":[1,1]})",
             R"({"input":[2,8,16,16],"weight":[4,8,3,3],"layout":["nchw","nchw"],"dtype":"float32","geometry":[0,1]})",
             R"({"input":[2,8,2,2],"weight":[4,8,9,9],"layout":["nchw","nchw"],"dtype":"float32","geometry":[1,1]})",
             R"({"input":[2,8,16,16],"weight":[4,8,3,3],"layout":["nchw","nchw"],"dtype":"float32","geometry":[1,-1]})",
             R"({"input":[2,8,16,16.5],"weight":[4,8,3,3],"layout":["nchw","nchw"],"dtype":"float32",)"
             R"("geometry":[1,1]})",
             R"("a string")"}) {
        INFO(bad);
        CHECK(one(good + "," + bad).empty());  // one bad shape: none are used
    }
    std::string many;
    for (size_t i = 0; i <= ops::ConvJournal::kMaxShapes; ++i) many += (i ? "," : "") + good;
    CHECK(one(many).empty());
    // Nothing is written where it cannot be: a file where the folder should be.
    const auto blocked = first_use_path((dir.path() / "file" / "sub").string(), key);
    std::ofstream(dir.path() / "file") << "x";
    CHECK_FALSE(write_first_use_journal(blocked, key, {{a}, {}}));
    CHECK_FALSE(write_first_use_journal("", key, {{a}, {}}));

    ::setenv("LSYNC_FIRST_USE_DIR", dir.path().c_str(), 1);
    CHECK(first_use_dir() == dir.path().string());
    ::unsetenv("LSYNC_FIRST_USE_DIR");
    ::setenv("XDG_CACHE_HOME", "/xdg", 1);
    CHECK(first_use_dir() == "/xdg/latentsync/first-use");
    ::unsetenv("XDG_CACHE_HOME");
}

TEST_CASE("first-use journals: a folder keeps the 32 most recently used, and nothing else is touched", "[render]") {
    test::ScratchDir dir("first_use_prune");
    ops::ConvShape a;
    a.input = {2, 8, 16, 16};
    a.weight = {4, 8, 3, 3};
    a.padding = 1;
    const FirstUseJournal journal{{a}, {}};
    namespace fs = std::filesystem;
    const auto base = fs::file_time_type::clock::now() - std::chrono::hours(100);
    // 40 journals under other keys, each an hour newer than the one before; a user's file of the same kind of name
    // but not a journal's, and a journal-named folder.
    // (Copies of one written journal: writing each would prune as the folder fills.)
    std::vector<std::string> paths;
    for (int i = 0; i < 40; ++i) {
        paths.push_back(first_use_path(dir.path().string(), "key " + std::to_string(i)));
        if (i == 0) REQUIRE(write_first_use_journal(paths[0], "key 0", journal));
        else fs::copy_file(paths[0], paths[i]);
        fs::last_write_time(paths.back(), base + std::chrono::hours(i));
    }
    std::ofstream(dir.path() / "notes.json") << "{}";
    std::ofstream(dir.path() / "0123456789abcdef.json.bak") << "{}";
    std::ofstream(dir.path() / "0123456789ABCDEF.json") << "{}";  // upper case: not a name first_use_path makes
    fs::create_directories(dir.path() / "fedcba9876543210.json");
    fs::last_write_time(dir.path() / "notes.json", base - std::chrono::hours(1));
    fs::last_write_time(dir.path() / "0123456789ABCDEF.json", base - std::chrono::hours(1));  // removed first if taken
    // Reading the oldest marks it used.
    CHECK_FALSE(read_first_use_journal(paths[0], "key 0").empty());
    // Writing one more keeps 32 journals: the new one, the one read, and the 30 newest of the rest.
    const auto newest = first_use_path(dir.path().string(), "key new");
    REQUIRE(write_first_use_journal(newest, "key new", journal));
    size_t journals = 0;
    for (const auto& e : fs::directory_iterator(dir.path()))
        if (e.is_regular_file() && e.path().extension() == ".json" && e.path().filename() != "notes.json" &&
            e.path().filename() != "0123456789ABCDEF.json")
            ++journals;
    CHECK(journals == 32);
    CHECK(fs::exists(newest));
    CHECK(fs::exists(paths[0]));
    for (int i = 1; i <= 9; ++i) CHECK_FALSE(fs::exists(paths[i]));  // the nine least recently used
    for (int i = 10; i < 40; ++i) CHECK(fs::exists(paths[i]));
    CHECK(fs::exists(dir.path() / "notes.json"));
    CHECK(fs::exists(dir.path() / "0123456789abcdef.json.bak"));
    CHECK(fs::exists(dir.path() / "0123456789ABCDEF.json"));
    CHECK(fs::is_directory(dir.path() / "fedcba9876543210.json"));
    // Rewriting a journal when the folder is at its bound removes none but the least recently used beyond it.
    REQUIRE(write_first_use_journal(paths[20], "key 20", journal));
    CHECK(fs::exists(paths[10]));
}

TEST_CASE("first-use pre-warm: the first worker meets the shapes before its first group, hands its models over "
          "when they are ready, and stops when the render ends",
          "[render]") {
    ops::ConvShape s;
    s.input = {2, 8, 16, 16};
    s.weight = {4, 8, 3, 3};
    s.padding = 1;
    const auto loading_of = [](std::promise<ChunkWorkerSetup>& p) {
        std::vector<std::future<ChunkWorkerSetup>> loading;
        loading.push_back(p.get_future());
        return loading;
    };
    const auto eventually = [](const std::function<bool()>& done) {
        for (int i = 0; i < 2000 && !done(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(5));
        return done();
    };
    {
        // A slow load: every shape and call is met while it is under way; its failure still reaches the render.
        ops::OpCall mm;
        mm.name = "aten::mm";
        const nlohmann::json t = {{"sizes", {4, 4}}, {"strides", {4, 1}}, {"offset", 0}, {"dtype", "float32"}};
        mm.args = {t, t};
        std::promise<ChunkWorkerSetup> load;
        ChunkWorkers workers(loading_of(load), false, false, [](const std::string&) {}, false, {},
                             {{s, s, s}, {mm, mm}}, torch::kCPU);
        CHECK(eventually([&] { return workers.prewarmed_ops() == 2; }));
        CHECK(workers.prewarmed_convs() == 3);
        CHECK_FALSE(workers.first_loaded());
        load.set_exception(std::make_exception_ptr(Error(ErrorCode::Weights, "UNet not found (test)")));
        CHECK_THROWS_AS(workers.wait_loaded(), Error);
    }
    // A list that would take minutes on the CPU.
    ops::ConvShape large = s;
    large.input = {8, 64, 64, 64};
    large.weight = {64, 64, 3, 3};
    const FirstUseJournal many{std::vector<ops::ConvShape>(100000, large), {}};
    {
        // Models ready first: handed over at once, the render thread need not wait for the pre-warm.
        const RenderModels models = test::tiny_random_models();
        std::promise<ChunkWorkerSetup> load;
        load.set_value(test::worker_setup(models, test::upper_half_mask(models.resolution), DiffusionSettings{}, 1));
        const auto started = std::chrono::steady_clock::now();
        ChunkWorkers workers(loading_of(load), false, false, [](const std::string&) {}, false, {}, many,
                             torch::kCPU);
        CHECK(workers.first_setup().batch == 1);
        CHECK(std::chrono::steady_clock::now() - started < std::chrono::seconds(60));
    }  // and the render's end stops it between two shapes
    {
        // A load that fails at once ends the pre-warm too.
        std::promise<ChunkWorkerSetup> load;
        load.set_exception(std::make_exception_ptr(Error(ErrorCode::Weights, "VAE not found (test)")));
        const auto started = std::chrono::steady_clock::now();
        ChunkWorkers workers(loading_of(load), false, false, [](const std::string&) {}, false, {}, many,
                             torch::kCPU);
        CHECK_THROWS_AS(workers.wait_loaded(), Error);
        CHECK(std::chrono::steady_clock::now() - started < std::chrono::seconds(60));
    }
    {
        std::promise<ChunkWorkerSetup> load;
        load.set_exception(std::make_exception_ptr(Error(ErrorCode::Weights, "UNet not found (test)")));
        ChunkWorkers none(loading_of(load), false, false, [](const std::string&) {});
        CHECK_THROWS_AS(none.wait_loaded(), Error);
        CHECK(none.prewarmed_convs() == 0);
    }
    // A ConvJournal keeps each shape once and at most kMaxShapes.
    ops::ConvJournal journal;
    for (int64_t k = 1; k <= int64_t(ops::ConvJournal::kMaxShapes) + 10; ++k) {
        auto t = s;
        t.input[0] = k;
        journal.add(t);
        journal.add(t);
    }
    CHECK(journal.shapes().size() == ops::ConvJournal::kMaxShapes);
}

namespace {
// A sink that records what reached it: each frame's first byte, and -1 for each cut.
class RecordingSink : public lsync::pipeline::FrameSink {
public:
    explicit RecordingSink(std::vector<int>& log) : log_(log) {}
    void write(const torch::Tensor& rgb) override { log_.push_back(rgb[0][0][0].item<int>()); }
    void cut() override { log_.push_back(-1); }
    void finish() override { log_.push_back(-2); }

private:
    std::vector<int>& log_;
};
}  // namespace

TEST_CASE("async writer: frames and cuts reach the sink in order, with or without a trim every few frames",
          "[render]") {
    using lsync::pipeline::AsyncWriter;
    for (const size_t trim_every : {size_t{0}, size_t{1}, size_t{3}}) {
        std::vector<int> log;
        {
            AsyncWriter writer(std::make_unique<RecordingSink>(log), 2, trim_every);
            for (int i = 0; i < 10; ++i) {
                writer.write(torch::full({4, 4, 3}, i, torch::kUInt8));
                if (i == 6) writer.cut();
            }
            writer.finish();
        }
        CHECK(log == std::vector<int>{0, 1, 2, 3, 4, 5, 6, -1, 7, 8, 9, -2});
    }
}
