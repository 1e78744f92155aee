#pragma once
// Broadcast adds that ATen runs through its generic (non-vectorised) element-wise kernel, done in place by our
// bias kernel (kernels/channel_bias.cu) on CUDA when LSYNC_FUSED_BIAS is on; ATen's add_ everywhere else, so CPU
// results do not change.
//   add_channel_bias_ a convolution's bias over an NCHW or channels_last output (ops::conv2d)
//   add_channel_bias_residual_  the same and a residual after it, in the same pass (channels_last)
//   add_channel_bias_residual_padded  that, written into a buffer padded right and bottom (a VAE downsampler's)
//   add_sample_bias_  a per-(sample group, channel) bias: a UNet resnet's conv1 bias plus its batch entry's time
//                     embedding, over the entry's frames, in one pass instead of a bias add and a 5-D broadcast
//   add_row_bias_     a bias along the last dimension of a contiguous tensor: the motion modules' position
//                     table over [frames x channels] of every pixel's tokens

#include <torch/torch.h>

namespace lsync::ops {

/// y[:, c] += bias[c] in place on a 4-D y, as conv2d() adds its bias (NCHW or channels_last memory). Returns y.
torch::Tensor& add_channel_bias_(torch::Tensor& y, const torch::Tensor& bias);

/// y = residual + (y + bias[c]) in place on a 4-D y, the biased value rounded first: a resnet's conv2 bias and
/// its shortcut (the values of add_channel_bias_ then `residual + y`). With `residual_bias`, y = (residual +
/// residual_bias[c]) + (y + bias[c]), each sum rounded as its own add stores it: the shortcut conv's bias (or the
/// bias of the conv that made a block's input) taken in the same pass. One pass when y and the residual are both
/// channels_last (the VAE's CUDA path); else those adds, the residual bias added to `residual` in place (so it
/// must be a tensor of the caller's, e.g. the conv's output). Returns y.
torch::Tensor& add_channel_bias_residual_(torch::Tensor& y, const torch::Tensor& bias, torch::Tensor residual,
                                          const torch::Tensor& residual_bias = {});

/// Whether add_channel_bias_residual_(y, bias, residual, residual_bias) runs as our one channels_last pass.
bool residual_pass_serves(const torch::Tensor& y, const torch::Tensor& bias, const torch::Tensor& residual,
                          const torch::Tensor& residual_bias = {});

/// add_channel_bias_residual_ with the result padded by one zero pixel right and bottom, [N, C, H + 1, W + 1]
/// channels_last: the VAE encoder's last resnet before a Downsample2D, whose pad then costs no pass of its own.
/// The kernel writes the sums straight into the padded buffer (only its new row and column are zeroed apart)
/// where add_channel_bias_residual_'s one pass serves and LSYNC_RESIDUAL_PAD is not 0; otherwise that, then
/// pad_right_bottom. Same values either way; y is scratch afterwards, and on that fallback a residual bias is
/// added into `residual` in place (as add_channel_bias_residual_ does).
torch::Tensor add_channel_bias_residual_padded(torch::Tensor& y, const torch::Tensor& bias, torch::Tensor residual,
                                               const torch::Tensor& residual_bias = {});

/// Whether add_channel_bias_residual_padded() writes into the padded buffer in its pass: true unless
/// LSYNC_RESIDUAL_PAD=0 (read once), or as last set.
bool residual_pad_enabled();
void set_residual_pad(bool enabled);

/// y[n, c, :, :] += bias[n / samples_per_bias, c] in place; y [N, C, H, W] contiguous, bias [N / samples_per_bias, C].
torch::Tensor& add_sample_bias_(torch::Tensor& y, const torch::Tensor& bias, int64_t samples_per_bias);

/// y[..., k] += bias[k] in place; y contiguous with last dimension K, bias [K] (any shape of K elements).
torch::Tensor& add_row_bias_(torch::Tensor& y, const torch::Tensor& bias);

}  // namespace lsync::ops
