#pragma once
// The one memory-order question the CUDA paths ask: is a 4-D tensor laid out channels_last (NHWC memory) and
// not also plainly contiguous? The VAE runs channels_last on CUDA (models/vae/autoencoder_kl.h), cuDNN writes
// NHWC for NHWC inputs, and the GroupNorm and bias kernels have an NHWC variant. A tensor with C == 1 or
// H * W == 1 is both orders at once; it answers false, so it takes the NCHW code, which reads it the same.

#include <torch/torch.h>

namespace lsync::ops {

inline bool is_channels_last_only(const torch::Tensor& x) {
    return x.dim() == 4 && !x.is_contiguous() && x.is_contiguous(at::MemoryFormat::ChannelsLast);
}

}  // namespace lsync::ops
