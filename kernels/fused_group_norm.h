#pragma once
// Fused GroupNorm (+ optional SiLU) for the UNet's 5-D video tensors and the VAE's 4-D images:
//   y = act((x - mean_{b,g}) * rstd_{b,g} * weight[c] + bias[c]),  act = SiLU or identity,
// with the statistics of each (batch, group) pooled over C/G channels x F frames x H x W (biased variance,
// like torch.nn.GroupNorm). fp16/bf16/fp32 input, fp32 statistics and arithmetic.
//
// Two launches: a statistics pass (one read of x; per-block Welford/Chan partials into a small fp32
// workspace) and a normalise pass (merges its group's partials, then one read of x and one write of y).
//
// The tensor is seen as [B, C, F, P] with the plane P = H*W contiguous and one of two memory orders:
//   channels outer (frames_outer = false): a plain contiguous [B, C, F, H, W] (or [N, C, H, W] with F = 1);
//   frames outer   (frames_outer = true):  memory [B, F, C, H, W], i.e. the view that `unfold_frames` returns
//                                           after a per-frame conv; y is written in the same order.
// With y_frames_outer a channels-outer x is written frames outer, so the next per-frame conv reads y without
// a layout copy.
// A third layout, channels last (channels_last = true): a 4-D [N, C, H, W] whose memory is [N, H, W, C] (what
// cuDNN's NHWC convolutions read and write), y written the same way; frames must be 1 and plane = H * W. That
// mode runs its own pair of kernels (group_norm_nhwc.cu): the same statistics and affine, SiLU with an
// approximate divide (values within a rounding step of this kernel's).
// Plain pointers: this header and its .cu see no LibTorch; lib/ops/group_norm.cpp validates tensors and
// calls it on the current stream.

#include "element_type.h"

#include <cstdint>
#include <string>

namespace lsync::kernels {

struct GroupNormArgs {
    const void* x = nullptr;
    void* y = nullptr;                  ///< same shape and memory order as x
    const void* weight = nullptr;       ///< [C] or null (1)
    const void* bias = nullptr;         ///< [C] or null (0)
    bool affine_fp32 = false;           ///< weight/bias are fp32 (else the dtype of x)
    /// Channels last only: [C] of x's dtype or null. The norm is then of x + input_bias, each sum rounded to x's
    /// dtype first (exactly GroupNorm of the biased tensor): a conv's bias folded into the norm after it.
    const void* input_bias = nullptr;
    /// The input bias is [batch, C], one row per image (a UNet resnet's conv1 bias plus the time embedding of
    /// each batch entry, whose frames form one image of the 5-D norm), not one row for all.
    bool input_bias_per_image = false;
    /// Channels last only: int32 [batch] in device memory, or null. Image n's statistics then cover only its
    /// first valid_frames[n] * frame_pixels pixels (a 5-D call's real frames, ops/valid_frames.h: an image of
    /// F*H rows is F frames of frame_pixels = H*W pixels); every pixel is normalised with them.
    const int32_t* valid_frames = nullptr;
    int64_t frame_pixels = 0;
    int64_t batch = 0, channels = 0, groups = 0, frames = 1, plane = 0;
    bool frames_outer = false;
    bool y_frames_outer = false;        ///< write y as [B, F, C, P] even when x is channels outer
    bool channels_last = false;         ///< x and y are [N, H*W, C] in memory (frames_outer flags unused)
    float eps = 1e-5f;
    bool silu = false;
    ElementType dtype = ElementType::Float32;
    int sm_count = 132;                 ///< multiprocessors of the device (sizes the grid)
    float* workspace = nullptr;         ///< group_norm_workspace_floats(args) floats, device memory
    void* stream = nullptr;             ///< cudaStream_t
};

/// Empty when the kernels can run these arguments, else why not (sizes, divisibility).
std::string group_norm_unsupported(const GroupNormArgs& args);

/// fp32 elements of scratch the launch needs (the per-block partial statistics).
int64_t group_norm_workspace_floats(const GroupNormArgs& args);

/// Launches both passes; returns an empty string or the CUDA error.
std::string group_norm_launch(const GroupNormArgs& args);

}  // namespace lsync::kernels
