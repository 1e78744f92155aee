#include "catch_compat.h"

#include "core/threads.h"
#include "core/user_cache.h"
#include "diagnostics/doctor.h"
#include "io/model_dir.h"
#include "test_util.h"

#include <cstdlib>
#include <filesystem>
#include <unistd.h>
#include <fstream>

namespace fs = std::filesystem;
using namespace lsync;

static fs::path model_dir_fixture() {
    auto d = test::fresh_dir("test_doctor");
    fs::create_directories(d / "whisper");
    fs::create_directories(d / "sd-vae-ft-mse");
    fs::create_directories(d / "face-api");
    // An HTML error page saved under the model's name: the classic failed download.
    std::ofstream(d / "whisper" / "tiny.pt") << std::string(40000000, ' ') << "<html>404</html>";
    // A git-lfs pointer instead of the VAE.
    std::ofstream(d / "sd-vae-ft-mse" / "diffusion_pytorch_model.safetensors")
        << "version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 334643268\n";
    // A manifest whose shard is missing.
    std::ofstream(d / "face-api" / "ssd_mobilenetv1_model-weights_manifest.json")
        << R"([{"paths":["ssd_mobilenetv1_model.bin"],"weights":[]}])";
    return d;
}

TEST_CASE("model directory resolution: flag, then environment, then ~/.cache", "[doctor]") {
    CHECK(io::resolve_model_dir("/x/models") == "/x/models");
    ::setenv("LATENTSYNC_MODEL_DIR", "/from/env", 1);
    CHECK(io::resolve_model_dir("") == "/from/env");
    ::unsetenv("LATENTSYNC_MODEL_DIR");
    ::setenv("HOME", "/home/someone", 1);
    CHECK(io::resolve_model_dir("") == "/home/someone/.cache/latentsync");
}

TEST_CASE("model file checks name what is wrong with each file", "[doctor]") {
    const auto dir = model_dir_fixture();
    for (const auto& st : io::check_model_files(dir.string())) {
        INFO(st.spec.component << ": " << st.problem);
        if (st.spec.component == "whisper-tiny") {
            CHECK(st.present);
            CHECK_FALSE(st.ok);
            CHECK(st.problem.find("not a PyTorch zip") != std::string::npos);
        } else if (st.spec.component == "vae") {
            CHECK_FALSE(st.ok);
            CHECK(st.problem.find("git-lfs") != std::string::npos);
        } else if (st.spec.component == "face-detector") {
            CHECK_FALSE(st.ok);
            CHECK(st.problem.find("missing shard") != std::string::npos);
        } else {
            CHECK_FALSE(st.present);
            CHECK(st.problem == "missing");
        }
    }
    test::remove_tree(dir);
}

TEST_CASE("doctor report: every section, probes pass, problems carry fixes", "[doctor]") {
    const auto dir = model_dir_fixture();
    diagnostics::DoctorOptions opts;
    opts.model_dir = dir.string();
    const auto r = diagnostics::run_doctor(opts);
    for (const char* key : {"torch", "devices", "attention", "ffmpeg", "models", "render", "problems", "ready"})
        CHECK(r.details.contains(key));
    CHECK_FALSE(r.ready);  // no weights here
    CHECK(r.details["ffmpeg"]["missing"].empty());
    bool saw_standard_probe = false;
    for (const auto& a : r.details["attention"]) {
        if (a.contains("probe")) {
            INFO(a.dump());
            CHECK(a["probe"]["ok"].get<bool>());
        }
        if (a["backend"] == "standard" && a["device"] == "cpu") saw_standard_probe = a.contains("probe");
        if (a["backend"] == "flash" && !a["available"].get<bool>()) CHECK_FALSE(a["detail"].get<std::string>().empty());
    }
    CHECK(saw_standard_probe);
    REQUIRE_FALSE(r.problems.empty());
    for (const auto& p : r.problems) {
        CHECK_FALSE(p.what.empty());
        CHECK_FALSE(p.fix.empty());
    }
    const auto text = diagnostics::format_report(r);
    CHECK(text.find("NOT READY") != std::string::npos);
    CHECK(text.find("not a supported model file") != std::string::npos);  // the HTML page saved as tiny.pt
    test::remove_tree(dir);
}

TEST_CASE("doctor names the BLAS and the thread budget, the reference BLAS is a warning with its fix", "[doctor]") {
    diagnostics::DoctorOptions opts;
    opts.model_dir = "/nonexistent";
    opts.run_probes = false;
    const auto r = diagnostics::run_doctor(opts);
    const auto& blas = r.details["torch"]["blas"];
    const std::string name = blas["name"].get<std::string>();
    INFO("BLAS: " << name << " from " << blas["library"].get<std::string>());
    CHECK_FALSE(name.empty());
    CHECK(r.details["torch"]["thread_budget"].get<int>() == lsync::thread_budget());
    bool warned = false;
    for (const auto& w : r.warnings)
        if (w.what.find("reference BLAS") != std::string::npos) {
            warned = true;
            CHECK(w.fix.find("libopenblas0-pthread") != std::string::npos);
        }
    CHECK(warned == blas["slow"].get<bool>());
    // scripts/test.sh (the CI's command) runs scripts/install-deps.sh, which installs OpenBLAS, and says so here.
    if (const char* expect = std::getenv("LSYNC_EXPECT_OPENBLAS"); expect && std::string(expect) == "1")
        CHECK_FALSE(blas["slow"].get<bool>());
}

TEST_CASE("doctor: a GPU's free memory says which models it can render, and warns with what one needs", "[doctor]") {
    const auto gib = [](double g) { return static_cast<uint64_t>(g * 1024 * 1024 * 1024); };
    nlohmann::json big = {{"device", "cuda:0"}, {"memory_free_bytes", gib(78)}, {"memory_total_bytes", gib(80)}};
    nlohmann::json small = {{"device", "cuda:1"}, {"memory_free_bytes", gib(4.5)}, {"memory_total_bytes", gib(6)}};
    nlohmann::json cpu = {{"device", "cpu"}};
    std::vector<diagnostics::Problem> warnings;
    diagnostics::add_card_memory_fit(big, warnings);
    CHECK(warnings.empty());
    CHECK(big["renders"]["1.5"].get<bool>());
    CHECK(big["renders"]["1.6"].get<bool>());
    diagnostics::add_card_memory_fit(small, warnings);
    CHECK(small["renders"]["1.5"].get<bool>());
    CHECK_FALSE(small["renders"]["1.6"].get<bool>());
    REQUIRE(warnings.size() == 1);
    CHECK(warnings[0].what == "cuda:1 has 4.5 GiB free: a 1.6 render needs about 5.5 GiB free there");
    CHECK(warnings[0].fix.find("--vram-budget") != std::string::npos);
    diagnostics::add_card_memory_fit(cpu, warnings);  // no memory figure: left alone
    CHECK_FALSE(cpu.contains("renders"));
    CHECK(warnings.size() == 1);
}

TEST_CASE("doctor: where the first-use journal is kept, whether it can be written, and how many it holds",
          "[doctor]") {
    const auto dir = test::fresh_dir("test_doctor_first_use");
    diagnostics::DoctorOptions opts;
    opts.model_dir = "/nonexistent";
    opts.run_probes = false;
    struct Env {  // the variables, taken back also when a check throws
        ~Env() {
            ::unsetenv("LSYNC_FIRST_USE_DIR");
            ::setenv("LSYNC_FIRST_USE_JOURNAL", "0", 1);  // as tests run (tests/process_setup.cpp)
        }
    } env;
    ::setenv("LSYNC_FIRST_USE_JOURNAL", "1", 1);
    // A folder not made yet under one that can be written: writable; two journals kept once it holds them.
    const auto journals = dir / "cache" / "first-use";
    ::setenv("LSYNC_FIRST_USE_DIR", journals.c_str(), 1);
    auto r = diagnostics::run_doctor(opts);
    auto j = r.details["caches"]["first_use_journal"];
    CHECK(j["enabled"].get<bool>());
    CHECK(j["dir"] == journals.string());
    CHECK(j["writable"].get<bool>());
    CHECK(j["journals"] == 0);
    CHECK_FALSE(std::filesystem::exists(journals));  // doctor makes nothing
    std::filesystem::create_directories(journals);
    std::ofstream(journals / "a.json") << "{}";
    std::ofstream(journals / "b.json") << "{}";
    std::ofstream(journals / "b.json.tmp-1-0") << "{";
    r = diagnostics::run_doctor(opts);
    CHECK(r.details["caches"]["first_use_journal"]["journals"] == 2);
    CHECK(diagnostics::format_report(r).find("First-use journal (GPU renders): on, " + journals.string() +
                                             " (writable, 2 kept)") != std::string::npos);
    // Under a regular file nothing can be made, whoever runs this (root too).
    std::ofstream(dir / "file") << "x";
    ::setenv("LSYNC_FIRST_USE_DIR", (dir / "file" / "first-use").c_str(), 1);
    r = diagnostics::run_doctor(opts);
    j = r.details["caches"]["first_use_journal"];
    CHECK_FALSE(j["writable"].get<bool>());
    bool warned = false;
    for (const auto& w : r.warnings) warned |= w.what.find("first-use cache folder") != std::string::npos;
    CHECK(warned == torch::cuda::is_available());  // a cost only where GPU renders run
    CHECK(diagnostics::format_report(r).find("NOT writable") != std::string::npos);
    CHECK_FALSE(folder_writable_or_creatable(""));
    ::setenv("LSYNC_FIRST_USE_JOURNAL", "0", 1);
    CHECK(diagnostics::run_doctor(opts).details["caches"]["first_use_journal"]["enabled"] == false);
    test::remove_tree(dir);
}
