#include "catch_compat.h"

#include "core/compat.h"
#include "core/error.h"
#include "io/safetensors.h"
#include "expect_error.h"
#include "test_util.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <optional>
#include <set>

namespace fs = std::filesystem;
using namespace lsync;
using io::SafetensorsFile;
using io::write_safetensors;

namespace {

// tests/fixtures of the source tree (LSYNC_SOURCE_DIR, not __FILE__: ccache's base dir makes that relative).
fs::path fixtures_dir() {
    if (const char* e = std::getenv("LSYNC_FIXTURES"); e && *e) return e;
    return fs::path(LSYNC_SOURCE_DIR) / "tests" / "fixtures";
}

// A hand-made file: 8-byte length (the header's own unless `length` overrides it), header text, data bytes.
void write_raw(const fs::path& p, const std::string& header, const std::string& data,
               std::optional<uint64_t> length = std::nullopt) {
    const uint64_t n = length ? *length : header.size();
    char len[8];
    for (int i = 0; i < 8; ++i) len[i] = static_cast<char>((n >> (8 * i)) & 0xff);
    std::ofstream f(p, std::ios::binary);
    f.write(len, 8);
    f << header << data;
}

// Runs `f`, which must throw Error(Weights); returns the message.
template <class F>
std::string weights_error(F&& f) {
    return test::expect_error(ErrorCode::Weights, std::forward<F>(f));
}

using test::contains;

std::set<std::string> dir_entries(const fs::path& d) {
    std::set<std::string> s;
    for (const auto& e : fs::directory_iterator(d)) s.insert(e.path().filename().string());
    return s;
}

}  // namespace

TEST_CASE("safetensors round trip of every dtype, 0-d and empty tensors, metadata", "[safetensors]") {
    test::ScratchDir dir("safetensors_roundtrip");
    const auto path = (dir.path() / "all.safetensors").string();
    torch::manual_seed(7);
    const std::vector<std::pair<std::string, torch::Tensor>> tensors = {
        {"f64", torch::randn({3, 2}, torch::kDouble)},
        {"f32", torch::randn({2, 3, 4})},
        {"f16", torch::randn({5, 3}).to(torch::kHalf)},
        {"bf16", torch::randn({7}).to(torch::kBFloat16)},
        {"i64", torch::tensor({int64_t(1) << 40, int64_t(-5), std::numeric_limits<int64_t>::max()})},
        {"i32", torch::randint(-100000, 100000, {4, 4}, torch::kInt)},
        {"i16", torch::randint(-30000, 30000, {3}, torch::kShort)},
        {"i8", torch::randint(-128, 128, {9}, torch::kChar)},
        {"u8", torch::randint(0, 256, {2, 5}, torch::kByte)},
        {"bool", torch::randint(0, 2, {11}).to(torch::kBool)},
        {"scalar", torch::tensor(3.5f).reshape({})},
        {"empty", torch::zeros({0, 5})},
        {"transposed", torch::arange(12, torch::kFloat).reshape({3, 4}).t()},  // written contiguous
        {"ünïcode name", torch::ones({2}, torch::kShort)},
    };
    const std::map<std::string, std::string> meta = {{"format", "pt"}, {"note", "héllo \"quoted\""}};
    write_safetensors(path, tensors, meta, false);

    // The layout the Python library expects: a JSON header padded with spaces to a multiple of 8.
    const std::string bytes = test::file_bytes(path);
    uint64_t n = 0;
    for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<uint8_t>(bytes[i]);
    CHECK(n % 8 == 0);
    CHECK(bytes[8] == '{');
    CHECK(nlohmann::json::parse(bytes.substr(8, n)).size() == tensors.size() + 1);

    SafetensorsFile f(path);
    CHECK(f.format() == "safetensors");
    CHECK(f.path() == path);
    CHECK(f.data_start() == 8 + n);
    CHECK(f.metadata_strings() == meta);
    CHECK(f.metadata() == nlohmann::json{{"format", "pt"}, {"note", "héllo \"quoted\""}});
    REQUIRE(f.tensors().size() == tensors.size());
    CHECK_FALSE(f.contains("missing"));
    // Data order: widest items first, the given order otherwise (that keeps every tensor aligned).
    std::vector<size_t> order(tensors.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::stable_sort(order.begin(), order.end(), [&](size_t x, size_t y) {
        return tensors[x].second.element_size() > tensors[y].second.element_size();
    });
    for (size_t i = 0; i < tensors.size(); ++i) {
        const auto& [name, want] = tensors[order[i]];
        INFO("tensor " << name);
        const auto& info = f.tensors()[i];
        CHECK(info.name == name);
        CHECK(info.dtype == want.scalar_type());
        CHECK(info.shape == want.sizes().vec());
        CHECK(info.stored_bytes == static_cast<uint64_t>(want.numel() * want.element_size()));
        REQUIRE(f.contains(name));
        const auto got = f.load(name);
        CHECK(got.scalar_type() == want.scalar_type());
        CHECK(got.sizes() == want.sizes());
        CHECK(got.device().is_cpu());
        CHECK(torch::equal(got, want.contiguous()));
    }
    const auto s = f.load("scalar");
    CHECK(s.dim() == 0);
    CHECK(s.item<float>() == 3.5f);
    CHECK(f.load("empty").numel() == 0);
    const auto err = weights_error([&] { f.load("nope"); });
    CHECK(contains(err, "no tensor named 'nope'"));
    CHECK(contains(err, path));
#if LSYNC_TORCH_AT_LEAST(2, 1)
    const auto f8path = (dir.path() / "f8.safetensors").string();
    const auto e4 = torch::randn({8}).to(c10::ScalarType::Float8_e4m3fn);
    const auto e5 = torch::randn({8}).to(c10::ScalarType::Float8_e5m2);
    write_safetensors(f8path, {{"e4", e4}, {"e5", e5}}, {}, false);
    SafetensorsFile f8(f8path);
    CHECK(torch::equal(f8.load("e4").view(torch::kByte), e4.view(torch::kByte)));
    CHECK(torch::equal(f8.load("e5").view(torch::kByte), e5.view(torch::kByte)));
#endif
}

TEST_CASE("safetensors tensors are zero-copy views that keep the mapping alive", "[safetensors]") {
    test::ScratchDir dir("safetensors_zerocopy");
    const auto path = (dir.path() / "w.safetensors").string();
    const auto odd = torch::ones({3}, torch::kByte);
    const auto a = torch::arange(1000, torch::kFloat).reshape({10, 100});
    const auto h = torch::arange(5, torch::kFloat).to(torch::kHalf);
    const auto b = torch::arange(7, torch::kLong);
    // Given in an order that would misalign "a", "h" and "b" if written as given.
    write_safetensors(path, {{"odd", odd}, {"a", a}, {"h", h}, {"b", b}}, {}, false);

    torch::Tensor ta, th, tb, todd;
    {
        SafetensorsFile f(path);
        CHECK(f.data_start() % 8 == 0);
        std::vector<std::string> names;
        for (const auto& info : f.tensors()) names.push_back(info.name);
        CHECK(names == std::vector<std::string>{"b", "a", "h", "odd"});
        const uint8_t* lo = f.mapping().data();
        const uint8_t* hi = lo + f.mapping().size();
        ta = f.load("a");
        th = f.load("h");
        tb = f.load("b");
        todd = f.load("odd");
        for (const auto* t : {&ta, &th, &tb, &todd}) {
            const auto* p = static_cast<const uint8_t*>(t->data_ptr());
            CHECK((p >= lo && p + t->nbytes() <= hi));
        }
        CHECK(static_cast<const uint8_t*>(tb.data_ptr()) == lo + f.data_start());
    }
    // The SafetensorsFile is gone; the views still own the mapping.
    CHECK(torch::equal(ta, a));
    CHECK(torch::equal(th, h));
    CHECK(torch::equal(tb, b));
    CHECK(torch::equal(todd, odd));
    CHECK(ta.sum().item<float>() == 499500.0f);
}

TEST_CASE("safetensors golden VAE from diffusers loads with its names and shapes", "[safetensors][golden]") {
    // tests/fixtures/golden/vae_tiny: diffusers AutoencoderKL.save_pretrained output (tiny, random weights).
    const auto path =
        (fixtures_dir() / "golden" / "vae_tiny" / "diffusion_pytorch_model.safetensors").string();
    REQUIRE(fs::exists(path));
    SafetensorsFile f(path);
    CHECK(f.tensors().size() == 180);
    CHECK(f.metadata_strings() == std::map<std::string, std::string>{{"format", "pt"}});
    const std::vector<std::pair<std::string, std::vector<int64_t>>> known = {
        {"encoder.conv_in.weight", {16, 3, 3, 3}},  {"encoder.conv_in.bias", {16}},
        {"encoder.conv_out.weight", {8, 32, 3, 3}}, {"decoder.conv_in.weight", {32, 4, 3, 3}},
        {"decoder.conv_out.weight", {3, 16, 3, 3}}, {"decoder.conv_out.bias", {3}},
        {"quant_conv.weight", {8, 8, 1, 1}},        {"post_quant_conv.weight", {4, 4, 1, 1}},
    };
    for (const auto& [name, shape] : known) {
        INFO(name);
        REQUIRE(f.contains(name));
        const auto t = f.load(name);
        CHECK(t.sizes().vec() == shape);
        CHECK(t.scalar_type() == torch::kFloat);
    }
    CHECK(f.contains("decoder.mid_block.attentions.0.to_q.weight"));
    int encoder = 0, decoder = 0;
    for (const auto& info : f.tensors()) {
        encoder += info.name.rfind("encoder.", 0) == 0;
        decoder += info.name.rfind("decoder.", 0) == 0;
        CHECK(info.dtype == torch::kFloat);
        const auto t = f.load(info.name);
        CHECK(static_cast<uint64_t>(t.nbytes()) == info.stored_bytes);
        CHECK(torch::isfinite(t).all().item<bool>());
    }
    CHECK(encoder == 72);
    CHECK(decoder == 104);
    // First values of encoder.conv_in.bias, read from the file with Python's struct module.
    const auto bias = f.load("encoder.conv_in.bias");
    CHECK(bias[0].item<float>() == 0.08508078753948212f);
    CHECK(bias[1].item<float>() == 0.03632514178752899f);
    CHECK(bias[2].item<float>() == -0.015297270379960537f);
}

TEST_CASE("safetensors golden DDIM file: tensors of the manifest, timesteps 951..1",
          "[safetensors][golden]") {
    const auto path = (fixtures_dir() / "golden" / "ddim_golden.safetensors").string();
    REQUIRE(fs::exists(path));
    SafetensorsFile f(path);
    // Names, dtypes and shapes as listed in the project's shared/golden/manifest.json for this file.
    std::map<std::string, std::pair<torch::ScalarType, std::vector<int64_t>>> want = {
        {"alphas_cumprod", {torch::kFloat, {1000}}},
        {"betas", {torch::kFloat, {1000}}},
        {"final_alpha_cumprod", {torch::kFloat, {1}}},
        {"timesteps", {torch::kLong, {20}}},
    };
    for (const char* step : {"step0", "step1", "step10", "step19"})
        for (const char* what : {"model_output", "pred_original_sample", "prev_sample", "sample"})
            want[std::string(step) + "." + what] = {torch::kFloat, {1, 4, 4, 16, 16}};
    REQUIRE(f.tensors().size() == want.size());
    for (const auto& info : f.tensors()) {
        INFO(info.name);
        REQUIRE(want.count(info.name));
        CHECK(info.dtype == want[info.name].first);
        CHECK(info.shape == want[info.name].second);
    }
    // The producer string differs between regenerations; these keys are stable.
    const auto meta = f.metadata_strings();
    CHECK(meta.at("seed") == "1247");
    CHECK(meta.at("num_inference_steps") == "20");
    CHECK(meta.at("eta") == "0.0");

    const auto ts = f.load("timesteps");
    REQUIRE(ts.numel() == 20);
    for (int64_t i = 0; i < 20; ++i) CHECK(ts[i].item<int64_t>() == 951 - 50 * i);
    CHECK(f.load("final_alpha_cumprod").item<float>() == Approx(0.99915).epsilon(1e-5));
    CHECK(f.load("betas")[0].item<float>() == Approx(0.00085).epsilon(1e-5));

    // Our writer reproduces every tensor of a file made by the Python library.
    test::ScratchDir dir("safetensors_golden_rewrite");
    std::vector<std::pair<std::string, torch::Tensor>> all;
    for (const auto& info : f.tensors()) all.emplace_back(info.name, f.load(info.name));
    const auto copy = (dir.path() / "copy.safetensors").string();
    write_safetensors(copy, all, meta, false);
    SafetensorsFile g(copy);
    CHECK(g.metadata_strings() == meta);
    for (const auto& [name, t] : all) CHECK(torch::equal(g.load(name), t));
}

TEST_CASE("safetensors rejects corrupt files, each with its own message", "[safetensors]") {
    test::ScratchDir dir("safetensors_corrupt");
    std::set<std::string> messages;
    int cases = 0;
    // Each case: a file, the words its message must contain (besides the path).
    const auto expect = [&](const std::string& name, const std::string& header, const std::string& data,
                            const std::string& words, std::optional<uint64_t> length = std::nullopt) {
        const auto p = (dir.path() / (name + ".safetensors")).string();
        write_raw(p, header, data, length);
        const auto msg = weights_error([&] { SafetensorsFile f(p); });
        INFO(name << ": " << msg);
        CHECK(contains(msg, words));
        CHECK(contains(msg, p));
        std::string rest = msg;  // the paths differ anyway: compare the rest
        if (const auto at = rest.find(p); at != std::string::npos) rest.replace(at, p.size(), "<file>");
        messages.insert(rest);
        ++cases;
        return msg;
    };
    const std::string z24(24, '\0');  // data of an F32 [2, 3]
    const std::string good = R"({"w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]}})";

    // Sanity: the good file loads.
    write_raw(dir.path() / "good.safetensors", good, z24);
    CHECK(SafetensorsFile((dir.path() / "good.safetensors").string()).tensors().size() == 1);

    {
        const auto p = (dir.path() / "tiny.safetensors").string();
        std::ofstream(p, std::ios::binary) << "abc";
        CHECK(contains(weights_error([&] { SafetensorsFile f(p); }), "too short"));
    }
    expect("len_past_end", good, z24, "runs past the end of the file", good.size() + 25);
    expect("len_huge", good, z24, "exceeds the 100 MB limit", 100'000'001);
    expect("len_max", good, z24, "exceeds the 100 MB limit", std::numeric_limits<uint64_t>::max());
    expect("no_brace", " " + good, z24, "does not start with '{'");
    expect("empty_header", "", z24, "does not start with '{'");
    expect("bad_json", R"({"w":{"dtype":"F32",)", z24, "not valid JSON");
    expect("bad_utf8", "{\"w\xff\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]}}", z24,
           "not valid JSON");
    expect("unknown_dtype", R"({"w":{"dtype":"F33","shape":[2,3],"data_offsets":[0,24]}})", z24,
           "tensor 'w': unknown dtype 'F33'");
    expect("unsupported_dtype", R"({"w":{"dtype":"U16","shape":[2,3],"data_offsets":[0,12]}})",
           z24.substr(12), "dtype U16 is not supported");
#if !LSYNC_TORCH_AT_LEAST(2, 1)
    expect("f8_old_torch", R"({"w":{"dtype":"F8_E4M3","shape":[2,3],"data_offsets":[0,6]}})", z24.substr(18),
           "needs LibTorch >= 2.1");
#endif
    expect("span_mismatch", R"({"w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,20]}})", z24.substr(4),
           "needs 24 bytes but data_offsets [0, 20] span 20");
    // Truncated download: the header is intact, the data is not.
    expect("past_end", good, z24.substr(8),
           "data_offsets [0, 24] run past the end of the data region (16 bytes)");
    expect("reversed", R"({"w":{"dtype":"F32","shape":[2,3],"data_offsets":[24,0]}})", z24,
           "end before they begin");
    expect("overlap",
           R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},"b":{"dtype":"F32","shape":[4],)"
           R"("data_offsets":[8,24]}})",
           z24, "tensors 'a' [0, 16] and 'b' [8, 24] overlap");
    expect("gap",
           R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[3],)"
           R"("data_offsets":[12,24]}})",
           z24, "bytes [8, 12] before tensor 'b' belong to no tensor");
    expect("trailing_gap", R"({"a":{"dtype":"F32","shape":[5],"data_offsets":[0,20]}})", z24,
           "its last 4 bytes belong to no tensor");
    expect("negative_dim", R"({"w":{"dtype":"F32","shape":[2,-3],"data_offsets":[0,24]}})", z24,
           "tensor 'w': shape [2,-3] has a negative dimension");
    expect("float_dim", R"({"w":{"dtype":"F32","shape":[2,3.5],"data_offsets":[0,24]}})", z24, "non-integer");
    expect("numel_overflow",
           R"({"w":{"dtype":"F32","shape":[4294967296,4294967296,16],"data_offsets":[0,24]}})", z24,
           "element count does not fit in 64 bits");
    expect("bytes_overflow", R"({"w":{"dtype":"F64","shape":[4611686018427387904],"data_offsets":[0,24]}})",
           z24, "x 8 bytes overflows");
    expect("no_offsets", R"({"w":{"dtype":"F32","shape":[2,3]}})", z24, "\"data_offsets\" is not a pair");
    expect("neg_offset", R"({"w":{"dtype":"F32","shape":[2,3],"data_offsets":[-4,20]}})", z24,
           "\"data_offsets\" is not a pair");
    expect("no_shape", R"({"w":{"dtype":"F32","data_offsets":[0,24]}})", z24, "no \"shape\" array");
    expect("entry_not_object", R"({"w":[1,2]})", z24, "entry is not a JSON object");
    expect("meta_not_string",
           R"({"__metadata__":{"epoch":3},"w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]}})", z24,
           "__metadata__ value of 'epoch' is not a string");
    expect("meta_not_object",
           R"({"__metadata__":"x","w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]}})", z24,
           "__metadata__ is not a JSON object");
    CHECK(messages.size() == static_cast<size_t>(cases) - 2);  // the two pairs that share a cause on purpose

    // A BOOL byte other than 0/1 is caught when the tensor is loaded.
    const auto p = (dir.path() / "bool.safetensors").string();
    write_raw(p, R"({"b":{"dtype":"BOOL","shape":[4],"data_offsets":[0,4]}})",
              std::string("\x00\x01\x02\x01", 4));
    SafetensorsFile f(p);
    CHECK(contains(weights_error([&] { f.load("b"); }), "tensor 'b': BOOL byte 2 is 2, not 0 or 1"));
}

TEST_CASE("safetensors misaligned hand-made data is copied into an aligned tensor", "[safetensors]") {
    test::ScratchDir dir("safetensors_misaligned");
    const auto p = (dir.path() / "m.safetensors").string();
    // Trailing blanks (valid JSON) put the data region at an odd file offset.
    std::string header = R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,12]}})";
    while ((8 + header.size()) % 4 != 1) header += ' ';
    float vals[3] = {1.5f, -2.25f, 1e30f};
    write_raw(p, header, std::string(reinterpret_cast<const char*>(vals), sizeof vals));
    SafetensorsFile f(p);
    const auto t = f.load("w");
    CHECK(reinterpret_cast<uintptr_t>(t.data_ptr()) % 4 == 0);
    CHECK(t[0].item<float>() == 1.5f);
    CHECK(t[1].item<float>() == -2.25f);
    CHECK(t[2].item<float>() == 1e30f);
}

TEST_CASE("safetensors writer: overwrite rule, no partial files, invalid tensors", "[safetensors]") {
    test::ScratchDir dir("safetensors_writer");
    const auto path = (dir.path() / "out.safetensors").string();
    const auto a = torch::randn({4, 4});
    write_safetensors(path, {{"a", a}}, {}, false);
    const std::string original = test::file_bytes(path);

    // Refuses to replace without the flag; the file stays as it was.
    try {
        write_safetensors(path, {{"b", torch::ones({2})}}, {}, false);
        FAIL("overwrote without the flag");
    } catch (const Error& e) {
        CHECK(e.code() == ErrorCode::OutputExists);
    }
    CHECK(test::file_bytes(path) == original);

    // An undefined tensor fails before anything is written, with or without an existing file.
    const auto other = (dir.path() / "other.safetensors").string();
    auto msg = weights_error([&] {
        write_safetensors(other, {{"a", a}, {"hole", torch::Tensor()}}, {}, false);
    });
    CHECK(contains(msg, "tensor 'hole' is undefined"));
    CHECK(contains(msg, other));
    msg = weights_error([&] { write_safetensors(path, {{"hole", torch::Tensor()}}, {}, true); });
    CHECK(test::file_bytes(path) == original);

    // A tensor whose data cannot be read fails mid-stream, after the header and "a" were written: the
    // partial file must vanish and the existing file survive.
    const auto meta_tensor =
        torch::empty({1024}, torch::TensorOptions().device(c10::Device(c10::DeviceType::Meta)));
    msg = weights_error([&] { write_safetensors(path, {{"a", a}, {"m", meta_tensor}}, {}, true); });
    CHECK(contains(msg, "tensor 'm' cannot be copied to the CPU"));
    CHECK(test::file_bytes(path) == original);
    msg = weights_error([&] { write_safetensors(other, {{"a", a}, {"m", meta_tensor}}, {}, false); });
    CHECK(dir_entries(dir.path()) == std::set<std::string>{"out.safetensors"});

    // Other refusals, each naming the tensor.
    CHECK(contains(weights_error([&] {
                       write_safetensors(other, {{"x", a}, {"x", a}}, {}, false);
                   }),
                   "duplicate tensor name 'x'"));
    CHECK(contains(weights_error([&] {
                       write_safetensors(other, {{"__metadata__", a}}, {}, false);
                   }),
                   "reserved"));
    CHECK(contains(weights_error([&] {
                       write_safetensors(other, {{"c", torch::zeros({2}, torch::kComplexFloat)}}, {}, false);
                   }),
                   "tensor 'c': dtype ComplexFloat has no safetensors equivalent"));
    CHECK(contains(weights_error([&] {
                       write_safetensors(other, {{"s", a.to_sparse()}}, {}, false);
                   }),
                   "tensor 's' is not dense"));
    CHECK(dir_entries(dir.path()) == std::set<std::string>{"out.safetensors"});

    // A missing directory is the destination's problem, not the tensors'.
    try {
        write_safetensors((dir.path() / "no" / "x.safetensors").string(), {{"a", a}}, {}, false);
        FAIL("wrote into a missing directory");
    } catch (const Error& e) {
        CHECK(e.code() == ErrorCode::OutputUnwritable);
    }

    // With the flag the file is replaced, and an empty list is a valid file.
    write_safetensors(path, {}, {{"k", "v"}}, true);
    SafetensorsFile f(path);
    CHECK(f.tensors().empty());
    CHECK(f.metadata_strings().at("k") == "v");
}
