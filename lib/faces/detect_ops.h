#pragma once
// Pre- and post-processing around the face-api networks, reproducing what face-api 1.7.15 does for tensor
// inputs (its Node path): zero padding to a square, TF's legacy bilinear resize (no half-pixel offset, no
// antialiasing), score-sorted greedy NMS, and the landmark crop geometry. Tensor work runs on the device of
// its input; NMS and per-face geometry run on the CPU (a few hundred numbers per frame).

#include "faces/face_types.h"

#include <torch/torch.h>

#include <utility>
#include <vector>

namespace lsync::faces {

/// TF `resizeBilinear(alignCorners = false, halfPixelCenters = false)` of NCHW float `x`: output pixel i
/// samples input coordinate i * in / out (not (i + 0.5) * in / out - 0.5 as torch's interpolate does).
/// resize_bilinear_tf of `x` [N, C, H, W] placed at (top, left) inside a zero image of padded_h x padded_w,
/// without materialising that padded image (same numbers, memory bounded by x and the output). Integer `x`
/// (uint8 pixels) gives float32, the same numbers as converting it first, without a float copy of it.
torch::Tensor resize_padded_bilinear_tf(const torch::Tensor& x, int64_t top, int64_t left, int64_t padded_h,
                                        int64_t padded_w, int64_t out_h, int64_t out_w);
torch::Tensor resize_bilinear_tf(const torch::Tensor& x, int64_t out_h, int64_t out_w);

/// Detector input: frames [B, H, W, 3] uint8 (any device) -> [B, 3, size, size] float, zero-padded at the
/// bottom/right to a square, resized, mapped to [-1, 1] (x / 127.5 - 1).
torch::Tensor detector_input(const torch::Tensor& frames, int64_t size = 512);

struct NmsOptions {
    float min_confidence = 0.5f;  ///< face-api's default minConfidence (strictly greater passes)
    float iou_threshold = 0.5f;   ///< a candidate overlapping a kept box by more than this is dropped
    int max_results = 100;
};

/// One frame's detections: `boxes` [N, 4] (ymin, xmin, ymax, xmax relative to the padded square) and `scores`
/// [N] (CPU float) -> faces in full-frame pixels of a `width` x `height` frame, by descending score, no
/// landmarks. Boxes are clamped to the frame, as face-api does.
std::vector<Face> faces_from_detections(const torch::Tensor& boxes, const torch::Tensor& scores, int width,
                                        int height, const NmsOptions& options = {}, int64_t input_size = 512);

/// The integer pixel region the landmark net sees for `box` (face-api's clipAtImageBorders + floor). Empty
/// (w or h <= 0) when the box lies outside the frame.
struct CropRect {
    int x = 0, y = 0, w = 0, h = 0;
};
CropRect landmark_crop(const Box& box, int width, int height);

/// Landmark-net input for one crop of `frame` [H, W, 3] uint8: the region, zero-padded to a centred square,
/// resized to size x size, minus the mean RGB (122.782, 117.001, 104.298), / 255. -> [3, size, size] float.
torch::Tensor landmark_input(const torch::Tensor& frame, const CropRect& crop, int64_t size = 112);

/// A crop of one frame of a batch: the frame's index and the region (landmark_crop).
using LandmarkCrop = std::pair<int64_t, CropRect>;
/// landmark_input for many crops of a batch of frames [B, H, W, 3] uint8 at once -> [N, 3, size, size] float, the
/// same numbers: a few launches for all of them. The face-api detector uses it with LSYNC_FACE_BATCHED_LANDMARKS=1
/// (face_api_detector.cpp says why not yet by default).
torch::Tensor landmark_inputs(const torch::Tensor& frames, const std::vector<LandmarkCrop>& crops, int64_t size = 112);

/// Net output [136] (x, y interleaved, relative to the padded square) -> 68 points in full-frame pixels.
std::vector<Point> landmarks_from_output(const torch::Tensor& out, const CropRect& crop, int64_t size = 112);

/// Intersection over union of two boxes (0 when either is empty).
float iou(const Box& a, const Box& b);

}  // namespace lsync::faces
