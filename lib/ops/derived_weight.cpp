#include "ops/derived_weight.h"

namespace lsync::ops {

torch::Tensor DerivedWeight::get(const torch::Tensor& source, Make make) {
    const std::lock_guard<std::mutex> lock(mutex_);
    // Inference tensors keep no version counter; theirs cannot be written in place outside inference mode.
    const int64_t version = source.is_inference() ? 0 : source._version();
    if (!derived_.defined() || source_ != source.data_ptr() || version_ != version || make_ != make ||
        derived_.device() != source.device()) {
        torch::NoGradGuard no_grad;
        derived_ = make(source);
        source_ = source.data_ptr();
        version_ = version;
        make_ = make;
    }
    return derived_;
}

bool DerivedWeight::made() const {
    const std::lock_guard<std::mutex> lock(mutex_);
    return derived_.defined();
}

}  // namespace lsync::ops
