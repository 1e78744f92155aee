#include "faces/detect_overlay.h"

#include <algorithm>
#include <cmath>

namespace lsync::faces {

namespace {

void fill_rect(torch::Tensor& img, int x0, int y0, int x1, int y1, const uint8_t rgb[3]) {
    const int h = static_cast<int>(img.size(0)), w = static_cast<int>(img.size(1));
    x0 = std::clamp(x0, 0, w);
    x1 = std::clamp(x1, 0, w);
    y0 = std::clamp(y0, 0, h);
    y1 = std::clamp(y1, 0, h);
    if (x0 >= x1 || y0 >= y1) return;
    auto region = img.slice(0, y0, y1).slice(1, x0, x1);
    for (int c = 0; c < 3; ++c) region.select(2, c).fill_(rgb[c]);
}

}  // namespace

int largest_face(const std::vector<Face>& faces) {
    int best = -1;
    for (size_t i = 0; i < faces.size(); ++i)
        if (best < 0 || faces[i].box.area() > faces[static_cast<size_t>(best)].box.area()) best = static_cast<int>(i);
    return best;
}

torch::Tensor draw_faces(const torch::Tensor& frame, const std::vector<Face>& faces, int chosen) {
    torch::Tensor img = frame.to(torch::kCPU).clone();
    const int t = std::max(2, static_cast<int>(std::max(img.size(0), img.size(1)) / 500));
    const uint8_t green[3] = {0, 255, 0}, yellow[3] = {255, 220, 0}, red[3] = {255, 0, 0};
    for (size_t i = 0; i < faces.size(); ++i) {
        const Box& b = faces[i].box;
        const uint8_t* col = static_cast<int>(i) == chosen ? green : yellow;
        const int x0 = static_cast<int>(std::lround(b.x)), y0 = static_cast<int>(std::lround(b.y));
        const int x1 = static_cast<int>(std::lround(b.x + b.w)), y1 = static_cast<int>(std::lround(b.y + b.h));
        fill_rect(img, x0 - t, y0 - t, x1 + t, y0, col);
        fill_rect(img, x0 - t, y1, x1 + t, y1 + t, col);
        fill_rect(img, x0 - t, y0, x0, y1, col);
        fill_rect(img, x1, y0, x1 + t, y1, col);
        for (const Point& p : faces[i].landmarks) {
            const int px = static_cast<int>(std::lround(p.x)), py = static_cast<int>(std::lround(p.y));
            fill_rect(img, px - t, py - t, px + t + 1, py + t + 1, red);
        }
    }
    return img;
}

}  // namespace lsync::faces
