#include "faces/align_batch.h"

#include "core/error.h"
#include "faces/warp.h"

namespace lsync::faces {

torch::Tensor align_faces(const torch::Tensor& frames, const torch::Tensor& matrices, const CropGeometry& geometry,
                          bool quantize) {
    LSYNC_CHECK(frames.dim() == 4 && frames.size(1) == 3, ErrorCode::Internal, "align_faces: frames must be [B,3,H,W]");
    auto img = frames.to(torch::kFloat);
    auto crop = warp_affine(img, matrices, geometry.crop_h, geometry.crop_w, 127.0);
    if (!quantize) return resize_lanczos4(crop, geometry.resolution, geometry.resolution);
    crop = crop.clamp(0, 255).floor();  // astype(np.uint8) truncates
    return resize_lanczos4_u8(crop, geometry.resolution, geometry.resolution);  // cv2.resize on uint8
}

}  // namespace lsync::faces
