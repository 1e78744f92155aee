#include "face_landmarks/face_landmark68_net.h"

#include "face_detector/tf_compat.h"

namespace lsync::models::face_landmarks {

using tfcompat::conv_same;

ConvImpl::ConvImpl(int64_t in, int64_t out) {
    filters = register_parameter("filters", torch::zeros({out, in, 3, 3}), false);
    bias = register_parameter("bias", torch::zeros({out}), false);
}

torch::Tensor ConvImpl::forward(const torch::Tensor& x, int64_t stride) { return conv_same(x, filters, bias, stride); }

SeparableConvImpl::SeparableConvImpl(int64_t in, int64_t out) {
    depthwise_filter = register_parameter("depthwise_filter", torch::zeros({in, 1, 3, 3}), false);
    pointwise_filter = register_parameter("pointwise_filter", torch::zeros({out, in, 1, 1}), false);
    bias = register_parameter("bias", torch::zeros({out}), false);
}

torch::Tensor SeparableConvImpl::forward(const torch::Tensor& x, int64_t stride) {
    const auto d = conv_same(x, depthwise_filter, {}, stride, depthwise_filter.size(0));
    return torch::conv2d(d, pointwise_filter, bias);
}

DenseBlockImpl::DenseBlockImpl(int64_t in, int64_t out, bool first) {
    if (first)
        plain = register_module("conv0", Conv(in, out));
    else
        separable = register_module("conv0", SeparableConv(in, out));
    for (int i = 1; i <= 3; ++i) convs.push_back(register_module("conv" + std::to_string(i), SeparableConv(out, out)));
}

torch::Tensor DenseBlockImpl::forward(const torch::Tensor& x) {
    // face-api denseBlock4: every block halves the resolution.
    const auto out1 = torch::relu(plain ? plain(x, 2) : separable(x, 2));
    const auto out2 = convs[0](out1, 1);
    const auto out3 = convs[1](torch::relu(out1 + out2), 1);
    const auto out4 = convs[2](torch::relu(out1 + (out2 + out3)), 1);
    return torch::relu(out1 + (out2 + (out3 + out4)));
}

FaceLandmark68NetImpl::FaceLandmark68NetImpl() {
    const int64_t ch[5] = {3, 32, 64, 128, 256};
    for (int i = 0; i < 4; ++i)
        blocks.push_back(register_module("dense" + std::to_string(i), DenseBlock(ch[i], ch[i + 1], i == 0)));
    auto fc = register_module("fc", std::make_shared<torch::nn::Module>("fc"));
    fc_weights = fc->register_parameter("weights", torch::zeros({136, 256}), false);
    fc_bias = fc->register_parameter("bias", torch::zeros({136}), false);
}

torch::Tensor FaceLandmark68NetImpl::forward(const torch::Tensor& x) {
    torch::Tensor h = x;
    for (auto& b : blocks) h = b(h);
    // avgPool 7x7 stride 2 'valid' on the 7x7 map = the mean over it.
    h = torch::avg_pool2d(h, {7, 7}, {2, 2}).flatten(1);
    return torch::addmm(fc_bias, h, fc_weights.t());
}

void FaceLandmark68NetImpl::load(const std::string& manifest, torch::Device device) {
    tfcompat::load_tfjs(*this, manifest, {}, device, "face landmark net (FaceLandmark68Net)");
}

}  // namespace lsync::models::face_landmarks
