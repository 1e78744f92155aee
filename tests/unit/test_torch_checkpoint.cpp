// torch.save checkpoints: the ZIP reader, the restricted unpickler and TorchCheckpoint.
// Fixtures: tests/fixtures/checkpoints/ (made by scripts/make_checkpoint_fixtures.py, see the README there)
// and the golden checkpoints in tests/fixtures/golden/ (or $LSYNC_GOLDEN_DIR), whose per-tensor SHA-256
// were computed by an independent Python reader.
// LibTorch first: with glog-enabled builds it defines its own CHECK, which catch_compat.h must override (the
// precompiled header already does this; the order keeps builds without it working).
#include "core/error.h"
#include "io/pickle.h"
#include "io/torch_checkpoint.h"
#include "io/zip_archive.h"

#include "catch_compat.h"
#include "test_util.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>

namespace fs = std::filesystem;
using namespace lsync;
using namespace std::string_literals;  // ""s keeps embedded NUL bytes
using io::PickleValue;
using io::TorchCheckpoint;

namespace {

std::string fixture(const std::string& name) {
    return std::string(LSYNC_SOURCE_DIR) + "/tests/fixtures/checkpoints/" + name;
}

// The committed copies first, so a clean clone tests the same bytes the hashes were made from.
std::string golden_dir() {
    if (const char* env = std::getenv("LSYNC_GOLDEN_DIR")) return env;
    for (const auto& d : {std::string(LSYNC_SOURCE_DIR) + "/tests/fixtures/golden",
                          std::string(LSYNC_SOURCE_DIR) + "/../shared/golden"})
        if (fs::exists(d + "/unet_tiny_latentsync_unet.pt")) return d;
    return "";
}

void write_file(const fs::path& path, const std::string& bytes) {
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// FIPS 180-4 SHA-256, test code only: compares tensor bytes with hashes made by Python's hashlib.
std::string sha256_hex(const uint8_t* data, size_t size) {
    static const uint32_t k[64] = {
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
        0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
        0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
        0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
        0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
        0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
        0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};
    uint32_t h[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                     0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    auto rotr = [](uint32_t x, int n) { return (x >> n) | (x << (32 - n)); };
    auto block = [&](const uint8_t* p) {
        uint32_t w[64];
        for (int i = 0; i < 16; ++i)
            w[i] = uint32_t(p[4 * i]) << 24 | uint32_t(p[4 * i + 1]) << 16 | uint32_t(p[4 * i + 2]) << 8 |
                   p[4 * i + 3];
        for (int i = 16; i < 64; ++i) {
            const uint32_t s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >> 3);
            const uint32_t s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >> 10);
            w[i] = w[i - 16] + s0 + w[i - 7] + s1;
        }
        uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7];
        for (int i = 0; i < 64; ++i) {
            const uint32_t t1 =
                hh + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + k[i] + w[i];
            const uint32_t t2 = (rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
            hh = g, g = f, f = e, e = d + t1, d = c, c = b, b = a, a = t1 + t2;
        }
        h[0] += a, h[1] += b, h[2] += c, h[3] += d, h[4] += e, h[5] += f, h[6] += g, h[7] += hh;
    };
    size_t i = 0;
    for (; i + 64 <= size; i += 64) block(data + i);
    uint8_t tail[128] = {};
    const size_t rest = size - i;
    if (rest) std::memcpy(tail, data + i, rest);  // data may be null when size == 0
    tail[rest] = 0x80;
    const size_t tail_len = rest + 9 <= 64 ? 64 : 128;
    const uint64_t bits = uint64_t(size) * 8;
    for (int j = 0; j < 8; ++j) tail[tail_len - 1 - j] = uint8_t(bits >> (8 * j));
    block(tail);
    if (tail_len == 128) block(tail + 64);
    char hex[65];
    for (int j = 0; j < 8; ++j) std::snprintf(hex + 8 * j, 9, "%08x", h[j]);
    return std::string(hex, 64);
}

std::string tensor_sha256(const torch::Tensor& t) {
    const auto c = t.contiguous();
    return sha256_hex(static_cast<const uint8_t*>(c.data_ptr()), c.numel() * c.element_size());
}

torch::ScalarType dtype_from_name(const std::string& n) {
    static const std::map<std::string, torch::ScalarType> m = {
        {"float32", torch::kFloat},  {"float16", torch::kHalf}, {"bfloat16", torch::kBFloat16},
        {"float64", torch::kDouble}, {"int64", torch::kLong},   {"int32", torch::kInt},
        {"int16", torch::kShort},    {"int8", torch::kChar},    {"uint8", torch::kByte},
        {"bool", torch::kBool}};
    return m.at(n);
}

bool points_into(const torch::Tensor& t, const io::ZipArchive& a) {
    const auto* p = static_cast<const uint8_t*>(t.data_ptr());
    return p >= a.file()->data() && p < a.file()->data() + a.file()->size();
}

/// Runs `f`, which must throw Error(Weights) whose message contains every one of `parts`.
template <typename F>
void require_weights_error(F&& f, const std::vector<std::string>& parts) {
    try {
        f();
        FAIL("no error thrown; expected one mentioning '" << parts.front() << "'");
    } catch (const Error& e) {
        INFO(e.what());
        CHECK(e.code() == ErrorCode::Weights);
        for (const auto& p : parts) CHECK(std::string(e.what()).find(p) != std::string::npos);
    }
}

io::PickleDocument unpickle_str(const std::string& bytes) {
    return io::unpickle(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), "test.pkl");
}

}  // namespace

TEST_CASE("sha256 helper matches known digests", "[checkpoint]") {
    CHECK(sha256_hex(nullptr, 0) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    const std::string abc = "abc";
    CHECK(sha256_hex(reinterpret_cast<const uint8_t*>(abc.data()), 3) ==
          "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    const std::string two =
        "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";  // 56 bytes: two tail blocks
    CHECK(sha256_hex(reinterpret_cast<const uint8_t*>(two.data()), two.size()) ==
          "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

TEST_CASE("a state dict saved directly: every dtype, shared-storage views, parameters", "[checkpoint]") {
    const auto path = fixture("state_dict_dtypes.pt");
    auto ck = std::make_unique<TorchCheckpoint>(path);
    CHECK(ck->format() == "torch-zip");
    CHECK(ck->path() == path);
    CHECK(ck->record_prefix() == "state_dict_dtypes/");
    CHECK(ck->state_dict_key().empty());
    CHECK(ck->metadata() == nlohmann::json::object());

    const std::vector<std::string> order = {"half",  "bf16",        "base",   "base_t", "row1",  "long",
                                            "int32", "double",      "int8",   "uint8",  "int16", "mask",
                                            "param", "param_state", "scalar", "empty"};
    REQUIRE(ck->tensors().size() == order.size());
    for (size_t i = 0; i < order.size(); ++i) CHECK(ck->tensors()[i].name == order[i]);
    CHECK(ck->contains("base_t"));
    CHECK_FALSE(ck->contains("_metadata"));
    CHECK(ck->tensors()[0].dtype == torch::kHalf);
    CHECK(ck->tensors()[0].stored_bytes == 12);
    CHECK(ck->tensors()[3].shape == std::vector<int64_t>{4, 3});
    CHECK(ck->tensors()[3].stored_bytes == 48);
    CHECK(ck->tensors()[4].stored_bytes == 16);
    CHECK(ck->tensors()[15].stored_bytes == 0);

    auto as_vec = [](const torch::Tensor& t) {
        auto f = t.to(torch::kDouble).contiguous();
        return std::vector<double>(f.data_ptr<double>(), f.data_ptr<double>() + f.numel());
    };
    const auto half = ck->load("half");
    CHECK(half.dtype() == torch::kHalf);
    CHECK(half.sizes() == torch::IntArrayRef({2, 3}));
    CHECK(as_vec(half) == std::vector<double>{0.5, -1.0, 2.0, 65504.0, 0.25, -0.0});
    CHECK(std::signbit(as_vec(half)[5]));
    const auto bf16 = ck->load("bf16");
    CHECK(bf16.dtype() == torch::kBFloat16);
    CHECK(as_vec(bf16)[1] == -2.5);
    CHECK(as_vec(bf16)[3] == 0.0078125);

    const auto base = ck->load("base");
    const auto base_t = ck->load("base_t");
    CHECK(torch::equal(base, torch::arange(12, torch::kFloat).reshape({3, 4})));
    CHECK_FALSE(base_t.is_contiguous());
    CHECK(base_t.strides() == torch::IntArrayRef({1, 4}));
    CHECK(torch::equal(base_t, base.t()));
    CHECK(torch::equal(ck->load("row1"), torch::tensor({4.f, 5.f, 6.f, 7.f})));
    // Aligned records are mapped, not copied.
    CHECK(points_into(base, ck->archive()));
    CHECK(points_into(base_t, ck->archive()));

    const auto lng = ck->load("long");
    CHECK(lng.dtype() == torch::kLong);
    CHECK(lng[1].item<int64_t>() == (int64_t{1} << 40) + 5);
    CHECK(lng[0].item<int64_t>() == -1);
    const auto i32 = ck->load("int32");
    CHECK(i32[0].item<int32_t>() == INT32_MIN);
    CHECK(i32[1].item<int32_t>() == INT32_MAX);
    CHECK(ck->load("double")[1].item<double>() == -1e300);
    CHECK(ck->load("int8")[0].item<int8_t>() == -128);
    CHECK(ck->load("uint8")[2].item<uint8_t>() == 255);
    CHECK(ck->load("int16")[0].item<int16_t>() == -300);
    const auto mask = ck->load("mask");
    CHECK(mask.dtype() == torch::kBool);
    CHECK(torch::equal(mask, torch::tensor({true, false, true, true}).reshape({2, 2})));
    CHECK(torch::equal(ck->load("param"), torch::tensor({1.5f, 2.5f})));
    CHECK(torch::equal(ck->load("param_state"), torch::tensor({4.f})));
    const auto scalar = ck->load("scalar");
    CHECK(scalar.dim() == 0);
    CHECK(scalar.item<float>() == 42.f);
    const auto empty = ck->load("empty");
    CHECK(empty.sizes() == torch::IntArrayRef({0, 3}));

    require_weights_error([&] { ck->load("nope"); }, {path, "'nope'"});

    // A loaded tensor keeps the mapping alive after the checkpoint is gone.
    ck.reset();
    CHECK(base_t[3][2].item<float>() == 11.f);
}

TEST_CASE("Whisper-style container with a CUDA storage, ZIP64 records and unaligned data", "[checkpoint]") {
    TorchCheckpoint ck(fixture("cuda_zip64_unaligned.pt"));
    CHECK(ck.record_prefix() == "whisper/");
    CHECK(ck.state_dict_key() == "model_state_dict");
    const auto m = ck.metadata();
    CHECK(m.size() == 1);
    const auto& dims = m.at("dims");
    CHECK(dims.at("n_mels") == 80);
    CHECK(dims.at("name") == "tiny");
    CHECK(dims.at("ratio") == 0.5);
    CHECK(dims.at("flags") == nlohmann::json::parse("[true, null]"));
    CHECK(dims.at("pair") == nlohmann::json::parse("[1, 2]"));
    REQUIRE(ck.tensors().size() == 1);
    const auto w = ck.load("encoder.w");
    CHECK(w.device().is_cpu());
    CHECK(torch::equal(w, torch::tensor({1.f, 2.f, 3.f, 4.f}).reshape({2, 2})));
    // The record starts one byte off a 4-byte boundary, so the reader had to copy.
    CHECK(reinterpret_cast<uintptr_t>(ck.archive().data(*ck.archive().find("whisper/data/0")).data) % 4 != 0);
    CHECK_FALSE(points_into(w, ck.archive()));
}

TEST_CASE("torch 2.x UntypedStorage with _rebuild_tensor_v3 in a LatentSync container", "[checkpoint]") {
    TorchCheckpoint ck(fixture("untyped_v3.pt"));
    CHECK(ck.state_dict_key() == "state_dict");
    CHECK(ck.metadata() == nlohmann::json::parse(R"({"global_step": 1234})"));
    REQUIRE(ck.tensors().size() == 1);
    CHECK(ck.tensors()[0].dtype == torch::kHalf);
    CHECK(ck.tensors()[0].stored_bytes == 6);
    CHECK(torch::equal(ck.load("u").to(torch::kFloat), torch::tensor({1.f, 2.f, 3.f})));
}

TEST_CASE("malformed and hostile checkpoints fail with Weights errors naming the file and the reason",
          "[checkpoint]") {
    const std::vector<std::pair<std::string, std::vector<std::string>>> cases = {
        {"bad_global.pt", {"refusing to load", "'os.system'", "not allowed", "only tensors"}},
        {"bad_stack_global.pt", {"refusing to load", "'builtins.eval'", "not allowed"}},
        {"bad_opcode.pt", {"malformed pickle", "opcode 0xff"}},
        {"short_storage.pt", {"tensor 'w'", "needs 64 bytes of storage", "only 32 bytes"}},
        {"missing_storage.pt", {"tensor 'w'", "storage record", "missing"}},
        {"negative_shape.pt", {"tensor 'w'", "negative dimension"}},
        {"overflow_shape.pt", {"tensor 'w'", "overflow"}},
        {"deflated.pt", {"'deflated/data.pkl'", "compressed", "deflate"}},
        {"big_endian.pt", {"'big' byte order", "only little-endian"}},
        {"cyclic_metadata.pt", {"nests deeper"}},
        {"not_a_dict.pt", {"data.pkl holds a list"}},
        {"no_tensors.pt", {"no tensors found", "epoch, lr"}},
        {"truncated.pt", {"truncated"}},
        {"wrong_magic.pt", {"wrong magic"}},
        {"legacy.pt", {"legacy torch.save format"}},
    };
    for (const auto& [name, parts] : cases) {
        SECTION(name) {
            const auto path = fixture(name);
            auto all = parts;
            all.push_back(path);
            require_weights_error([&] { TorchCheckpoint ck(path); }, all);
        }
    }
}

TEST_CASE("bad paths keep their own error codes", "[checkpoint]") {
    test::ScratchDir dir("torch_checkpoint_paths");
    try {
        TorchCheckpoint ck((dir.path() / "absent.pt").string());
        FAIL("opened a missing file");
    } catch (const Error& e) {
        CHECK(e.code() == ErrorCode::InputMissing);
    }
    write_file(dir.path() / "empty.pt", "");
    try {
        TorchCheckpoint ck((dir.path() / "empty.pt").string());
        FAIL("opened an empty file");
    } catch (const Error& e) {
        CHECK(e.code() == ErrorCode::InputEmpty);
    }
}

TEST_CASE("the unpickler decodes the plain values Python writes", "[checkpoint][pickle]") {
    // pickle.dumps({"a": [1, -2, 2**40, -2**40, 1.5, True, False, None, "é€", 65535, -70000], 3: (1, 2),
    //               "b": b"\x00\xff", "t3": (1, 2, 3), "t0": ()}, protocol=2)
    const std::string p2(
        "\x80\x02\x7d\x71\x00\x28\x58\x01\x00\x00\x00\x61\x71\x01\x5d\x71\x02\x28\x4b\x01\x4a\xfe\xff\xff\xff"
        "\x8a"
        "\x06\x00\x00\x00\x00\x00\x01\x8a\x06\x00\x00\x00\x00\x00\xff\x47\x3f\xf8\x00\x00\x00\x00\x00\x00\x88"
        "\x89"
        "\x4e\x58\x05\x00\x00\x00\xc3\xa9\xe2\x82\xac\x71\x03\x4d\xff\xff\x4a\x90\xee\xfe\xff\x65\x4b\x03\x4b"
        "\x01"
        "\x4b\x02\x86\x71\x04\x58\x01\x00\x00\x00\x62\x71\x05\x63\x5f\x63\x6f\x64\x65\x63\x73\x0a\x65\x6e\x63"
        "\x6f"
        "\x64\x65\x0a\x71\x06\x58\x03\x00\x00\x00\x00\xc3\xbf\x71\x07\x58\x06\x00\x00\x00\x6c\x61\x74\x69\x6e"
        "\x31"
        "\x71\x08\x86\x71\x09\x52\x71\x0a\x58\x02\x00\x00\x00\x74\x33\x71\x0b\x4b\x01\x4b\x02\x4b\x03\x87\x71"
        "\x0c"
        "\x58\x02\x00\x00\x00\x74\x30\x71\x0d\x29\x75\x2e",
        168);
    const auto doc = unpickle_str(p2);
    const PickleValue& r = doc.root();
    REQUIRE(r.kind == PickleValue::Kind::Dict);
    REQUIRE(r.entries.size() == 5);
    const PickleValue* a = r.get("a");
    REQUIRE(a);
    REQUIRE(a->items.size() == 11);
    CHECK(a->items[0]->integer == 1);
    CHECK(a->items[1]->integer == -2);
    CHECK(a->items[2]->integer == (int64_t{1} << 40));
    CHECK(a->items[3]->integer == -(int64_t{1} << 40));
    CHECK(a->items[4]->real == 1.5);
    CHECK(a->items[5]->boolean);
    CHECK(a->items[6]->kind == PickleValue::Kind::Bool);
    CHECK_FALSE(a->items[6]->boolean);
    CHECK(a->items[7]->kind == PickleValue::Kind::None);
    CHECK(a->items[8]->text == "\xc3\xa9\xe2\x82\xac");
    CHECK(a->items[9]->integer == 65535);
    CHECK(a->items[10]->integer == -70000);
    CHECK(r.entries[1].first->kind == PickleValue::Kind::Int);  // the int key 3
    CHECK(r.entries[1].second->items.size() == 2);
    REQUIRE(r.get("b"));
    CHECK(r.get("b")->kind == PickleValue::Kind::Bytes);
    CHECK(r.get("b")->text == std::string("\x00\xff", 2));
    CHECK(r.get("t3")->items.size() == 3);
    CHECK(r.get("t0")->kind == PickleValue::Kind::Tuple);

    // pickle.dumps({"a": [1, "xxx", b"\x01\x02"], "f": -0.25}, protocol=4): FRAME, MEMOIZE, SHORT_BINBYTES
    const std::string p4(
        "\x80\x04\x95\x27\x00\x00\x00\x00\x00\x00\x00\x7d\x94\x28\x8c\x01\x61\x94\x5d\x94\x28\x4b"
        "\x01\x8c\x03\x78\x78\x78\x94\x43\x02\x01\x02\x94\x65\x8c\x01\x66\x94\x47\xbf\xd0\x00\x00"
        "\x00\x00\x00\x00\x75\x2e",
        50);
    const auto doc4 = unpickle_str(p4);
    REQUIRE(doc4.root().get("a"));
    CHECK(doc4.root().get("a")->items[1]->text == "xxx");
    CHECK(doc4.root().get("a")->items[2]->text == "\x01\x02");
    CHECK(doc4.root().get("f")->real == -0.25);

    // set(list) and torch.Size(tuple) stand for their argument (no copy); a memoized str encoded twice to
    // bytes yields one node.
    const auto set = unpickle_str(
        "\x80\x02"
        "cbuiltins\nset\n]q\x00(K\x01K\x02"
        "e\x85R."s);
    CHECK(set.root().kind == PickleValue::Kind::List);
    CHECK(set.root().items.size() == 2);
    const auto enc = unpickle_str(
        "\x80\x02"
        "c_codecs\nencode\nq\x00X\x02\x00\x00\x00\xc3\xbfq\x01X\x06\x00\x00\x00latin1q\x02\x86R"
        "h\x00h\x01h\x02\x86R\x86."s);
    REQUIRE(enc.root().items.size() == 2);
    CHECK(enc.root().items[0]->text == "\xff");
    CHECK(enc.root().items[0] == enc.root().items[1]);

    // A list that contains itself: representable (the document owns the nodes), and it does not leak.
    const auto cyc =
        unpickle_str(std::string("\x80\x02]q\x00h\x00"
                                 "a.",
                                 9));
    CHECK(cyc.root().items.at(0) == &cyc.root());
}

TEST_CASE("the unpickler rejects malformed input with a specific reason", "[checkpoint][pickle]") {
    const std::vector<std::pair<std::string, std::string>> cases = {
        {""s, "truncated"},
        {"\x80\x02"s, "before the STOP"},
        {"."s, "empty stack"},
        {"\x80\x02t."s, "needs a MARK"},
        {"\x80\x02s."s, "stack underflow"},
        {"\x80\x02(K\x01"
         "0"
         "0."s,
         "stack underflow"},  // POP may not reach below a MARK
        {"\x80\x06."s, "protocol 6"},
        {"X\xff\xff\xff\x7f"s, "truncated"},
        {"\x8d\xff\xff\xff\xff\xff\xff\xff\xff"s, "truncated"},
        {"\x95\xff\xff\xff\xff\xff\xff\xff\x7f"s, "frame"},
        {"\x80\x02h\x05."s, "never stored"},
        {"\x80\x02r\xff\xff\xff\xff."s, "stack underflow"},
        {std::string(5000, '('), "MARKs nest deeper"},
        {"cposix\nsystem\n"s, "'posix.system'"},
        {"c__builtin__\neval\n"s, "'builtins.eval'"},
        {"cnumpy.core.multiarray\n_reconstruct\n"s, "'numpy.core.multiarray._reconstruct'"},
        {"ctorch._utils\n_rebuild_tensor_v2"s, "unterminated"},
        {"c" + std::string(300, 'a') + "\nb\n", "unterminated or longer"},
        {"\x8a\x09\x01\x02\x03\x04\x05\x06\x07\x08\x09."s, "does not fit"},
        {"X\x02\x00\x00\x00\xc3\x28."s, "UTF-8"},
        {"])R."s, "REDUCE calls a list"},
        {"ccollections\nOrderedDict\nK\x01R."s, "arguments are not a tuple"},
        {"ccollections\nOrderedDict\n)R]b."s, "BUILD with a list"},
        {"K\x00K\x01K\x02s."s, "SETITEM on a int"},
        {"}]K\x01s."s, "dict keys must be strings or integers"},
        {"ctorch\nFloatStorage\n)R."s, "cannot be called"},
        {"(X\x07\x00\x00\x00storageX\x01\x00\x00\x00"
         "0X\x01\x00\x00\x00"
         "0X\x03\x00\x00\x00"
         "cpuK\x01tQ."s,
         "does not name a storage class"},
        {"}X\x01\x10\x00\x00"s + std::string(4097, 'k') + "K\x01s.", "dict key longer than 4096"},
        {"(X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x01\x00\x00"s + std::string(257, '0') +
             "X\x03\x00\x00\x00"
             "cpuK\x01tQ."s,
         "storage key is not a short"},
        {"\x8c\x05torch\x8c\xff"s + std::string(255, 'x') + "\x93."s, "not allowed"},
        {"\x8c\x05torch\x58\x01\x01\x00\x00"s + std::string(257, 'x') + "\x93."s, "longer than 256"},
        {"cbuiltins\nset\nK\x01\x85R."s, "one list or tuple"},
        {"\x80\x02\xfe."s, "opcode 0xfe"},
        {"\x80\x02I1\n."s, "opcode 0x49 ('I')"},
    };
    for (size_t i = 0; i < cases.size(); ++i) {
        const auto& [bytes, reason] = cases[i];
        INFO("case " << i << ": expecting '" << reason << "'");
        require_weights_error([&] { unpickle_str(bytes); }, {"test.pkl", reason});
    }
}

TEST_CASE("every prefix and many corruptions of data.pkl end in an Error, never a crash",
          "[checkpoint][pickle]") {
    TorchCheckpoint ck(fixture("state_dict_dtypes.pt"));
    const auto view = ck.archive().data(*ck.archive().find("state_dict_dtypes/data.pkl"));
    const std::string pkl(reinterpret_cast<const char*>(view.data), view.size);
    for (size_t n = 0; n < pkl.size(); ++n) {
        try {
            unpickle_str(pkl.substr(0, n));
            FAIL("a prefix of " << n << " bytes unpickled");
        } catch (const Error& e) {
            CHECK(e.code() == ErrorCode::Weights);
        }
    }
    size_t rejected = 0;
    for (size_t i = 0; i < pkl.size(); ++i) {
        for (const uint8_t flip : {0x01, 0x80, 0xff}) {
            std::string bad = pkl;
            bad[i] = static_cast<char>(bad[i] ^ flip);
            try {
                unpickle_str(bad);
            } catch (const Error& e) {
                CHECK(e.code() == ErrorCode::Weights);
                ++rejected;
            }
        }
    }
    CHECK(rejected > pkl.size());  // most corruptions are caught; the rest decode to some other value tree
}

TEST_CASE("corrupting any byte of a checkpoint file yields a checkpoint or an Error", "[checkpoint]") {
    test::ScratchDir dir("torch_checkpoint_fuzz");
    const std::string good = test::file_bytes(fixture("cuda_zip64_unaligned.pt"));
    const std::string good_aligned = test::file_bytes(fixture("state_dict_dtypes.pt"));
    size_t opened = 0, rejected = 0;
    for (const auto* original : {&good, &good_aligned}) {
        for (size_t i = 0; i < original->size(); ++i) {
            std::string bad = *original;
            bad[i] = static_cast<char>(bad[i] ^ (i % 2 ? 0xff : 0x10));
            const auto p = dir.path() / "fuzz.pt";
            write_file(p, bad);
            try {
                TorchCheckpoint ck(p.string());
                for (const auto& t : ck.tensors()) (void)tensor_sha256(ck.load(t.name));
                (void)ck.metadata().dump();
                ++opened;
            } catch (const Error& e) {
                CHECK(e.code() == ErrorCode::Weights);
                ++rejected;
            }
        }
    }
    CHECK(opened > 0);
    CHECK(rejected > 0);
}

TEST_CASE("ZIP reader: entries, prefix, truncation anywhere", "[checkpoint][zip]") {
    const auto file = io::MappedFile::open(fixture("cuda_zip64_unaligned.pt"));
    const io::ZipArchive zip(file);
    CHECK(zip.torch_record_prefix() == "whisper/");
    REQUIRE(zip.find("whisper/version"));
    const auto v = zip.data(*zip.find("whisper/version"));
    CHECK(std::string(reinterpret_cast<const char*>(v.data), v.size) == "3\n");
    CHECK(zip.find("whisper/nothing") == nullptr);
    CHECK(zip.entries().front().name == "whisper/data.pkl");

    test::ScratchDir dir("torch_checkpoint_zip");
    const std::string bytes(reinterpret_cast<const char*>(file->data()), file->size());
    for (size_t n = 1; n < bytes.size(); ++n) {
        const auto p = dir.path() / "cut.pt";
        write_file(p, bytes.substr(0, n));
        INFO("cut at " << n);
        require_weights_error([&] { io::ZipArchive z(io::MappedFile::open(p.string())); }, {p.string()});
    }
}

TEST_CASE("golden checkpoints: counts, metadata and every tensor's bytes", "[checkpoint][golden]") {
    const std::string dir = golden_dir();
    if (dir.empty()) LSYNC_SKIP("golden checkpoints not found (set LSYNC_GOLDEN_DIR)");
    const auto hashes = nlohmann::json::parse(test::file_bytes(fixture("golden_tensor_hashes.json")));

    for (const std::string name : {"unet_tiny_latentsync_unet.pt", "whisper_tiny_random.pt"}) {
        SECTION(name) {
            TorchCheckpoint ck(dir + "/" + name);
            const auto& expected = hashes.at(name);
            REQUIRE(ck.tensors().size() == expected.size());
            int64_t elements = 0, parameters = 0;
            for (size_t i = 0; i < ck.tensors().size(); ++i) {
                const auto& info = ck.tensors()[i];
                INFO(name << ": " << info.name);
                REQUIRE(expected.contains(info.name));
                const auto& e = expected.at(info.name);
                CHECK(e.at("index").get<size_t>() == i);  // pickle order
                CHECK(info.dtype == dtype_from_name(e.at("dtype")));
                CHECK(info.shape == e.at("shape").get<std::vector<int64_t>>());
                const auto t = ck.load(info.name);
                CHECK(t.sizes() == torch::IntArrayRef(info.shape));
                CHECK(points_into(t, ck.archive()));  // torch 2.x aligns records: zero-copy
                CHECK(tensor_sha256(t) == e.at("sha256").get<std::string>());
                elements += t.numel();
                // The motion modules' sinusoidal `pe` tables are buffers, not parameters.
                const bool buffer =
                    info.name.size() > 3 && info.name.compare(info.name.size() - 3, 3, ".pe") == 0;
                if (!buffer) parameters += t.numel();
            }
            if (name == "unet_tiny_latentsync_unet.pt") {
                CHECK(ck.tensors().size() == 776);
                CHECK(parameters == 2364772);
                CHECK(elements == 2392420);
                CHECK(ck.state_dict_key() == "state_dict");
                CHECK(ck.metadata() == nlohmann::json::parse(R"({"global_step": 0})"));
                CHECK(ck.contains("conv_in.weight"));
                CHECK(ck.tensors()[0].shape == std::vector<int64_t>{32, 13, 3, 3});
            } else {
                CHECK(ck.tensors().size() == 95);
                CHECK(ck.state_dict_key() == "model_state_dict");
                const auto dims = ck.metadata().at("dims");
                CHECK(dims.at("n_mels") == 80);
                CHECK(dims.at("n_audio_ctx") == 1500);
                CHECK(dims.at("n_audio_state") == 64);
                CHECK(dims.at("n_audio_head") == 2);
                CHECK(dims.at("n_audio_layer") == 4);
                CHECK(dims.at("n_vocab") == 128);
                CHECK(dims.at("n_text_ctx") == 16);
                CHECK(dims.at("n_text_state") == 64);
                CHECK(dims.at("n_text_head") == 2);
                CHECK(dims.at("n_text_layer") == 1);
                CHECK(ck.metadata().size() == 1);
            }
        }
    }
}
