#include "face_detector/ssd_mobilenet_v1.h"

#include "face_detector/tf_compat.h"

namespace lsync::models::face_detector {

using tfcompat::conv_same;

namespace {
// face-api's mobileNetV1.ts: BatchNorm epsilon of the TF export (float32 0.001).
constexpr double kBatchNormEps = 0.0010000000474974513;
}  // namespace

PointwiseConvImpl::PointwiseConvImpl(int64_t in, int64_t out, int64_t k, int64_t stride_) : stride(stride_) {
    weights = register_parameter("weights", torch::zeros({out, in, k, k}), false);
    convolution_bn_offset = register_parameter("convolution_bn_offset", torch::zeros({out}), false);
}

torch::Tensor PointwiseConvImpl::forward(const torch::Tensor& x) {
    return torch::clamp(conv_same(x, weights, convolution_bn_offset, stride), 0, 6);
}

BatchNormImpl::BatchNormImpl(int64_t c) {
    gamma = register_parameter("gamma", torch::ones({c}), false);
    beta = register_parameter("beta", torch::zeros({c}), false);
    moving_mean = register_buffer("moving_mean", torch::zeros({c}));
    moving_variance = register_buffer("moving_variance", torch::ones({c}));
}

torch::Tensor BatchNormImpl::forward(const torch::Tensor& x) {
    return torch::batch_norm(x, gamma, beta, moving_mean, moving_variance, false, 0.0, kBatchNormEps, false);
}

DepthwiseConvImpl::DepthwiseConvImpl(int64_t c, int64_t stride_) : stride(stride_) {
    depthwise_weights = register_parameter("depthwise_weights", torch::zeros({c, 1, 3, 3}), false);
    bn = register_module("BatchNorm", BatchNorm(c));
}

torch::Tensor DepthwiseConvImpl::forward(const torch::Tensor& x) {
    return torch::clamp(bn(conv_same(x, depthwise_weights, {}, stride, depthwise_weights.size(0))), 0, 6);
}

ConvHeadImpl::ConvHeadImpl(int64_t in, int64_t out) {
    weights = register_parameter("weights", torch::zeros({out, in, 1, 1}), false);
    biases = register_parameter("biases", torch::zeros({out}), false);
}

torch::Tensor ConvHeadImpl::forward(const torch::Tensor& x) { return torch::conv2d(x, weights, biases); }

MobileNetV1Impl::MobileNetV1Impl() {
    conv0 = register_module("Conv2d_0_pointwise", PointwiseConv(3, 32, 3, 2));
    // Output channels of layers 1..13 (input of layer i = output of layer i - 1).
    const int64_t out[14] = {32, 64, 128, 128, 256, 256, 512, 512, 512, 512, 512, 512, 1024, 1024};
    for (int i = 1; i <= 13; ++i) {
        const int64_t stride = (i == 2 || i == 4 || i == 6 || i == 12) ? 2 : 1;
        depthwise.push_back(
            register_module("Conv2d_" + std::to_string(i) + "_depthwise", DepthwiseConv(out[i - 1], stride)));
        pointwise.push_back(
            register_module("Conv2d_" + std::to_string(i) + "_pointwise", PointwiseConv(out[i - 1], out[i], 1, 1)));
    }
}

std::pair<torch::Tensor, torch::Tensor> MobileNetV1Impl::forward(const torch::Tensor& x) {
    torch::Tensor h = conv0(x), conv11;
    for (size_t i = 0; i < depthwise.size(); ++i) {
        h = pointwise[i](depthwise[i](h));
        if (i + 1 == 11) conv11 = h;
    }
    return {h, conv11};
}

BoxPredictorImpl::BoxPredictorImpl(int64_t in, int64_t anchors) {
    box = register_module("BoxEncodingPredictor", ConvHead(in, anchors * 4));
    cls = register_module("ClassPredictor", ConvHead(in, anchors * 3));
}

std::pair<torch::Tensor, torch::Tensor> BoxPredictorImpl::forward(const torch::Tensor& x) {
    const int64_t b = x.size(0);
    // NCHW -> NHWC before flattening, so anchors come out in TF's (row, column, anchor) order.
    auto enc = box(x).permute({0, 2, 3, 1}).reshape({b, -1, 4});
    auto logits = cls(x).permute({0, 2, 3, 1}).reshape({b, -1, 3});
    return {enc, logits};
}

PredictionImpl::PredictionImpl() {
    // (in, out, kernel, stride) of Prediction/Conv2d_{0..7}_pointwise.
    const int64_t spec[8][4] = {{1024, 256, 1, 1}, {256, 512, 3, 2}, {512, 128, 1, 1}, {128, 256, 3, 2},
                                {256, 128, 1, 1},  {128, 256, 3, 2}, {256, 64, 1, 1},  {64, 128, 3, 2}};
    for (int i = 0; i < 8; ++i)
        convs.push_back(register_module("Conv2d_" + std::to_string(i) + "_pointwise",
                                        PointwiseConv(spec[i][0], spec[i][1], spec[i][2], spec[i][3])));
    const int64_t in[6] = {512, 1024, 512, 256, 256, 128};
    for (int i = 0; i < 6; ++i)
        predictors.push_back(
            register_module("BoxPredictor_" + std::to_string(i), BoxPredictor(in[i], i == 0 ? 3 : 6)));
}

std::pair<torch::Tensor, torch::Tensor> PredictionImpl::forward(const torch::Tensor& conv13,
                                                                 const torch::Tensor& conv11) {
    std::vector<torch::Tensor> feats = {conv11, conv13};
    torch::Tensor h = conv13;
    for (size_t i = 0; i < convs.size(); ++i) {
        h = convs[i](h);
        if (i % 2 == 1) feats.push_back(h);  // Prediction 1, 3, 5, 7
    }
    std::vector<torch::Tensor> encs, logits;
    for (size_t i = 0; i < predictors.size(); ++i) {
        auto [e, l] = predictors[i](feats[i]);
        encs.push_back(e);
        logits.push_back(l);
    }
    return {torch::cat(encs, 1), torch::cat(logits, 1)};
}

SsdMobilenetV1Impl::SsdMobilenetV1Impl() {
    mobilenet = register_module("MobilenetV1", MobileNetV1());
    prediction = register_module("Prediction", Prediction());
    auto output = register_module("Output", std::make_shared<torch::nn::Module>("Output"));
    anchors = output->register_buffer("extra_dim", torch::zeros({1, 5118, 4}));
}

torch::Tensor decode_boxes(const torch::Tensor& anchors, const torch::Tensor& encodings) {
    const auto a = anchors.unbind(-1);
    const auto e = encodings.unbind(-1);
    const auto h = a[2] - a[0], w = a[3] - a[1];
    const auto cy = a[0] + h / 2, cx = a[1] + w / 2;
    const auto half_h = torch::exp(e[2] / 5) * h / 2, half_w = torch::exp(e[3] / 5) * w / 2;
    const auto y = e[0] / 10 * h + cy, x = e[1] / 10 * w + cx;
    return torch::stack({y - half_h, x - half_w, y + half_h, x + half_w}, -1);
}

SsdOutput SsdMobilenetV1Impl::forward(const torch::Tensor& x) {
    auto [conv13, conv11] = mobilenet(x);
    auto [enc, logits] = prediction(conv13, conv11);
    SsdOutput out;
    out.boxes = decode_boxes(anchors.to(enc.dtype()), enc);
    // Column 0 is background; face-api keeps the sigmoid of column 1.
    out.scores = torch::sigmoid(logits.select(-1, 1));
    return out;
}

void SsdMobilenetV1Impl::load(const std::string& manifest, torch::Device device) {
    // The TF graph's own constants (resize size, slice bounds, stack axes, normalisation scalars).
    const std::vector<std::string> graph_constants = {
        R"(Preprocessor\..*)", R"(Postprocessor\..*)", R"(concat_1\..*)",
        R"(Prediction\.BoxPredictor_\d\.(stack|stack_1|strided_slice)\..*)"};
    tfcompat::load_tfjs(*this, manifest, graph_constants, device, "face detector (SSD MobileNetV1)");
}

}  // namespace lsync::models::face_detector
