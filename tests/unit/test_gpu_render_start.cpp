// GPU check of a render's start (docs/performance-notes.md section 29): on a GPU the render thread packs its first
// chunks (frames, face plans, audio windows) with the Whisper encoder that loads before the UNet and the VAE,
// while those load. The chunks, their audio windows and every output frame must be those of a render that packs
// nothing before its models are ready and takes the Whisper with them (LSYNC_EARLY_PACK=0), bit for bit. The tiny
// models load in milliseconds, so the early render holds the UNet's load back (LSYNC_TEST_SLOW_MODELS_MS) and
// must report both chunks packed early.
// And the worker's warm-up while the UNet loads (worker_warm_up.h): a render whose worker ran its stages around
// the UNet once on zeros, then the UNet's twin while the UNet's weights were written (held back here by
// LSYNC_TEST_SLOW_UNET_FILL_MS), whose CUDA graphs it then renders with, must give the frames of one that did not
// (LSYNC_WARM_UP=0), bit for bit.
// And the face pass held during the first group (LSYNC_FACE_PASS_HOLD=1): it must hold, and change nothing but
// the timing.
// And the first-use journal (first_use_journal.h; on by default, off in tests unless asked for): the first render
// keeps the convolutions its first group met, the second's first worker meets them before its first group; its
// frames are the first's.
#include "catch_compat.h"
#include "render_tiny_fixture.h"
#include "test_util.h"

#include "pipeline/render.h"
#include "unit/gpu_checks.h"

#include <nlohmann/json.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>

using namespace lsync;
using namespace lsync::pipeline;

namespace {

struct Seen : RenderProbe {
    std::vector<torch::Tensor> windows;
    std::map<int64_t, torch::Tensor> generated;
    std::vector<torch::Tensor> frames;
    void audio(int64_t, const torch::Tensor& w) override { windows.push_back(w.cpu()); }
    void chunk(int64_t c, const std::vector<int64_t>&, const ChunkTrace& t) override {
        generated[c] = t.generated.cpu();
    }
    void frame(int64_t, const torch::Tensor& rgb) override { frames.push_back(rgb.clone()); }
};

struct EarlyPack {
    EarlyPack(bool on, bool warm_up) {
        ::setenv("LSYNC_EARLY_PACK", on ? "1" : "0", 1);
        ::setenv("LSYNC_WARM_UP", warm_up ? "1" : "0", 1);
        if (on || warm_up) ::setenv("LSYNC_TEST_SLOW_MODELS_MS", "1500", 1);
        if (warm_up) ::setenv("LSYNC_TEST_SLOW_UNET_FILL_MS", "3000", 1);
    }
    ~EarlyPack() {  // also when render() throws
        ::unsetenv("LSYNC_EARLY_PACK");
        ::unsetenv("LSYNC_WARM_UP");
        ::unsetenv("LSYNC_TEST_SLOW_MODELS_MS");
        ::unsetenv("LSYNC_TEST_SLOW_UNET_FILL_MS");
    }
};

Seen render_tiny(bool early, bool warm_up, const std::filesystem::path& out) {
    RenderOptions o = test::render_tiny_options(out, "cuda");
    o.seed = 7;
    Seen seen;
    o.probe = &seen;
    RenderObserver quiet;
    EarlyPack pack(early, warm_up);
    const auto summary = render(o, quiet);
    CHECK(summary.frames == static_cast<int64_t>(seen.frames.size()));
    CHECK(summary.early_chunks == (early ? 2 : 0));
    CHECK(summary.warmed_workers == (warm_up ? 1 : 0));
    CHECK(summary.warmed_unets == (warm_up ? 1 : 0));
    // 128 px runs as CUDA graphs: the twin's, made while the UNet loaded, serve the render, which captures none
    // (one shape: the short last chunk rides in the main one).
    CHECK(summary.primed_graph_workers == (warm_up ? 1 : 0));
    if (warm_up)
        CHECK(summary.render_graph_captures == 0);
    else
        CHECK(summary.render_graph_captures > 0);
    return seen;
}

void require_same(const Seen& a, const Seen& b) {
    REQUIRE(a.frames.size() == b.frames.size());
    REQUIRE(a.windows.size() == b.windows.size());
    for (size_t i = 0; i < b.windows.size(); ++i) {
        INFO("audio windows of chunk " << i);
        CHECK(torch::equal(a.windows[i], b.windows[i]));
    }
    REQUIRE(a.generated.size() == b.generated.size());
    for (const auto& [c, g] : b.generated) {
        INFO("generated faces of chunk " << c);
        CHECK(torch::equal(a.generated.at(c), g));
    }
    for (size_t i = 0; i < b.frames.size(); ++i) {
        INFO("frame " << i);
        CHECK(torch::equal(a.frames[i], b.frames[i]));
    }
}

}  // namespace

TEST_CASE("a GPU render's first chunks packed while the models load give the frames of one that waits",
          "[gpu][render]") {
    LSYNC_NEED_GPU();
    test::ScratchDir dir("gpu_render_start");
    const Seen waited = render_tiny(false, false, dir.path() / "waited.mkv");
    const Seen early = render_tiny(true, false, dir.path() / "early.mkv");
    REQUIRE(waited.frames.size() >= 32);  // at least two chunks, the ones packed early
    require_same(early, waited);
}

TEST_CASE("a GPU render whose worker warmed up while the UNet loaded gives the frames of one that did not",
          "[gpu][render]") {
    LSYNC_NEED_GPU();
    test::ScratchDir dir("gpu_render_warm_up");
    const Seen cold = render_tiny(true, false, dir.path() / "cold.mkv");
    const Seen warm = render_tiny(true, true, dir.path() / "warm.mkv");
    REQUIRE(cold.frames.size() >= 32);
    require_same(warm, cold);
}

TEST_CASE("a GPU render whose face pass was held gives the frames of one whose pass was not", "[gpu][render]") {
    LSYNC_NEED_GPU();
    test::ScratchDir dir("gpu_render_face_hold");
    const Seen free_pass = render_tiny(true, false, dir.path() / "free.mkv");
    // The clip is shorter than the hold's default point: held before the third chunk instead, which the render
    // asks for once the first group is queued (the models' load is held back 1.5 s meanwhile).
    // With the quiet first group too (it packs no third group beside the first; this clip has three chunks, two
    // groups, so it only has to change nothing).
    struct FaceHold {  // the switches, taken back also when render() throws
        FaceHold() {
            ::setenv("LSYNC_FACE_PASS_HOLD", "1", 1);
            ::setenv("LSYNC_TEST_FACE_PASS_HOLD_FROM", "32", 1);
            ::setenv("LSYNC_QUIET_FIRST_GROUP", "1", 1);
        }
        ~FaceHold() {
            ::unsetenv("LSYNC_FACE_PASS_HOLD");
            ::unsetenv("LSYNC_TEST_FACE_PASS_HOLD_FROM");
            ::unsetenv("LSYNC_QUIET_FIRST_GROUP");
        }
    };
    Seen held;
    double held_seconds = 0;
    {
        RenderOptions o = test::render_tiny_options(dir.path() / "held.mkv", "cuda");
        o.seed = 7;
        o.probe = &held;
        RenderObserver quiet;
        const FaceHold hold;
        const EarlyPack pack(true, false);
        held_seconds = render(o, quiet).face_pass_held_seconds;
    }
    CHECK(held_seconds > 0.0);
    REQUIRE(free_pass.frames.size() > 32);
    require_same(held, free_pass);
}

TEST_CASE("a GPU render keeps its first group's convolutions and GEMMs, and the next meets them first with the "
          "same frames",
          "[gpu][render]") {
    LSYNC_NEED_GPU();
    test::ScratchDir dir("gpu_render_first_use");
    struct Journal {  // the switches, taken back also when render() throws
        explicit Journal(const std::filesystem::path& at) {
            ::setenv("LSYNC_FIRST_USE_JOURNAL", "1", 1);
            ::setenv("LSYNC_FIRST_USE_DIR", at.c_str(), 1);
        }
        ~Journal() {
            ::setenv("LSYNC_FIRST_USE_JOURNAL", "0", 1);  // as tests run (tests/process_setup.cpp)
            ::unsetenv("LSYNC_FIRST_USE_DIR");
        }
    } journal(dir.path() / "journal");
    const auto run = [&](const std::string& name, int64_t& prewarmed, int64_t& prewarmed_ops) {
        RenderOptions o = test::render_tiny_options(dir.path() / name, "cuda");
        o.seed = 7;
        Seen seen;
        o.probe = &seen;
        RenderObserver quiet;
        const auto summary = render(o, quiet);
        prewarmed = summary.prewarmed_convs;
        prewarmed_ops = summary.prewarmed_ops;
        return seen;
    };
    int64_t first_prewarmed = -1, second_prewarmed = -1, first_ops = -1, second_ops = -1;
    const Seen first = run("first.mkv", first_prewarmed, first_ops);
    CHECK(first_prewarmed == 0);  // no journal yet
    CHECK(first_ops == 0);
    std::vector<std::filesystem::path> files;
    for (const auto& e : std::filesystem::directory_iterator(dir.path() / "journal")) files.push_back(e.path());
    REQUIRE(files.size() == 1);
    std::ifstream in(files[0]);
    const auto doc = nlohmann::json::parse(in);
    const auto convs = doc.at("convs");
    REQUIRE(convs.size() > 0);
    bool nhwc_fp16 = false;  // the UNet's CUDA path runs channels_last in half precision
    for (const auto& c : convs) nhwc_fp16 |= c.at("layout")[0] == "nhwc" && c.at("dtype") == "float16";
    CHECK(nhwc_fp16);
    // The GEMMs and the other journaled operations, recorded on the GPU and all valid to meet again.
    const auto calls = doc.at("ops");
    REQUIRE(calls.size() > 0);
    std::set<std::string> names;
    for (const auto& c : calls) {
        names.insert(c.at("op").get<std::string>());
        CHECK(c.at("device") == "cuda");
    }
    CHECK((names.count("aten::addmm") + names.count("aten::mm")) > 0);
    const Seen second = run("second.mkv", second_prewarmed, second_ops);
    CHECK(second_prewarmed == static_cast<int64_t>(convs.size()));
    CHECK(second_ops == static_cast<int64_t>(calls.size()));  // each met (none refused by ATen)
    require_same(second, first);
}
