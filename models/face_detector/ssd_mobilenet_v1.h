#pragma once
// The SSD MobileNetV1 face detector of @vladmandic/face-api (TF object-detection-API export, 512x512 input,
// one "face" class). Modules carry the TF.js manifest names with '/' -> '.' (tf_compat.h), so the manifest
// loads strictly by name; only the graph's integer constants are skipped.
//
//   MobilenetV1.Conv2d_0_pointwise            3x3 stride-2 conv + bias ("convolution_bn_offset"), ReLU6
//   MobilenetV1.Conv2d_{1..13}_depthwise      3x3 depthwise (stride 2 at 2, 4, 6, 12) + BatchNorm(eps 1e-3),
//                                             ReLU6
//   MobilenetV1.Conv2d_{1..13}_pointwise      1x1 conv + bias, ReLU6
//   Prediction.Conv2d_{0..7}_pointwise        extra feature layers (odd ones 3x3 stride 2), ReLU6
//   Prediction.BoxPredictor_{0..5}.{BoxEncodingPredictor,ClassPredictor}   1x1 conv heads on conv 11 (32x32),
//                                             conv 13 (16x16), Prediction 1, 3, 5, 7 (8, 4, 2, 1)
//   Output.extra_dim                          the 5118 anchors [1, 5118, 4] (ymin, xmin, ymax, xmax)

#include <torch/torch.h>

#include <string>

namespace lsync::models::face_detector {

/// "weights" [out, in, k, k] + "convolution_bn_offset" [out]: conv, bias, ReLU6 (the BatchNorm is folded).
struct PointwiseConvImpl : torch::nn::Module {
    PointwiseConvImpl(int64_t in, int64_t out, int64_t k, int64_t stride);
    torch::Tensor forward(const torch::Tensor& x);
    torch::Tensor weights, convolution_bn_offset;
    int64_t stride;
};
TORCH_MODULE(PointwiseConv);

/// TF BatchNorm parameters with their TF names (inference form).
struct BatchNormImpl : torch::nn::Module {
    explicit BatchNormImpl(int64_t c);
    torch::Tensor forward(const torch::Tensor& x);
    torch::Tensor gamma, beta, moving_mean, moving_variance;
};
TORCH_MODULE(BatchNorm);

/// "depthwise_weights" [c, 1, 3, 3] + child "BatchNorm": depthwise conv, BatchNorm, ReLU6.
struct DepthwiseConvImpl : torch::nn::Module {
    DepthwiseConvImpl(int64_t c, int64_t stride);
    torch::Tensor forward(const torch::Tensor& x);
    torch::Tensor depthwise_weights;
    BatchNorm bn{nullptr};
    int64_t stride;
};
TORCH_MODULE(DepthwiseConv);

/// "weights" + "biases": 1x1 conv head without activation.
struct ConvHeadImpl : torch::nn::Module {
    ConvHeadImpl(int64_t in, int64_t out);
    torch::Tensor forward(const torch::Tensor& x);
    torch::Tensor weights, biases;
};
TORCH_MODULE(ConvHead);

struct MobileNetV1Impl : torch::nn::Module {
    MobileNetV1Impl();
    /// x [B, 3, 512, 512] in [-1, 1] -> {conv 13 output [B, 1024, 16, 16], conv 11 output [B, 512, 32, 32]}.
    std::pair<torch::Tensor, torch::Tensor> forward(const torch::Tensor& x);
    PointwiseConv conv0{nullptr};
    std::vector<DepthwiseConv> depthwise;  ///< layers 1..13
    std::vector<PointwiseConv> pointwise;  ///< layers 1..13
};
TORCH_MODULE(MobileNetV1);

struct BoxPredictorImpl : torch::nn::Module {
    BoxPredictorImpl(int64_t in, int64_t anchors);
    /// -> {box encodings [B, H*W*anchors, 4], class logits [B, H*W*anchors, 3]}, TF's (h, w, anchor) order.
    std::pair<torch::Tensor, torch::Tensor> forward(const torch::Tensor& x);
    ConvHead box{nullptr}, cls{nullptr};
};
TORCH_MODULE(BoxPredictor);

struct PredictionImpl : torch::nn::Module {
    PredictionImpl();
    /// -> {box encodings [B, 5118, 4], class logits [B, 5118, 3]}.
    std::pair<torch::Tensor, torch::Tensor> forward(const torch::Tensor& conv13, const torch::Tensor& conv11);
    std::vector<PointwiseConv> convs;         ///< Conv2d_0..7_pointwise
    std::vector<BoxPredictor> predictors;     ///< BoxPredictor_0..5
};
TORCH_MODULE(Prediction);

struct SsdOutput {
    torch::Tensor boxes;   ///< [B, 5118, 4] (ymin, xmin, ymax, xmax), relative to the padded square input
    torch::Tensor scores;  ///< [B, 5118] face probability
};

struct SsdMobilenetV1Impl : torch::nn::Module {
    SsdMobilenetV1Impl();
    /// x [B, 3, 512, 512] = RGB / 127.5 - 1 of the zero-padded, resized frame (faces/detect_ops.h).
    SsdOutput forward(const torch::Tensor& x);
    /// Loads `ssd_mobilenetv1_model-weights_manifest.json` (and its shard) strictly. Throws Error(Weights).
    void load(const std::string& manifest, torch::Device device);

    MobileNetV1 mobilenet{nullptr};
    Prediction prediction{nullptr};
    torch::Tensor anchors;  ///< Output.extra_dim [1, 5118, 4]
};
TORCH_MODULE(SsdMobilenetV1);

/// Decodes SSD box encodings against anchors (TF object-detection API, scales 10, 10, 5, 5). Both
/// [..., 4] in (y, x, h, w)-major order as the network emits them; returns (ymin, xmin, ymax, xmax).
torch::Tensor decode_boxes(const torch::Tensor& anchors, const torch::Tensor& encodings);

}  // namespace lsync::models::face_detector
