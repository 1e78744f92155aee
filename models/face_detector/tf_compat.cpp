#include "face_detector/tf_compat.h"

#include "core/error.h"
#include "io/weight_loader.h"

#include <algorithm>

namespace lsync::models::tfcompat {

namespace {

enum class Kind { Conv, Depthwise, Dense, Other };

Kind kind_of(const io::TensorInfo& info) {
    const auto slash = info.name.rfind('/');
    const std::string leaf = slash == std::string::npos ? info.name : info.name.substr(slash + 1);
    if (info.dtype != torch::kFloat) return Kind::Other;
    if (info.shape.size() == 4) return leaf.find("depthwise") != std::string::npos ? Kind::Depthwise : Kind::Conv;
    if (info.shape.size() == 2) return Kind::Dense;
    return Kind::Other;
}

std::vector<int64_t> torch_shape(const io::TensorInfo& info) {
    const auto& s = info.shape;
    switch (kind_of(info)) {
        case Kind::Conv: return {s[3], s[2], s[0], s[1]};
        case Kind::Depthwise: return {s[2] * s[3], 1, s[0], s[1]};
        case Kind::Dense: return {s[1], s[0]};
        default: return s;
    }
}

}  // namespace

std::string torch_name(const std::string& tf_name) {
    std::string s = tf_name;
    std::replace(s.begin(), s.end(), '/', '.');
    return s;
}

std::string tf_name(const std::string& torch_name) {
    std::string s = torch_name;
    std::replace(s.begin(), s.end(), '.', '/');
    return s;
}

TorchLayoutSource::TorchLayoutSource(std::unique_ptr<io::TensorSource> tf) : tf_(std::move(tf)) {
    for (const auto& info : tf_->tensors()) {
        // A '.' inside a TF name would make the mapping ambiguous.
        LSYNC_CHECK(info.name.find('.') == std::string::npos, ErrorCode::Weights,
                    "unexpected '.' in weight name '" + info.name + "' of " + tf_->path());
        io::TensorInfo t = info;
        t.name = torch_name(info.name);
        t.shape = torch_shape(info);
        infos_.push_back(std::move(t));
    }
}

bool TorchLayoutSource::contains(const std::string& name) const { return tf_->contains(tf_name(name)); }

torch::Tensor TorchLayoutSource::load(const std::string& name) const {
    const std::string tf = tf_name(name);
    const torch::Tensor t = tf_->load(tf);
    io::TensorInfo info;
    info.name = tf;
    info.dtype = t.scalar_type();
    info.shape = t.sizes().vec();
    switch (kind_of(info)) {
        case Kind::Conv: return t.permute({3, 2, 0, 1}).contiguous();
        case Kind::Depthwise:
            // TF output channel i * mult + j comes from input channel i: torch's grouped-conv order.
            return t.permute({2, 3, 0, 1}).reshape({t.size(2) * t.size(3), 1, t.size(0), t.size(1)}).contiguous();
        case Kind::Dense: return t.t().contiguous();
        default: return t;
    }
}

namespace {
// TF 'same' padding of one axis: {before, after}.
std::pair<int64_t, int64_t> same_padding(int64_t size, int64_t kernel, int64_t stride) {
    const int64_t total = std::max<int64_t>(0, ((size + stride - 1) / stride - 1) * stride + kernel - size);
    return {total / 2, total - total / 2};
}
}  // namespace

torch::Tensor same_pad(const torch::Tensor& x, int64_t kh, int64_t kw, int64_t sh, int64_t sw) {
    const auto [top, bottom] = same_padding(x.size(-2), kh, sh);
    const auto [left, right] = same_padding(x.size(-1), kw, sw);
    if (top + bottom == 0 && left + right == 0) return x;
    return torch::constant_pad_nd(x, {left, right, top, bottom}, 0);
}

torch::Tensor conv_same(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& bias, int64_t stride,
                        int64_t groups) {
    const std::vector<int64_t> strides{stride, stride}, dilation{1, 1};
    const auto [top, bottom] = same_padding(x.size(-2), w.size(2), stride);
    const auto [left, right] = same_padding(x.size(-1), w.size(3), stride);
    // Symmetric padding (every stride-1 layer) is the convolution's own: no padded copy of the input (on an H100
    // the face step's copies fell from 2.8 to 2.2 ms of device time per 16 720p frames: docs/performance-notes.md
    // section 41).
    if (top == bottom && left == right)
        return torch::conv2d(x, w, bias, strides, std::vector<int64_t>{top, left}, dilation, groups);
    return torch::conv2d(same_pad(x, w.size(2), w.size(3), stride, stride), w, bias, strides,
                         std::vector<int64_t>{0, 0}, dilation, groups);
}

void load_tfjs(torch::nn::Module& module, const std::string& manifest, const std::vector<std::string>& ignore,
               torch::Device device, const std::string& what) {
    TorchLayoutSource source(io::open_tensor_source(manifest));
    io::LoadPolicy policy;
    policy.device = device;
    policy.allow_unexpected = ignore;
    io::load_weights(module, source, {}, policy, what);
}

}  // namespace lsync::models::tfcompat
