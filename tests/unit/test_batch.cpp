// `latentsync batch` without rendering: the manifest (CSV quoting, JSON lines, every refusal naming its line),
// the shard split (every job in exactly one shard), the shard from Slurm / Kubernetes variables, what a rerun
// does with an existing output or work folder, and the model cache handing one set to one render at a time.

#include "catch_compat.h"

#include "core/error.h"
#include "expect_error.h"
#include "pipeline/batch.h"
#include "pipeline/batch_manifest.h"
#include "pipeline/model_cache.h"
#include "test_util.h"
#include "unet/unet_attention.h"

#include <fstream>
#include <map>
#include <set>
#include <thread>

using namespace lsync;
using namespace lsync::pipeline;

namespace {

BatchManifest csv(const std::string& text, const std::string& base = "") {
    return parse_batch_manifest(text, ManifestFormat::Csv, "m.csv", base);
}
BatchManifest jsonl(const std::string& text, const std::string& base = "") {
    return parse_batch_manifest(text, ManifestFormat::Jsonl, "m.jsonl", base);
}
std::string csv_error(const std::string& text) {
    return test::expect_error(ErrorCode::Usage, [&] { csv(text); });
}
std::string jsonl_error(const std::string& text) {
    return test::expect_error(ErrorCode::Usage, [&] { jsonl(text); });
}
std::map<std::string, std::string> options_of(const BatchJobSpec& j) {
    return {j.options.begin(), j.options.end()};
}

}  // namespace

TEST_CASE("batch manifest: CSV with quoting, comments, blank lines and per-job options", "[batch]") {
    const auto m = csv("\xEF\xBB\xBFvideo,audio,output,seed,keep_video_tail,loop\r\n"
                       "# a comment\r\n"
                       "a.mp4, a.wav ,out/a.mp4,3,yes,\r\n"
                       "\r\n"
                       "\"b, the second.mp4\",\"say \"\"hi\"\".wav\",\"out/two\nlines.mp4\",,false,freeze\n"
                       "/abs/c.mp4,c.wav,c.mkv,9,,",
                       "/data");
    REQUIRE(m.jobs.size() == 3);
    CHECK(m.jobs[0].index == 0);
    CHECK(m.jobs[0].line == 3);
    CHECK(m.jobs[0].video == "/data/a.mp4");
    CHECK(m.jobs[0].audio == "/data/a.wav");  // unquoted fields are trimmed
    CHECK(m.jobs[0].output == "/data/out/a.mp4");
    CHECK(options_of(m.jobs[0]) == std::map<std::string, std::string>{{"seed", "3"}, {"keep-video-tail", "true"}});
    CHECK(m.jobs[1].line == 5);
    CHECK(m.jobs[1].video == "/data/b, the second.mp4");
    CHECK(m.jobs[1].audio == "/data/say \"hi\".wav");
    CHECK(m.jobs[1].output == "/data/out/two\nlines.mp4");
    CHECK(options_of(m.jobs[1]) ==
          std::map<std::string, std::string>{{"keep-video-tail", "false"}, {"loop", "freeze"}});
    CHECK(m.jobs[2].line == 7);  // the quoted line break counts
    CHECK(m.jobs[2].video == "/abs/c.mp4");
    CHECK(m.jobs[2].index == 2);
}

TEST_CASE("batch manifest: JSON lines with numbers, switches, nulls and path options", "[batch]") {
    const auto m = jsonl("{\"video\": \"a.mp4\", \"audio\": \"a.wav\", \"output\": \"a.out.mp4\", \"seed\": 5, "
                         "\"guidance\": 2.5, \"no_deepcache\": true, \"face-track\": \"t.json\", \"crf\": null}\n"
                         "\n"
                         "# comment\n"
                         "{\"video\": \"/v/b.mp4\", \"audio\": \"b.wav\", \"output\": \"b.out.mp4\", \"lossless\": 0}\n",
                         "base");
    REQUIRE(m.jobs.size() == 2);
    CHECK(m.jobs[0].line == 1);
    CHECK(m.jobs[0].video == "base/a.mp4");
    CHECK(options_of(m.jobs[0]) == std::map<std::string, std::string>{{"seed", "5"},
                                                                      {"guidance", "2.5"},
                                                                      {"no-deepcache", "true"},
                                                                      {"face-track", "base/t.json"}});
    CHECK(m.jobs[1].line == 4);
    CHECK(m.jobs[1].video == "/v/b.mp4");
    CHECK(options_of(m.jobs[1]) == std::map<std::string, std::string>{{"lossless", "false"}});
}

TEST_CASE("batch manifest: each refusal names its line", "[batch]") {
    using test::contains;
    const std::string head = "video,audio,output\n";
    // The header.
    CHECK(contains(csv_error("video,audio\na,b\n"), "m.csv line 1: the header has no 'output' column"));
    CHECK(contains(csv_error("video,audio,output,colour\n"), "m.csv line 1: unknown column 'colour'"));
    CHECK(contains(csv_error("video,audio,output,seed,seed\n"), "m.csv line 1: column 'seed' appears twice"));
    CHECK(contains(csv_error("video,audio,output,device\na,b,c,cpu\n"), "line 1: unknown column 'device'"));
    // Rows.
    CHECK(contains(csv_error(head + "a,b,c\nd,e\n"), "m.csv line 3: 2 fields, the header has 3"));
    CHECK(contains(csv_error(head + "a,b,c\n\"d,e,f\n"), "m.csv line 3: a quoted value is not closed"));
    CHECK(contains(csv_error(head + "a,b\"x\",c\n"), "m.csv line 2: a quote inside an unquoted value"));
    CHECK(contains(csv_error(head + "\"a\"x,b,c\n"), "m.csv line 2: text after a closing quote"));
    CHECK(contains(csv_error(head + "a,,c\n"), "m.csv line 2: no audio"));
    CHECK(contains(csv_error(head + "a,b,c\nd,e,f\ng,h,./c\n"), "m.csv line 4: output ./c is also the output of line 2"));
    CHECK(contains(csv_error(head + "a,b,c\nc,e,f\n"), "m.csv line 2: output c is an input of line 3"));
    CHECK(contains(csv_error("video,audio,output,lossless\na,b,c,maybe\n"), "m.csv line 2: lossless is a switch"));
    CHECK(contains(csv_error(head + std::string("a,b\0x,c\n", 8)), "m.csv line 2: audio contains a NUL byte"));
    CHECK(contains(csv_error(head + "a,b," + std::string(20000, 'x') + "\n"), "m.csv line 2: a value longer than"));
    CHECK(contains(csv_error(head), "m.csv: no jobs"));
    CHECK(contains(csv_error(""), "m.csv: no header row"));
    // JSON lines.
    const std::string ok = R"({"video":"a","audio":"b","output":"c"})";
    CHECK(contains(jsonl_error(ok + "\n{\"video\":\"d\",\"audio\":\"e\",\"output\":\"f\",\"colour\":1}\n"),
                   "m.jsonl line 2: unknown option 'colour'"));
    CHECK(contains(jsonl_error(ok + "\n[1,2]\n"), "m.jsonl line 2: not a JSON object"));
    CHECK(contains(jsonl_error(ok + "\n{\"video\":\"d\"\n"), "m.jsonl line 2: not valid JSON"));
    CHECK(contains(jsonl_error("\n" + ok + "\n{\"video\":\"d\",\"audio\":\"e\"}\n"), "m.jsonl line 3: no output"));
    CHECK(contains(jsonl_error("{\"video\":\"d\",\"audio\":\"e\",\"output\":\"f\",\"seed\":[1]}\n"),
                   "m.jsonl line 1: seed must be a string, number or true/false"));
    CHECK(contains(jsonl_error("{\"video\":\"d\",\"audio\":\"e\",\"output\":\"f\",\"no_deepcache\":true,"
                               "\"no-deepcache\":false}\n"),
                   "m.jsonl line 1: no-deepcache is given twice"));
    CHECK(contains(jsonl_error(ok + "\n" + ok + "\n"), "m.jsonl line 2: output c is also the output of line 1"));
    CHECK(contains(jsonl_error(std::string(100, '[') + std::string(100, ']') + "\n"),
                   "m.jsonl line 1: JSON nested deeper than 64"));
    CHECK(contains(jsonl_error("{\"video\":\"\",\"audio\":\"e\",\"output\":\"f\"}\n"), "m.jsonl line 1: video is empty"));
    CHECK(contains(jsonl_error("{\"video\":\"d\",\"audio\":7,\"output\":\"f\"}\n"), "m.jsonl line 1: audio must be a string"));
}

TEST_CASE("batch manifest: read from a file, by extension, relative to its folder", "[batch]") {
    test::ScratchDir dir("batch_manifest");
    const auto path = (dir.path() / "jobs.csv").string();
    std::ofstream(path) << "video,audio,output\nv.mp4,a.wav,o.mp4\n";
    const auto m = read_batch_manifest(path);
    REQUIRE(m.jobs.size() == 1);
    CHECK(m.jobs[0].video == (dir.path() / "v.mp4").string());
    CHECK(test::contains(test::expect_error(ErrorCode::Usage, [&] { read_batch_manifest((dir.path() / "jobs.txt").string()); }),
                         ".csv or .jsonl"));
    test::expect_error(ErrorCode::InputMissing, [&] { read_batch_manifest((dir.path() / "none.csv").string()); });
    std::ofstream((dir.path() / "empty.jsonl").string());
    test::expect_error(ErrorCode::InputEmpty, [&] { read_batch_manifest((dir.path() / "empty.jsonl").string()); });
}

TEST_CASE("batch shards: for N in 1..7 every job is in exactly one shard", "[batch]") {
    std::string text = "video,audio,output\n";
    const int jobs = 23;
    for (int i = 0; i < jobs; ++i) text += "v.mp4,a.wav,out" + std::to_string(i) + ".mp4\n";
    const auto m = csv(text);
    REQUIRE(m.jobs.size() == jobs);
    for (int64_t n = 1; n <= 7; ++n) {
        std::multiset<int64_t> seen;
        for (int64_t k = 0; k < n; ++k) {
            const auto shard = parse_shard(std::to_string(k) + "/" + std::to_string(n));
            const auto part = jobs_in_shard(m, shard);
            // Balanced: sizes differ by at most one.
            CHECK(static_cast<int64_t>(part.size()) >= jobs / n);
            CHECK(static_cast<int64_t>(part.size()) <= jobs / n + 1);
            for (const auto& j : part) seen.insert(j.index);
        }
        CHECK(seen.size() == static_cast<size_t>(jobs));  // union is everything ...
        for (int i = 0; i < jobs; ++i) CHECK(seen.count(i) == 1);  // ... and no job twice
    }
    // More shards than jobs: the extra shards are empty, still each job once.
    CHECK(jobs_in_shard(m, parse_shard("30/31")).empty());
}

TEST_CASE("batch shards: --shard K/N is checked", "[batch]") {
    CHECK(parse_shard("0/1").count == 1);
    CHECK(parse_shard("2/3").index == 2);
    for (const char* bad : {"3/3", "1", "-1/3", "1/0", "a/3", "1/3x", "", "/", "1/99999999", " 1/2"})
        CHECK(test::contains(test::expect_error(ErrorCode::Usage, [&] { parse_shard(bad); }), "--shard must be K/N"));
}

TEST_CASE("batch shards: from Slurm array and Kubernetes Indexed Job variables", "[batch]") {
    std::map<std::string, std::string> env;
    const auto from = [&](int64_t count = 0) {
        return shard_from_environment(count, [&](const char* v) -> const char* {
            auto it = env.find(v);
            return it == env.end() ? nullptr : it->second.c_str();
        });
    };
    // Nothing set: every job.
    CHECK(from().count == 1);
    CHECK(from().source == "all");
    // --array=1-4: ids 1..4 -> shards 0..3 of 4.
    env = {{"SLURM_ARRAY_TASK_ID", "3"}, {"SLURM_ARRAY_TASK_MIN", "1"}, {"SLURM_ARRAY_TASK_MAX", "4"},
           {"SLURM_ARRAY_TASK_COUNT", "4"}, {"SLURM_ARRAY_TASK_STEP", "1"}};
    CHECK(from().index == 2);
    CHECK(from().count == 4);
    CHECK(from().source == "SLURM_ARRAY_TASK_ID");
    // --array=0-6:3: ids 0, 3, 6.
    env = {{"SLURM_ARRAY_TASK_ID", "6"}, {"SLURM_ARRAY_TASK_MIN", "0"}, {"SLURM_ARRAY_TASK_MAX", "6"},
           {"SLURM_ARRAY_TASK_COUNT", "3"}, {"SLURM_ARRAY_TASK_STEP", "3"}};
    CHECK(from().index == 2);
    // --array=2,5,9: not evenly spaced (Slurm reports step 1).
    env = {{"SLURM_ARRAY_TASK_ID", "5"}, {"SLURM_ARRAY_TASK_MIN", "2"}, {"SLURM_ARRAY_TASK_MAX", "9"},
           {"SLURM_ARRAY_TASK_COUNT", "3"}, {"SLURM_ARRAY_TASK_STEP", "1"}};
    CHECK(test::contains(test::expect_error(ErrorCode::Usage, [&] { from(); }), "evenly spaced"));
    env = {{"SLURM_ARRAY_TASK_ID", "5"}};
    CHECK(test::contains(test::expect_error(ErrorCode::Usage, [&] { from(); }), "SLURM_ARRAY_TASK_MIN is not set"));
    env = {{"SLURM_ARRAY_TASK_ID", "x"}};
    CHECK(test::contains(test::expect_error(ErrorCode::Usage, [&] { from(); }), "not a whole number"));
    // Kubernetes: the index, and the count from --shard-count or LSYNC_SHARD_COUNT.
    env = {{"JOB_COMPLETION_INDEX", "4"}};
    CHECK(test::contains(test::expect_error(ErrorCode::Usage, [&] { from(); }), "--shard-count"));
    CHECK(from(5).index == 4);
    CHECK(from(5).source == "JOB_COMPLETION_INDEX");
    CHECK(test::contains(test::expect_error(ErrorCode::Usage, [&] { from(4); }), "not below the shard count"));
    env["LSYNC_SHARD_COUNT"] = "6";
    CHECK(from().count == 6);
}

TEST_CASE("batch: a finished output is skipped, a work folder resumes", "[batch]") {
    test::ScratchDir dir("batch_action");
    const auto out = (dir.path() / "o.mp4").string();
    std::string why;
    CHECK(job_action(out) == JobAction::Render);
    std::filesystem::create_directories(out + ".lsync-work");
    CHECK(job_action(out) == JobAction::Resume);
    std::ofstream(out) << "x";
    CHECK(job_action(out, &why) == JobAction::Skip);
    CHECK(test::contains(why, "old work folder"));
    std::filesystem::remove(out + ".lsync-work");
    CHECK(job_action(out, &why) == JobAction::Skip);
    CHECK(why == "the output exists");
    // Not a file at the output's path: the render refuses it with its own exit code.
    const auto folder = (dir.path() / "f.mp4").string();
    std::filesystem::create_directories(folder);
    CHECK(job_action(folder) == JobAction::Render);
}

TEST_CASE("model cache: one load per device and model, never one set of networks for two renders at once",
          "[batch]") {
    ModelCache cache;
    ModelRequest r;
    r.variant = ModelVariant::TestTiny;
    r.random_weights = true;
    {
        const RenderModels a = cache.get(r);
        CHECK(cache.loads() == 1);
        const RenderModels b = cache.get(r);  // `a` is held: networks of its own over `a`'s weights, no load
        CHECK(cache.loads() == 1);
        CHECK(cache.shares() == 1);
        CHECK(a.unet.ptr() != b.unet.ptr());
        CHECK(a.whisper.ptr() != b.whisper.ptr());
        CHECK(a.unet->parameters(true).front().data_ptr() == b.unet->parameters(true).front().data_ptr());
        CHECK(cache.size() == 1);  // the shared networks are not kept
    }
    const RenderModels c = cache.get(r);  // free again: no load
    CHECK(cache.loads() == 1);
    ModelRequest other = r;
    other.model_dir = "elsewhere";  // unused by random weights, but part of the key
    const RenderModels d = cache.get(other);  // another key: loads, drops the free set of the old key
    CHECK(cache.loads() == 2);
    CHECK(cache.size() == 2);  // `c`'s set (held) and `d`'s
    CHECK(ModelCache::key(r) != ModelCache::key(other));
    // Every render gets its attention context set on the networks.
    auto ctx = std::make_shared<ops::AttentionContext>();
    ModelRequest with_ctx = other;
    with_ctx.attention = ctx;
    {
        const RenderModels e = cache.get(with_ctx);
        int sites = 0, shared = 0;
        for (const auto& m : e.unet->modules()) {
            if (auto* att = m->as<models::AttentionImpl>()) {
                ++sites;
                shared += att->context() == ctx;
            }
        }
        CHECK(sites > 0);
        CHECK(shared == sites);
        // Every holder: `ctx` and `with_ctx` themselves, the UNet's sites, the VAE's two mid-block attentions
        // (encoder and decoder) and one per Whisper block.
        CHECK(ctx.use_count() == 2 + sites + 2 + static_cast<long>(e.whisper->blocks->size()));
    }
    CHECK(ctx.use_count() == 2);  // the render's networks are gone: nothing else kept its context
    CHECK(cache.loads() == 2);  // `d` is held: `e` shared its weights
    CHECK(cache.shares() == 2);
}

TEST_CASE("model cache: two threads asking at once load one set and share it", "[batch]") {
    ModelCache cache;
    ModelRequest r;
    r.variant = ModelVariant::TestTiny;
    r.random_weights = true;
    std::vector<RenderModels> got(2);
    std::vector<std::thread> threads;
    for (size_t i = 0; i < 2; ++i) threads.emplace_back([&, i] { got[i] = cache.get(r); });
    for (auto& t : threads) t.join();
    CHECK(cache.loads() == 1);
    CHECK(cache.shares() == 1);
    CHECK(got[0].unet.ptr() != got[1].unet.ptr());
    CHECK(got[0].vae->parameters(true).front().data_ptr() == got[1].vae->parameters(true).front().data_ptr());
}
