#pragma once
// Putting generated faces back into their frames (reference section 5.7, AlignRestore.restore_img), batched
// on the frames' device.

#include "faces/alignment.h"

#include <torch/torch.h>

#include <array>

namespace lsync::faces {

struct PasteResult {
    torch::Tensor frames;  ///< [B, 3, H, W] uint8, the input frames with the faces blended in
    /// The window of the frames that was touched, {x0, y0, x1, y1} (half-open), the same for the batch: the
    /// union of the crops' footprints plus a margin. Outside it the output is a copy of the input.
    std::array<int64_t, 4> window{0, 0, 0, 0};
    /// [B, 1, y1 - y0, x1 - x0] float32: the feathered blend weight inside the window. Where it is 0 the output
    /// pixel equals the input pixel bit for bit (enforced with a select, not left to arithmetic).
    torch::Tensor blend;
};

/// Crop-level composite (paste_surrounding_pixels_back): decoded * (1 - mask) + reference * mask, with mask
/// 1 = keep the reference. decoded / reference [B, 3, R, R] in [-1, 1]; mask [R, R], [1, R, R] or [B, 1, R, R].
torch::Tensor composite_crop(const torch::Tensor& decoded, const torch::Tensor& reference, const torch::Tensor& mask);

/// frames [B, 3, H, W] uint8; faces [B, 3, R, R] in [-1, 1] (the composited crops); matrices [B, 2, 3] the
/// alignment matrices the crops were cut with. Per the official restore:
///  1. antialiased bicubic resize R x R -> crop_h x crop_w;
///  2. inverse bilinear warp into the frame (grey fill), mapped to [0, 255] by (x / 2 + 0.5).clamp(0, 1) * 255;
///  3. an all-ones crop warped the same way (zero fill), eroded with a 2 x 2 window (rows y-1..y, cols x-1..x,
///     kornia's origin), giving the paste mask m;
///  4. w_edge = int(sqrt(sum m)) // 20; m eroded again with a 2 w_edge square (OpenCV anchor: cols
///     x - w_edge .. x + w_edge - 1; 3 x 3 when w_edge = 0, as cv2.erode with an empty kernel), then blurred with
///     a Gaussian of size k = 2 w_edge + 1, sigma = 0.3 ((k - 1) / 2 - 1) + 0.8, reflected borders -> weight s;
///  5. out = s * m * face + (1 - s) * frame, truncated to uint8.
/// Borders of the frame never erode (OpenCV's and kornia's defaults). Computed in float32 (the official code
/// runs this in fp16 on the GPU).
PasteResult paste_back(const torch::Tensor& frames, const torch::Tensor& faces, const torch::Tensor& matrices,
                       const CropGeometry& geometry);

}  // namespace lsync::faces
