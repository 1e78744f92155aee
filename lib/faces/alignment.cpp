#include "faces/alignment.h"

#include "core/error.h"

#include <algorithm>
#include <cmath>
#include <initializer_list>
#include <string>

namespace lsync::faces {

CropGeometry CropGeometry::for_resolution(int resolution) {
    LSYNC_CHECK(resolution >= 16 && resolution <= 4096 && resolution % 8 == 0, ErrorCode::Usage,
                "face crop resolution must be a multiple of 8 in [16, 4096], got " + std::to_string(resolution));
    CropGeometry g;
    g.resolution = resolution;
    // Same expressions as AlignRestore.__init__, so int() truncates exactly as Python does:
    // 210 x 280 at 256, 420 x 560 at 512.
    g.ratio = resolution / 256.0 * 2.8;
    g.crop_w = static_cast<int>(75 * g.ratio);
    g.crop_h = static_cast<int>(100 * g.ratio);
    const double t[3][2] = {{19 - 2, 30 - 10}, {56 + 2, 30 - 10}, {37.5, 45 - 5}};
    for (int i = 0; i < 3; ++i) g.template_points[i] = {t[i][0] * g.ratio, t[i][1] * g.ratio};
    return g;
}

namespace {

struct Scheme {
    std::size_t count;
    std::vector<int> left_brow, right_brow, nose;
};

const Scheme& scheme_for(const Face& face) {
    // InsightFace 2d106det: the official indices (image_processor.py::affine_transform).
    static const Scheme k106{106, {43, 48, 49, 50, 51}, {101, 102, 103, 104, 105}, {74, 77, 83, 86}};
    // iBUG 300-W 68: 17-21 is the brow on the image left (the subject's right), 22-26 the image-right brow,
    // 27-30 the nose bridge and 31-35 the nostrils; the same semantic points as the official three means.
    static const Scheme k68{68, {17, 18, 19, 20, 21}, {22, 23, 24, 25, 26}, {27, 28, 29, 30, 31, 32, 33, 34, 35}};
    if (face.scheme == "insightface106") return k106;
    if (face.scheme == "ibug68") return k68;
    throw_error(ErrorCode::Usage, "face landmarks have unknown scheme '" + face.scheme +
                                      "' (expected ibug68 or insightface106)");
}

Point mean_of(const std::vector<Point>& lmk, const std::vector<int>& idx, bool round_official) {
    double sx = 0, sy = 0;
    for (int i : idx) {
        double x = lmk[i].x, y = lmk[i].y;
        // Rounding happens in pixel-index coordinates (see alignment.h); nearbyint = half to even, like numpy.
        if (round_official) x = std::nearbyint(x - 0.5), y = std::nearbyint(y - 0.5);
        sx += x, sy += y;
    }
    double mx = sx / idx.size(), my = sy / idx.size();
    if (round_official) mx = std::nearbyint(mx) + 0.5, my = std::nearbyint(my) + 0.5;
    return {static_cast<float>(mx), static_cast<float>(my)};
}

}  // namespace

AlignmentAnchors alignment_anchors(const Face& face, bool round_official) {
    LSYNC_CHECK(!face.landmarks.empty(), ErrorCode::Usage, "face has no landmarks to align on");
    const Scheme& s = scheme_for(face);
    LSYNC_CHECK(face.landmarks.size() == s.count, ErrorCode::Usage,
                "face landmarks: scheme " + face.scheme + " needs " + std::to_string(s.count) + " points, got " +
                    std::to_string(face.landmarks.size()));
    for (const auto& p : face.landmarks)
        LSYNC_CHECK(std::isfinite(p.x) && std::isfinite(p.y), ErrorCode::Usage, "face landmarks are not finite");
    return {mean_of(face.landmarks, s.left_brow, round_official), mean_of(face.landmarks, s.right_brow, round_official),
            mean_of(face.landmarks, s.nose, round_official)};
}

SimilarityFit similarity_to_template(const AlignmentAnchors& anchors, const CropGeometry& geometry) {
    // Source points in pixel-index coordinates (alignment.h): corner-origin anchors minus half a pixel.
    const Point pts[3] = {anchors.left_brow, anchors.right_brow, anchors.nose};
    double src[3][2], dst[3][2];
    for (int i = 0; i < 3; ++i) {
        src[i][0] = double(pts[i].x) - 0.5, src[i][1] = double(pts[i].y) - 0.5;
        dst[i][0] = geometry.template_points[i][0], dst[i][1] = geometry.template_points[i][1];
    }
    double cs[2] = {0, 0}, cd[2] = {0, 0};
    for (int i = 0; i < 3; ++i)
        for (int k = 0; k < 2; ++k) cs[k] += src[i][k] / 3, cd[k] += dst[i][k] / 3;
    // Unbiased std over the six centred coordinates (their mean is zero, so torch.std's own centring is a no-op).
    double ss = 0, sd = 0;
    for (int i = 0; i < 3; ++i)
        for (int k = 0; k < 2; ++k) {
            src[i][k] -= cs[k], dst[i][k] -= cd[k];
            ss += src[i][k] * src[i][k], sd += dst[i][k] * dst[i][k];
        }
    ss = std::sqrt(ss / 5), sd = std::sqrt(sd / 5);
    LSYNC_CHECK(ss > 1e-6, ErrorCode::Usage, "face alignment: the three anchor points coincide");
    double c[2][2] = {{0, 0}, {0, 0}};  // C = S^T D with S, D the normalised point sets
    for (int i = 0; i < 3; ++i) {
        for (int k = 0; k < 2; ++k) src[i][k] /= ss, dst[i][k] /= sd;
        for (int j = 0; j < 2; ++j)
            for (int k = 0; k < 2; ++k) c[j][k] += src[i][j] * dst[i][k];
    }
    const double theta = std::atan2(c[0][1] - c[1][0], c[0][0] + c[1][1]);
    const double scale = sd / ss, cos_t = std::cos(theta) * scale, sin_t = std::sin(theta) * scale;
    SimilarityFit fit;
    fit.matrix = {cos_t, -sin_t, cd[0] - (cos_t * cs[0] - sin_t * cs[1]),
                  sin_t, cos_t,  cd[1] - (sin_t * cs[0] + cos_t * cs[1])};
    fit.nose_bias = {static_cast<float>(dst[2][0] - src[2][0]), static_cast<float>(dst[2][1] - src[2][1])};
    return fit;
}

Affine invert_affine(const Affine& m) {
    const double det = m[0] * m[4] - m[1] * m[3];
    LSYNC_CHECK(std::fabs(det) > 1e-12, ErrorCode::Internal, "affine matrix is not invertible");
    const double a = m[4] / det, b = -m[1] / det, d = -m[3] / det, e = m[0] / det;
    return {a, b, -(a * m[2] + b * m[5]), d, e, -(d * m[2] + e * m[5])};
}

std::array<double, 2> apply_affine(const Affine& m, double x, double y) {
    return {m[0] * x + m[1] * y + m[2], m[3] * x + m[4] * y + m[5]};
}

torch::Tensor affine_tensor(const std::vector<Affine>& matrices, const torch::Device& device) {
    auto t = torch::empty({static_cast<int64_t>(matrices.size()), 2, 3}, torch::kDouble);
    auto a = t.accessor<double, 3>();
    for (size_t b = 0; b < matrices.size(); ++b)
        for (int k = 0; k < 6; ++k) a[b][k / 3][k % 3] = matrices[b][k];
    return t.to(torch::kFloat).to(device);
}

std::vector<Affine> affines_of(const torch::Tensor& matrices) {
    LSYNC_CHECK(matrices.dim() == 3 && matrices.size(1) == 2 && matrices.size(2) == 3, ErrorCode::Internal,
                "affine matrices must be [B,2,3]");
    const auto host = matrices.to(torch::kCPU, torch::kDouble).contiguous();
    const auto a = host.accessor<double, 3>();
    std::vector<Affine> out(static_cast<size_t>(host.size(0)));
    for (size_t b = 0; b < out.size(); ++b)
        for (int k = 0; k < 6; ++k) out[b][k] = a[static_cast<int64_t>(b)][k / 3][k % 3];
    return out;
}

std::array<double, 4> crop_rect_in_frame(const std::vector<Affine>& inverses, double x0, double y0, double x1,
                                         double y1) {
    double lo_x = 1e30, lo_y = 1e30, hi_x = -1e30, hi_y = -1e30;
    for (const auto& inv : inverses)
        for (const double cx : {x0, x1})
            for (const double cy : {y0, y1}) {
                const auto p = apply_affine(inv, cx, cy);
                lo_x = std::min(lo_x, p[0]), hi_x = std::max(hi_x, p[0]);
                lo_y = std::min(lo_y, p[1]), hi_y = std::max(hi_y, p[1]);
            }
    return {lo_x, lo_y, hi_x, hi_y};
}

}  // namespace lsync::faces
