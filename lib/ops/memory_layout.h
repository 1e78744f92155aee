#pragma once
// The memory-order questions the CUDA paths ask: is a 4-D tensor laid out channels_last (NHWC memory) and not
// also plainly contiguous; is a 5-D UNet tensor [B, C, F, H, W] laid out [B, F, H, W, C] (its frames' planes
// channels_last: models/unet/unet_3d.h), and the 4-D view that reads such a tensor as one image per entry. The
// VAE runs channels_last on CUDA (models/vae/autoencoder_kl.h), cuDNN writes NHWC for NHWC inputs, and the
// GroupNorm and bias kernels have an NHWC variant. A 4-D tensor with C == 1 or H * W == 1 is both orders at once;
// it answers false, so it takes the NCHW code, which reads it the same.

#include <torch/torch.h>

#include <algorithm>
#include <vector>

namespace lsync::ops {

/// The strides of a dense tensor of `sizes` in `format` (channels_last: 4-D only). Contiguous strides are the
/// canonical ones, size-1 dimensions included (ATen's kernels choose by all strides, not only those that address
/// something).
inline std::vector<int64_t> dense_strides(at::IntArrayRef sizes,
                                          at::MemoryFormat format = at::MemoryFormat::Contiguous) {
    if (format == at::MemoryFormat::ChannelsLast) {
        const int64_t c = sizes[1], h = sizes[2], w = sizes[3];
        return {c * h * w, 1, w * c, c};
    }
    std::vector<int64_t> strides(sizes.size());
    int64_t step = 1;
    for (size_t i = sizes.size(); i-- > 0;) {
        strides[i] = step;
        step *= std::max<int64_t>(sizes[i], 1);
    }
    return strides;
}

inline bool is_channels_last_only(const torch::Tensor& x) {
    return x.dim() == 4 && !x.is_contiguous() && x.is_contiguous(at::MemoryFormat::ChannelsLast);
}

/// [B, C, F, H, W] whose memory is [B, F, H, W, C] with C > 1 and more than one pixel per entry (the strides of
/// size-1 dimensions are not looked at: they address nothing).
inline bool is_frames_channels_last(const torch::Tensor& x) {
    if (x.dim() != 5 || x.size(1) <= 1 || x.size(2) * x.size(3) * x.size(4) <= 1) return false;
    const int64_t c = x.size(1), f = x.size(2), h = x.size(3), w = x.size(4);
    const auto at = [&](int64_t d, int64_t stride) { return x.size(d) == 1 || x.stride(d) == stride; };
    return x.stride(1) == 1 && at(4, c) && at(3, w * c) && at(2, h * w * c) && at(0, f * h * w * c);
}

/// A frames-channels-last x (checked by the caller) as the channels_last image [B, C, F*H, W] over the same
/// memory: per batch entry, the same elements in the same order, so statistics over all frames are an image's.
inline torch::Tensor frames_as_image(const torch::Tensor& x) {
    const int64_t c = x.size(1), f = x.size(2), h = x.size(3), w = x.size(4);
    return x.as_strided({x.size(0), c, f * h, w}, {f * h * w * c, 1, w * c, c}, x.storage_offset());
}

/// The inverse of frames_as_image: a channels_last-contiguous [B, C, F*H, W] image as [B, C, F, H, W] with `frames`.
inline torch::Tensor image_as_frames(const torch::Tensor& y, int64_t frames) {
    const int64_t c = y.size(1), h = y.size(2) / frames, w = y.size(3);
    return y.as_strided({y.size(0), c, frames, h, w}, {frames * h * w * c, 1, h * w * c, w * c, c},
                        y.storage_offset());
}

}  // namespace lsync::ops
