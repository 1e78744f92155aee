#pragma once
// The process-wide on/off switch each of our fused CUDA kernels has, so one binary measures before and after:
// on unless its environment variable is "0" (read at the first question), or as last set (tests run both
// paths in one process).

#include <atomic>

namespace lsync::ops {

class KernelSwitch {
public:
    explicit constexpr KernelSwitch(const char* env_name) : env_name_(env_name) {}
    bool enabled();
    void set(bool on) { state_.store(on ? 1 : 0); }

private:
    const char* env_name_;
    std::atomic<int> state_{-1};  // -1: the environment not read yet
};

}  // namespace lsync::ops
