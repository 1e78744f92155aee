#pragma once
// A restricted unpickler for the data.pkl record of torch.save archives.
//
// Python's pickle is a small stack machine whose GLOBAL + REDUCE opcodes call arbitrary functions, which is
// why loading an untrusted .pt file with Python runs code. This reader never calls anything: it knows the
// handful of globals a checkpoint uses (OrderedDict, the torch tensor/parameter rebuild functions, storage
// classes, dtypes) and interprets them itself; every other global is refused by name as soon as the pickle
// mentions it. The result is a plain value tree whose tensors are references into the archive's storages.
//
// LibTorch's own pickle_load is not used: it turns collections.OrderedDict (every module.state_dict()) into
// None, refuses nn.Parameter, and its opcode coverage differs between 1.13 and 2.x.
//
// Malformed input (unknown opcode, stack underflow, a length past the end, a huge memo index) is an
// Error(Weights) naming the source and the byte offset. Memory grows at most linearly with the input and is
// capped outright: lengths are checked against the remaining bytes before allocating, the stack, memo and
// object count are bounded, and values reused through the memo are shared rather than copied.

#include <c10/core/ScalarType.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace lsync::io {

/// What a persistent id ('storage', <storage class>, key, location, numel) names: one archive record.
struct StorageRef {
    std::string key;        ///< record name below "<prefix>/data/"
    std::string location;   ///< "cpu", "cuda:0", ... (informational: everything loads to the CPU)
    c10::ScalarType dtype;  ///< Byte for UntypedStorage
    int64_t numel = 0;      ///< elements of `dtype` (bytes for UntypedStorage)
};

/// A tensor as torch's _rebuild_tensor_v2/_v3 describe it: a strided view of a storage. Sizes and strides
/// are as read (not yet checked against the storage); offset and strides count elements of `dtype`.
struct TensorRef {
    std::shared_ptr<const StorageRef> storage;  ///< shared by every view of the same persistent id
    c10::ScalarType dtype;
    int64_t storage_offset = 0;
    std::vector<int64_t> size;
    std::vector<int64_t> stride;
};

struct PickleValue {
    enum class Kind { None, Bool, Int, Float, String, Bytes, List, Tuple, Dict, Tensor, Storage, Global };

    Kind kind = Kind::None;
    bool boolean = false;
    int64_t integer = 0;
    double real = 0.0;
    std::string text;                 ///< String, Bytes, and the "module.name" of a Global
    std::vector<PickleValue*> items;  ///< List, Tuple
    std::vector<std::pair<PickleValue*, PickleValue*>> entries;  ///< Dict, in insertion order
    std::shared_ptr<const TensorRef> tensor;                     ///< Tensor
    std::shared_ptr<const StorageRef> storage;  ///< Storage (a bare storage outside a tensor)

    /// Dict lookup by string key; nullptr when absent or not a dict.
    const PickleValue* get(const std::string& key) const;
    bool is_container() const { return kind == Kind::List || kind == Kind::Tuple || kind == Kind::Dict; }

    /// "dict", "tensor", ...: for error messages.
    static const char* kind_name(Kind k);

private:
    friend class Unpickler;
    // Dict only: key -> position in `entries`. The views point into the key nodes' text, which never changes
    // once created, so a key reused through the memo costs no copy.
    struct KeyIndex {
        std::unordered_map<std::string_view, size_t> strings;
        std::unordered_map<int64_t, size_t> ints;
    };
    std::unique_ptr<KeyIndex> index_;
};

/// The unpickled value tree. Owns every node: shared references (the memo) and even cycles a hostile file
/// could build are plain pointers between nodes, so nothing leaks and nothing is freed twice. Code walking
/// the tree must still bound its recursion (cycles, deep nesting).
class PickleDocument {
public:
    const PickleValue& root() const { return *root_; }

private:
    friend class Unpickler;
    std::vector<std::unique_ptr<PickleValue>> nodes_;
    PickleValue* root_ = nullptr;
};

/// Unpickles `size` bytes. `source` names the input in error messages (the checkpoint path). Throws
/// Error(Weights): "refusing to load <source>: pickle references the global 'os.system' which is not
/// allowed; ..." for a global outside the allowlist, "<source>: malformed pickle at byte N: ..." otherwise.
PickleDocument unpickle(const uint8_t* data, size_t size, const std::string& source);

}  // namespace lsync::io
