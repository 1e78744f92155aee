#pragma once
// The fixed mouth mask of LatentSync: 1 = keep the original face pixel, 0 = region the model regenerates.
// The official file is `latentsync/utils/mask.png` (256x256). When the model directory has a mask.png it is
// used; otherwise the same shape is drawn from a few measured constants (see mouth_mask.cpp), so a
// renderer never fails for a missing 3 KB image.

#include <torch/torch.h>

#include <string>

namespace lsync::pipeline {

/// The procedural mask at `resolution` x `resolution` (float32, values exactly 0 or 1). The shape is defined
/// in the 256-pixel frame of the official mask and sampled at pixel centres, so every resolution is sharp.
torch::Tensor procedural_mouth_mask(int resolution);

/// Reads a mask image (any format FFmpeg decodes; first channel, /255) and resizes it to `resolution` as the
/// official code does (8-bit Lanczos-4, rounded and saturated).
torch::Tensor load_mouth_mask_image(const std::string& path, int resolution);

/// <model_dir>/mask.png when it exists, else the procedural mask.
torch::Tensor mouth_mask(const std::string& model_dir, int resolution);

/// Intersection over union of the regenerated (0) regions of two masks of the same size, thresholded at 0.5.
double mask_iou(const torch::Tensor& a, const torch::Tensor& b);

}  // namespace lsync::pipeline
