#pragma once
// Nearest x2 upsampling followed by a 3x3 convolution (padding 1), the VAE decoder's upsamplers, in sub-pixel
// form: every output pixel of a given row and column parity (a, b) sees only two rows and two columns of the
// low-resolution input, so the four parities are four 2x2 convolutions of the input whose taps are sums of the
// 3x3 taps (a = 0: rows i-1 | i with taps W0 | W1 + W2; a = 1: rows i | i+1 with W0 + W1 | W2; the same for
// columns). One padding-1 2x2 convolution with the four kernels stacked as 4 K output channels computes them
// all on an (H + 1) x (W + 1) grid, and kernels/subpixel_shuffle.cu puts each parity's pixels in place while it
// adds the bias. That is 16 taps per input pixel instead of 36 (4/9 of the FLOPs) and no upsampled copy of the
// input. The summed taps are rounded once to the weight's dtype, so the result differs from the two-step form by
// rounding only (fp16: about one unit in the last place of the weights).
//
// Served on CUDA for channels_last fp16 and fp32 inputs (the VAE's activations there) unless
// LSYNC_SUBPIXEL_UPSAMPLE=0 (read once). bf16 keeps the two-step form: its 8-bit mantissa would make the summed
// taps' rounding as large as a layer's own. Everywhere else: conv2d(upsample_nearest2x(x), ...).
// The UNet's upsamplers keep the two-step form: on an H200 this form saved 0.7 ms of a 45.6 ms 256 px call, and
// its stacked weights (16/9 of the 3x3 ones, 113 MiB more) put a 500-frame 1.5 render's GPU peak at 3.59-3.70 GiB
// against 3.50-3.53 and issue 13's 3.725 (4 GB), for no measurable render time (docs/performance-notes.md
// section 23).

#include "ops/derived_weight.h"

#include <torch/torch.h>

namespace lsync::ops {

/// The stacked 2x2 kernels [4 K, C, 2, 2] of a 3x3 weight [K, C, 3, 3], parity 2 a + b outermost, summed in fp32,
/// in the weight's dtype, device and memory format.
torch::Tensor subpixel_weight(const torch::Tensor& weight3x3);

/// The shuffle in ATen ops (any device and layout; what the kernel is checked against): z [N, 4 K, H + 1, W + 1]
/// -> y [N, K, 2 H, 2 W], y[n, k, 2 i + a, 2 j + b] = z[n, (2 a + b) K + k, i + a, j + b] + bias[k] (bias may be
/// undefined).
torch::Tensor subpixel_shuffle_reference(const torch::Tensor& z, const torch::Tensor& bias);

/// The shuffle: kernels/subpixel_shuffle.cu where subpixel_shuffle_kernel_serves (CUDA, a channels_last z of
/// fp32, fp16 or bf16, a contiguous bias of its dtype or none), the reference elsewhere. Channels_last from the
/// kernel.
torch::Tensor subpixel_shuffle(const torch::Tensor& z, const torch::Tensor& bias);
bool subpixel_shuffle_kernel_serves(const torch::Tensor& z, const torch::Tensor& bias);

/// conv2d(upsample_nearest2x(x), weight3x3, bias, stride 1, padding 1), through `subpixel` (subpixel_weight of
/// weight3x3) when it is defined: on CUDA the shuffle kernel for a channels_last z, ATen's shuffle elsewhere.
torch::Tensor upsample2x_conv3x3(const torch::Tensor& x, const torch::Tensor& weight3x3, const torch::Tensor& bias,
                                 const torch::Tensor& subpixel);

/// Whether the sub-pixel form serves x in a model: the switch on, CUDA, channels_last, fp16 or fp32.
bool subpixel_upsample_serves(const torch::Tensor& x);

bool subpixel_upsample_enabled();
void set_subpixel_upsample(bool enabled);

/// upsample2x_conv3x3 with `subpixel` holding the module's sub-pixel weight (made at the first call it serves)
/// when subpixel_upsample_serves(x).
torch::Tensor upsample2x_conv3x3(const torch::Tensor& x, const torch::Tensor& weight3x3, const torch::Tensor& bias,
                                 DerivedWeight& subpixel);

/// Makes `subpixel`'s weight now, as the first call above would on a CUDA input of weight3x3's dtype (the switch on,
/// weight3x3 on CUDA in fp16 or fp32); nothing otherwise. For a model's load: made in a render's first group, its
/// taps' copy from the host waited there for the UNet's queued work (docs/performance-notes.md section 38).
void prepare_subpixel_weight(const torch::Tensor& weight3x3, DerivedWeight& subpixel);

}  // namespace lsync::ops
