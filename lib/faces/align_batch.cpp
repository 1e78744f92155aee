#include "faces/align_batch.h"

#include "core/error.h"
#include "faces/warp.h"

#include <algorithm>
#include <vector>

namespace lsync::faces {

namespace {

torch::Tensor align_frames(const torch::Tensor& frames, const torch::Tensor& matrices, const CropGeometry& geometry,
                           bool quantize) {
    auto img = frames.to(torch::kFloat);
    auto crop = warp_affine(img, matrices, geometry.crop_h, geometry.crop_w, 127.0);
    if (!quantize) return resize_lanczos4(crop, geometry.resolution, geometry.resolution);
    crop = crop.clamp(0, 255).floor();  // astype(np.uint8) truncates
    return resize_lanczos4_u8(crop, geometry.resolution, geometry.resolution);  // cv2.resize on uint8
}

}  // namespace

torch::Tensor align_faces(const torch::Tensor& frames, const torch::Tensor& matrices, const CropGeometry& geometry,
                          bool quantize, int64_t slice_bytes) {
    LSYNC_CHECK(frames.dim() == 4 && frames.size(1) == 3, ErrorCode::Internal, "align_faces: frames must be [B,3,H,W]");
    const int64_t n = frames.size(0);
    const int64_t float_bytes_per_frame = std::max<int64_t>(1, frames.size(1) * frames.size(2) * frames.size(3)) * 4;
    const int64_t step = std::max<int64_t>(1, slice_bytes / float_bytes_per_frame);
    if (step >= n) return align_frames(frames, matrices, geometry, quantize);
    std::vector<torch::Tensor> parts;
    for (int64_t i = 0; i < n; i += step) {
        const int64_t len = std::min(step, n - i);
        parts.push_back(align_frames(frames.narrow(0, i, len), matrices.narrow(0, i, len), geometry, quantize));
    }
    return torch::cat(parts, 0);
}

}  // namespace lsync::faces
