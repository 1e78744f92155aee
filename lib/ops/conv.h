#pragma once
// 2-D convolution whose bias is added by our vectorised kernel (kernels/channel_bias.cu) on CUDA: ATen adds a
// cuDNN convolution's bias as a separate broadcast add_ through its slowest element-wise path. fp32/fp16/bf16 on
// CUDA unless LSYNC_FUSED_BIAS=0 (read once), for NCHW outputs and for the channels_last outputs cuDNN gives a
// channels_last input (the result keeps that memory order); everywhere else exactly at::conv2d with the bias,
// so CPU results do not change. LSYNC_CUDNN_BENCHMARK=1 turns on cuDNN's per-shape autotuner (a measurement
// switch: it gained nothing on an H200 and made the 1.6 render slower, docs/performance-notes.md section 8).

#include <torch/torch.h>

namespace lsync::ops {

/// y = conv2d(x, weight, bias) with square stride and zero padding; bias may be undefined. A weight laid out
/// channels_last (use_channels_last_conv_weights) with an input that is not: on CUDA with LSYNC_NHWC_CONV on,
/// cuDNN runs NHWC on transposed activations and the result is NCHW-contiguous; otherwise the weight is made NCHW
/// first (a copy per call). A channels_last input gives a channels_last result, as from ATen.
torch::Tensor conv2d(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias, int64_t stride,
                     int64_t padding);

/// conv2d(x, weight) + bias[n / samples_per_bias, k] (bias [N / samples_per_bias, K]): a UNet resnet's conv1 with
/// its bias plus each batch entry's time embedding over the entry's frames. In the NHWC path (above) the add
/// rides on the transpose back to NCHW; otherwise ops::add_sample_bias_ after the conv.
torch::Tensor conv2d_sample_bias(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias,
                                 int64_t samples_per_bias, int64_t stride, int64_t padding);

/// residual + conv2d(x, weight, bias): a resnet's conv2 and its shortcut. In the NHWC path (above) the bias and
/// the residual ride on the transpose back to NCHW (the biased value rounded first, as the two ATen adds do);
/// otherwise exactly `residual + conv2d(...)`.
torch::Tensor conv2d_add(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias,
                         const torch::Tensor& residual, int64_t stride, int64_t padding);

/// A torch::nn::Conv2d (square stride and padding, no dilation or groups) through conv2d().
torch::Tensor conv2d(const torch::nn::Conv2d& conv, const torch::Tensor& x);
/// The same conv without its bias (for a pass after it that adds the bias as it reads the output).
torch::Tensor conv2d_without_bias(const torch::nn::Conv2d& conv, const torch::Tensor& x);

/// Whether NCHW inputs meet channels_last weights in NHWC convolutions: true unless LSYNC_NHWC_CONV=0 (read once),
/// or as last set. With NCHW weights cuDNN converts the weights' layout on every call (about 3 ms of a UNet
/// call on an H200); the UNet and VAE loaders make their weights channels_last when this is on
/// (models::place_parameters, through conv_weight_memory_format below).
bool nhwc_conv_enabled();
void set_nhwc_conv(bool enabled);

/// Whether conv2d() takes the NHWC route for this pair: CUDA, the switch on, an input that is not channels_last, a
/// channels_last weight of the input's dtype. The route uses ops::transpose_last2, so LSYNC_FUSED_TRANSPOSE=0
/// gives it ATen's strided copies instead of the tiled kernel.
bool nhwc_conv_serves(const torch::Tensor& x, const torch::Tensor& weight);

/// Whether a conv weight is worth laying out channels_last: CUDA, fp16/bf16, a kernel wider than 1x1 (a 1x1
/// weight is both orders at once) and channel counts that are multiples of 8 (cuDNN's NHWC tensor-core kernels).
bool nhwc_conv_weight_eligible(const torch::Tensor& weight);
/// The memory format a conv weight of these sizes and dtype is made in on `device` (models::place_parameters):
/// channels_last where use_channels_last_conv_weights() would convert it, contiguous elsewhere.
at::MemoryFormat conv_weight_memory_format(at::IntArrayRef sizes, torch::ScalarType dtype, const torch::Device& device);

/// On CUDA with nhwc_conv_enabled(): every conv weight of `module` that nhwc_conv_weight_eligible() accepts gets
/// the same values laid out channels_last, in place, so cuDNN's NHWC kernels read it as it is instead of
/// converting it on every call (conv2d() brings NCHW activations to NHWC and back; the channels_last VAE needs
/// nothing more). Nothing changes on the CPU or with the switch off. For weights made any other way than by
/// models::place_parameters, which lays them out so where it allocates them (the loaders); call once, after the
/// weights are filled.
void use_channels_last_conv_weights(torch::nn::Module& module);

/// The switch of our bias kernel (LSYNC_FUSED_BIAS), shared by conv2d() and the adds of ops/bias_add.h.
bool fused_bias_enabled();
void set_fused_bias(bool enabled);

}  // namespace lsync::ops
