#pragma once
// Batched resampling with torch ops, so it runs wherever the tensors live (CPU or the pipeline's GPU) and a
// whole chunk of frames goes through in one call. Geometry is float32 whatever the image dtype.

#include <torch/torch.h>

#include <optional>

namespace lsync::faces {

/// kornia.geometry.transform.warp_affine(src, M, (out_h, out_w), mode="bilinear", align_corners=True) with
/// padding_mode "fill" (`fill` given) or "zeros" (nullopt).
///
/// src [B, C, H, W] floating point; matrices [B, 2, 3], OpenCV pixel-index convention, mapping SOURCE pixels to
/// DESTINATION pixels (as cv2.warpAffine without WARP_INVERSE_MAP). Output pixel (x, y) samples the source
/// at M^-1 (x, y) bilinearly, pixel centres at integers: exactly OpenCV's convention, which is also
/// grid_sample's with align_corners=True once a source pixel index i is normalised as 2 i / (W - 1) - 1.
/// Like kornia's "fill", the fill colour is blended in by the share of each bilinear footprint that falls
/// outside the source (out = sample(src, zeros) + (1 - sample(ones, zeros)) * fill).
///
/// The matrices may be on the host or on src's device: host matrices (a render's) are checked and inverted on
/// the host and only the sampling coefficients go to the GPU, queued without waiting for it.
///
/// `origin` (x0, y0) says that output pixel (0, 0) is destination pixel (x0, y0): warping into a window of a
/// larger destination gives bit-identical values to warping the whole destination and cutting the window,
/// because each sample position is computed from absolute destination coordinates.
torch::Tensor warp_affine(const torch::Tensor& src, const torch::Tensor& matrices, int64_t out_h, int64_t out_w,
                          std::optional<double> fill, std::array<int64_t, 2> origin = {0, 0});

/// cv2.resize(..., interpolation=INTER_LANCZOS4) on [B, C, H, W] float: the fixed 8-tap Lanczos (a = 4) kernel
/// at source scale (OpenCV does not widen it when shrinking), source position (d + 0.5) * in / out - 0.5,
/// replicated borders. Done as two matrix products with precomputed weight matrices. Values are not clamped.
torch::Tensor resize_lanczos4(const torch::Tensor& images, int64_t out_h, int64_t out_w);

/// The same on 8-bit images ([B, C, H, W] holding whole numbers 0..255, any dtype; returned in that dtype):
/// OpenCV's uint8 path, which rounds the weights to 1/2048, sums in integers and rounds the result
/// ((sum + 2^21) >> 22, saturated). Bit-exact with cv2.resize on uint8, as the official code calls it on
/// the aligned crops and the mask.
torch::Tensor resize_lanczos4_u8(const torch::Tensor& images, int64_t out_h, int64_t out_w);

/// torchvision resize(..., BICUBIC, antialias=True) on [B, C, H, W] float (LibTorch's antialiased bicubic,
/// align_corners=False), as the official restore_video does before the inverse warp.
torch::Tensor resize_bicubic_antialias(const torch::Tensor& images, int64_t out_h, int64_t out_w);

/// A mouth mask [H, W] (values in [0, 1]) scaled to R x R with an antialiased triangle filter: every output is
/// a convex combination of inputs, so nothing rings outside [0, 1] (the official Lanczos resize does); the
/// result is clamped to [0, 1] to absorb float rounding.
torch::Tensor scale_mask(const torch::Tensor& mask, int64_t resolution);

}  // namespace lsync::faces
