#include "faces/align_batch.h"

#include "core/error.h"
#include "faces/warp.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace lsync::faces {

namespace {

using SourceBox = std::array<int64_t, 4>;  // {x0, y0, x1, y1}, half-open (source_box)

// The crops of `frames` warped from the region `box` of them only (converted to float; the whole frames when the box
// is the frame).
torch::Tensor align_frames(const torch::Tensor& frames, const torch::Tensor& matrices, const CropGeometry& geometry,
                           bool quantize, const SourceBox& box) {
    torch::Tensor img, m = matrices;
    const auto [x0, y0, x1, y1] = box;
    if (x0 == 0 && y0 == 0 && x1 == frames.size(3) && y1 == frames.size(2)) {
        img = frames.to(torch::kFloat);
    } else {
        img = frames.narrow(2, y0, y1 - y0).narrow(3, x0, x1 - x0).to(torch::kFloat);
        // Box pixel (u, v) is frame pixel (u + x0, v + y0): M (u + x0, v + y0, 1) = M (u, v, 1) + M's linear part
        // times (x0, y0). On the host: a render's matrices are there (warp_affine inverts host matrices without
        // waiting for the GPU); matrices on a GPU are read back, a wait.
        m = matrices.to(torch::kCPU, torch::kDouble).clone();
        const auto linear = m.narrow(2, 0, 2);
        const auto offset = torch::tensor({static_cast<double>(x0), static_cast<double>(y0)}, torch::kDouble);
        m.select(2, 2).add_(torch::matmul(linear, offset));
    }
    auto crop = warp_affine(img, m, geometry.crop_h, geometry.crop_w, 127.0);
    if (!quantize) return resize_lanczos4(crop, geometry.resolution, geometry.resolution);
    crop = crop.clamp(0, 255).floor();  // astype(np.uint8) truncates
    return resize_lanczos4_u8(crop, geometry.resolution, geometry.resolution);  // cv2.resize on uint8
}

}  // namespace

std::array<int64_t, 4> source_box(const torch::Tensor& matrices, const CropGeometry& geometry, int64_t height,
                                  int64_t width) {
    const std::array<int64_t, 4> whole{0, 0, width, height};
    std::vector<Affine> inverses;
    for (const auto& m : affines_of(matrices)) {
        const bool finite = std::all_of(m.begin(), m.end(), [](double v) { return std::isfinite(v); });
        if (!finite || std::abs(m[0] * m[4] - m[1] * m[3]) <= 1e-12) return whole;  // warp_affine refuses it
        inverses.push_back(invert_affine(m));
    }
    if (inverses.empty()) return whole;
    const auto [lo_x, lo_y, hi_x, hi_y] =
        crop_rect_in_frame(inverses, 0.0, 0.0, double(geometry.crop_w - 1), double(geometry.crop_h - 1));
    const auto cut = [](double v, int64_t size) {
        return std::clamp<int64_t>(static_cast<int64_t>(std::max(-1e9, std::min(1e9, v))), 0, size);
    };
    const int64_t x0 = cut(std::floor(lo_x) - 2, width), x1 = cut(std::floor(hi_x) + 3, width);
    const int64_t y0 = cut(std::floor(lo_y) - 2, height), y1 = cut(std::floor(hi_y) + 3, height);
    if (x1 - x0 < 2 || y1 - y0 < 2) return whole;
    return {x0, y0, x1, y1};
}

torch::Tensor align_faces(const torch::Tensor& frames, const torch::Tensor& matrices, const CropGeometry& geometry,
                          bool quantize, int64_t slice_bytes, const std::vector<int64_t>& box_runs) {
    LSYNC_CHECK(frames.dim() == 4 && frames.size(1) == 3, ErrorCode::Internal, "align_faces: frames must be [B,3,H,W]");
    const int64_t n = frames.size(0), height = frames.size(2), width = frames.size(3);
    // Each run (the whole batch without runs) in slices of frames whose float copy of the run's box fits the budget.
    std::vector<torch::Tensor> parts;
    const auto align_run = [&](int64_t start, int64_t len, const SourceBox& box) {
        const int64_t float_bytes_per_frame = std::max<int64_t>(1, 3 * (box[2] - box[0]) * (box[3] - box[1]) * 4);
        const int64_t step = std::max<int64_t>(1, slice_bytes / float_bytes_per_frame);
        for (int64_t i = 0; i < len; i += step) {
            const int64_t k = std::min(step, len - i);
            parts.push_back(align_frames(frames.narrow(0, start + i, k), matrices.narrow(0, start + i, k), geometry,
                                         quantize, box));
        }
    };
    if (n == 0) return align_frames(frames, matrices, geometry, quantize, SourceBox{0, 0, width, height});
    if (box_runs.empty()) {
        align_run(0, n, SourceBox{0, 0, width, height});
    } else {
        int64_t start = 0;
        for (const int64_t len : box_runs) {
            LSYNC_CHECK(len > 0 && start + len <= n, ErrorCode::Internal, "align_faces: runs must cover the frames");
            align_run(start, len, source_box(matrices.narrow(0, start, len), geometry, height, width));
            start += len;
        }
        LSYNC_CHECK(start == n, ErrorCode::Internal, "align_faces: runs must cover the frames");
    }
    return parts.size() == 1 ? parts.front() : torch::cat(parts, 0);
}

}  // namespace lsync::faces
