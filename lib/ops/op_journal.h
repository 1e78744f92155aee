#pragma once
// The matrix products and a few other ATen operations a thread runs, recorded as ATen meets them, and a way to meet
// the same ones again elsewhere: conv_journal.h's counterpart for what cuDNN does not run.
//
// The first group of a render pays first uses outside the convolutions too (docs/performance-notes.md section 38):
// cuBLAS's per-thread handle and workspace, its heuristics and its lazily loaded kernels for each GEMM shape (the
// align's mm, the VAE attention's baddbmm and bmm, the UNet's addmm and mm), and the first launch of a few other
// kernels (the paste's antialiased bicubic resample, the align's reductions). Those calls are made inside ATen
// (at::linear and at::matmul pick mm, addmm or bmm from their inputs' shapes and strides), so they are recorded where
// ATen dispatches them, through a thread-local RecordFunction callback, and only for the operations of
// journaled_op(), which are met again on zero-filled tensors of the recorded sizes, strides and dtypes: the GEMMs and
// operations on floats, whose kernels and plans depend on no value, and a few that read indices (the paste-back's
// gather and index_copy_), for which zero is in range since no journaled tensor has an empty dimension. The pre-warm
// runs beside the models' loading and the face pass, so its memory is kept small (met_tensors()): the offsets lose
// their multiples of 256 elements, read tensors share a buffer, and large calls whose kernels do not depend on the
// sizes are met on one item.

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace lsync::ops {

/// One call of an ATen operation: its schema name and overload, the device its tensors were on, and its arguments
/// in the journal's own form (first_use_journal.h keeps them as they are here): null for None, a bool, an integer,
/// a float, an array of integers or of floats, or a tensor {"sizes": [...], "strides": [...], "offset": n, "dtype":
/// "float16"}. Only values of those kinds are recorded.
struct OpCall {
    std::string name;      ///< "aten::addmm"
    std::string overload;  ///< "" for the plain form
    bool cuda = false;     ///< else on the CPU
    nlohmann::json args = nlohmann::json::array();
    bool operator==(const OpCall& o) const;
};

/// Whether calls of `name` are recorded and met (the list and why each is safe: op_journal.cpp).
bool journaled_op(const std::string& name);

/// Whether `call` can be met: a journaled operation whose arguments are of the kinds above and within bounds (each
/// tensor at most 2^28 elements of storage, 1 to 8 dimensions of at least 1; integers at most 2^16 in size). A
/// journal is read from a cache folder that other programs may write to, so every call read back is checked here.
bool valid_op_call(const OpCall& call);

/// The distinct calls recorded, in the order first met (thread-safe; at most kMaxCalls, the rest ignored). Only
/// calls on `device`'s kind are kept: a GPU render's worker also runs small operations on the CPU, whose first use
/// is not the GPU's.
class OpJournal {
public:
    static constexpr size_t kMaxCalls = 1024;
    explicit OpJournal(torch::DeviceType device = torch::kCPU) : cuda_(device == torch::kCUDA) {}
    void add(OpCall call);
    std::vector<OpCall> calls() const;

private:
    bool cuda_;
    mutable std::mutex mutex_;
    std::vector<OpCall> calls_;
};

/// While alive, the journaled operations this thread dispatches go to `journal` (one recording per thread at a
/// time; a nested one takes over until it ends). Recording boxes every operation's arguments on this thread, a few
/// microseconds each, so a render records only when its journal has no calls yet.
class OpRecording {
public:
    explicit OpRecording(OpJournal* journal);
    ~OpRecording();
    OpRecording(const OpRecording&) = delete;
    OpRecording& operator=(const OpRecording&) = delete;

private:
    OpJournal* previous_;
    uint64_t handle_ = 0;  ///< the RecordFunction callback this recording added (0: an outer one's is used)
};

/// How meet_ops() places one tensor argument of a call: its sizes, strides, offset and dtype as met, and whether it
/// views its dtype's buffer shared by the call's tensors (all but those the operation writes).
struct MetTensor {
    std::vector<int64_t> sizes, strides;
    int64_t offset = 0;
    torch::ScalarType dtype = torch::kFloat;
    bool shared = true;
};

/// A call whose tensors would take more than this (before sharing) and whose kernels do not depend on the sizes
/// (not a GEMM nor a fused attention) is met on one item of each tensor's leading dimension.
constexpr int64_t kMaxMetBytes = int64_t{64} << 20;
/// Tensors are met at their recorded offset modulo this many elements (the same alignment, far less storage).
constexpr int64_t kOffsetAlignment = 256;

/// Each argument of a valid `call` as meet_ops() places it (nothing for one that is not a tensor; an empty list for
/// a call that is not valid or whose operation this LibTorch lacks).
std::vector<std::optional<MetTensor>> met_tensors(const OpCall& call);

/// The device memory meeting `call` takes for its arguments (its own outputs aside).
int64_t met_bytes(const OpCall& call);

/// Runs each call whose device is `device`'s kind (zero-filled tensors placed as met_tensors() says) on the
/// calling thread's current stream, and waits for them; `keep_going` is asked before each. A call that is not valid
/// (valid_op_call), whose operation this LibTorch lacks, or that ATen refuses is skipped. Returns the calls met.
int64_t meet_ops(const std::vector<OpCall>& calls, const torch::Device& device,
                 const std::function<bool()>& keep_going = {});

}  // namespace lsync::ops
