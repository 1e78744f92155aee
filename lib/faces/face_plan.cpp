#include "faces/face_plan.h"

#include "core/error.h"

#include <sstream>

namespace lsync::faces {

int64_t FaceCounts::passed_total() const {
    int64_t n = 0;
    for (int64_t v : passed) n += v;
    return n;
}

std::string FaceCounts::summary() const {
    std::ostringstream s;
    s << aligned << " aligned, " << passed_total() << " passed through";
    if (passed_total() > 0) {
        s << " (";
        bool first = true;
        for (int i = 1; i < 7; ++i)
            if (passed[i]) {
                s << (first ? "" : ", ") << face_status_name(static_cast<FaceStatus>(i)) << " " << passed[i];
                first = false;
            }
        s << ")";
    }
    return s.str();
}

FacePlanner::FacePlanner(const FaceOptions& options, const CropGeometry& geometry, int64_t frame_w, int64_t frame_h)
    : opt_(options), geometry_(geometry), tracker_(options, frame_w, frame_h),
      smoother_(options.smooth, options.one_euro, geometry) {}

FramePlan FacePlanner::add(const std::vector<Face>& faces) {
    FramePlan plan;
    plan.frame = tracker_.frame_index();
    const FaceTracker::Result r = tracker_.update(faces);
    plan.status = r.status;
    if (r.status != FaceStatus::Found) {
        if (opt_.on_missing == MissingFacePolicy::Fail)
            throw_error(ErrorCode::Usage, "frame " + std::to_string(plan.frame) + ": " + face_status_name(r.status) +
                                              " (--on-missing-face fail); use --on-missing-face pass to keep such "
                                              "frames unchanged");
        ++counts_.passed[static_cast<int>(r.status)];
        in_gap_ = true;
        return plan;
    }
    if (in_gap_) smoother_.gap();
    in_gap_ = false;
    plan.face = *r.face;
    const auto smoothed = smoother_.next(alignment_anchors(plan.face, opt_.round_anchors));
    plan.anchors = smoothed.anchors;
    plan.matrix = smoothed.matrix;
    plan.align = true;
    ++counts_.aligned;
    return plan;
}

torch::Tensor plan_matrices(const std::vector<FramePlan>& plans, const torch::Device& device) {
    std::vector<Affine> m;
    for (const auto& p : plans)
        if (p.align) m.push_back(p.matrix);
    return affine_tensor(m, device);
}

}  // namespace lsync::faces
