#pragma once
// What the face-api networks need from TensorFlow that LibTorch spells differently:
//  - weight names: TF.js names use '/' ("MobilenetV1/Conv2d_0_pointwise/weights"); our modules register the
//    same path with '.' as the separator, so named_parameters() equals the manifest with '/' -> '.'.
//  - layouts: TF conv kernels are HWIO [kh, kw, in, out] and depthwise kernels [kh, kw, in, multiplier];
//    dense weights are [in, out]. They are converted once, at load, to torch's OIHW, [in*mult, 1, kh, kw] and
//    [out, in].
//  - 'same' padding: TF pads (total / 2) before and the rest after, so a stride-2 conv on an even input pads
//    only at the bottom/right, which torch's symmetric `padding` cannot express.

#include "io/tensor_source.h"

#include <torch/torch.h>

#include <memory>
#include <string>
#include <vector>

namespace lsync::models::tfcompat {

/// A TensorSource that presents another (a TF.js manifest) with '.'-separated names and torch layouts.
/// 4-D tensors whose last name component contains "depthwise" are depthwise kernels; other 4-D tensors are
/// conv kernels; 2-D float tensors are dense weights. Everything else passes through unchanged.
class TorchLayoutSource : public io::TensorSource {
public:
    explicit TorchLayoutSource(std::unique_ptr<io::TensorSource> tf);
    const std::string& path() const override { return tf_->path(); }
    std::string format() const override { return tf_->format(); }
    const std::vector<io::TensorInfo>& tensors() const override { return infos_; }
    bool contains(const std::string& name) const override;
    torch::Tensor load(const std::string& name) const override;
    nlohmann::json metadata() const override { return tf_->metadata(); }

private:
    std::unique_ptr<io::TensorSource> tf_;
    std::vector<io::TensorInfo> infos_;
};

/// "a/b/c" -> "a.b.c" and back.
std::string torch_name(const std::string& tf_name);
std::string tf_name(const std::string& torch_name);

/// Pads NCHW `x` the way TF's 'same' padding does for a (kh, kw) kernel at stride (sh, sw); a no-op when no
/// padding is needed. Zero padding.
torch::Tensor same_pad(const torch::Tensor& x, int64_t kh, int64_t kw, int64_t sh, int64_t sw);

/// conv2d with TF 'same' padding; `groups` > 1 for depthwise kernels.
torch::Tensor conv_same(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& bias, int64_t stride,
                        int64_t groups = 1);

/// Loads a TF.js manifest into `module` through TorchLayoutSource and the strict weight loader; graph
/// constants matching `ignore` (regexes over '.' names) may be left unused. Throws Error(Weights).
void load_tfjs(torch::nn::Module& module, const std::string& manifest, const std::vector<std::string>& ignore,
               torch::Device device, const std::string& what);

}  // namespace lsync::models::tfcompat
