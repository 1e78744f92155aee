// Hostile inputs (issue 12): each test case is one class of attack that used to crash, hang, leak or replace
// something, built in memory or in a scratch folder. See docs/hardening.md for the limits they pin down.
#include "core/error.h"
#include "core/files.h"
#include "core/json_file.h"
#include "core/json_limits.h"
#include "core/untrusted_text.h"
#include "faces/detect_ops.h"
#include "faces/face_track_file.h"
#include "io/mapped_file.h"
#include "io/model_dir.h"
#include "io/safetensors.h"
#include "io/tensor_source.h"
#include "io/tfjs.h"
#include "io/torch_checkpoint.h"
#include "media/test_pattern.h"

#include "catch_compat.h"
#include "expect_error.h"
#include "test_util.h"

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sys/stat.h>
#include <unistd.h>

namespace fs = std::filesystem;
using namespace lsync;
using test::contains;

namespace {

void put(const fs::path& p, const std::string& bytes) {
    std::ofstream(p, std::ios::binary | std::ios::trunc) << bytes;
}

std::string fixture(const std::string& name) {
    return std::string(LSYNC_SOURCE_DIR) + "/tests/fixtures/checkpoints/" + name;
}

/// `depth` opening brackets, then as many closing ones: valid JSON nested `depth` levels deep.
std::string nested_array(size_t depth) { return std::string(depth, '[') + std::string(depth, ']'); }

/// A safetensors file: 8-byte little-endian header length, header, data.
void write_safetensors_raw(const fs::path& p, const std::string& header, const std::string& data = "") {
    std::string len(8, '\0');
    for (int i = 0; i < 8; ++i) len[static_cast<size_t>(i)] = static_cast<char>((header.size() >> (8 * i)) & 0xff);
    put(p, len + header + data);
}

bool one_line(const std::string& s) { return s.find('\n') == std::string::npos && s.find('\0') == std::string::npos; }

}  // namespace

TEST_CASE("untrusted bytes are escaped and shortened for messages and JSON", "[hardening]") {
    using namespace std::string_literals;
    CHECK(printable("plain") == "plain");
    CHECK(printable("a\nb\0c"s) == "a\\nb\\x00c");
    CHECK(printable("\x1b[31m") == "\\x1b[31m");
    CHECK(printable("h\xc3\xa9llo") == "h\xc3\xa9llo");          // valid UTF-8 stays
    CHECK(printable("bad\xff\xfe") == "bad\\xff\\xfe");            // invalid bytes do not
    CHECK(printable("\xed\xa0\x80") == "\\xed\\xa0\\x80");        // a UTF-16 surrogate is not UTF-8
    const std::string shown = printable(std::string(1000, 'x'), 80);
    CHECK(shown == std::string(80, 'x') + "... (1000 bytes)");
    CHECK(utf8_or_escaped("f\xffile\xc3\xa9.mp4") == "f\\xffile\xc3\xa9.mp4");
    // The JSON output path never throws on invalid UTF-8 (it used to end in exit 70).
    const nlohmann::json j = {{"file", "bad\xff"}};
    CHECK_NOTHROW(dump_json(j));
    CHECK(nlohmann::json::parse(dump_json({{"file", utf8_or_escaped("bad\xff")}}))["file"] == "bad\\xff");
}

TEST_CASE("JSON nested a million levels is refused before parsing, everywhere we parse files", "[hardening]") {
    const std::string deep = nested_array(1'000'000);
    CHECK(contains(json_depth_problem(deep), "nested deeper than 64 levels"));
    CHECK(json_depth_problem(nested_array(64)).empty());
    CHECK_FALSE(json_depth_problem(nested_array(65)).empty());
    // Brackets inside strings (with escaped quotes) do not count.
    CHECK(json_depth_problem("{\"a\": \"[[[[\\\"[[[[\"}", 2).empty());

    test::ScratchDir dir("deep_json");
    // safetensors: in a tensor's shape, and in a field nobody reads.
    for (const std::string& header :
         {R"({"w": {"dtype": "F32", "shape": )" + deep + R"(, "data_offsets": [0, 0]}})",
          R"({"__unused__": )" + deep + "}"}) {
        write_safetensors_raw(dir.path() / "deep.safetensors", header);
        const std::string msg = test::expect_error(
            ErrorCode::Weights, [&] { io::SafetensorsFile f((dir.path() / "deep.safetensors").string()); });
        CHECK(contains(msg, "nested deeper than 64 levels"));
        CHECK(msg.size() < 400);
    }
    // TF.js manifest, also in a field nobody reads.
    put(dir.path() / "m.bin", std::string(4, '\0'));
    put(dir.path() / "deep-weights_manifest.json",
        R"([{"paths": ["m.bin"], "weights": [{"name": "w", "shape": [1], "dtype": "float32"}], "x": )" + deep +
            "}]");
    std::string msg = test::expect_error(
        ErrorCode::Weights, [&] { io::TfjsWeights w((dir.path() / "deep-weights_manifest.json").string()); });
    CHECK(contains(msg, "nested deeper than 64 levels"));
    // Face track files (user input: Usage).
    msg = test::expect_error(ErrorCode::Usage, [&] { faces::parse_face_track("{\"frames\": " + deep + "}", "t.json"); });
    CHECK(contains(msg, "nested deeper than 64 levels"));
}

TEST_CASE("error messages never dump untrusted JSON or bytes whole", "[hardening]") {
    test::ScratchDir dir("excerpt");
    // A shape of 100,000 elements with a string at the end: the message shows the start only.
    std::string shape = "[";
    for (int i = 0; i < 100000; ++i) shape += "1,";
    shape += "\"x\"]";
    write_safetensors_raw(dir.path() / "long.safetensors",
                          R"({"w": {"dtype": "F32", "shape": )" + shape + R"(, "data_offsets": [0, 4]}})",
                          std::string(4, '\0'));
    std::string msg = test::expect_error(
        ErrorCode::Weights, [&] { io::SafetensorsFile f((dir.path() / "long.safetensors").string()); });
    CHECK(contains(msg, "holds a non-integer"));
    CHECK(msg.size() < 400);
    // A tensor name with a NUL, an escape sequence and invalid UTF-8 is escaped.
    for (const std::string& key : {std::string("a\\u0000\\u001b[31m"), std::string("a\xff\n")}) {
        write_safetensors_raw(dir.path() / "name.safetensors",
                              "{\"" + key + "\": {\"dtype\": \"F99\", \"shape\": [], \"data_offsets\": [0, 0]}}");
        msg = test::expect_error(ErrorCode::Weights,
                                 [&] { io::SafetensorsFile f((dir.path() / "name.safetensors").string()); });
        INFO(msg);
        CHECK(one_line(msg));
        CHECK(msg.find('\x1b') == std::string::npos);
        CHECK(utf8_or_escaped(msg) == msg);  // valid UTF-8 throughout
    }
    // A pickle global whose module name holds a NUL and ESC (fixture nul_global.pt).
    msg = test::expect_error(ErrorCode::Weights, [&] { io::TorchCheckpoint ck(fixture("nul_global.pt")); });
    CHECK(one_line(msg));
    CHECK(msg.find('\x1b') == std::string::npos);
    CHECK(contains(msg, "\\x00"));
}

TEST_CASE("TF.js metadata is rebuilt from what was read, not a copy of the manifest", "[hardening]") {
    test::ScratchDir dir("tfjs_meta");
    put(dir.path() / "m.bin", std::string(4, '\0'));
    put(dir.path() / "a-weights_manifest.json",
        R"([{"paths": ["m.bin"], "weights": [{"name": "w", "shape": [1], "dtype": "float32", "junk": [[[1]]]}],
             "big": ")" + std::string(100000, 'z') + R"("}])");
    io::TfjsWeights w((dir.path() / "a-weights_manifest.json").string());
    const auto m = w.metadata();
    REQUIRE(m.is_array());
    CHECK(m[0]["paths"] == nlohmann::json::array({"m.bin"}));
    CHECK(m[0]["weights"][0]["name"] == "w");
    CHECK_FALSE(m[0].contains("big"));
    CHECK_FALSE(m[0]["weights"][0].contains("junk"));
}

TEST_CASE("TF.js shard paths stay inside the manifest's folder", "[hardening]") {
    test::ScratchDir root("tfjs_escape");
    const fs::path dir = root.path() / "model", outside = root.path() / "secret.bin";
    fs::create_directories(dir);
    put(outside, std::string(12345, 's'));  // a size an error message must never reveal
    const auto manifest = [&](const std::string& path) {
        const auto p = dir / "x-weights_manifest.json";
        put(p, R"([{"paths": [")" + path + R"("], "weights": [{"name": "w", "shape": [1], "dtype": "float32"}]}])");
        return p.string();
    };
    const auto refused = [&](const std::string& path, const std::string& why) {
        INFO(path);
        const std::string msg = test::expect_error(ErrorCode::Weights, [&] { io::TfjsWeights w(manifest(path)); });
        CHECK(contains(msg, why));
        CHECK_FALSE(contains(msg, "12345"));
    };
    refused(outside.string(), "is an absolute path");
    refused("../secret.bin", "contains '..'");
    refused("sub/../../secret.bin", "contains '..'");
    fs::create_symlink(outside, dir / "link.bin");
    refused("link.bin", "resolves outside the manifest's folder");
    fs::create_directory_symlink(root.path(), dir / "up");
    refused("up/secret.bin", "resolves outside the manifest's folder");
    // models verify reads manifests too, and must not even probe such paths.
    CHECK(contains(io::tfjs_shard_path_problem(dir, "/etc/passwd"), "absolute"));
    // A symlink that stays inside is fine (model folders are often links into a cache).
    put(dir / "real.bin", std::string(4, '\0'));
    fs::create_symlink(dir / "real.bin", dir / "inside.bin");
    CHECK_NOTHROW(io::TfjsWeights(manifest("inside.bin")));
}

TEST_CASE("overwrite replaces only regular files: never a FIFO, a symlink or a device", "[hardening]") {
    test::ScratchDir dir("special_out");
    const auto fifo = (dir.path() / "pipe.mp4").string();
    REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
    std::string msg = test::expect_error(ErrorCode::OutputExists, [&] { AtomicOutput out(fifo, true); });
    CHECK(contains(msg, "a FIFO"));
    CHECK(fs::is_fifo(fifo));

    const auto target = dir.path() / "target.mp4", link = dir.path() / "link.mp4";
    put(target, "keep me");
    fs::create_symlink(target, link);
    msg = test::expect_error(ErrorCode::OutputExists, [&] { AtomicOutput out(link.string(), true); });
    CHECK(contains(msg, "a symbolic link"));
    fs::create_symlink(dir.path() / "nowhere", dir.path() / "dangling.mp4");
    test::expect_error(ErrorCode::OutputExists, [&] { AtomicOutput out((dir.path() / "dangling.mp4").string(), true); });
    CHECK(fs::is_symlink(link));
    CHECK(test::file_bytes(target) == "keep me");

    if (fs::exists("/dev/null")) {
        msg = test::expect_error(ErrorCode::OutputExists, [] { AtomicOutput out("/dev/null", true); });
        CHECK(contains(msg, "a character device"));
    }
    // A special file that appears while rendering is not replaced at commit either.
    const auto late = (dir.path() / "late.mp4").string();
    AtomicOutput out(late, true);
    put(out.temp_path(), "data");
    REQUIRE(::mkfifo(late.c_str(), 0600) == 0);
    test::expect_error(ErrorCode::OutputExists, [&] { out.commit(); });
    CHECK(fs::is_fifo(late));
    // The regular case still works.
    put(target, "old");
    AtomicOutput ok(target.string(), true);
    put(ok.temp_path(), "new");
    ok.commit();
    CHECK(test::file_bytes(target) == "new");
}

TEST_CASE("a checkpoint truncated while mapped gives an error, not SIGBUS", "[hardening]") {
    test::ScratchDir dir("truncated_map");
    const auto path = (dir.path() / "w.safetensors").string();
    // Larger than a few pages, so the truncated part covers whole pages that now fault.
    io::write_safetensors(path, {{"w", torch::arange(1 << 20, torch::kFloat)}}, {}, false);
    io::SafetensorsFile f(path);
    const auto view = f.load("w");  // zero copy: a view of the mapping
    REQUIRE(::truncate(path.c_str(), 4096) == 0);
    // Reading the view touches vanished pages: without the handler this is SIGBUS.
    CHECK(view.sum().item<double>() >= 0);
    std::string msg = test::expect_error(ErrorCode::Weights, [] { io::check_mapped_files_intact(); });
    CHECK(contains(msg, "changed while being read"));
    // convert: writing those tensors out is refused and leaves nothing behind.
    const auto out = dir.path() / "out.safetensors";
    test::expect_error(ErrorCode::Weights, [&] { io::write_safetensors(out.string(), {{"w", view}}, {}, false); });
    CHECK_FALSE(fs::exists(out));
    size_t entries = 0;
    for (const auto& e : fs::directory_iterator(dir.path())) entries += e.path().filename().string()[0] == '.';
    CHECK(entries == 0);  // no .partial file either
}

TEST_CASE("tiny .pt files cannot demand huge tensors (stride 0)", "[hardening]") {
    const std::string msg =
        test::expect_error(ErrorCode::Weights, [] { io::TorchCheckpoint ck(fixture("stride0_huge.pt")); });
    CHECK(contains(msg, "overlapping (stride-0) views that large are refused"));
}

TEST_CASE("detector and landmark inputs: padding folded into the resize, same numbers, no square", "[hardening]") {
    // Parity with padding first on small odd shapes, both axes, for the detector (pad after) and the
    // landmark crop (centred padding).
    for (const auto& [h, w] : std::vector<std::pair<int64_t, int64_t>>{{37, 91}, {91, 37}, {64, 64}, {1, 300}}) {
        INFO(h << "x" << w);
        const auto x = torch::rand({2, 3, h, w}) * 255;
        const int64_t side = std::max(h, w);
        for (const int64_t top : {int64_t{0}, (side - h) / 2}) {
            const int64_t left = top == 0 ? 0 : (side - w) / 2;
            const auto padded =
                torch::constant_pad_nd(x, {left, side - w - left, top, side - h - top}, 0);
            const auto want = faces::resize_bilinear_tf(padded, 112, 112);
            const auto got = faces::resize_padded_bilinear_tf(x, top, left, side, side, 112, 112);
            CHECK(torch::equal(want, got));
            // uint8 pixels (as the detector passes them, permuted NHWC): the numbers of converting them first.
            const auto pixels = x.to(torch::kUInt8).permute({0, 2, 3, 1}).contiguous().permute({0, 3, 1, 2});
            const auto from_bytes = faces::resize_padded_bilinear_tf(pixels, top, left, side, side, 112, 112);
            CHECK(from_bytes.scalar_type() == torch::kFloat);
            CHECK(torch::equal(from_bytes,
                               faces::resize_padded_bilinear_tf(pixels.to(torch::kFloat), top, left, side, side, 112, 112)));
        }
    }
    // A 1 x 65535 frame: the padded square would be 65535^2 floats x 3 (51 GB); now it is the frame.
    const auto thin = torch::full({1, 1, 65535, 3}, 200, torch::kUInt8);
    const auto in = faces::detector_input(thin, 512);
    CHECK(in.sizes().vec() == std::vector<int64_t>{1, 3, 512, 512});
    const auto crop = faces::landmark_input(thin[0], faces::CropRect{0, 0, 65535, 1}, 112);
    CHECK(crop.sizes().vec() == std::vector<int64_t>{3, 112, 112});
}

TEST_CASE("writing 200,000 tensors is linear in their number", "[hardening]") {
    test::ScratchDir dir("many_tensors");
    std::vector<std::pair<std::string, torch::Tensor>> tensors;
    const auto empty = torch::empty({0});
    for (int i = 0; i < 200000; ++i) tensors.emplace_back("t" + std::to_string(i), empty);
    const auto path = (dir.path() / "many.safetensors").string();
    const auto t0 = std::chrono::steady_clock::now();
    io::write_safetensors(path, tensors, {{"k", "v"}}, false);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    // Quadratic header building took over 20 s here; linear takes well under 2 s. The bound is loose so a
    // loaded machine does not fail it, yet far below the quadratic time.
    CHECK(s < 10);
    io::SafetensorsFile f(path);
    CHECK(f.tensors().size() == 200000);
    CHECK(f.metadata()["k"] == "v");
}

TEST_CASE("the test tone refuses infinite and absurd lengths instead of overflowing", "[hardening]") {
    const double inf = std::numeric_limits<double>::infinity();
    test::expect_error(ErrorCode::Usage, [&] { media::test_tone(inf, 44100, 2); });
    test::expect_error(ErrorCode::Usage, [&] { media::test_tone(std::nan(""), 44100, 2); });
    test::expect_error(ErrorCode::Usage, [&] { media::test_tone(1, 44100, 0); });
    CHECK(media::test_tone(0.01, 1000, 2).size() == 20);
}

TEST_CASE("huge JSON files are refused by size, not read whole", "[hardening]") {
    test::ScratchDir dir("huge_json");
    // Sparse files: the size is claimed, no disk is used.
    const auto make = [&](const std::string& name, uintmax_t size) {
        const auto p = dir.path() / name;
        put(p, "{\"a\": 1");
        fs::resize_file(p, size);
        return p.string();
    };
    const auto cfg = make("config.json", 17u << 20);
    std::string msg = test::expect_error(ErrorCode::Usage, [&] { read_json_file(cfg, "UNet config", ErrorCode::Usage); });
    CHECK(contains(msg, "larger than 16 MB"));
    const auto model = make("model.json", 65u << 20);
    msg = test::expect_error(ErrorCode::Weights, [&] { io::open_tensor_source(model); });
    CHECK(contains(msg, "not a supported model file"));
}
