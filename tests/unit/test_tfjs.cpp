#include "catch_compat.h"

#include "core/error.h"
#include "io/tfjs.h"
#include "expect_error.h"
#include "test_util.h"

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>

namespace fs = std::filesystem;
using namespace lsync;
using io::TfjsWeights;

namespace {

// The face-api models: $LSYNC_FACE_MODELS, else the copy committed under tests/fixtures/face-api (found via
// LSYNC_SOURCE_DIR so the test runs from any working directory).
fs::path face_models_dir() {
    if (const char* e = std::getenv("LSYNC_FACE_MODELS"); e && *e) return e;
    return fs::path(LSYNC_SOURCE_DIR) / "tests" / "fixtures" / "face-api";
}

void put(const fs::path& p, const std::string& bytes) { std::ofstream(p, std::ios::binary) << bytes; }

template <class T>
std::string bytes_of(std::initializer_list<T> values) {
    std::string s;
    for (const T v : values) s.append(reinterpret_cast<const char*>(&v), sizeof v);
    return s;
}

// Runs `f`, which must throw Error(Weights); returns the message.
template <class F>
std::string weights_error(F&& f) {
    return test::expect_error(ErrorCode::Weights, std::forward<F>(f));
}

using test::contains;

// What TF.js computes for an affine-quantised value: q * scale + min in double precision, stored as float.
float dequant(uint8_t q, double scale, double min) { return static_cast<float>(q * scale + min); }

fs::path require_face_models() {
    const fs::path dir = face_models_dir();
    if (!fs::exists(dir / "ssd_mobilenetv1_model-weights_manifest.json") ||
        !fs::exists(dir / "face_landmark_68_model-weights_manifest.json"))
        FAIL("face-api models not found in " << dir.string()
                                             << ": run scripts/fetch-face-models.sh tests/fixtures/face-api "
                                                "(or point LSYNC_FACE_MODELS at a folder holding them)");
    return dir;
}

}  // namespace

TEST_CASE("tfjs: SSD MobileNet v1 face detector of @vladmandic/face-api", "[tfjs][face-api]") {
    const fs::path dir = require_face_models();
    const auto manifest = (dir / "ssd_mobilenetv1_model-weights_manifest.json").string();
    TfjsWeights w(manifest);
    CHECK(w.format() == "tfjs");
    CHECK(w.path() == manifest);
    REQUIRE(w.tensors().size() == 151);
    REQUIRE(w.metadata().is_array());
    CHECK(w.metadata().size() == 1);
    CHECK(w.metadata()[0]["paths"] == nlohmann::json::array({"ssd_mobilenetv1_model.bin"}));

    // Names and shapes taken once from the manifest of face-api 1.7.15.
    const std::vector<std::tuple<std::string, std::vector<int64_t>, torch::ScalarType>> known = {
        {"Prediction/BoxPredictor_0/ClassPredictor/weights", {1, 1, 512, 9}, torch::kFloat},
        {"MobilenetV1/Conv2d_0_pointwise/weights", {3, 3, 3, 32}, torch::kFloat},
        {"MobilenetV1/Conv2d_1_depthwise/depthwise_weights", {3, 3, 32, 1}, torch::kFloat},
        {"MobilenetV1/Conv2d_13_pointwise/weights", {1, 1, 1024, 1024}, torch::kFloat},
        {"Prediction/BoxPredictor_5/BoxEncodingPredictor/weights", {1, 1, 128, 24}, torch::kFloat},
        {"Output/extra_dim", {1, 5118, 4}, torch::kFloat},
        {"Postprocessor/stack/1", {}, torch::kInt},
        {"Preprocessor/ResizeImage/size", {2}, torch::kInt},
        {"Postprocessor/Slice/begin", {3}, torch::kInt},
    };
    for (const auto& [name, shape, dtype] : known) {
        INFO(name);
        REQUIRE(w.contains(name));
        const auto t = w.load(name);
        CHECK(t.sizes().vec() == shape);
        CHECK(t.scalar_type() == dtype);
    }
    CHECK(w.tensors().front().name == "Prediction/BoxPredictor_0/ClassPredictor/weights");
    CHECK(w.tensors().back().name == "Output/extra_dim");

    // Integer constants of the graph (uint8-quantised with scale 1, or 1/255 rounded).
    CHECK(w.load("Postprocessor/stack/1").item<int32_t>() == 5118);
    CHECK(torch::equal(w.load("Preprocessor/ResizeImage/size"), torch::tensor({512, 512}, torch::kInt)));
    CHECK(torch::equal(w.load("Postprocessor/Slice/begin"), torch::tensor({0, 0, 1}, torch::kInt)));
    CHECK(torch::equal(w.load("Postprocessor/Slice/size"), torch::tensor({-1, -1, -1}, torch::kInt)));

    // Every stored byte is accounted for, and every float is finite and of a plausible magnitude; quantised
    // ones lie inside [min, min + 255 * scale].
    uint64_t stored = 0;
    int ints = 0;
    for (const auto& info : w.tensors()) stored += info.stored_bytes;
    CHECK(stored == fs::file_size(dir / "ssd_mobilenetv1_model.bin"));
    const nlohmann::json groups = w.metadata();  // by value: keep it alive for the loop
    REQUIRE(groups[0]["weights"].size() == 151);
    for (const auto& entry : groups[0]["weights"]) {
        const std::string name = entry["name"];
        INFO(name);
        const auto t = w.load(name);
        if (t.scalar_type() == torch::kInt) {
            ++ints;
            continue;
        }
        CHECK(torch::isfinite(t).all().item<bool>());
        CHECK(t.abs().max().item<float>() < 100.0f);
        if (entry.contains("quantization")) {
            const double mn = entry["quantization"]["min"], sc = entry["quantization"]["scale"];
            CHECK(t.min().item<float>() >= static_cast<float>(mn) - 1e-6f);
            CHECK(t.max().item<float>() <= static_cast<float>(mn + 255 * sc) + 1e-6f);
        }
    }
    CHECK(ints == 15);

    // Independent decoding of raw bytes; offsets, scale and min worked out once from the manifest.
    const std::string raw = test::file_bytes(dir / "ssd_mobilenetv1_model.bin");
    REQUIRE(raw.size() == 5616957);
    const auto cls = w.load("Prediction/BoxPredictor_0/ClassPredictor/weights").flatten();  // at byte 0
    REQUIRE(cls.numel() == 4608);
    for (int64_t i = 0; i < cls.numel(); ++i) {
        const float want = dequant(static_cast<uint8_t>(raw[i]), 0.0026856216729856004, -0.34107395246917127);
        if (cls[i].item<float>() != want) FAIL("ClassPredictor/weights[" << i << "] != " << want);
    }
    CHECK(cls[0].item<float>() == Approx(-0.0026856216729856386));  // q = 126
    // Output/extra_dim is stored as plain float32 at byte 5535069 (not 4-aligned: loaded by copy).
    const auto extra = w.load("Output/extra_dim").flatten();
    std::vector<float> want(5118 * 4);
    std::memcpy(want.data(), raw.data() + 5535069, want.size() * sizeof(float));
    CHECK(torch::equal(extra, torch::from_blob(want.data(), {static_cast<int64_t>(want.size())})));
    CHECK(extra[0].item<float>() == -0.03437500074505806f);
}

TEST_CASE("tfjs: 68-point face landmark model of @vladmandic/face-api", "[tfjs][face-api]") {
    const fs::path dir = require_face_models();
    TfjsWeights w((dir / "face_landmark_68_model-weights_manifest.json").string());
    REQUIRE(w.tensors().size() == 49);
    const std::vector<std::pair<std::string, std::vector<int64_t>>> known = {
        {"dense0/conv0/filters", {3, 3, 3, 32}},
        {"dense0/conv0/bias", {32}},
        {"dense0/conv1/depthwise_filter", {3, 3, 32, 1}},
        {"dense0/conv1/pointwise_filter", {1, 1, 32, 32}},
        {"dense3/conv3/bias", {256}},
        {"fc/weights", {256, 136}},
        {"fc/bias", {136}},
    };
    for (const auto& [name, shape] : known) {
        INFO(name);
        REQUIRE(w.contains(name));
        CHECK(w.load(name).sizes().vec() == shape);
    }
    uint64_t stored = 0;
    for (const auto& info : w.tensors()) {
        INFO(info.name);
        stored += info.stored_bytes;
        CHECK(info.dtype == torch::kFloat);
        const auto t = w.load(info.name);
        CHECK(static_cast<uint64_t>(t.numel()) == info.stored_bytes);  // all uint8-quantised
        CHECK(torch::isfinite(t).all().item<bool>());
        CHECK(t.abs().max().item<float>() < 10.0f);
    }
    CHECK(stored == 356840);

    const std::string raw = test::file_bytes(dir / "face_landmark_68_model.bin");
    REQUIRE(raw.size() == 356840);
    const auto filters = w.load("dense0/conv0/filters").flatten();  // bytes [0, 864)
    for (int64_t i = 0; i < 864; ++i) {
        const float want = dequant(static_cast<uint8_t>(raw[i]), 0.004853619781194949, -0.5872879935245888);
        if (filters[i].item<float>() != want) FAIL("dense0/conv0/filters[" << i << "] != " << want);
    }
    const auto bias = w.load("fc/bias");  // the last 136 bytes
    for (int64_t i = 0; i < 136; ++i) {
        const float want =
            dequant(static_cast<uint8_t>(raw[356704 + i]), 0.0025084222648658005, 0.07683877646923065);
        if (bias[i].item<float>() != want) FAIL("fc/bias[" << i << "] != " << want);
    }
    CHECK(bias[0].item<float>() == Approx(0.07683877646923065));  // q = 0: exactly min
    CHECK(bias[1].item<float>() == Approx(0.24991991274497088));  // q = 69
}

TEST_CASE("tfjs: synthetic manifest, every stored type, a weight across shards", "[tfjs]") {
    test::ScratchDir dir("tfjs_synthetic");
    // Stream: q (4 x u8) | f (3 x f32, crosses into shard 2) | i (2 x i32) | u16 (3 x u16) | h (3 x f16) |
    //         r (4 x u8 -> int32) | e (empty)
    const std::string stream = bytes_of<uint8_t>({0, 1, 2, 255}) + bytes_of<float>({1.5f, -2.0f, 3.25f}) +
                               bytes_of<int32_t>({-7, 1 << 30}) + bytes_of<uint16_t>({0, 4, 65535}) +
                               bytes_of<uint16_t>({0x3C00, 0xC000, 0x7BFF}) +
                               bytes_of<uint8_t>({0, 127, 128, 255});
    put(dir.path() / "s1.bin", stream.substr(0, 10));
    put(dir.path() / "s2.bin", stream.substr(10));
    const auto manifest = dir.path() / "m-weights_manifest.json";
    put(manifest, R"([{"paths": ["s1.bin", "s2.bin"], "weights": [
        {"name": "q", "shape": [2, 2], "dtype": "float32",
         "quantization": {"dtype": "uint8", "scale": 0.5, "min": -1}},
        {"name": "f", "shape": [3], "dtype": "float32"},
        {"name": "i", "shape": [2], "dtype": "int32"},
        {"name": "u16", "shape": [3], "dtype": "float32",
         "quantization": {"min": 10, "scale": 0.25, "dtype": "uint16"}},
        {"name": "h", "shape": [3], "dtype": "float32", "quantization": {"dtype": "float16"}},
        {"name": "r", "shape": [4], "dtype": "int32",
         "quantization": {"dtype": "uint8", "scale": 0.00392156862745098, "min": 0}},
        {"name": "e", "shape": [0, 3], "dtype": "float32"}
    ]}])");
    TfjsWeights w(manifest.string());
    REQUIRE(w.tensors().size() == 7);
    const std::vector<std::string> names = {"q", "f", "i", "u16", "h", "r", "e"};
    const std::vector<uint64_t> stored = {4, 12, 8, 6, 6, 4, 0};
    for (size_t k = 0; k < names.size(); ++k) {
        CHECK(w.tensors()[k].name == names[k]);
        CHECK(w.tensors()[k].stored_bytes == stored[k]);
    }
    CHECK(w.tensors()[2].dtype == torch::kInt);
    CHECK(w.tensors()[5].dtype == torch::kInt);

    CHECK(torch::equal(w.load("q"), torch::tensor({-1.0f, -0.5f, 0.0f, 126.5f}).reshape({2, 2})));
    CHECK(torch::equal(w.load("f"), torch::tensor({1.5f, -2.0f, 3.25f})));
    CHECK(torch::equal(w.load("i"), torch::tensor({-7, 1 << 30}, torch::kInt)));
    CHECK(torch::equal(w.load("u16"), torch::tensor({10.0f, 11.0f, 16393.75f})));
    CHECK(torch::equal(w.load("h"), torch::tensor({1.0f, -2.0f, 65504.0f})));
    CHECK(torch::equal(w.load("r"), torch::tensor({0, 0, 1, 1}, torch::kInt)));  // rounded like Math.round
    CHECK(w.load("e").sizes().vec() == std::vector<int64_t>{0, 3});
    CHECK(contains(weights_error([&] { w.load("nope"); }), "no weight named 'nope'"));

    // An unquantised float32 weight lying aligned in one shard is mapped, not copied: two loads share memory.
    put(dir.path() / "z.bin", bytes_of<float>({4.0f, 5.0f, 6.0f}));
    put(dir.path() / "z.json",
        R"([{"paths": ["z.bin"], "weights": [{"name": "z", "shape": [3], "dtype": "float32"}]}])");
    {
        TfjsWeights z((dir.path() / "z.json").string());
        const auto a = z.load("z"), b = z.load("z");
        CHECK(a.data_ptr() == b.data_ptr());
        CHECK(torch::equal(a, torch::tensor({4.0f, 5.0f, 6.0f})));
        CHECK(w.load("i").data_ptr() != w.load("i").data_ptr());  // misaligned in its shard: copied
    }

    // The same groups inside a model.json are accepted too.
    const auto model_json = dir.path() / "model.json";
    put(model_json, R"({"format": "graph-model", "weightsManifest": )" + test::file_bytes(manifest) + "}");
    TfjsWeights m(model_json.string());
    CHECK(torch::equal(m.load("q"), w.load("q")));
}

TEST_CASE("tfjs: broken manifests and shards are rejected with their own messages", "[tfjs]") {
    test::ScratchDir dir("tfjs_broken");
    const auto write = [&](const std::string& name, const std::string& json) {
        const auto p = dir.path() / (name + "-weights_manifest.json");
        put(p, json);
        return p.string();
    };
    const auto one_weight = [](const std::string& paths, const std::string& weight) {
        return R"([{"paths": )" + paths + R"(, "weights": [)" + weight + "]}]";
    };
    const std::string q8 = R"({"name": "q", "shape": [2, 4], "dtype": "float32",
                               "quantization": {"dtype": "uint8", "scale": 0.5, "min": -1}})";
    put(dir.path() / "eight.bin", std::string(8, '\x01'));
    put(dir.path() / "seven.bin", std::string(7, '\x01'));
    put(dir.path() / "ten.bin", std::string(10, '\x01'));

    // Sanity: the well-formed variant loads.
    TfjsWeights ok(write("ok", one_weight(R"(["eight.bin"])", q8)));
    CHECK(torch::equal(ok.load("q"), torch::full({2, 4}, -0.5f)));

    std::string msg =
        weights_error([&] { TfjsWeights w(write("missing", one_weight(R"(["gone.bin"])", q8))); });
    CHECK(contains(msg, "shard 'gone.bin' of group 0 is missing"));
    CHECK(contains(msg, "missing-weights_manifest.json"));

    msg = weights_error([&] { TfjsWeights w(write("short", one_weight(R"(["seven.bin"])", q8))); });
    CHECK(contains(msg,
                   "truncated: weight 'q' needs bytes [0, 8) of group 0, but its shards (seven.bin) hold "
                   "only 7 bytes"));

    msg = weights_error([&] { TfjsWeights w(write("long", one_weight(R"(["ten.bin"])", q8))); });
    CHECK(contains(msg, "the shards of group 0 (ten.bin) hold 10 bytes but its weights need only 8"));

    // One weight over the 8-byte shard: the message for a bad weight entry.
    const auto error_for = [&](const std::string& name, const std::string& weight) {
        return weights_error([&] { TfjsWeights w(write(name, one_weight(R"(["eight.bin"])", weight))); });
    };
    msg = error_for("dtype", R"({"name": "c", "shape": [1], "dtype": "complex64"})");
    CHECK(contains(msg, "weight 'c': unsupported dtype 'complex64'"));
    msg = error_for("qdtype", R"({"name": "q", "shape": [8], "dtype": "float32",
                                  "quantization": {"dtype": "int4", "scale": 1, "min": 0}})");
    CHECK(contains(msg, "weight 'q': unsupported quantization dtype 'int4'"));
    msg = error_for("f16int", R"({"name": "q", "shape": [4], "dtype": "int32",
                                  "quantization": {"dtype": "float16"}})");
    CHECK(contains(msg, "weight 'q': float16 quantization is for float32 weights, not int32"));
    msg = error_for("noscale", R"({"name": "q", "shape": [8], "dtype": "float32",
                                   "quantization": {"dtype": "uint8"}})");
    CHECK(contains(msg, "uint8 quantization without numeric \"scale\" and \"min\""));
    msg = error_for("intrange", R"({"name": "q", "shape": [8], "dtype": "int32",
                                    "quantization": {"dtype": "uint8", "scale": 1e10, "min": 0}})");
    CHECK(contains(msg, "give values outside int32"));
    msg = error_for("negative", R"({"name": "q", "shape": [-8], "dtype": "float32",
                                    "quantization": {"dtype": "uint8", "scale": 1, "min": 0}})");
    CHECK(contains(msg, "weight 'q': shape [-8] has a negative dimension"));
    msg = error_for("huge", R"({"name": "q", "shape": [4294967296, 4294967296, 2], "dtype": "float32"})");
    CHECK(contains(msg, "weight 'q': shape [4294967296,4294967296,2] is too large"));

    msg = weights_error([&] {
        TfjsWeights w(write("dup", R"([{"paths": ["eight.bin"], "weights": [)" + q8 + "]}, " +
                                       R"({"paths": ["eight.bin"], "weights": [)" + q8 + "]}]"));
    });
    CHECK(contains(msg, "weight 'q': name appears twice"));

    msg = weights_error([&] { TfjsWeights w(write("notjson", "[{\"paths\": ")); });
    CHECK(contains(msg, "is not valid JSON"));
    msg = weights_error([&] { TfjsWeights w(write("object", R"({"paths": []})")); });
    CHECK(contains(msg, "is not a weights manifest"));
    msg = weights_error([&] { TfjsWeights w(write("nopaths", R"([{"weights": []}])")); });
    CHECK(contains(msg, "group 0 has no \"paths\" list"));

    put(dir.path() / "empty.bin", "");
    msg = weights_error([&] { TfjsWeights w(write("emptyshard", one_weight(R"(["empty.bin"])", q8))); });
    CHECK(contains(msg, "shard 'empty.bin' of group 0 is empty"));

    // The manifest itself missing is an input-path problem, reported like every other missing model file.
    try {
        TfjsWeights w((dir.path() / "nothing.json").string());
        FAIL("opened a missing manifest");
    } catch (const Error& e) {
        CHECK(e.code() == ErrorCode::InputMissing);
    }
}
