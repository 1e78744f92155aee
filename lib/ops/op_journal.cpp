#include "ops/op_journal.h"

#include "core/device_transfer.h"
#include "core/error.h"
#include "core/log.h"
#include "io/tensor_source.h"  // io::dtype_name

#include <ATen/core/dispatch/Dispatcher.h>
#include <ATen/record_function.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <map>
#include <optional>
#include <utility>

namespace lsync::ops {

namespace {

using nlohmann::json;

// The journal this thread records into (OpRecording); null almost always.
thread_local OpJournal* t_journal = nullptr;

constexpr int64_t kMaxDims = 8;
constexpr int64_t kMaxInt = int64_t{1} << 16;
constexpr int64_t kMaxStorage = int64_t{1} << 28;  // elements: 512 MiB of fp16 per tensor
constexpr size_t kMaxArgs = 32;
constexpr size_t kMaxList = 16;

// The dtypes a journaled call's tensors may have, spelled as io::dtype_name spells them (`models inspect`'s names).
constexpr std::array<torch::ScalarType, 8> kDtypes{torch::kHalf, torch::kBFloat16, torch::kFloat, torch::kDouble,
                                                   torch::kLong,  torch::kInt,      torch::kByte,  torch::kBool};

std::optional<std::string> dtype_name(torch::ScalarType t) {
    if (std::find(kDtypes.begin(), kDtypes.end(), t) == kDtypes.end()) return std::nullopt;
    return io::dtype_name(t);
}

std::optional<torch::ScalarType> dtype_named(const json& j) {
    if (!j.is_string()) return std::nullopt;
    for (const auto t : kDtypes)
        if (j == io::dtype_name(t)) return t;
    return std::nullopt;
}

// The elements a tensor of these sizes and strides spans from its offset (0 when it has none).
int64_t span_of(const std::vector<int64_t>& sizes, const std::vector<int64_t>& strides) {
    int64_t span = 1;
    for (size_t i = 0; i < sizes.size(); ++i) {
        if (sizes[i] == 0) return 0;
        span += (sizes[i] - 1) * strides[i];
    }
    return span;
}

// A recorded argument in the journal's form, or nothing for a kind that is not kept.
std::optional<json> arg_json(const c10::IValue& v, std::optional<bool>& cuda) {
    if (v.isNone()) return json();
    if (v.isBool()) return json(v.toBool());
    if (v.isInt()) return json(v.toInt());
    if (v.isDouble()) return json(v.toDouble());
    if (v.isIntList()) return json(v.toIntVector());
    if (v.isDoubleList()) return json(v.toDoubleVector());
    if (!v.isTensor()) return std::nullopt;
    const auto& t = v.toTensor();
    if (!t.defined()) return json();
    const auto dtype = dtype_name(t.scalar_type());
    if (!dtype || t.layout() != torch::kStrided || t.is_quantized() || !(t.is_cuda() || t.is_cpu())) return std::nullopt;
    if (cuda && *cuda != t.is_cuda()) return std::nullopt;  // tensors on two kinds of device
    cuda = t.is_cuda();
    return json{{"sizes", t.sizes().vec()}, {"strides", t.strides().vec()}, {"offset", t.storage_offset()},
                {"dtype", *dtype}};
}

std::unique_ptr<at::ObserverContext> on_op(const at::RecordFunction& fn) {
    OpJournal* journal = t_journal;
    if (!journal) return nullptr;
    const auto op = fn.operator_name();
    if (!op || !journaled_op(op->name)) return nullptr;
    OpCall call;
    call.name = op->name;
    call.overload = op->overload_name;
    std::optional<bool> cuda;
    for (const auto& v : fn.inputs()) {
        auto a = arg_json(v, cuda);
        if (!a) return nullptr;
        call.args.push_back(std::move(*a));
    }
    if (!cuda) return nullptr;  // no tensor: nothing to place
    call.cuda = *cuda;
    if (valid_op_call(call)) journal->add(std::move(call));
    return nullptr;
}

bool valid_int(const json& j) {
    return j.is_number_integer() && j.get<int64_t>() >= -kMaxInt && j.get<int64_t>() <= kMaxInt;
}

std::optional<std::vector<int64_t>> int_list(const json& j, int64_t min, int64_t max, size_t max_size) {
    if (!j.is_array() || j.size() > max_size) return std::nullopt;
    std::vector<int64_t> out;
    for (const auto& e : j) {
        if (!e.is_number_integer()) return std::nullopt;
        const auto v = e.get<int64_t>();
        if (v < min || v > max) return std::nullopt;
        out.push_back(v);
    }
    return out;
}

bool valid_tensor(const json& j) {
    if (!j.is_object() || j.size() != 4 || !dtype_named(j.value("dtype", json()))) return false;
    const auto sizes = int_list(j.value("sizes", json()), 1, kMaxStorage, kMaxDims);
    const auto strides = int_list(j.value("strides", json()), 0, kMaxStorage, kMaxDims);
    const auto offset = j.value("offset", json());
    if (!sizes || sizes->empty() || !strides || sizes->size() != strides->size() || !offset.is_number_integer())
        return false;
    const auto o = offset.get<int64_t>();
    // Each factor is below 2^28 and at most 8 terms are summed: no overflow before the bound is checked.
    return o >= 0 && o <= kMaxStorage && span_of(*sizes, *strides) + o <= kMaxStorage;
}

bool valid_arg(const json& j) {
    if (j.is_null() || j.is_boolean() || valid_int(j)) return true;
    if (j.is_number_float()) return std::isfinite(j.get<double>());
    if (j.is_array()) {
        if (j.size() > kMaxList) return false;
        return std::all_of(j.begin(), j.end(), valid_int) ||
               std::all_of(j.begin(), j.end(), [](const json& e) {
                   return e.is_number_float() && std::isfinite(e.get<double>());
               });
    }
    return valid_tensor(j);
}

// The journaled operations whose kernels or plans depend on the sizes (cuBLAS's heuristics per GEMM shape, the
// fused attention's per shape): met at the recorded sizes whatever their memory (met_tensors()).
constexpr std::array<const char*, 7> kShapeSensitiveOps{
    // cuBLAS(Lt): what at::linear and at::matmul pick, and the attention's own products.
    "aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm",
    // Fused attention (its plans; these overloads take no offsets or indices).
    "aten::_scaled_dot_product_flash_attention", "aten::_scaled_dot_product_efficient_attention",
    "aten::_scaled_dot_product_cudnn_attention"};

// The other journaled operations, whose kernels do not depend on the sizes.
constexpr std::array<const char*, 12> kOtherOps{
    // Resampling and padding (the align's crops, the paste-back).
    "aten::_upsample_bicubic2d_aa", "aten::upsample_bicubic2d", "aten::_upsample_bilinear2d_aa",
    "aten::upsample_bilinear2d", "aten::reflection_pad2d", "aten::grid_sampler_2d", "aten::cudnn_grid_sampler",
    // The align's reductions and roundings.
    "aten::sum", "aten::neg", "aten::floor",
    // The paste-back's index reads and writes: met on zero indices, always in range (valid_op_call).
    "aten::gather", "aten::index_copy_"};

template <size_t N>
bool listed(const std::array<const char*, N>& names, const std::string& name) {
    return std::find(names.begin(), names.end(), name) != names.end();
}

int64_t element_bytes(torch::ScalarType t) { return static_cast<int64_t>(c10::elementSize(t)); }

MetTensor met_tensor_of(const json& j) {
    MetTensor t;
    t.sizes = j.at("sizes").get<std::vector<int64_t>>();
    t.strides = j.at("strides").get<std::vector<int64_t>>();
    t.offset = j.at("offset").get<int64_t>();
    t.dtype = *dtype_named(j.at("dtype"));
    return t;
}

int64_t elements_of(const MetTensor& t) { return t.offset + span_of(t.sizes, t.strides); }

// met_tensors() for a valid call of the operation `schema` describes.
std::vector<std::optional<MetTensor>> placed_tensors(const OpCall& call, const c10::FunctionSchema& schema) {
    std::vector<std::optional<MetTensor>> out;
    if (schema.arguments().size() != call.args.size()) return out;
    int64_t bytes = 0;
    for (size_t i = 0; i < call.args.size(); ++i) {
        if (!call.args[i].is_object()) {
            out.emplace_back();
            continue;
        }
        auto t = met_tensor_of(call.args[i]);
        // What the operation writes (an in-place destination, an out= tensor) has storage of its own: ATen refuses
        // a write into memory its inputs read. The tensors it only reads hold zeros, so they view one buffer per
        // dtype.
        const auto* alias = schema.arguments()[i].alias_info();
        t.shared = !(alias && alias->isWrite());
        // A model's weights are views of its one parameter buffer, at offsets up to 2^28 elements: met at those
        // offsets, each call made a buffer of zeros up to there (0.5-1.1 GB for the UNet's GEMMs, which set the
        // render's GPU peak during the pre-warm: docs/performance-notes.md section 40). The multiples of
        // kOffsetAlignment taken away, the address keeps its alignment to 256 bytes or more, as far as cuBLASLt's
        // alignment hints look, so the same kernels are chosen.
        t.offset %= kOffsetAlignment;
        bytes += elements_of(t) * element_bytes(t.dtype);
        out.push_back(std::move(t));
    }
    // Past kMaxMetBytes, an operation whose kernels do not depend on the sizes is met on one item of its leading
    // dimension (the align's grid sampling reads a group's frames in float32, 0.35 GB at 720p).
    if (bytes > kMaxMetBytes && !listed(kShapeSensitiveOps, call.name))
        for (auto& t : out)
            if (t) t->sizes[0] = 1;
    return out;
}

}  // namespace

std::vector<std::optional<MetTensor>> met_tensors(const OpCall& call) {
    if (!valid_op_call(call)) return {};
    const auto op = c10::Dispatcher::singleton().findSchema({call.name, call.overload});
    if (!op) return {};
    return placed_tensors(call, op->schema());
}

int64_t met_bytes(const OpCall& call) {
    std::map<torch::ScalarType, int64_t> shared;  // elements per dtype's buffer
    int64_t own = 0;
    for (const auto& t : met_tensors(call)) {
        if (!t) continue;
        if (t->shared)
            shared[t->dtype] = std::max(shared[t->dtype], elements_of(*t));
        else
            own += elements_of(*t) * element_bytes(t->dtype);
    }
    for (const auto& [dtype, elements] : shared) own += elements * element_bytes(dtype);
    return own;
}

namespace {

// The call's arguments on `device` as met_tensors() places them, as zeros (an index read is in range, since no
// dimension is empty, and no float is a NaN); nothing for a call met_tensors() does not place.
std::optional<torch::jit::Stack> stack_of(const OpCall& call, const c10::FunctionSchema& schema,
                                          const torch::Device& device) {
    const auto placed = placed_tensors(call, schema);
    if (placed.size() != call.args.size()) return std::nullopt;
    std::map<torch::ScalarType, torch::Tensor> buffers;
    for (const auto& t : placed)
        if (t && t->shared) {
            auto& b = buffers[t->dtype];
            if (!b.defined() || b.numel() < elements_of(*t))
                b = torch::zeros({elements_of(*t)}, torch::TensorOptions().device(device).dtype(t->dtype));
        }
    torch::jit::Stack stack;
    for (size_t i = 0; i < call.args.size(); ++i) {
        const json& j = call.args[i];
        const auto& t = placed[i];
        if (t) {
            const auto storage = t->shared ? buffers.at(t->dtype)
                                           : torch::zeros({elements_of(*t)},
                                                          torch::TensorOptions().device(device).dtype(t->dtype));
            stack.emplace_back(storage.as_strided(t->sizes, t->strides, t->offset));
        } else if (j.is_null()) {
            stack.emplace_back();
        } else if (j.is_boolean()) {
            stack.emplace_back(j.get<bool>());
        } else if (j.is_number_integer()) {
            stack.emplace_back(j.get<int64_t>());
        } else if (j.is_number_float()) {
            stack.emplace_back(j.get<double>());
        } else if (j.empty() || j[0].is_number_integer()) {
            // An empty list is an empty list of integers (a dims argument); a float list is never empty when
            // recorded from a real call that matters here, and the schema check of the call refuses a wrong kind.
            stack.emplace_back(j.get<std::vector<int64_t>>());
        } else {
            stack.emplace_back(j.get<std::vector<double>>());
        }
    }
    return stack;
}

}  // namespace

bool OpCall::operator==(const OpCall& o) const {
    return name == o.name && overload == o.overload && cuda == o.cuda && args == o.args;
}

bool journaled_op(const std::string& name) {
    return listed(kShapeSensitiveOps, name) || listed(kOtherOps, name);
}

bool valid_op_call(const OpCall& call) {
    if (!journaled_op(call.name) || call.overload.size() > 64 || !call.args.is_array() ||
        call.args.size() > kMaxArgs)
        return false;
    bool any_tensor = false;
    for (const auto& a : call.args) {
        if (!valid_arg(a)) return false;
        any_tensor |= a.is_object();
    }
    return any_tensor;
}

void OpJournal::add(OpCall call) {
    if (call.cuda != cuda_) return;
    std::lock_guard<std::mutex> lock(mutex_);
    if (calls_.size() >= kMaxCalls || std::find(calls_.begin(), calls_.end(), call) != calls_.end()) return;
    calls_.push_back(std::move(call));
}

std::vector<OpCall> OpJournal::calls() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return calls_;
}

OpRecording::OpRecording(OpJournal* journal) : previous_(t_journal) {
    t_journal = journal;
    if (!previous_)
        handle_ = at::addThreadLocalCallback(
            at::RecordFunctionCallback(&on_op).needsInputs(true).scopes({at::RecordScope::FUNCTION}));
}

OpRecording::~OpRecording() {
    t_journal = previous_;
    if (handle_) at::removeCallback(handle_);
}

int64_t meet_ops(const std::vector<OpCall>& calls, const torch::Device& device,
                 const std::function<bool()>& keep_going) {
    torch::NoGradGuard no_grad;
    int64_t met = 0;
    for (const auto& call : calls) {
        if (keep_going && !keep_going()) break;
        if (call.cuda != device.is_cuda() || !valid_op_call(call)) continue;
        const auto op = c10::Dispatcher::singleton().findSchema({call.name, call.overload});
        if (!op) continue;
        try {
            auto stack = stack_of(call, op->schema(), device);
            if (!stack) continue;
            // Nothing reads the results: only the first use is wanted.
            op->callBoxed(&*stack);
            ++met;
        } catch (const c10::Error& e) {
            // A call ATen refuses (arguments of another kind than the schema's, sizes that do not agree): skipped.
            log::debug("first-use pre-warm: ", call.name, " refused: ", first_line(e.what()));
        }
    }
    if (met > 0) StreamMark(device).wait();  // the current stream; nothing to wait for on the CPU
    return met;
}

}  // namespace lsync::ops
