#pragma once
// Named stages on the profiler's host timeline ("lsync::align", "lsync::unet", ...), so that device_idle.h can
// say in which stage a GPU waited for its host thread. One stage is open at a time; enter() closes the previous
// one. With no profiler running, LibTorch's RecordFunction is inactive and this costs a flag check.
// FUNCTION scope, as an ATen op has: the profiler then links the kernels launched directly in the stage (our own
// kernels, a CUDA graph's replay), not only those of ATen ops, to it and so to its thread. The thread must carry
// the profiler's thread-local state (worker threads take it from their creator: chunk_workers.cpp).

#include <ATen/record_function.h>

#include <optional>

namespace lsync::diagnostics {

class HostStageScope {
public:
    HostStageScope() = default;
    explicit HostStageScope(const char* name) { enter(name); }
    HostStageScope(const HostStageScope&) = delete;
    HostStageScope& operator=(const HostStageScope&) = delete;

    /// Closes the open stage and opens `name` (a string literal: the profiler keeps the pointer).
    void enter(const char* name) {
        open_.reset();
        open_.emplace(at::RecordScope::FUNCTION);
        if (open_->isActive()) open_->before(name, c10::ArrayRef<const c10::IValue>{});
    }
    void leave() { open_.reset(); }

private:
    std::optional<at::RecordFunction> open_;
};

}  // namespace lsync::diagnostics
