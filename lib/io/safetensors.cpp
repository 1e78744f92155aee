#include "io/safetensors.h"

#include "core/compat.h"
#include "core/error.h"
#include "core/shape_text.h"
#include "core/files.h"
#include "core/json_limits.h"
#include "core/untrusted_text.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <limits>
#include <set>
#include <unordered_set>
#include <tuple>
#include <unistd.h>

// Tensor bytes go between the file and memory unchanged; safetensors is little-endian by definition.
#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors I/O assumes a little-endian host"
#endif

namespace lsync::io {

namespace {

// The reference implementation's limit: a larger header is taken as a sign of a corrupt or hostile file.
constexpr uint64_t kMaxHeaderBytes = 100'000'000;

struct DtypeSpec {
    const char* name;
    torch::ScalarType type;
};

const std::vector<DtypeSpec>& dtype_table() {
    static const std::vector<DtypeSpec> table = {
        {"F64", torch::kDouble},
        {"F32", torch::kFloat},
        {"F16", torch::kHalf},
        {"BF16", torch::kBFloat16},
        {"I64", torch::kLong},
        {"I32", torch::kInt},
        {"I16", torch::kShort},
        {"I8", torch::kChar},
        {"U8", torch::kByte},
        {"BOOL", torch::kBool},
#if LSYNC_TORCH_AT_LEAST(2, 1)
        {"F8_E4M3", c10::ScalarType::Float8_e4m3fn},
        {"F8_E5M2", c10::ScalarType::Float8_e5m2},
#endif
    };
    return table;
}

std::string supported_dtypes() {
    std::string s;
    for (const auto& d : dtype_table()) s += (s.empty() ? "" : ", ") + std::string(d.name);
    return s;
}

// Names the format defines that this build cannot represent: worth a different message than a typo.
bool is_known_unsupported_dtype(const std::string& name) {
    static const std::set<std::string> names = {"F8_E4M3", "F8_E5M2", "F8_E8M0", "F4",  "F6_E2M3",
                                                "F6_E3M2", "U16",     "U32",     "U64", "C64"};
    return names.count(name) != 0;
}

std::string range_str(uint64_t begin, uint64_t end) {
    return "[" + std::to_string(begin) + ", " + std::to_string(end) + "]";
}

}  // namespace

std::string safetensors_dtype(torch::ScalarType t) {
    for (const auto& d : dtype_table())
        if (d.type == t) return d.name;
    throw_error(ErrorCode::Weights, std::string("dtype ") + c10::toString(t) +
                                        " has no safetensors equivalent" +
                                        " in this build (supported: " + supported_dtypes() + ")");
}

SafetensorsFile::SafetensorsFile(const std::string& path) : file_(MappedFile::open(path)) {
    const uint8_t* base = file_->data();
    const uint64_t size = file_->size();
    const auto fail = [&](const std::string& what) {
        throw_error(ErrorCode::Weights, "safetensors file " + path + ": " + what);
    };

    if (size < 8) fail("too short (" + std::to_string(size) + " bytes) to hold the 8-byte header length");
    uint64_t n = 0;
    for (int i = 7; i >= 0; --i) n = (n << 8) | base[i];
    // Limit first: a huge length usually means "not a safetensors file at all", which says more than
    // "runs past the end".
    if (n > kMaxHeaderBytes)
        fail("header length " + std::to_string(n) +
             " exceeds the 100 MB limit (corrupt, or not safetensors)");
    if (n > size - 8)
        fail("header length " + std::to_string(n) + " runs past the end of the file (" +
             std::to_string(size) + " bytes): truncated, or not safetensors");
    const char* h = reinterpret_cast<const char*>(base + 8);
    if (n == 0 || h[0] != '{') fail("header does not start with '{' (not a safetensors file)");

    const nlohmann::json header =
        parse_untrusted_json(std::string_view(h, n), [&](const std::string& why) { fail("header is " + why); });
    if (!header.is_object()) fail("header is not a JSON object");

    data_start_ = 8 + n;
    const uint64_t data_size = size - data_start_;

    struct Parsed {
        std::string name;
        TensorInfo info;
        uint64_t begin, end;
    };
    std::vector<Parsed> parsed;
    parsed.reserve(header.size());
    for (const auto& item : header.items()) {
        // Named references, not a structured binding: lambdas cannot capture those in C++17 (clang refuses).
        const std::string& key = item.key();
        const nlohmann::json& val = item.value();
        if (key == "__metadata__") {
            if (!val.is_object()) fail("__metadata__ is not a JSON object");
            for (const auto& [mk, mv] : val.items()) {
                if (!mv.is_string()) fail("__metadata__ value of '" + printable(mk) + "' is not a string");
                metadata_[mk] = mv.get<std::string>();
            }
            continue;
        }
        const auto bad = [&](const std::string& what) { fail("tensor '" + printable(key) + "': " + what); };
        if (!val.is_object()) bad("entry is not a JSON object");

        const auto dt = val.find("dtype");
        if (dt == val.end() || !dt->is_string()) bad("no \"dtype\" string");
        const std::string dname = dt->get<std::string>();
        const auto spec = std::find_if(dtype_table().begin(), dtype_table().end(),
                                       [&](const DtypeSpec& d) { return dname == d.name; });
        if (spec == dtype_table().end()) {
            if (dname == "F8_E4M3" || dname == "F8_E5M2")  // only missing from the table before 2.1
                bad("dtype " + dname + " needs LibTorch >= 2.1 (this build uses " + compat::torch_version() +
                    ")");
            if (is_known_unsupported_dtype(dname))
                bad("dtype " + dname + " is not supported by this reader (supported: " + supported_dtypes() +
                    ")");
            bad("unknown dtype '" + printable(dname) + "' (supported: " + supported_dtypes() + ")");
        }

        const auto sh = val.find("shape");
        if (sh == val.end() || !sh->is_array()) bad("no \"shape\" array");
        std::vector<int64_t> shape;
        for (const auto& d : *sh) {
            if (!d.is_number_integer()) bad("shape " + json_excerpt(*sh) + " holds a non-integer");
            if (d.is_number_unsigned()) {
                const uint64_t u = d.get<uint64_t>();
                if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
                    bad("shape " + json_excerpt(*sh) + " has a dimension too large for int64");
                shape.push_back(static_cast<int64_t>(u));
            } else {
                const int64_t v = d.get<int64_t>();
                if (v < 0) bad("shape " + json_excerpt(*sh) + " has a negative dimension");
                shape.push_back(v);
            }
        }
        uint64_t numel = 1;
        for (const int64_t d : shape)
            if (__builtin_mul_overflow(numel, static_cast<uint64_t>(d), &numel))
                bad("shape " + shape_text(shape) + " overflows: its element count does not fit in 64 bits");
        const uint64_t itemsize = c10::elementSize(spec->type);
        uint64_t bytes = 0;
        if (numel > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) ||
            __builtin_mul_overflow(numel, itemsize, &bytes))
            bad("shape " + shape_text(shape) + " x " + std::to_string(itemsize) +
                " bytes overflows: its size does not fit in 64 bits");

        const auto off = val.find("data_offsets");
        if (off == val.end() || !off->is_array() || off->size() != 2 || !(*off)[0].is_number_unsigned() ||
            !(*off)[1].is_number_unsigned())
            bad("\"data_offsets\" is not a pair of non-negative integers");
        const uint64_t begin = (*off)[0].get<uint64_t>();
        const uint64_t end = (*off)[1].get<uint64_t>();
        if (begin > end) bad("data_offsets " + range_str(begin, end) + " end before they begin");
        if (end - begin != bytes)
            bad("shape " + shape_text(shape) + " of " + dname + " needs " + std::to_string(bytes) +
                " bytes but data_offsets " + range_str(begin, end) + " span " + std::to_string(end - begin));
        if (end > data_size)
            bad("data_offsets " + range_str(begin, end) + " run past the end of the data region (" +
                std::to_string(data_size) + " bytes): the file is truncated or the header is wrong");

        TensorInfo info;
        info.name = key;
        info.dtype = spec->type;
        info.shape = std::move(shape);
        info.stored_bytes = bytes;
        parsed.push_back({key, std::move(info), begin, end});
    }

    // The ranges must tile the data region: no byte shared by two tensors (a hand-made file could alias
    // weights) and no byte owned by none (a sign of a header written for other data).
    std::sort(parsed.begin(), parsed.end(), [](const Parsed& a, const Parsed& b) {
        return std::tie(a.begin, a.end, a.name) < std::tie(b.begin, b.end, b.name);
    });
    uint64_t covered = 0;
    for (size_t i = 0; i < parsed.size(); ++i) {
        const Parsed& p = parsed[i];
        if (p.begin < covered)
            fail("tensors '" + printable(parsed[i - 1].name) + "' " +
                 range_str(parsed[i - 1].begin, parsed[i - 1].end) + " and '" + printable(p.name) + "' " +
                 range_str(p.begin, p.end) + " overlap");
        if (p.begin > covered)
            fail("gap in the data region: bytes " + range_str(covered, p.begin) + " before tensor '" +
                 printable(p.name) + "' belong to no tensor");
        covered = p.end;
    }
    if (covered != data_size)
        fail("gap in the data region: its last " + std::to_string(data_size - covered) +
             " bytes belong to no tensor");

    infos_.reserve(parsed.size());
    for (auto& p : parsed) {
        index_.emplace(p.name, Entry{infos_.size(), p.begin, p.end});
        infos_.push_back(std::move(p.info));
    }
}

torch::Tensor SafetensorsFile::load(const std::string& name) const {
    const auto it = index_.find(name);
    if (it == index_.end())
        throw_error(ErrorCode::Weights, "safetensors file " + path() + ": no tensor named '" + name + "'");
    const Entry& e = it->second;
    const TensorInfo& info = infos_[e.info];
    const auto opts = torch::TensorOptions().dtype(info.dtype);
    const uint64_t bytes = e.end - e.begin;
    if (bytes == 0) return torch::empty(info.shape, opts);
    const uint8_t* p = file_->data() + data_start_ + e.begin;

    if (info.dtype == torch::kBool) {
        // Any byte but 0/1 in a bool tensor is undefined behaviour in LibTorch's kernels.
        for (uint64_t i = 0; i < bytes; ++i)
            if (p[i] > 1)
                throw_error(ErrorCode::Weights, "safetensors file " + path() + ": tensor '" + name +
                                                    "': BOOL byte " + std::to_string(i) + " is " +
                                                    std::to_string(p[i]) + ", not 0 or 1");
    }

    if (info.dtype == torch::kBool) file_->check_intact();
    const size_t itemsize = c10::elementSize(info.dtype);
    if (reinterpret_cast<uintptr_t>(p) % itemsize == 0) {
        auto keep = file_;  // the tensor's deleter owns a reference: the mapping outlives every view
        return torch::from_blob(
            const_cast<uint8_t*>(p), info.shape, [keep](void*) {}, opts);
    }
    // Misaligned data (only hand-made files: every writer aligns the data region to 8) would make vectorised
    // kernels fault or slow down: copy into LibTorch's own aligned storage.
    auto t = torch::empty(info.shape, opts);
    std::memcpy(t.data_ptr(), p, bytes);
    file_->check_intact();  // the copy read the mapping: zeros if the file was truncated meanwhile
    return t;
}

nlohmann::json SafetensorsFile::metadata() const {
    nlohmann::json j = nlohmann::json::object();
    for (const auto& [k, v] : metadata_) j[k] = v;
    return j;
}

namespace {

struct FileCloser {
    void operator()(std::FILE* f) const {
        if (f) std::fclose(f);
    }
};

void write_all(std::FILE* f, const void* data, size_t n, const std::string& path) {
    if (n == 0) return;
    if (std::fwrite(data, 1, n, f) != n)
        throw_error(ErrorCode::OutputUnwritable, "cannot write " + path + ": " + std::strerror(errno));
}

}  // namespace

void write_safetensors(const std::string& path,
                       const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                       const std::map<std::string, std::string>& metadata, bool overwrite) {
    const auto fail = [&](const std::string& what) {
        throw_error(ErrorCode::Weights, "cannot write safetensors file " + path + ": " + what);
    };

    // Everything the header needs is checked before the disk is touched. Problems only the data copy can
    // reveal (a meta tensor, a failing device copy) surface while streaming; AtomicOutput then drops the
    // partial file.
    // The header text is assembled piece by piece: inserting into an ordered_json object searches its keys
    // linearly, which made a 200,000-tensor header quadratic (minutes). Names are unique (checked below), so
    // plain concatenation of escaped keys and small entry objects is equivalent and linear.
    const auto quoted = [&](const std::string& s) {
        try {
            return nlohmann::json(s).dump();
        } catch (const nlohmann::json::exception& e) {
            fail("a tensor name or metadata string is not valid UTF-8: " + printable(s) + " (" + e.what() + ")");
        }
        return std::string();
    };
    std::string text = "{";
    if (!metadata.empty()) {
        text += "\"__metadata__\":{";
        bool first = true;
        for (const auto& [k, v] : metadata) {
            text += (first ? "" : ",") + quoted(k) + ":" + quoted(v);
            first = false;
        }
        text += "}";
    }
    std::unordered_set<std::string> names;
    names.reserve(tensors.size());
    for (const auto& [name, t] : tensors) {
        if (name == "__metadata__") fail("'__metadata__' is reserved and cannot name a tensor");
        if (!names.insert(name).second) fail("duplicate tensor name '" + printable(name) + "'");
        if (!t.defined()) fail("tensor '" + printable(name) + "' is undefined");
        if (t.layout() != torch::kStrided)
            fail("tensor '" + printable(name) + "' is not dense (sparse layouts cannot be stored)");
    }
    // Widest items first (stable otherwise): every offset is then a multiple of its tensor's item size, and
    // with the data region 8-aligned every tensor of the file can be mapped without a copy.
    std::vector<size_t> order(tensors.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::stable_sort(order.begin(), order.end(), [&](size_t x, size_t y) {
        return tensors[x].second.element_size() > tensors[y].second.element_size();
    });
    std::vector<uint64_t> sizes(tensors.size());
    uint64_t offset = 0;
    for (const size_t i : order) {
        const auto& [name, t] = tensors[i];
        std::string dt;
        try {
            dt = safetensors_dtype(t.scalar_type());
        } catch (const Error& e) {
            fail("tensor '" + printable(name) + "': " + e.what());
        }
        const uint64_t bytes = static_cast<uint64_t>(t.numel()) * t.element_size();
        nlohmann::ordered_json entry = nlohmann::ordered_json::object();
        entry["dtype"] = dt;
        entry["shape"] = t.sizes().vec();
        entry["data_offsets"] = {offset, offset + bytes};
        text += (text.size() > 1 ? "," : "") + quoted(name) + ":" + entry.dump();
        sizes[i] = bytes;
        offset += bytes;
    }
    text += "}";
    // Pad so the data region starts 8-byte aligned in the file: readers can then map tensors without copying.
    text.append((8 - text.size() % 8) % 8, ' ');

    AtomicOutput out(path, overwrite);
    std::unique_ptr<std::FILE, FileCloser> f(std::fopen(out.temp_path().c_str(), "wb"));
    if (!f)
        throw_error(ErrorCode::OutputUnwritable,
                    "cannot create " + out.temp_path() + ": " + std::strerror(errno));
    uint8_t len[8];
    for (int i = 0; i < 8; ++i) len[i] = static_cast<uint8_t>(static_cast<uint64_t>(text.size()) >> (8 * i));
    write_all(f.get(), len, sizeof len, path);
    write_all(f.get(), text.data(), text.size(), path);

    for (const size_t i : order) {
        const auto& [name, t] = tensors[i];
        torch::Tensor c;
        try {
            // One tensor at a time: peak extra memory is the largest tensor, not the checkpoint.
            c = t.detach().to(torch::kCPU).contiguous();
        } catch (const c10::Error& e) {
            fail("tensor '" + name + "' cannot be copied to the CPU: " + e.what_without_backtrace());
        }
        if (static_cast<uint64_t>(c.nbytes()) != sizes[i])
            throw_error(ErrorCode::Internal,
                        "tensor '" + name + "' changed size while being written to " + path);
        write_all(f.get(), c.data_ptr(), sizes[i], path);
    }
    // Tensors viewing a mapped input read it while being written: a file truncated meanwhile gave zeros.
    check_mapped_files_intact();
    if (std::fflush(f.get()) != 0 || ::fsync(::fileno(f.get())) != 0)
        throw_error(ErrorCode::OutputUnwritable, "cannot write " + path + ": " + std::strerror(errno));
    if (std::fclose(f.release()) != 0)
        throw_error(ErrorCode::OutputUnwritable, "cannot close " + path + ": " + std::strerror(errno));
    out.commit();
}

void SafetensorsFile::release(const std::string& name) const {
    const auto it = index_.find(name);
    if (it == index_.end()) return;
    file_->release(file_->data() + data_start_ + it->second.begin, it->second.end - it->second.begin);
}

}  // namespace lsync::io
