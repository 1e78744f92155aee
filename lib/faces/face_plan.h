#pragma once
// The per-frame face plan the render loop consumes: for every frame, either "align with this matrix" or
// "pass the original frame through", plus counts of why frames were passed through. FacePlanner ties the
// tracker (which face), the smoother (which matrix) and the missing-face policy together.

#include "faces/alignment.h"
#include "faces/face_options.h"
#include "faces/smoothing.h"
#include "faces/tracker.h"

#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>

namespace lsync::faces {

struct FramePlan {
    int64_t frame = 0;
    bool align = false;                    ///< false: the frame goes to the output untouched
    FaceStatus status = FaceStatus::NoFace;
    Face face;                             ///< the followed face (when align)
    AlignmentAnchors anchors;              ///< the (smoothed) anchors the matrix was fitted to
    Affine matrix{};                       ///< frame -> crop, pixel-index convention (alignment.h)
};

struct FaceCounts {
    int64_t aligned = 0;
    int64_t passed[7] = {};  ///< indexed by FaceStatus (Found stays 0)
    int64_t passed_total() const;
    std::string summary() const;  ///< "120 aligned, 3 passed through (no face 2, face too small 1)"
};

class FacePlanner {
public:
    FacePlanner(const FaceOptions& options, const CropGeometry& geometry, int64_t frame_w, int64_t frame_h);

    /// What to run on the next frame (see FaceTracker::Request).
    FaceTracker::Request request() const { return tracker_.request(); }
    /// See FaceTracker::force_detection.
    void force_detection() { tracker_.force_detection(); }
    /// See FaceTracker::scene_cut; the smoothing also starts afresh (no dragging across the cut).
    void scene_cut() {
        tracker_.scene_cut();
        in_gap_ = true;
    }

    /// Plans the next frame from the faces the request produced. With --on-missing-face fail, a frame without a
    /// usable face throws Error(Usage) naming the frame and the reason.
    FramePlan add(const std::vector<Face>& faces);

    const FaceCounts& counts() const { return counts_; }
    const CropGeometry& geometry() const { return geometry_; }

private:
    FaceOptions opt_;
    CropGeometry geometry_;
    FaceTracker tracker_;
    AlignmentSmoother smoother_;
    bool in_gap_ = false;
    FaceCounts counts_;
};

/// The matrices of the aligned frames of `plans`, as a [B, 2, 3] float32 tensor on `device` (B = number of
/// aligned plans, in order), ready for align_faces / paste_back.
torch::Tensor plan_matrices(const std::vector<FramePlan>& plans, const torch::Device& device);

}  // namespace lsync::faces
