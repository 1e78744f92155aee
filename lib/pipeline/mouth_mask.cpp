#include "pipeline/mouth_mask.h"

#include "faces/warp.h"

#include "core/error.h"
#include "media/video_reader.h"

#include <cmath>
#include <filesystem>

namespace lsync::pipeline {

// Shape of the official mask, measured on the 256x256 file (docs/models.md): two cheek bands beside the nose
// (rows 95-127), then the jaw: a disc of radius 128.5 centred at (128.5, 115) clipped to 118.5 px either side
// of x = 128.5, down to row 242. Against the official file this gives IoU 0.9916 at 256 (tested).
namespace shape {
constexpr double kCheekTop = 95, kJawTop = 128, kJawBottom = 243;  // rows [top, bottom)
constexpr double kLeftBand0 = 9, kLeftBand1 = 78, kRightBand0 = 178, kRightBand1 = 247;
constexpr double kCentreX = 128.5, kCentreY = 115, kRadius = 128.5, kHalfWidth = 118.5;
}  // namespace shape

static bool regenerated(double x, double y) {  // (x, y) in the 256-pixel frame, pixel centres at +0.5
    using namespace shape;
    if (y >= kCheekTop && y < kJawTop) return (x >= kLeftBand0 && x < kLeftBand1) || (x >= kRightBand0 && x < kRightBand1);
    if (y >= kJawTop && y < kJawBottom) {
        const double dy = y - kCentreY, s = kRadius * kRadius - dy * dy;
        return s > 0 && std::fabs(x - kCentreX) <= std::min(kHalfWidth, std::sqrt(s));
    }
    return false;
}

torch::Tensor procedural_mouth_mask(int resolution) {
    LSYNC_CHECK(resolution > 0, ErrorCode::Usage, "mask resolution must be positive");
    auto mask = torch::ones({resolution, resolution}, torch::kFloat);
    auto acc = mask.accessor<float, 2>();
    const double scale = 256.0 / resolution;
    for (int r = 0; r < resolution; ++r)
        for (int c = 0; c < resolution; ++c)
            if (regenerated((c + 0.5) * scale, (r + 0.5) * scale)) acc[r][c] = 0.f;
    return mask;
}

torch::Tensor load_mouth_mask_image(const std::string& path, int resolution) {
    media::VideoReader reader(path);
    auto frame = reader.next();
    LSYNC_CHECK(frame.has_value(), ErrorCode::Weights, "mask image has no picture: " + path);
    auto m = frame->rgb.select(2, 0).to(torch::kFloat);  // [H, W], 0..255
    if (m.size(0) != resolution || m.size(1) != resolution) {
        // As the official preprocessing: cv2.resize(INTER_LANCZOS4) of the 8-bit image, which rounds and
        // saturates to 0..255 (so the ringing at the mask's edges stays inside [0, 1]).
        m = faces::resize_lanczos4_u8(m.view({1, 1, m.size(0), m.size(1)}), resolution, resolution)
                .view({resolution, resolution});
    }
    return m.div(255.0).contiguous();
}

torch::Tensor mouth_mask(const std::string& model_dir, int resolution) {
    const auto file = std::filesystem::path(model_dir) / "mask.png";
    std::error_code ec;
    if (std::filesystem::is_regular_file(file, ec)) return load_mouth_mask_image(file.string(), resolution);
    return procedural_mouth_mask(resolution);
}

double mask_iou(const torch::Tensor& a, const torch::Tensor& b) {
    LSYNC_CHECK(a.sizes() == b.sizes(), ErrorCode::Internal, "mask_iou: sizes differ");
    auto ra = a < 0.5, rb = b < 0.5;
    const double inter = (ra & rb).sum().item<double>();
    const double uni = (ra | rb).sum().item<double>();
    return uni > 0 ? inter / uni : 1.0;
}

}  // namespace lsync::pipeline
