#include "io/pickle.h"

#include "core/error.h"
#include "core/untrusted_text.h"

#include <algorithm>
#include <cstdio>
#include <cstring>

namespace lsync::io {

namespace {

// Far above anything torch.save writes (a 1,246-tensor UNet needs ~10k memo slots and a stack of ~10), low
// enough that a hostile file cannot make the bookkeeping itself the problem.
constexpr size_t kMaxStack = size_t{1} << 22;
constexpr size_t kMaxMarks = 4096;
constexpr size_t kMaxMemo = size_t{1} << 22;
constexpr size_t kMaxRank = 64;
constexpr size_t kMaxGlobalName = 256;
// Every node is ~150 bytes and the cheapest opcode that makes one is a single byte; without a cap a hostile
// pickle of N bytes would cost ~150 N. Four million nodes is ~600 MB and ~150k tensors.
constexpr size_t kMaxNodes = size_t{1} << 22;
// Strings reused through the memo are shared, but some uses copy them (dict-key hashing, storage ids); these
// caps keep such reuse from multiplying the input. Real keys are parameter names and decimal storage ids.
constexpr size_t kMaxDictKey = 4096;
constexpr size_t kMaxStorageKey = 256;

using Kind = PickleValue::Kind;

struct StorageClass {
    const char* name;
    c10::ScalarType dtype;
};

// The persistent id names a storage by its legacy typed class even in torch 2.x; that class fixes the dtype.
constexpr StorageClass kStorageClasses[] = {
    {"torch.FloatStorage", c10::ScalarType::Float},
    {"torch.DoubleStorage", c10::ScalarType::Double},
    {"torch.HalfStorage", c10::ScalarType::Half},
    {"torch.BFloat16Storage", c10::ScalarType::BFloat16},
    {"torch.LongStorage", c10::ScalarType::Long},
    {"torch.IntStorage", c10::ScalarType::Int},
    {"torch.ShortStorage", c10::ScalarType::Short},
    {"torch.CharStorage", c10::ScalarType::Char},
    {"torch.ByteStorage", c10::ScalarType::Byte},
    {"torch.BoolStorage", c10::ScalarType::Bool},
    {"torch.ComplexFloatStorage", c10::ScalarType::ComplexFloat},
    {"torch.ComplexDoubleStorage", c10::ScalarType::ComplexDouble},
    // torch.save writes an UntypedStorage (sizes in bytes) for dtypes without a legacy class and pairs it
    // with _rebuild_tensor_v3, which carries the dtype.
    {"torch.UntypedStorage", c10::ScalarType::Byte},
};

constexpr StorageClass kDtypes[] = {
    {"torch.float32", c10::ScalarType::Float},
    {"torch.float", c10::ScalarType::Float},
    {"torch.float64", c10::ScalarType::Double},
    {"torch.double", c10::ScalarType::Double},
    {"torch.float16", c10::ScalarType::Half},
    {"torch.half", c10::ScalarType::Half},
    {"torch.bfloat16", c10::ScalarType::BFloat16},
    {"torch.int64", c10::ScalarType::Long},
    {"torch.long", c10::ScalarType::Long},
    {"torch.int32", c10::ScalarType::Int},
    {"torch.int", c10::ScalarType::Int},
    {"torch.int16", c10::ScalarType::Short},
    {"torch.short", c10::ScalarType::Short},
    {"torch.int8", c10::ScalarType::Char},
    {"torch.uint8", c10::ScalarType::Byte},
    {"torch.bool", c10::ScalarType::Bool},
    {"torch.complex64", c10::ScalarType::ComplexFloat},
    {"torch.cfloat", c10::ScalarType::ComplexFloat},
    {"torch.complex128", c10::ScalarType::ComplexDouble},
    {"torch.cdouble", c10::ScalarType::ComplexDouble},
};

// Callables the unpickler interprets itself (none is ever executed).
constexpr const char* kFunctions[] = {
    "collections.OrderedDict",
    "torch._utils._rebuild_tensor",
    "torch._utils._rebuild_tensor_v2",
    "torch._utils._rebuild_tensor_v3",
    "torch._utils._rebuild_parameter",
    "torch._utils._rebuild_parameter_with_state",
    "torch.Size",
    "builtins.set",
    "builtins.frozenset",
    "_codecs.encode",  // how protocol 2 spells a bytes object
};

const StorageClass* find_in(const StorageClass* begin, const StorageClass* end, const std::string& name) {
    for (auto* p = begin; p != end; ++p)
        if (name == p->name) return p;
    return nullptr;
}
const StorageClass* storage_class(const std::string& name) {
    return find_in(std::begin(kStorageClasses), std::end(kStorageClasses), name);
}
const StorageClass* dtype_global(const std::string& name) {
    return find_in(std::begin(kDtypes), std::end(kDtypes), name);
}

/// "module.name" in the spelling the allowlist uses, folding the aliases different Python versions write.
std::string canonical_global(std::string module, const std::string& name) {
    if (module == "__builtin__") module = "builtins";
    if (module == "torch.storage" && name == "UntypedStorage") module = "torch";
    return module + "." + name;
}

bool allowed_global(const std::string& qualified) {
    if (storage_class(qualified) || dtype_global(qualified)) return true;
    for (const char* f : kFunctions)
        if (qualified == f) return true;
    return false;
}

bool valid_utf8(const std::string& s) {
    size_t i = 0;
    const size_t n = s.size();
    while (i < n) {
        const auto c = static_cast<unsigned char>(s[i]);
        size_t len;
        uint32_t cp;
        if (c < 0x80) {
            ++i;
            continue;
        } else if ((c & 0xE0) == 0xC0) {
            len = 2;
            cp = c & 0x1F;
        } else if ((c & 0xF0) == 0xE0) {
            len = 3;
            cp = c & 0x0F;
        } else if ((c & 0xF8) == 0xF0) {
            len = 4;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (n - i < len) return false;
        for (size_t k = 1; k < len; ++k) {
            const auto cc = static_cast<unsigned char>(s[i + k]);
            if ((cc & 0xC0) != 0x80) return false;
            cp = (cp << 6) | (cc & 0x3F);
        }
        const uint32_t min_cp = len == 2 ? 0x80 : len == 3 ? 0x800 : 0x10000;
        if (cp < min_cp || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
        i += len;
    }
    return true;
}

}  // namespace

const char* PickleValue::kind_name(Kind k) {
    switch (k) {
        case Kind::None: return "None";
        case Kind::Bool: return "bool";
        case Kind::Int: return "int";
        case Kind::Float: return "float";
        case Kind::String: return "str";
        case Kind::Bytes: return "bytes";
        case Kind::List: return "list";
        case Kind::Tuple: return "tuple";
        case Kind::Dict: return "dict";
        case Kind::Tensor: return "tensor";
        case Kind::Storage: return "storage";
        case Kind::Global: return "global";
    }
    return "?";
}

const PickleValue* PickleValue::get(const std::string& key) const {
    if (kind != Kind::Dict || !index_) return nullptr;
    const auto it = index_->strings.find(key);
    return it == index_->strings.end() ? nullptr : entries[it->second].second;
}

class Unpickler {
public:
    Unpickler(const uint8_t* data, size_t size, const std::string& source)
        : d_(data), n_(size), source_(source) {
        none_ = make(Kind::None);
        true_ = make(Kind::Bool);
        true_->boolean = true;
        false_ = make(Kind::Bool);
    }

    PickleDocument run();

private:
    [[noreturn]] void malformed(const std::string& why) const {
        throw_error(ErrorCode::Weights,
                    source_ + ": malformed pickle at byte " + std::to_string(op_pos_) + ": " + printable(why, 2000));
    }

    PickleValue* make(Kind k) {
        if (doc_.nodes_.size() >= kMaxNodes)
            malformed("more than " + std::to_string(kMaxNodes) + " objects; not a checkpoint's state dict");
        doc_.nodes_.push_back(std::make_unique<PickleValue>());
        doc_.nodes_.back()->kind = k;
        return doc_.nodes_.back().get();
    }

    const uint8_t* take(uint64_t count) {
        if (count > n_ - pos_)
            malformed("truncated: the opcode needs " + std::to_string(count) + " more bytes but only " +
                      std::to_string(n_ - pos_) + " remain");
        const uint8_t* p = d_ + pos_;
        pos_ += static_cast<size_t>(count);
        return p;
    }
    uint64_t le(size_t bytes) {
        const uint8_t* p = take(bytes);
        uint64_t v = 0;
        for (size_t i = 0; i < bytes; ++i) v |= static_cast<uint64_t>(p[i]) << (8 * i);
        return v;
    }
    std::string text(uint64_t length) {
        const uint8_t* p = take(length);
        return std::string(reinterpret_cast<const char*>(p), static_cast<size_t>(length));
    }
    std::string line() {
        const size_t limit = std::min(n_ - pos_, kMaxGlobalName + 1);
        const void* nl = std::memchr(d_ + pos_, '\n', limit);
        if (!nl)
            malformed("GLOBAL name is unterminated or longer than " + std::to_string(kMaxGlobalName) +
                      " bytes");
        const size_t len = static_cast<size_t>(static_cast<const uint8_t*>(nl) - (d_ + pos_));
        std::string s = text(len);
        ++pos_;
        return s;
    }

    void push(PickleValue* v) {
        if (stack_.size() >= kMaxStack)
            malformed("stack grows beyond " + std::to_string(kMaxStack) + " items");
        stack_.push_back(v);
    }
    PickleValue* pop() {
        if (stack_.size() <= stack_floor()) malformed("stack underflow");
        PickleValue* v = stack_.back();
        stack_.pop_back();
        return v;
    }
    PickleValue* top() {
        if (stack_.size() <= stack_floor()) malformed("stack underflow");
        return stack_.back();
    }
    // Items above the last MARK are all an opcode may consume except the MARK-popping ones.
    size_t stack_floor() const { return marks_.empty() ? 0 : marks_.back(); }
    std::vector<PickleValue*> pop_mark() {
        if (marks_.empty()) malformed("an opcode needs a MARK but there is none");
        const size_t m = marks_.back();
        marks_.pop_back();
        std::vector<PickleValue*> items(stack_.begin() + static_cast<std::ptrdiff_t>(m), stack_.end());
        stack_.resize(m);
        return items;
    }

    void memo_put(uint64_t index) {
        PickleValue* v = top();
        if (memo_.size() >= kMaxMemo && memo_.count(index) == 0)
            malformed("memo grows beyond " + std::to_string(kMaxMemo) + " entries");
        memo_[index] = v;
    }
    PickleValue* memo_get(uint64_t index) {
        const auto it = memo_.find(index);
        if (it == memo_.end()) malformed("memo index " + std::to_string(index) + " was never stored");
        return it->second;
    }

    PickleValue* make_tuple(std::vector<PickleValue*> items) {
        PickleValue* t = make(Kind::Tuple);
        t->items = std::move(items);
        return t;
    }
    PickleValue* make_int(int64_t v) {
        PickleValue* i = make(Kind::Int);
        i->integer = v;
        return i;
    }

    void set_item(PickleValue* dict, PickleValue* key, PickleValue* value) {
        if (dict->kind != Kind::Dict)
            malformed(std::string("SETITEM on a ") + PickleValue::kind_name(dict->kind) + ", not a dict");
        if (!dict->index_) dict->index_ = std::make_unique<PickleValue::KeyIndex>();
        const size_t next = dict->entries.size();
        std::pair<size_t, bool> found;  // (position, newly inserted)
        if (key->kind == Kind::String) {
            if (key->text.size() > kMaxDictKey)
                malformed("dict key longer than " + std::to_string(kMaxDictKey) + " bytes");
            const auto r = dict->index_->strings.emplace(key->text, next);
            found = {r.first->second, r.second};
        } else if (key->kind == Kind::Int) {
            const auto r = dict->index_->ints.emplace(key->integer, next);
            found = {r.first->second, r.second};
        } else {
            malformed(std::string("dict keys must be strings or integers, not ") +
                      PickleValue::kind_name(key->kind));
        }
        if (found.second)
            dict->entries.emplace_back(key, value);
        else
            dict->entries[found.first].second = value;
    }
    void append(PickleValue* list, PickleValue* value) {
        if (list->kind != Kind::List)
            malformed(std::string("APPEND to a ") + PickleValue::kind_name(list->kind) + ", not a list");
        list->items.push_back(value);
    }

    void load_global(const std::string& module, const std::string& name) {
        const std::string q = canonical_global(module, name);
        if (!allowed_global(q))
            throw_error(ErrorCode::Weights,
                        "refusing to load " + source_ + ": pickle references the global '" + printable(q) +
                            "' which is not allowed; checkpoints must contain only tensors "
                            "and plain containers");
        PickleValue* g = make(Kind::Global);
        g->text = q;
        push(g);
    }

    PickleValue* persistent_load(const PickleValue* pid);
    PickleValue* call(const PickleValue* callable, const PickleValue* args);
    PickleValue* rebuild_tensor(const std::vector<PickleValue*>& a, const std::string& fn);
    std::vector<int64_t> int_tuple(const PickleValue* v, const char* what);
    void step(uint8_t op);

    const uint8_t* d_;
    size_t n_;
    size_t pos_ = 0;
    size_t op_pos_ = 0;
    const std::string& source_;
    PickleDocument doc_;
    std::vector<PickleValue*> stack_;
    std::vector<size_t> marks_;
    std::unordered_map<uint64_t, PickleValue*> memo_;
    std::unordered_map<const PickleValue*, PickleValue*> encoded_;  ///< _codecs.encode results by input
    PickleValue* none_;
    PickleValue* true_;
    PickleValue* false_;
    bool stopped_ = false;
};

PickleValue* Unpickler::persistent_load(const PickleValue* pid) {
    // torch.save: ('storage', <storage class>, key, location, numel)
    if (pid->kind != Kind::Tuple || pid->items.size() != 5 || pid->items[0]->kind != Kind::String ||
        pid->items[0]->text != "storage")
        malformed("persistent id is not a ('storage', class, key, location, numel) tuple");
    const auto& it = pid->items;
    const StorageClass* cls = it[1]->kind == Kind::Global ? storage_class(it[1]->text) : nullptr;
    if (!cls) malformed("persistent id does not name a storage class");
    if (it[2]->kind != Kind::String || it[2]->text.empty() || it[2]->text.size() > kMaxStorageKey)
        malformed("storage key is not a short non-empty string");
    if (it[3]->kind != Kind::String || it[3]->text.size() > kMaxStorageKey)
        malformed("storage location is not a short string");
    if (it[4]->kind != Kind::Int || it[4]->integer < 0)
        malformed("storage size is not a non-negative integer");
    PickleValue* s = make(Kind::Storage);
    auto ref = std::make_shared<StorageRef>();
    ref->key = it[2]->text;
    ref->location = it[3]->text;
    ref->dtype = cls->dtype;
    ref->numel = it[4]->integer;
    s->storage = std::move(ref);
    s->text = cls->name;
    return s;
}

std::vector<int64_t> Unpickler::int_tuple(const PickleValue* v, const char* what) {
    if (v->kind != Kind::Tuple && v->kind != Kind::List)
        malformed(std::string("tensor ") + what + " is not a tuple");
    if (v->items.size() > kMaxRank)
        malformed(std::string("tensor ") + what + " has " + std::to_string(v->items.size()) + " dimensions");
    std::vector<int64_t> out;
    for (const PickleValue* x : v->items) {
        if (x->kind != Kind::Int) malformed(std::string("tensor ") + what + " holds a non-integer");
        out.push_back(x->integer);
    }
    return out;
}

PickleValue* Unpickler::rebuild_tensor(const std::vector<PickleValue*>& a, const std::string& fn) {
    // _rebuild_tensor(storage, offset, size, stride)
    // _rebuild_tensor_v2(storage, offset, size, stride, requires_grad, backward_hooks[, metadata])
    // _rebuild_tensor_v3(storage, offset, size, stride, requires_grad, backward_hooks, dtype[, metadata])
    const bool v3 = fn == "torch._utils._rebuild_tensor_v3";
    const bool v1 = fn == "torch._utils._rebuild_tensor";
    const size_t min_args = v1 ? 4 : v3 ? 7 : 6;
    if (a.size() < min_args || a.size() > min_args + 1 || (v1 && a.size() != 4))
        malformed(fn + " called with " + std::to_string(a.size()) + " arguments");
    if (a[0]->kind != Kind::Storage) malformed(fn + ": the first argument is not a storage");
    if (a[1]->kind != Kind::Int) malformed(fn + ": the storage offset is not an integer");
    auto t = std::make_shared<TensorRef>();
    t->storage = a[0]->storage;
    t->dtype = t->storage->dtype;
    t->storage_offset = a[1]->integer;
    t->size = int_tuple(a[2], "size");
    t->stride = int_tuple(a[3], "stride");
    if (t->size.size() != t->stride.size())
        malformed(fn + ": size has " + std::to_string(t->size.size()) + " dimensions but stride has " +
                  std::to_string(t->stride.size()));
    if (v3) {
        const StorageClass* dt = a[6]->kind == Kind::Global ? dtype_global(a[6]->text) : nullptr;
        if (!dt) malformed(fn + ": the dtype argument is not a supported torch dtype");
        const bool untyped = a[0]->text == "torch.UntypedStorage";
        if (!untyped && dt->dtype != t->storage->dtype)
            malformed(fn + ": dtype " + dt->name + " disagrees with the storage class " + a[0]->text);
        t->dtype = dt->dtype;
    }
    PickleValue* v = make(Kind::Tensor);
    v->tensor = std::move(t);
    return v;
}

PickleValue* Unpickler::call(const PickleValue* callable, const PickleValue* args) {
    if (callable->kind != Kind::Global)
        malformed(std::string("REDUCE calls a ") + PickleValue::kind_name(callable->kind) + ", not a global");
    if (args->kind != Kind::Tuple) malformed("REDUCE arguments are not a tuple");
    const std::string& fn = callable->text;
    const auto& a = args->items;
    if (fn == "collections.OrderedDict") {
        if (!a.empty()) malformed("OrderedDict is only supported without constructor arguments");
        return make(Kind::Dict);
    }
    if (fn == "torch._utils._rebuild_tensor" || fn == "torch._utils._rebuild_tensor_v2" ||
        fn == "torch._utils._rebuild_tensor_v3")
        return rebuild_tensor(a, fn);
    if (fn == "torch._utils._rebuild_parameter" || fn == "torch._utils._rebuild_parameter_with_state") {
        // (data, requires_grad, backward_hooks[, state]): a Parameter is its data tensor for inference.
        if (a.size() != (fn == "torch._utils._rebuild_parameter" ? 3u : 4u) || a[0]->kind != Kind::Tensor)
            malformed(fn + " is not called with a tensor and the expected arguments");
        return a[0];
    }
    // torch.Size(seq), set(seq), frozenset(seq): the sequence itself stands for the result. Sharing it
    // rather than copying keeps a memoized million-item list, "converted" over and over, from multiplying.
    if (fn == "torch.Size" || fn == "builtins.set" || fn == "builtins.frozenset") {
        if (a.empty() && fn != "torch.Size") return make(Kind::List);
        if (a.size() != 1 || (a[0]->kind != Kind::List && a[0]->kind != Kind::Tuple))
            malformed(fn + " is only supported with one list or tuple argument");
        return a[0];
    }
    if (fn == "_codecs.encode") {
        if (a.size() != 2 || a[0]->kind != Kind::String || a[1]->kind != Kind::String ||
            (a[1]->text != "latin1" && a[1]->text != "latin-1"))
            malformed("_codecs.encode is only supported as encode(str, 'latin1')");
        // The str holds code points U+0000..U+00FF, one per byte of the original bytes object. Converted
        // once per string node, so re-encoding a memoized string costs nothing.
        auto& cached = encoded_[a[0]];
        if (cached) return cached;
        PickleValue* b = cached = make(Kind::Bytes);
        const std::string& s = a[0]->text;
        for (size_t i = 0; i < s.size(); ++i) {
            const auto c = static_cast<unsigned char>(s[i]);
            if (c < 0x80) {
                b->text.push_back(static_cast<char>(c));
            } else if ((c == 0xC2 || c == 0xC3) && i + 1 < s.size()) {
                b->text.push_back(
                    static_cast<char>(((c & 0x03) << 6) | (static_cast<unsigned char>(s[++i]) & 0x3F)));
            } else {
                malformed("_codecs.encode: the string is not latin-1");
            }
        }
        return b;
    }
    malformed("the global '" + fn + "' cannot be called");
}

void Unpickler::step(uint8_t op) {
    switch (op) {
        case 0x80: {  // PROTO
            const uint64_t proto = le(1);
            if (proto > 5) malformed("unsupported pickle protocol " + std::to_string(proto));
            break;
        }
        case 0x95: {  // FRAME: framing is only a read-ahead hint
            const uint64_t len = le(8);
            if (len > n_ - pos_)
                malformed("truncated: a frame of " + std::to_string(len) + " bytes runs past the end");
            break;
        }
        case '.': stopped_ = true; break;  // STOP
        case '(':                          // MARK
            if (marks_.size() >= kMaxMarks) malformed("MARKs nest deeper than " + std::to_string(kMaxMarks));
            marks_.push_back(stack_.size());
            break;
        case '0': pop(); break;                   // POP
        case '1': pop_mark(); break;              // POP_MARK
        case '2': push(top()); break;             // DUP
        case '}': push(make(Kind::Dict)); break;  // EMPTY_DICT
        case ']': push(make(Kind::List)); break;  // EMPTY_LIST
        case ')': push(make_tuple({})); break;    // EMPTY_TUPLE
        case 'N': push(none_); break;
        case 0x88: push(true_); break;
        case 0x89: push(false_); break;
        case 'J': push(make_int(static_cast<int32_t>(static_cast<uint32_t>(le(4))))); break;  // BININT
        case 'K': push(make_int(static_cast<int64_t>(le(1)))); break;                         // BININT1
        case 'M': push(make_int(static_cast<int64_t>(le(2)))); break;                         // BININT2
        case 0x8a:                                                                            // LONG1
        case 0x8b: {                                                                          // LONG4
            const uint64_t len = le(op == 0x8a ? 1 : 4);
            if (len > 8) malformed("integer of " + std::to_string(len) + " bytes does not fit in 64 bits");
            const uint64_t raw = le(static_cast<size_t>(len));
            int64_t v = 0;
            if (len > 0) {
                // Two's complement of `len` bytes: sign-extend from the top bit.
                const unsigned bits = static_cast<unsigned>(len * 8);
                v = bits == 64 ? static_cast<int64_t>(raw)
                               : static_cast<int64_t>(raw << (64 - bits)) >> (64 - bits);
            }
            push(make_int(v));
            break;
        }
        case 'G': {  // BINFLOAT: big-endian IEEE double
            const uint8_t* p = take(8);
            uint64_t bits = 0;
            for (int i = 0; i < 8; ++i) bits = (bits << 8) | p[i];
            PickleValue* f = make(Kind::Float);
            std::memcpy(&f->real, &bits, sizeof bits);
            push(f);
            break;
        }
        case 'X':     // BINUNICODE
        case 0x8c:    // SHORT_BINUNICODE
        case 0x8d: {  // BINUNICODE8
            const uint64_t len = le(op == 0x8c ? 1 : op == 'X' ? 4 : 8);
            PickleValue* s = make(Kind::String);
            s->text = text(len);
            if (!valid_utf8(s->text)) malformed("string is not valid UTF-8");
            push(s);
            break;
        }
        case 'T':    // BINSTRING (Python 2 str)
        case 'U': {  // SHORT_BINSTRING
            const uint64_t len = op == 'U' ? le(1) : static_cast<uint64_t>(static_cast<int32_t>(le(4)));
            if (op == 'T' && len > 0x7FFFFFFF) malformed("negative string length");
            PickleValue* s = make(Kind::String);
            s->text = text(len);
            if (!valid_utf8(s->text)) malformed("string is not valid UTF-8");
            push(s);
            break;
        }
        case 'B':     // BINBYTES
        case 'C':     // SHORT_BINBYTES
        case 0x8e: {  // BINBYTES8
            const uint64_t len = le(op == 'C' ? 1 : op == 'B' ? 4 : 8);
            PickleValue* b = make(Kind::Bytes);
            b->text = text(len);
            push(b);
            break;
        }
        case 't': push(make_tuple(pop_mark())); break;  // TUPLE
        case 0x85:                                      // TUPLE1
        case 0x86:                                      // TUPLE2
        case 0x87: {                                    // TUPLE3
            const size_t k = static_cast<size_t>(op - 0x84);
            std::vector<PickleValue*> items(k);
            for (size_t i = k; i-- > 0;) items[i] = pop();
            push(make_tuple(std::move(items)));
            break;
        }
        case 'l': {  // LIST
            PickleValue* l = make(Kind::List);
            l->items = pop_mark();
            push(l);
            break;
        }
        case 'd': {  // DICT
            auto items = pop_mark();
            if (items.size() % 2) malformed("DICT with an odd number of items");
            PickleValue* dict = make(Kind::Dict);
            for (size_t i = 0; i < items.size(); i += 2) set_item(dict, items[i], items[i + 1]);
            push(dict);
            break;
        }
        case 'a': {  // APPEND
            PickleValue* v = pop();
            append(top(), v);
            break;
        }
        case 'e': {  // APPENDS
            auto items = pop_mark();
            PickleValue* list = top();
            for (PickleValue* v : items) append(list, v);
            break;
        }
        case 's': {  // SETITEM
            PickleValue* v = pop();
            PickleValue* k = pop();
            set_item(top(), k, v);
            break;
        }
        case 'u': {  // SETITEMS
            auto items = pop_mark();
            if (items.size() % 2) malformed("SETITEMS with an odd number of items");
            PickleValue* dict = top();
            for (size_t i = 0; i < items.size(); i += 2) set_item(dict, items[i], items[i + 1]);
            break;
        }
        case 'q': memo_put(le(1)); break;          // BINPUT
        case 'r': memo_put(le(4)); break;          // LONG_BINPUT
        case 0x94: memo_put(memo_.size()); break;  // MEMOIZE
        case 'h': push(memo_get(le(1))); break;    // BINGET
        case 'j': push(memo_get(le(4))); break;    // LONG_BINGET
        case 'c': {                                // GLOBAL "module\nname\n"
            const std::string module = line();
            const std::string name = line();
            load_global(module, name);
            break;
        }
        case 0x93: {  // STACK_GLOBAL
            PickleValue* name = pop();
            PickleValue* module = pop();
            if (module->kind != Kind::String || name->kind != Kind::String)
                malformed("STACK_GLOBAL needs two strings");
            if (module->text.size() > kMaxGlobalName || name->text.size() > kMaxGlobalName)
                malformed("STACK_GLOBAL name longer than " + std::to_string(kMaxGlobalName) + " bytes");
            load_global(module->text, name->text);
            break;
        }
        case 'R': {  // REDUCE
            PickleValue* args = pop();
            PickleValue* callable = pop();
            push(call(callable, args));
            break;
        }
        case 0x81: {  // NEWOBJ: cls.__new__(cls, *args); only OrderedDict is meaningful here
            PickleValue* args = pop();
            PickleValue* cls = pop();
            if (cls->kind != Kind::Global || cls->text != "collections.OrderedDict")
                malformed("NEWOBJ is only supported for collections.OrderedDict");
            push(call(cls, args));
            break;
        }
        case 'b': {  // BUILD: set the state of the object below
            PickleValue* state = pop();
            PickleValue* obj = top();
            // OrderedDict state is the instance __dict__, i.e. the state dict's `_metadata` (module
            // versions); a Parameter's state is Python attributes. Neither matters for inference, so both are
            // dropped.
            if (obj->kind == Kind::Dict || obj->kind == Kind::Tensor) {
                if (state->kind != Kind::Dict && state->kind != Kind::Tuple && state->kind != Kind::None)
                    malformed(std::string("BUILD with a ") + PickleValue::kind_name(state->kind) + " state");
                break;
            }
            malformed(std::string("BUILD on a ") + PickleValue::kind_name(obj->kind) + " is not supported");
        }
        case 'Q': {  // BINPERSID
            PickleValue* pid = pop();
            push(persistent_load(pid));
            break;
        }
        default: {
            char hex[8];
            std::snprintf(hex, sizeof hex, "0x%02x", op);
            malformed(std::string("unsupported or invalid opcode ") + hex +
                      (op >= 0x20 && op < 0x7f ? std::string(" ('") + static_cast<char>(op) + "')"
                                               : std::string()));
        }
    }
}

PickleDocument Unpickler::run() {
    while (!stopped_) {
        if (pos_ >= n_) malformed("truncated: the data ends before the STOP opcode");
        op_pos_ = pos_;
        step(d_[pos_++]);
    }
    if (stack_.empty()) malformed("STOP with an empty stack");
    if (!marks_.empty()) malformed("STOP with an unclosed MARK");
    doc_.root_ = stack_.back();
    return std::move(doc_);
}

PickleDocument unpickle(const uint8_t* data, size_t size, const std::string& source) {
    return Unpickler(data, size, source).run();
}

}  // namespace lsync::io
