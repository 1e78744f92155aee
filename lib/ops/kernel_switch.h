#pragma once
// The process-wide on/off switch each of our fused CUDA kernels has, so one binary measures before and after:
// on unless its environment variable is "0" (read at the first question), or as last set (tests run both
// paths in one process). A switch made with on_by_default = false is the reverse: off unless the variable is
// "1" (a path not yet measured on a GPU).

#include <atomic>

namespace lsync::ops {

class KernelSwitch {
public:
    explicit constexpr KernelSwitch(const char* env_name, bool on_by_default = true)
        : env_name_(env_name), on_by_default_(on_by_default) {}
    bool enabled();
    void set(bool on) { state_.store(on ? 1 : 0); }

private:
    const char* env_name_;
    bool on_by_default_;
    std::atomic<int> state_{-1};  // -1: the environment not read yet
};

}  // namespace lsync::ops
