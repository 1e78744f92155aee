#include "pipeline/first_use_journal.h"

#include "core/compat.h"
#include "core/env.h"
#include "core/json_limits.h"
#include "core/log.h"
#include "core/user_cache.h"
#include "core/version.h"
#include "diagnostics/device_description.h"
#include "io/tensor_source.h"  // io::dtype_name

#include <nlohmann/json.hpp>
#include <torch/version.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <optional>
#include <sstream>
#include <utility>
#include <vector>
#include <unistd.h>

namespace lsync::pipeline {

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr const char* kFormat = "latentsync-first-use";
constexpr int kVersion = 1;
constexpr std::uintmax_t kMaxFileBytes = 1 << 20;
// Journals a folder keeps: one per model, dtype, GPU, versions and settings (first_use_key), so a machine that
// renders under many settings (or a new version) would otherwise gather them without end.
constexpr size_t kMaxJournals = 32;
// Bounds of a shape read back: a journal is our own file, but it lives in a cache folder that other versions and
// programs may write to, and each shape becomes an allocation on the GPU.
constexpr int64_t kMaxDim = 1 << 16;
constexpr int64_t kMaxElements = int64_t{1} << 28;  // 512 MiB of fp16 per tensor

// The dtypes a journaled convolution may have, spelled as io::dtype_name spells them.
constexpr std::array<torch::ScalarType, 3> kConvDtypes{torch::kHalf, torch::kBFloat16, torch::kFloat};

std::optional<std::string> dtype_name(torch::ScalarType t) {
    if (std::find(kConvDtypes.begin(), kConvDtypes.end(), t) == kConvDtypes.end()) return std::nullopt;
    return io::dtype_name(t);
}

std::optional<torch::ScalarType> dtype_named(const std::string& s) {
    for (const auto t : kConvDtypes)
        if (s == io::dtype_name(t)) return t;
    return std::nullopt;
}

// Four sizes in [1, kMaxDim] and at most kMaxElements in all, or nothing.
std::optional<std::array<int64_t, 4>> sizes_from(const json& j) {
    if (!j.is_array() || j.size() != 4) return std::nullopt;
    std::array<int64_t, 4> out{};
    int64_t elements = 1;
    for (size_t i = 0; i < 4; ++i) {
        if (!j[i].is_number_integer()) return std::nullopt;
        const auto v = j[i].get<int64_t>();
        if (v < 1 || v > kMaxDim) return std::nullopt;
        out[i] = v;
        elements *= v;  // at most 2^64 before the check below fails: four factors of at most 2^16
        if (elements > kMaxElements) return std::nullopt;
    }
    return out;
}

std::optional<ops::ConvShape> shape_from(const json& j) {
    if (!j.is_object()) return std::nullopt;
    const auto input = sizes_from(j.value("input", json())), weight = sizes_from(j.value("weight", json()));
    const auto layout = j.value("layout", json()), geometry = j.value("geometry", json());
    if (!input || !weight || (*input)[1] != (*weight)[1] || !layout.is_array() || layout.size() != 2 ||
        !geometry.is_array() || geometry.size() != 2 || !j.value("dtype", json()).is_string())
        return std::nullopt;
    ops::ConvShape s;
    s.input = *input;
    s.weight = *weight;
    for (size_t i = 0; i < 2; ++i) {
        if (!layout[i].is_string() || (layout[i] != "nchw" && layout[i] != "nhwc")) return std::nullopt;
        if (!geometry[i].is_number_integer()) return std::nullopt;
    }
    s.input_channels_last = layout[0] == "nhwc";
    s.weight_channels_last = layout[1] == "nhwc";
    s.stride = geometry[0].get<int64_t>();
    s.padding = geometry[1].get<int64_t>();
    const auto dtype = dtype_named(j["dtype"].get<std::string>());
    // The output must have at least one pixel: ATen refuses a convolution that gives none.
    if (!dtype || s.stride < 1 || s.stride > 8 || s.padding < 0 || s.padding > 16 ||
        s.input[2] + 2 * s.padding < s.weight[2] || s.input[3] + 2 * s.padding < s.weight[3])
        return std::nullopt;
    s.dtype = *dtype;
    return s;
}

json shape_json(const ops::ConvShape& s) {
    return {{"input", s.input},
            {"weight", s.weight},
            {"layout", {s.input_channels_last ? "nhwc" : "nchw", s.weight_channels_last ? "nhwc" : "nchw"}},
            {"dtype", *dtype_name(s.dtype)},  // written only where it has one (write_first_use_journal)
            {"geometry", {s.stride, s.padding}}};
}

// An operation's call in the journal: {"op": "aten::addmm", "overload": "", "device": "cuda", "args": [...]}.
json call_json(const ops::OpCall& c) {
    return {{"op", c.name}, {"overload", c.overload}, {"device", c.cuda ? "cuda" : "cpu"}, {"args", c.args}};
}

std::optional<ops::OpCall> call_from(const json& j) {
    if (!j.is_object() || j.size() != 4) return std::nullopt;
    const auto name = j.value("op", json()), overload = j.value("overload", json()), device = j.value("device", json());
    if (!name.is_string() || !overload.is_string() || (device != "cuda" && device != "cpu")) return std::nullopt;
    ops::OpCall c;
    c.name = name.get<std::string>();
    c.overload = overload.get<std::string>();
    c.cuda = device == "cuda";
    c.args = j.value("args", json());
    if (!ops::valid_op_call(c)) return std::nullopt;
    return c;
}

// A journal's file name: the key's hash as kNameDigits lowercase hexadecimal digits, then kNameSuffix (first_use_path
// writes it, journal_file_name recognises it).
constexpr int kNameDigits = 16;
constexpr const char* kNameSuffix = ".json";

// Whether `name` is one first_use_path makes: the folder may be a user's (LSYNC_FIRST_USE_DIR), and nothing else in
// it is ours to remove.
bool journal_file_name(const std::string& name) {
    const std::string suffix = kNameSuffix;
    return name.size() == kNameDigits + suffix.size() && name.compare(kNameDigits, suffix.size(), suffix) == 0 &&
           std::all_of(name.begin(), name.begin() + kNameDigits,
                       [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

// Removes the least recently used journals of `dir` beyond kMaxJournals (their modification times: a journal read
// is marked used, read_first_use_journal), never `kept`. Best effort: a file that cannot be removed stays.
void prune_journals(const fs::path& dir, const fs::path& kept) {
    std::error_code ec;
    std::vector<std::pair<fs::file_time_type, fs::path>> journals;
    for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
        std::error_code e;
        if (!it->is_regular_file(e) || !journal_file_name(it->path().filename().string())) continue;
        const auto time = it->last_write_time(e);
        if (!e) journals.emplace_back(time, it->path());
    }
    if (journals.size() <= kMaxJournals) return;
    std::sort(journals.begin(), journals.end());  // oldest first
    size_t excess = journals.size() - kMaxJournals;
    for (const auto& [time, path] : journals) {
        if (excess == 0) break;
        if (path == kept) continue;
        std::error_code e;
        if (fs::remove(path, e)) log::debug("first-use journal ", path.string(), " removed: the least recently used");
        --excess;
    }
}

}  // namespace

std::string first_use_key(const std::string& model, torch::ScalarType dtype, const torch::Device& device,
                          const std::string& settings) {
    const auto cudnn = compat::cudnn_version();
    std::ostringstream key;
    // latentsync's own version too: another build may run other operations with the same convolutions, and the
    // operations are recorded again only when the convolutions change or the key does.
    key << "latentsync " << version_string() << "; model " << model << "; dtype " << c10::toString(dtype) << "; device "
        << diagnostics::device_description(device) << "; libtorch " << TORCH_VERSION << "; cudnn "
        << (cudnn ? std::to_string(*cudnn) : std::string("none"));
    if (!settings.empty()) key << "; " << settings;
    return key.str();
}

std::string first_use_settings(const std::string& attention, int64_t chunks, bool cfg, bool deepcache) {
    std::ostringstream settings;
    settings << "attention " << attention << "; chunks " << chunks << "; cfg " << (cfg ? "on" : "off") << "; deepcache "
             << (deepcache ? "on" : "off");
    const auto switches = env::switches_set({kFirstUseDirVariable});
    if (!switches.empty()) settings << "; " << switches;
    return settings.str();
}

std::string first_use_path(const std::string& dir, const std::string& key) {
    char digits[32];
    std::snprintf(digits, sizeof digits, "%0*zx", kNameDigits, std::hash<std::string>{}(key));
    return (fs::path(dir) / (std::string(digits) + kNameSuffix)).string();
}

FirstUseJournal read_first_use_journal(const std::string& path, const std::string& key) {
    std::error_code ec;
    if (path.empty() || !fs::is_regular_file(path, ec)) return {};
    const auto ignored = [&](const std::string& why) {
        log::warn("first-use journal ", path, " ignored: ", why);
        return FirstUseJournal{};
    };
    const auto size = fs::file_size(path, ec);
    if (ec || size > kMaxFileBytes) return ignored("larger than 1 MiB");
    std::ifstream in(path, std::ios::binary);
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (!in.good() && !in.eof()) return ignored("unreadable");
    json doc;
    try {
        doc = parse_untrusted_json(text, [](const std::string& why) { throw std::runtime_error(why); });
    } catch (const std::exception& e) {
        return ignored(e.what());
    }
    if (!doc.is_object() || doc.value("format", json()) != kFormat || doc.value("version", json()) != kVersion)
        return ignored("not a first-use journal of this version");
    if (doc.value("key", json()) != key) return {};  // another machine's or model's: replaced after the render
    const auto convs = doc.value("convs", json());
    if (!convs.is_array() || convs.size() > ops::ConvJournal::kMaxShapes) return ignored("no list of convolutions");
    FirstUseJournal journal;
    for (const auto& c : convs) {
        auto s = shape_from(c);
        if (!s) return ignored("a convolution out of bounds");
        journal.convs.push_back(*s);
    }
    const auto calls = doc.value("ops", json::array());  // none in a journal of convolutions only
    if (!calls.is_array() || calls.size() > ops::OpJournal::kMaxCalls) return ignored("no list of operations");
    for (const auto& c : calls) {
        auto call = call_from(c);
        if (!call) return ignored("an operation out of bounds");
        journal.ops.push_back(std::move(*call));
    }
    fs::last_write_time(path, fs::file_time_type::clock::now(), ec);  // used: pruning keeps it (best effort)
    return journal;
}

bool write_first_use_journal(const std::string& path, const std::string& key, const FirstUseJournal& journal) {
    if (path.empty()) return false;
    try {
        json convs = json::array(), calls = json::array();
        for (const auto& s : journal.convs)
            if (dtype_name(s.dtype)) convs.push_back(shape_json(s));
        for (const auto& c : journal.ops)
            if (ops::valid_op_call(c)) calls.push_back(call_json(c));
        const json doc = {{"format", kFormat}, {"version", kVersion}, {"key", key}, {"convs", convs}, {"ops", calls}};
        fs::create_directories(fs::path(path).parent_path());
        // Unique per process and write: two job threads of one `batch` may keep the same journal at once.
        static std::atomic<unsigned> writes{0};
        const std::string tmp = path + ".tmp-" + std::to_string(::getpid()) + "-" + std::to_string(writes++);
        {
            std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
            out << doc.dump() << '\n';
            if (!out.flush()) {
                std::error_code ec;
                fs::remove(tmp, ec);
                log::debug("first-use journal ", path, " not written: cannot write ", tmp);
                return false;
            }
        }
        fs::rename(tmp, path);
        prune_journals(fs::path(path).parent_path(), path);
        return true;
    } catch (const std::exception& e) {
        log::debug("first-use journal ", path, " not written: ", e.what());
        return false;
    }
}

}  // namespace lsync::pipeline
