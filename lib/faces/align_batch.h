#pragma once
// Cutting the aligned face crops out of a batch of frames (reference section 5.4), on the frames' device.

#include "faces/alignment.h"

#include <torch/torch.h>

#include <array>
#include <vector>

namespace lsync::faces {

/// frames [B, 3, H, W] uint8 or float with values in [0, 255], on any device; matrices [B, 2, 3] alignment
/// matrices (frame -> crop, pixel-index convention, see alignment.h). Returns [B, 3, R, R] float32 crops on the
/// frames' device: bilinear warp to the 3:4 crop (crop_h x crop_w) with grey (127) fill, then the Lanczos-4
/// stretch to R x R, as AlignRestore.align_warp_face + cv2.resize do.
/// With `quantize` (the default, as the official code) the warped crop is truncated to whole values
/// (numpy astype(uint8)) and the resized one rounded and clamped to [0, 255] (OpenCV's uint8 resize), so the
/// crops hold integers exactly like the official uint8 images; without it they stay continuous.
/// The official code warps in fp16; here the geometry and the image are float32.
/// The float copy of the frames (and the warp's float coverage plane) is the big temporary: 15 MB per 720p frame,
/// 133 MB per 4K one, so a render's group of 32 frames took 0.47 GB at 720p and 4.2 GB at 4K at once. The frames
/// go through in slices whose float copy stays within `slice_bytes` (at least one frame per slice). Each frame is
/// warped on its own, so quantized crops are the same bits whatever the slices; continuous ones may differ in the
/// last place (the resize's GEMM sees another row count).
/// 512 MiB: a 720p group still aligns in one pass, since each slice costs the worker's thread its launches while
/// the GPU waits (with 64 MiB slices, 7 per 720p group, 500-frame 1.5 renders took 10.5-10.7 s against 10.1 for
/// the tree without them: call KC, docs/performance-notes.md section 21); 1080p and larger are sliced (4K: 5
/// frames per slice; call LC, section 22: a 200-frame 4K render's GPU peak 5.2 GiB against 8.5 in one pass per
/// group, the same bytes and speed).
/// With `box_runs` (the lengths of consecutive runs of the frames, summing to B: a render's chunks), each run converts
/// only the region its warp samples (source_box over the run's matrices) to float instead of the whole frames: a
/// 720p talking head's face is a few per cent of its frame (a 720p group's align transient was where a 1.5 render's
/// GPU peak rose: docs/performance-notes.md section 46). The samples read the same pixels; their coordinates are
/// normalised to the box instead of the frame, so a float rounding may flip a quantized crop's value by a level (two
/// after the stretch to 512; continuous crops agree to a few 1e-3). A frame's crop depends on its run alone, not on
/// which runs share the batch, so a render's crops are the same bits whatever its chunks' grouping (OOM retries,
/// several workers, a resumed render). A run whose box is too large for `slice_bytes` goes through in slices, each
/// from the run's box (quantized crops: the same bits). Empty: the whole frames (slicing as above).
constexpr int64_t kAlignSliceBytes = int64_t{512} << 20;
torch::Tensor align_faces(const torch::Tensor& frames, const torch::Tensor& matrices, const CropGeometry& geometry,
                          bool quantize = true, int64_t slice_bytes = kAlignSliceBytes,
                          const std::vector<int64_t>& box_runs = {});

/// The region of `height` x `width` frames that warping their `matrices` ([B, 2, 3], frame -> crop, on any device;
/// read on the host) into crop_h x crop_w crops samples: the crop's corners mapped back to each frame, their bounding
/// box over the batch, grown by 2 pixels (bilinear sampling reads the pixel after the sample's; float rounding) and
/// cut to the frame. {x0, y0, x1, y1}, half-open; the whole frame when that box is under 2 x 2 pixels (every sample
/// off the frame).
std::array<int64_t, 4> source_box(const torch::Tensor& matrices, const CropGeometry& geometry, int64_t height,
                                  int64_t width);

}  // namespace lsync::faces
