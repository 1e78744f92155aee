#include "unet/resnet_3d.h"

#include "core/error.h"
#include "ops/bias_add.h"
#include "ops/conv.h"
#include "ops/group_norm.h"
#include "ops/memory_layout.h"
#include "ops/upsample.h"

namespace lsync::models {

ResnetBlock3DImpl::ResnetBlock3DImpl(int64_t in, int64_t out, int64_t temb_channels, int64_t groups, double eps,
                                     double scale)
    : output_scale_factor(scale) {
    norm1 = register_module("norm1", GroupNorm(groups, in, eps));
    conv1 = register_module("conv1", Conv2d(in, out, 3, 1, 1));
    time_emb_proj = register_module("time_emb_proj", Linear(temb_channels, out));
    norm2 = register_module("norm2", GroupNorm(groups, out, eps));
    conv2 = register_module("conv2", Conv2d(out, out, 3, 1, 1));
    if (in != out) conv_shortcut = register_module("conv_shortcut", Conv2d(in, out, 1, 1, 0));
}

torch::Tensor ResnetBlock3DImpl::forward(const torch::Tensor& x, const torch::Tensor& temb) {
    // The time embedding: the same shift for every frame and pixel of a batch entry.
    const auto shift = time_emb_proj(torch::silu(temb));  // [b, out]
    torch::Tensor h;
    const bool fused = x.is_cuda() && ops::fused_bias_enabled();
    if (fused && ops::is_frames_channels_last(x)) return forward_channels_last(x, shift);
    if (fused) {
        // conv1's bias and the shift as one [b, out] table added in one pass (ops::conv2d_sample_bias: on the NHWC
        // conv's way back to NCHW, else over its frame planes): ATen would add the bias, then broadcast the shift
        // over a 5-D view through its slowest element-wise kernel.
        const int64_t frames = x.size(2);
        h = unfold_frames(ops::conv2d_sample_bias(fold_frames(norm1->forward_silu(x)), conv1->weight,
                                                  conv1_bias_table(shift, x.scalar_type()), frames, conv1->stride,
                                                  conv1->padding),
                          frames);
    } else {
        h = conv1(norm1->forward_silu(x)) + shift.reshape({temb.size(0), -1, 1, 1, 1});
    }
    if (fused && output_scale_factor == 1.0) {
        // conv2's bias and the shortcut added in the conv's own pass (on the NHWC conv's way back to NCHW): one
        // read and write of the block's output less. Same values: the biased conv output is rounded first. The
        // shortcut must exist before the conv; conv1's output is released first, so no more is held than before.
        h = norm2->forward_silu(h);
        const auto shortcut = conv_shortcut ? conv_shortcut(x) : x;
        const int64_t frames = x.size(2);
        return unfold_frames(ops::conv2d_add(fold_frames(h), conv2->weight, conv2->bias, fold_frames(shortcut),
                                             conv2->stride, conv2->padding),
                             frames);
    }
    h = conv2(norm2->forward_silu(h));  // dropout is 0 at inference
    auto shortcut = conv_shortcut ? conv_shortcut(x) : x;
    auto y = shortcut + h;
    return output_scale_factor == 1.0 ? y : y / output_scale_factor;
}

torch::Tensor ResnetBlock3DImpl::conv1_bias_table(const torch::Tensor& shift, torch::ScalarType dtype) const {
    return (shift.to(torch::kFloat) + conv1->bias.to(torch::kFloat)).to(dtype);
}

torch::Tensor ResnetBlock3DImpl::forward_channels_last(const torch::Tensor& x, const torch::Tensor& shift) {
    // The fused route's sums in NHWC memory: conv1 runs without its bias; its bias and the batch entry's time
    // shift (the same once-rounded table) are added as norm2 loads the conv's output (ops::group_norm_sample_bias),
    // so that sum is never written; conv2's bias and the shortcut are added in one pass after it
    // (ops::conv2d_add).
    const int64_t frames = x.size(2);
    auto h = unfold_frames(ops::conv2d(fold_frames(norm1->forward_silu(x)), conv1->weight, torch::Tensor(),
                                       conv1->stride, conv1->padding),
                           frames);
    h = ops::group_norm_sample_bias(h, conv1_bias_table(shift, x.scalar_type()), norm2->groups, norm2->weight,
                                    norm2->bias, norm2->eps, /*silu=*/true);
    const auto shortcut = conv_shortcut ? conv_shortcut(x) : x;
    const auto y = unfold_frames(ops::conv2d_add(fold_frames(h), conv2->weight, conv2->bias, fold_frames(shortcut),
                                                 conv2->stride, conv2->padding),
                                 frames);
    return output_scale_factor == 1.0 ? y : y / output_scale_factor;
}

Downsample3DImpl::Downsample3DImpl(int64_t channels, int64_t padding) {
    conv = register_module("conv", Conv2d(channels, channels, 3, 2, padding));
}

torch::Tensor Downsample3DImpl::forward(const torch::Tensor& x) {
    // padding 0 means the diffusers asymmetric (0, 1, 0, 1) pad before the stride-2 conv.
    if (conv->padding == 0) return conv(torch::constant_pad_nd(x, {0, 1, 0, 1}, 0));
    return conv(x);
}

Upsample3DImpl::Upsample3DImpl(int64_t channels) { conv = register_module("conv", Conv2d(channels, channels, 3, 1, 1)); }

torch::Tensor Upsample3DImpl::forward(const torch::Tensor& x, const std::optional<std::vector<int64_t>>& size) {
    // Nearest upsampling of h and w with the frame count unchanged picks the same source pixel per frame as the
    // official 3-D interpolate, so it runs per frame on the folded planes: no 5-D layout copy before the conv.
    // The official code upsamples bf16 in fp32 (older nearest kernels lacked bf16); nearest copies values, so
    // the round trip is exact either way.
    const int64_t frames = x.size(2);
    LSYNC_CHECK(!size || (size->size() == 3 && (*size)[0] == frames), ErrorCode::Internal,
                "Upsample3D: the target size must be (frames, h, w) with the input's frame count");
    auto h = fold_frames(x);
    const std::vector<int64_t> out_size = size ? std::vector<int64_t>{(*size)[1], (*size)[2]}
                                               : std::vector<int64_t>{x.size(3) * 2, x.size(4) * 2};
    if (out_size[0] == 2 * x.size(3) && out_size[1] == 2 * x.size(4)) {
        h = ops::upsample_nearest2x(h);  // our vector copy on CUDA, ATen's kernel elsewhere
    } else {
        if (h.scalar_type() == torch::kBFloat16) h = h.to(torch::kFloat);
        h = torch::upsample_nearest2d(h, out_size);
        if (h.scalar_type() != x.scalar_type()) h = h.to(x.scalar_type());
    }
    return unfold_frames(conv(h), frames);
}

}  // namespace lsync::models
