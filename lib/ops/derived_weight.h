#pragma once
// A tensor made from a model weight (such as its taps summed: ops/upsample_conv.h) at its first use, kept beside the
// module, and remade when the weight is replaced or written in place (its storage or version counter changes).
// Thread-safe: two workers may share one model's weights. Each caller's first use of a shape is an eager call
// (CUDA graphs capture the second), so it is never made inside a capture.

#include <torch/torch.h>

#include <mutex>

namespace lsync::ops {

class DerivedWeight {
public:
    using Make = torch::Tensor (*)(const torch::Tensor& source);
    /// make(source), made once per source state.
    torch::Tensor get(const torch::Tensor& source, Make make);
    /// Whether a derived weight is held (made by a get()).
    bool made() const;

private:
    mutable std::mutex mutex_;
    torch::Tensor derived_;
    const void* source_ = nullptr;
    int64_t version_ = -1;
    Make make_ = nullptr;
};

}  // namespace lsync::ops
