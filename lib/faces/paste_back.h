#pragma once
// Putting generated faces back into their frames (reference section 5.7, AlignRestore.restore_img), batched
// on the frames' device.

#include "core/device_transfer.h"
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

/// The half of paste_back that does not need the faces: the window, the inverse matrices and the paste mask
/// (steps 3 and the start of 4). A render makes it when a group starts, from the group's host matrices: it
/// queues its kernels without waiting for the GPU, and apply_paste waits only for the mask's per-frame areas,
/// which the GPU has passed long before the faces are decoded.
struct PastePlan {
    int64_t frames = 0;
    std::array<int64_t, 4> window{0, 0, 0, 0};  ///< as PasteResult::window
    torch::Tensor inverse;                      ///< [B, 2, 3] float on the host (crop -> frame)
    torch::Tensor eroded;                       ///< [B, 1, wh, ww] the paste mask m; undefined if nothing to paste
    torch::Tensor areas;                        ///< [B] double on the host: the sum of m per frame, once ready
    StreamMark areas_ready;
};

/// matrices [B, 2, 3] on the host or on `device` (the frames' device); height x width the frames' size.
PastePlan plan_paste(const torch::Tensor& matrices, int64_t height, int64_t width, const CropGeometry& geometry,
                     const torch::Device& device);

/// paste_back with a plan made for these frames' matrices and size.
PasteResult apply_paste(const torch::Tensor& frames, const torch::Tensor& faces, const PastePlan& plan,
                        const CropGeometry& geometry);
/// apply_paste writing into `frames` itself (the result's frames are that tensor): for frames the caller copied
/// to the device for this paste alone, whose clone would only double their memory (796 MB per 32 frames of 4K).
PasteResult apply_paste_in_place(const torch::Tensor& frames, const torch::Tensor& faces, const PastePlan& plan,
                                 const CropGeometry& geometry);

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
