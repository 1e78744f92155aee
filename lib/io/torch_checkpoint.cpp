#include "io/torch_checkpoint.h"

#include "core/error.h"
#include "core/shape_text.h"
#include "core/untrusted_text.h"
#include "io/weights_file_error.h"

#include <algorithm>
#include <cctype>
#include <cstring>

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "TorchCheckpoint maps little-endian tensor data directly and needs a little-endian host"
#endif

namespace lsync::io {

namespace {

using Kind = PickleValue::Kind;

// Metadata is small (global_step, Whisper dims); these bounds only stop hostile pickles (deep nesting,
// cycles through the memo, shared nodes that expand exponentially when written out as a tree).
constexpr int kMaxMetadataDepth = 32;
constexpr size_t kMaxMetadataCost = size_t{64} << 20;  ///< ~bytes: 32 per value plus its text
// Overlapping views (stride 0, or several tensors on one storage) let a tiny file describe huge tensors, which
// convert and the loaders materialise densely. A tensor's dense size may not exceed its storage record; all
// tensors together may not exceed this multiple of the file (shared-storage views such as tied weights
// legitimately count a record more than once) plus kDenseSlackBytes.
constexpr uint64_t kDenseFileMultiple = 16;
constexpr uint64_t kDenseSlackBytes = uint64_t{64} << 20;

std::shared_ptr<const MappedFile> open_mapping(const std::string& path) {
    auto file = MappedFile::open(path);
    // torch.save before 1.6 (or with _use_new_zipfile_serialization=False) wrote bare concatenated pickles,
    // which start with the PROTO opcode; name that case instead of reporting "not a ZIP archive".
    if (file->size() >= 2 && file->data()[0] == 0x80 && file->data()[1] >= 2 && file->data()[1] <= 5)
        fail_weights_file(path,
                          "legacy torch.save format (PyTorch < 1.6 or _use_new_zipfile_serialization=False) is not "
                          "supported; re-save it with a current PyTorch or convert it to safetensors");
    return file;
}

nlohmann::json to_json(const std::string& path, const PickleValue& v, int depth, size_t& budget) {
    if (depth > kMaxMetadataDepth)
        fail_weights_file(path, "checkpoint metadata nests deeper than " + std::to_string(kMaxMetadataDepth) +
                                    " levels (or contains itself)");
    budget += 32 + v.text.size();
    if (budget > kMaxMetadataCost) fail_weights_file(path, "checkpoint metadata is unreasonably large");
    switch (v.kind) {
        case Kind::None: return nullptr;
        case Kind::Bool: return v.boolean;
        case Kind::Int: return v.integer;
        case Kind::Float: return v.real;
        case Kind::String: return v.text;
        case Kind::Bytes: return "<" + std::to_string(v.text.size()) + " bytes>";
        case Kind::Global: return v.text;
        case Kind::Storage: return "<storage " + v.storage->key + ">";
        case Kind::Tensor:
            return std::string("<tensor ") + c10::toString(v.tensor->dtype) + " " +
                   shape_text(v.tensor->size) + ">";
        case Kind::List:
        case Kind::Tuple: {
            auto a = nlohmann::json::array();
            for (const PickleValue* x : v.items) a.push_back(to_json(path, *x, depth + 1, budget));
            return a;
        }
        case Kind::Dict: {
            auto o = nlohmann::json::object();
            for (const auto& [k, x] : v.entries) {
                budget += k->text.size();
                o[k->kind == Kind::String ? k->text : std::to_string(k->integer)] =
                    to_json(path, *x, depth + 1, budget);
            }
            return o;
        }
    }
    return nullptr;
}

bool mul_overflows(uint64_t a, uint64_t b, uint64_t& out) { return __builtin_mul_overflow(a, b, &out); }
bool add_overflows(uint64_t a, uint64_t b, uint64_t& out) { return __builtin_add_overflow(a, b, &out); }

}  // namespace

TorchCheckpoint::TorchCheckpoint(const std::string& path) : archive_(open_mapping(path)) {
    prefix_ = archive_.torch_record_prefix();

    if (const ZipEntry* bo = archive_.find(prefix_ + "byteorder")) {
        const ByteView v = archive_.data(*bo);
        std::string order(reinterpret_cast<const char*>(v.data),
                          static_cast<size_t>(std::min<uint64_t>(v.size, 64)));
        while (!order.empty() && std::isspace(static_cast<unsigned char>(order.back()))) order.pop_back();
        if (order != "little")
            fail_weights_file(path,
                              "tensor data is stored in '" + order + "' byte order; only little-endian is supported");
    }

    const ByteView pkl = archive_.data(*archive_.find(prefix_ + "data.pkl"));
    const PickleDocument doc = unpickle(pkl.data, static_cast<size_t>(pkl.size), path);
    const PickleValue& root = doc.root();
    if (root.kind != Kind::Dict)
        fail_weights_file(path, std::string("data.pkl holds a ") + PickleValue::kind_name(root.kind) +
                                    ", not a dict of tensors (a whole pickled nn.Module or another object?)");

    const PickleValue* sd = &root;
    for (const char* key : {"state_dict", "model_state_dict"}) {
        if (const PickleValue* v = root.get(key)) {
            if (v->kind != Kind::Dict)
                fail_weights_file(path, std::string("the '") + key + "' entry is a " + PickleValue::kind_name(v->kind) +
                                            ", not a dict of tensors");
            sd = v;
            state_dict_key_ = key;
            break;
        }
    }

    size_t budget = 0;
    for (const auto& [k, v] : root.entries) {
        if (sd != &root && k->kind == Kind::String && k->text == state_dict_key_) continue;
        if (sd == &root && v->kind == Kind::Tensor) continue;
        const std::string name = k->kind == Kind::String ? k->text : std::to_string(k->integer);
        metadata_[name] = to_json(path, *v, 1, budget);
    }

    for (const auto& [k, v] : sd->entries) {
        if (k->kind != Kind::String)
            fail_weights_file(path, "state dict key " + std::to_string(k->integer) + " is not a string");
        // Non-tensor values in a nested state dict (rare: _extra_state) carry nothing loadable.
        if (v->kind == Kind::Tensor) add_tensor(k->text, *v->tensor);
    }
    if (infos_.empty()) {
        std::string keys;
        for (size_t i = 0; i < root.entries.size() && i < 10; ++i) {
            const PickleValue* k = root.entries[i].first;
            keys += (i ? ", " : "") + (k->kind == Kind::String ? k->text : std::to_string(k->integer));
        }
        if (root.entries.size() > 10) keys += ", ...";
        fail_weights_file(path, "no tensors found (top-level keys: " + (keys.empty() ? std::string("none") : keys) +
                                    "); expected a state dict, or a 'state_dict' or 'model_state_dict' entry");
    }
}

void TorchCheckpoint::add_tensor(const std::string& name, const TensorRef& ref) {
    const std::string& file = path();
    const std::string what = "tensor '" + name + "'";
    const std::string record_name = prefix_ + "data/" + ref.storage->key;
    const ZipEntry* record = archive_.find(record_name);
    if (!record)
        fail_weights_file(file, what + ": its storage record '" + record_name + "' is missing from the archive");

    // The storage size the pickle declares, in bytes (UntypedStorage counts bytes and is typed as Byte).
    const uint64_t storage_item = c10::elementSize(ref.storage->dtype);
    uint64_t declared_bytes = 0;
    if (mul_overflows(static_cast<uint64_t>(ref.storage->numel), storage_item, declared_bytes) ||
        declared_bytes > record->size)
        fail_weights_file(file, what + ": storage '" + record_name + "' holds " + std::to_string(record->size) +
                                    " bytes but the pickle declares " + std::to_string(ref.storage->numel) +
                                    " elements of " + std::to_string(storage_item) + " bytes (truncated storage?)");

    const std::string layout = "size " + shape_text(ref.size) + ", stride " + shape_text(ref.stride) +
                               ", storage offset " + std::to_string(ref.storage_offset);
    if (ref.storage_offset < 0) fail_weights_file(file, what + ": negative storage offset (" + layout + ")");
    bool empty = false;
    for (size_t i = 0; i < ref.size.size(); ++i) {
        if (ref.size[i] < 0) fail_weights_file(file, what + ": absurd shape, negative dimension (" + layout + ")");
        if (ref.stride[i] < 0) fail_weights_file(file, what + ": negative stride (" + layout + ")");
        empty = empty || ref.size[i] == 0;
    }
    // numel and the last addressed element, each checked for overflow: a hostile shape like
    // [2^40, 2^40] must not wrap around into a small, "valid" extent.
    const uint64_t item = c10::elementSize(ref.dtype);
    uint64_t numel = 1, last = 0, span = 0, end_elements = 0, end_bytes = 0;
    if (!empty) {
        for (size_t i = 0; i < ref.size.size(); ++i) {
            uint64_t reach = 0;
            if (mul_overflows(numel, static_cast<uint64_t>(ref.size[i]), numel) ||
                mul_overflows(static_cast<uint64_t>(ref.size[i] - 1), static_cast<uint64_t>(ref.stride[i]),
                              reach) ||
                add_overflows(last, reach, last))
                fail_weights_file(file, what + ": absurd shape, the element count overflows (" + layout + ")");
        }
        span = last + 1;
    } else {
        numel = 0;
    }
    if (numel > static_cast<uint64_t>(INT64_MAX) ||
        add_overflows(static_cast<uint64_t>(ref.storage_offset), span, end_elements) ||
        mul_overflows(end_elements, item, end_bytes) || end_bytes > static_cast<uint64_t>(INT64_MAX))
        fail_weights_file(file, what + ": absurd shape, the extent overflows (" + layout + ")");
    if (!empty && end_bytes > record->size)
        fail_weights_file(file, what + " needs " + std::to_string(end_bytes) + " bytes of storage '" + record_name +
                                    "' (" + layout + ") but the storage holds only " + std::to_string(record->size) +
                                    " bytes");

    uint64_t dense_bytes = 0;
    if (mul_overflows(numel, item, dense_bytes) || dense_bytes > record->size)
        fail_weights_file(file, what + " (" + layout + ") would take " + std::to_string(numel) + " x " +
                                    std::to_string(item) + " bytes in memory but its storage '" + record_name +
                                    "' holds only " + std::to_string(record->size) +
                                    " bytes: overlapping (stride-0) views that large are refused");
    dense_total_ += dense_bytes;
    if (dense_total_ > kDenseFileMultiple * archive_.file()->size() + kDenseSlackBytes)
        fail_weights_file(file, "its tensors together would take more than " +
                                    std::to_string(kDenseFileMultiple) + " times the file's size in memory (at " +
                                    what + "): overlapping views are refused");

    if (index_.count(name)) fail_weights_file(file, what + " appears twice");
    TensorInfo info;
    info.name = name;
    info.dtype = ref.dtype;
    info.shape = ref.size;
    info.stored_bytes = span * item;
    index_.emplace(name, Entry{infos_.size(), record, ref.storage_offset, ref.stride, span});
    infos_.push_back(std::move(info));
}

torch::Tensor TorchCheckpoint::load(const std::string& name) const {
    const auto it = index_.find(name);
    if (it == index_.end()) fail_weights_file(path(), "no tensor named '" + name + "'");
    const Entry& e = it->second;
    const TensorInfo& info = infos_[e.info];
    const auto options = torch::TensorOptions().dtype(info.dtype).device(torch::kCPU);
    if (e.span_elements == 0) return torch::empty(info.shape, options);

    const size_t item = c10::elementSize(info.dtype);
    const uint8_t* base = archive_.data(*e.record).data + static_cast<uint64_t>(e.storage_offset) * item;
    const size_t bytes = static_cast<size_t>(e.span_elements) * item;
    const auto span = static_cast<int64_t>(e.span_elements);

    if (info.dtype == torch::kBool) {
        // Any byte other than 0/1 is undefined behaviour for LibTorch's bool kernels.
        for (size_t i = 0; i < bytes; ++i)
            if (base[i] > 1)
                fail_weights_file(path(), "tensor '" + name + "': bool storage holds a byte that is not 0 or 1");
    }

    torch::Tensor flat;
    if (reinterpret_cast<uintptr_t>(base) % item == 0) {
        std::shared_ptr<const MappedFile> keep = archive_.file();
        flat = torch::from_blob(
            const_cast<uint8_t*>(base), {span}, [keep](void*) {}, options);
    } else {
        flat = torch::empty({span}, options);
        std::memcpy(flat.data_ptr(), base, bytes);
    }
    // The bool scan or the copy read the mapping: zeros if the file was truncated meanwhile.
    if (info.dtype == torch::kBool || flat.data_ptr() != static_cast<const void*>(base))
        archive_.file()->check_intact();
    return flat.as_strided(info.shape, e.stride, 0);
}

void TorchCheckpoint::release(const std::string& name) const {
    const auto it = index_.find(name);
    if (it == index_.end() || it->second.span_elements == 0) return;
    const Entry& e = it->second;
    const size_t item = c10::elementSize(infos_[e.info].dtype);
    const uint8_t* base = archive_.data(*e.record).data + static_cast<uint64_t>(e.storage_offset) * item;
    archive_.file()->release(base, static_cast<size_t>(e.span_elements) * item);
}

}  // namespace lsync::io
