#include "io/tfjs.h"

#include "core/error.h"
#include "core/shape_text.h"
#include "core/files.h"
#include "core/json_limits.h"
#include "core/untrusted_text.h"

#include <c10/util/Half.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>

// Shard bytes are reinterpreted in place; TF.js writes them little-endian.
#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "TF.js weight loading assumes a little-endian host"
#endif

namespace fs = std::filesystem;

namespace lsync::io {

namespace {

// Real manifests are tens of KB; anything this large is not one, and reading it whole would be wasteful.
constexpr uintmax_t kMaxManifestBytes = 64ull << 20;

/// The shard holding stream byte `offset`, given each shard's starting offset (ascending, starts[0] == 0).
size_t shard_index(const std::vector<uint64_t>& starts, uint64_t offset) {
    return static_cast<size_t>(std::upper_bound(starts.begin(), starts.end(), offset) - starts.begin()) - 1;
}

}  // namespace

TfjsWeights::TfjsWeights(const std::string& manifest_path) : path_(manifest_path) {
    const auto fail = [&](const std::string& what) {
        throw_error(ErrorCode::Weights, "TF.js manifest " + path_ + ": " + what);
    };
    check_input_file(path_, "model");
    std::error_code ec;
    if (fs::file_size(path_, ec) > kMaxManifestBytes && !ec)
        fail("is larger than 64 MB, not a weights manifest");

    std::ifstream in(path_, std::ios::binary);
    if (!in) fail("cannot be opened");
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    nlohmann::json j = parse_untrusted_json(text, [&](const std::string& why) { fail("is " + why); });
    // A full model.json carries the same array under "weightsManifest"; accept both.
    if (j.is_object() && j.contains("weightsManifest")) {
        nlohmann::json inner = std::move(j["weightsManifest"]);
        j = std::move(inner);
    }
    if (!j.is_array())
        fail("is not a weights manifest (expected a JSON array of groups, or a model.json with "
             "\"weightsManifest\")");
    if (j.empty()) fail("has no weight groups");

    const fs::path dir = fs::path(path_).parent_path();
    for (size_t gi = 0; gi < j.size(); ++gi) {
        const auto& gj = j[gi];
        const std::string gname = "group " + std::to_string(gi);
        if (!gj.is_object()) fail(gname + " is not a JSON object");
        const auto paths = gj.find("paths");
        const auto weights = gj.find("weights");
        if (paths == gj.end() || !paths->is_array() || paths->empty())
            fail(gname + " has no \"paths\" list of shard files");
        if (weights == gj.end() || !weights->is_array()) fail(gname + " has no \"weights\" list");

        Group group;
        std::string shard_list;
        for (const auto& pj : *paths) {
            if (!pj.is_string() || pj.get<std::string>().empty())
                fail(gname + " has a shard path that is not a non-empty string");
            const std::string rel = pj.get<std::string>();
            const std::string shown = printable(rel);
            // Checked before anything touches the path: a hostile manifest must not make us read, or even
            // report the size of, a file outside its folder.
            const std::string why = tfjs_shard_path_problem(dir, rel);
            if (!why.empty()) fail("shard '" + shown + "' of " + gname + " " + why);
            const fs::path full = dir / rel;
            if (!fs::exists(full, ec))
                fail("shard '" + shown + "' of " + gname + " is missing (expected at " + printable(full.string(), 200) +
                     ")");
            if (!fs::is_regular_file(full, ec))
                fail("shard '" + shown + "' of " + gname + " is not a regular file");
            if (fs::file_size(full, ec) == 0 && !ec)
                fail("shard '" + shown + "' of " + gname + " is empty (0 bytes): truncated download?");
            try {
                group.shards.push_back(MappedFile::open(full.string()));
            } catch (const Error& e) {
                fail("shard '" + shown + "' of " + gname + ": " + e.what());
            }
            group.starts.push_back(group.bytes);
            group.bytes += group.shards.back()->size();
            group.paths.push_back(rel);
            shard_list += (shard_list.empty() ? "" : ", ") + shown;
        }

        uint64_t stream = 0;
        for (const auto& wj : *weights) {
            if (!wj.is_object()) fail(gname + " has a weight entry that is not a JSON object");
            const auto nj = wj.find("name");
            if (nj == wj.end() || !nj->is_string()) fail(gname + " has a weight without a \"name\" string");
            const std::string name = nj->get<std::string>();
            const auto bad = [&](const std::string& what) { fail("weight '" + printable(name) + "': " + what); };
            if (index_.count(name)) bad("name appears twice in the manifest");

            const auto sj = wj.find("shape");
            if (sj == wj.end() || !sj->is_array()) bad("no \"shape\" array");
            std::vector<int64_t> shape;
            uint64_t numel = 1;
            for (const auto& d : *sj) {
                if (!d.is_number_integer()) bad("shape " + json_excerpt(*sj) + " holds a non-integer");
                if (!d.is_number_unsigned()) bad("shape " + json_excerpt(*sj) + " has a negative dimension");
                const uint64_t u = d.get<uint64_t>();
                if (__builtin_mul_overflow(numel, u, &numel) ||
                    numel > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
                    bad("shape " + json_excerpt(*sj) + " is too large (element count overflows)");
                shape.push_back(static_cast<int64_t>(u));
            }

            const auto dj = wj.find("dtype");
            if (dj == wj.end() || !dj->is_string()) bad("no \"dtype\" string");
            const std::string dtype = dj->get<std::string>();
            if (dtype != "float32" && dtype != "int32")
                bad("unsupported dtype '" + printable(dtype) + "' (supported: float32, int32)");

            Weight w;
            w.group = gi;
            w.stored = dtype == "float32" ? Stored::Float32 : Stored::Int32;
            uint64_t itemsize = 4;
            const auto qj = wj.find("quantization");
            if (qj != wj.end() && !qj->is_null()) {
                if (!qj->is_object()) bad("\"quantization\" is not a JSON object");
                const auto qd = qj->find("dtype");
                const std::string qdtype = qd != qj->end() && qd->is_string() ? qd->get<std::string>() : "";
                if (qdtype == "uint8" || qdtype == "uint16") {
                    w.stored = qdtype == "uint8" ? Stored::Uint8 : Stored::Uint16;
                    itemsize = qdtype == "uint8" ? 1 : 2;
                    const auto sc = qj->find("scale");
                    const auto mn = qj->find("min");
                    if (sc == qj->end() || !sc->is_number() || mn == qj->end() || !mn->is_number())
                        bad(qdtype + " quantization without numeric \"scale\" and \"min\"");
                    w.scale = sc->get<double>();
                    w.min = mn->get<double>();
                    if (!std::isfinite(w.scale) || !std::isfinite(w.min))
                        bad("quantization scale/min not finite");
                    if (dtype == "int32") {
                        // Checked here so load() cannot produce an out-of-range integer.
                        const double qmax = qdtype == "uint8" ? 255.0 : 65535.0;
                        const double lo = std::min(w.min, qmax * w.scale + w.min);
                        const double hi = std::max(w.min, qmax * w.scale + w.min);
                        if (lo < std::numeric_limits<int32_t>::min() ||
                            hi > std::numeric_limits<int32_t>::max())
                            bad("quantization scale/min give values outside int32");
                    }
                } else if (qdtype == "float16") {
                    if (dtype != "float32") bad("float16 quantization is for float32 weights, not " + dtype);
                    w.stored = Stored::Float16;
                    itemsize = 2;
                } else {
                    bad("unsupported quantization dtype '" + printable(qdtype) +
                        "' (supported: uint8, uint16, float16)");
                }
            }

            uint64_t bytes = 0, end = 0;
            if (__builtin_mul_overflow(numel, itemsize, &bytes) ||
                __builtin_add_overflow(stream, bytes, &end))
                bad("shape " + shape_text(shape) + " is too large (byte count overflows)");
            w.offset = stream;
            stream = end;
            if (stream > group.bytes)
                fail("truncated: weight '" + printable(name) + "' needs bytes [" + std::to_string(w.offset) + ", " +
                     std::to_string(stream) + ") of " + gname + ", but its shards (" + shard_list +
                     ") hold only " + std::to_string(group.bytes) + " bytes");

            TensorInfo info;
            info.name = name;
            info.dtype = dtype == "float32" ? torch::kFloat : torch::kInt;
            info.shape = std::move(shape);
            info.stored_bytes = bytes;
            index_.emplace(name, infos_.size());
            infos_.push_back(std::move(info));
            weights_.push_back(w);
        }
        if (stream != group.bytes)
            fail("the shards of " + gname + " (" + shard_list + ") hold " + std::to_string(group.bytes) +
                 " bytes but its weights need only " + std::to_string(stream) +
                 ": the shards do not belong to this manifest");
        groups_.push_back(std::move(group));
    }
}

nlohmann::json TfjsWeights::metadata() const {
    // Rebuilt from what was validated, not a copy of the manifest: a hostile manifest may carry huge or deeply
    // nested fields nobody reads, and callers (models inspect, convert) print or copy what this returns.
    nlohmann::json groups = nlohmann::json::array();
    for (const Group& g : groups_) groups.push_back({{"paths", g.paths}, {"weights", nlohmann::json::array()}});
    for (size_t i = 0; i < weights_.size(); ++i) {
        const Weight& w = weights_[i];
        const TensorInfo& info = infos_[i];
        nlohmann::json entry = {{"name", info.name},
                                {"shape", info.shape},
                                {"dtype", info.dtype == torch::kInt ? "int32" : "float32"}};
        if (w.stored == Stored::Uint8 || w.stored == Stored::Uint16)
            entry["quantization"] = {
                {"dtype", w.stored == Stored::Uint8 ? "uint8" : "uint16"}, {"scale", w.scale}, {"min", w.min}};
        else if (w.stored == Stored::Float16)
            entry["quantization"] = {{"dtype", "float16"}};
        groups[w.group]["weights"].push_back(std::move(entry));
    }
    return groups;
}

std::string tfjs_shard_path_problem(const fs::path& dir, const std::string& rel) {
    const fs::path p(rel);
    if (rel.find('\0') != std::string::npos) return "contains a NUL byte";
    if (p.is_absolute() || p.has_root_name() || p.has_root_directory())
        return "is an absolute path (shards must lie in the manifest's folder)";
    for (const auto& part : p)
        if (part == "..") return "contains '..' (shards must lie in the manifest's folder)";
    // A symlink (of the shard or of a folder on its way) may still lead out: compare the resolved paths.
    // weakly_canonical resolves the part that exists, so a dangling link stays unresolved and is reported as
    // missing by the caller, which says nothing about the link's target.
    std::error_code ec;
    const fs::path real_dir = fs::weakly_canonical(dir.empty() ? fs::path(".") : dir, ec);
    if (ec) return "cannot be resolved (" + ec.message() + ")";
    const fs::path real = fs::weakly_canonical(dir / p, ec);
    if (ec) return "cannot be resolved (" + ec.message() + ")";
    const auto rel_real = real.lexically_relative(real_dir);
    if (rel_real.empty() || *rel_real.begin() == "..")
        return "resolves outside the manifest's folder (through a symbolic link)";
    return {};
}

void TfjsWeights::read_stream(const Group& g, uint64_t offset, uint64_t n, uint8_t* dst) const {
    // Shard k covers stream bytes [starts[k], starts[k] + size).
    size_t k = shard_index(g.starts, offset);
    while (n > 0) {
        const uint64_t in_shard = offset - g.starts[k];
        const uint64_t take = std::min<uint64_t>(n, g.shards[k]->size() - in_shard);
        std::memcpy(dst, g.shards[k]->data() + in_shard, take);
        dst += take;
        offset += take;
        n -= take;
        ++k;
    }
}

torch::Tensor TfjsWeights::load(const std::string& name) const {
    const auto it = index_.find(name);
    if (it == index_.end())
        throw_error(ErrorCode::Weights, "TF.js manifest " + path_ + ": no weight named '" + name + "'");
    const TensorInfo& info = infos_[it->second];
    const Weight& w = weights_[it->second];
    const Group& g = groups_[w.group];
    const auto opts = torch::TensorOptions().dtype(info.dtype);
    if (info.stored_bytes == 0) return torch::empty(info.shape, opts);

    if (w.stored == Stored::Float32 || w.stored == Stored::Int32) {
        const size_t k = shard_index(g.starts, w.offset);
        const uint64_t in_shard = w.offset - g.starts[k];
        const uint8_t* p = g.shards[k]->data() + in_shard;
        if (in_shard + info.stored_bytes <= g.shards[k]->size() && reinterpret_cast<uintptr_t>(p) % 4 == 0) {
            auto keep = g.shards[k];  // the view keeps its shard mapped
            return torch::from_blob(
                const_cast<uint8_t*>(p), info.shape, [keep](void*) {}, opts);
        }
        auto t = torch::empty(info.shape, opts);
        read_stream(g, w.offset, info.stored_bytes, static_cast<uint8_t*>(t.data_ptr()));
        check_mapped_files_intact();  // the copy read the shards: zeros if one was truncated meanwhile
        return t;
    }

    std::vector<uint8_t> raw(info.stored_bytes);
    read_stream(g, w.offset, info.stored_bytes, raw.data());
    check_mapped_files_intact();
    const int64_t n = static_cast<int64_t>(info.stored_bytes / (w.stored == Stored::Uint8 ? 1 : 2));
    auto t = torch::empty(info.shape, opts);
    const auto q = [&](int64_t i) -> double {
        if (w.stored == Stored::Uint8) return raw[i];
        uint16_t v;
        std::memcpy(&v, raw.data() + 2 * i, 2);
        return v;
    };
    if (w.stored == Stored::Float16) {
        float* out = t.data_ptr<float>();
        for (int64_t i = 0; i < n; ++i) {
            uint16_t bits;
            std::memcpy(&bits, raw.data() + 2 * i, 2);
            out[i] = static_cast<float>(c10::Half(bits, c10::Half::from_bits()));
        }
    } else if (info.dtype == torch::kInt) {
        // TF.js rounds with Math.round (halves up); the range was checked when the manifest was read.
        int32_t* out = t.data_ptr<int32_t>();
        for (int64_t i = 0; i < n; ++i)
            out[i] = static_cast<int32_t>(std::floor(q(i) * w.scale + w.min + 0.5));
    } else {
        // Computed in double and rounded once to float, like TF.js (JS numbers stored into a Float32Array).
        float* out = t.data_ptr<float>();
        for (int64_t i = 0; i < n; ++i) out[i] = static_cast<float>(q(i) * w.scale + w.min);
    }
    return t;
}

}  // namespace lsync::io
