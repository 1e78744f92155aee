#pragma once
// LatentSync's face alignment geometry (reference section 5.4): three anchor points, a template scaled by
// the resolution, and the similarity transform that maps the anchors onto the template.
//
// Coordinate conventions (the one thing easiest to get wrong by half a pixel):
// - Face / AlignmentAnchors use face_types.h's convention: origin at the top-left CORNER of the top-left
//   pixel, so the centre of pixel (i, j) is (i + 0.5, j + 0.5).
// - Every affine matrix (Affine, and the [B, 2, 3] tensors of warp.h) uses OpenCV's pixel-index convention,
//   the one of cv2.warpAffine and of kornia.warp_affine (align_corners=True): the centre of pixel (i, j) is
//   (i, j). The official code computes its matrix from InsightFace landmarks, which are in that convention.
// So the transform is fitted to (anchor - 0.5). A landmark source that produces pixel-index coordinates
// (InsightFace's own output) must add 0.5 when it fills a Face, and then the matrices here are exactly the
// official ones.

#include "faces/face_types.h"

#include <torch/torch.h>

#include <array>
#include <vector>

namespace lsync::faces {

/// 2x3 row-major affine [a b c; d e f]: x' = a x + b y + c, y' = d x + e y + f.
using Affine = std::array<double, 6>;

/// The aligned crop for one model resolution R (256 for LatentSync 1.5, 512 for 1.6).
struct CropGeometry {
    int resolution = 256;  ///< the square crop the model sees, R x R
    int crop_w = 210;      ///< the 3:4 warp target before the anisotropic resize to R x R
    int crop_h = 280;
    double ratio = 2.8;    ///< 2.8 * R / 256
    /// Template positions (pixel-index coordinates of the crop) of left brow, right brow, nose.
    std::array<std::array<double, 2>, 3> template_points{};

    static CropGeometry for_resolution(int resolution);
};

/// The three anchors of a face with landmarks: image-left eyebrow mean, image-right eyebrow mean, nose mean.
/// insightface106: lmk[43,48,49,50,51], lmk[101..105], lmk[74,77,83,86] (the official indices);
/// ibug68: the same semantic points, brows 17-21 and 22-26, nose 27-35 (bridge and nostrils).
/// With `round_official`, each landmark is first rounded to a whole pixel and each mean is rounded again
/// (half to even, as numpy's round), both in pixel-index coordinates, exactly as the official code does.
/// Throws Error(Usage) for a face without landmarks or with a landmark count that does not fit its scheme.
AlignmentAnchors alignment_anchors(const Face& face, bool round_official = true);

/// Result of fitting the anchors to the template.
struct SimilarityFit {
    Affine matrix{};      ///< frame pixel-index coordinates -> crop pixel-index coordinates, no bias term
    Point nose_bias;      ///< dst_n[2] - src_n[2]: the official smoothing term (normalised units)
};

/// The official `transformation_from_points(src = anchors, dst = template)`:
///   c_s, c_d = means of the source / template points (3 x 2 each)
///   s_s, s_d = UNBIASED standard deviation (N - 1 = 5) over all six centred coordinates
///   S = (src - c_s) / s_s, D = (dst - c_d) / s_d
///   SVD of S^T D = U Sigma V^T;  R = V U^T;  if det R < 0: negate V's last column, R = V U^T
///   M = [ (s_d / s_s) R  |  c_d - (s_d / s_s) R c_s ]
/// For 2 x 2 the SVD solution is the rotation by atan2(C01 - C10, C00 + C11) of C = S^T D (the rotation
/// maximising trace(R^T C^T); the reflection case of the SVD recipe lands on the same proper rotation), which
/// is what is computed here, in double precision. Throws Error(Usage) for coincident anchors.
SimilarityFit similarity_to_template(const AlignmentAnchors& anchors, const CropGeometry& geometry);

/// Inverse of an invertible 2x3 affine (crop -> frame for an alignment matrix).
Affine invert_affine(const Affine& m);

/// Applies m to a point (pixel-index coordinates in, pixel-index coordinates out).
std::array<double, 2> apply_affine(const Affine& m, double x, double y);

/// Stacks matrices into a [B, 2, 3] float32 tensor on `device`.
torch::Tensor affine_tensor(const std::vector<Affine>& matrices, const torch::Device& device);

/// The matrices of a [B, 2, 3] tensor of any floating dtype, read on the host (a wait for one on a GPU).
std::vector<Affine> affines_of(const torch::Tensor& matrices);

/// {lo_x, lo_y, hi_x, hi_y}: the bounding box, in frame pixel-index coordinates, of the crop rectangle
/// [x0, x1] x [y0, y1] mapped through each of `inverses` (crop -> frame); an affine map's extremes over a rectangle
/// lie at its corners. No matrices: {1e30, 1e30, -1e30, -1e30}.
std::array<double, 4> crop_rect_in_frame(const std::vector<Affine>& inverses, double x0, double y0, double x1,
                                         double y1);

}  // namespace lsync::faces
