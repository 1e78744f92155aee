#pragma once
// FaceLandmark68Net of @vladmandic/face-api: 68 iBUG points from a 112x112 face crop. Four "dense blocks"
// (each: a stride-2 conv, then three separable convs whose inputs are the ReLU'd running sums of the previous
// outputs), a 7x7 average pool and one dense layer to 136 values (x0, y0, x1, y1, ...) in [0, 1] of the
// padded square crop. Modules carry the TF.js manifest names with '/' -> '.' (dense0.conv0.filters, ...).

#include <torch/torch.h>

#include <string>

namespace lsync::models::face_landmarks {

/// "filters" [32, 3, 3, 3] + "bias": the plain 3x3 conv that opens dense0.
struct ConvImpl : torch::nn::Module {
    ConvImpl(int64_t in, int64_t out);
    torch::Tensor forward(const torch::Tensor& x, int64_t stride);
    torch::Tensor filters, bias;
};
TORCH_MODULE(Conv);

/// "depthwise_filter" [in, 1, 3, 3], "pointwise_filter" [out, in, 1, 1], "bias": TF separableConv2d + bias.
struct SeparableConvImpl : torch::nn::Module {
    SeparableConvImpl(int64_t in, int64_t out);
    torch::Tensor forward(const torch::Tensor& x, int64_t stride);
    torch::Tensor depthwise_filter, pointwise_filter, bias;
};
TORCH_MODULE(SeparableConv);

struct DenseBlockImpl : torch::nn::Module {
    DenseBlockImpl(int64_t in, int64_t out, bool first);
    torch::Tensor forward(const torch::Tensor& x);
    Conv plain{nullptr};              ///< conv0 of dense0
    SeparableConv separable{nullptr}; ///< conv0 of the others
    std::vector<SeparableConv> convs; ///< conv1..conv3
};
TORCH_MODULE(DenseBlock);

struct FaceLandmark68NetImpl : torch::nn::Module {
    FaceLandmark68NetImpl();
    /// x [B, 3, 112, 112] = (RGB - (122.782, 117.001, 104.298)) / 255 of the padded crop -> [B, 136].
    torch::Tensor forward(const torch::Tensor& x);
    /// Loads `face_landmark_68_model-weights_manifest.json` strictly. Throws Error(Weights).
    void load(const std::string& manifest, torch::Device device);

    std::vector<DenseBlock> blocks;  ///< dense0..dense3
    torch::Tensor fc_weights, fc_bias;  ///< fc.weights [136, 256] (torch layout), fc.bias
};
TORCH_MODULE(FaceLandmark68Net);

}  // namespace lsync::models::face_landmarks
