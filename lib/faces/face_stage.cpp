#include "faces/face_stage.h"

#include "core/error.h"

namespace lsync::faces {

using Kind = FaceTracker::Request::Kind;

namespace {

// [B, H, W, 3] uint8 -> [B, 32, 32] float grey thumbnails on the CPU (area averages: noise and small motion
// mostly cancel out).
torch::Tensor thumbnails(const torch::Tensor& frames) {
    const auto grey = frames.to(torch::kFloat).mean(3, /*keepdim=*/false).unsqueeze(1);
    return torch::adaptive_avg_pool2d(grey, {32, 32}).squeeze(1).cpu();
}

}  // namespace

FaceStage::FaceStage(FaceDetector* detector, const FaceOptions& options, const CropGeometry& geometry,
                     int64_t frame_w, int64_t frame_h)
    : detector_(detector),
      planner_(options, geometry, frame_w, frame_h),
      tracking_(!options.fixed_box && options.track_file.empty()),
      always_detect_(tracking_ && options.detect_every <= 1) {}

std::vector<Face> FaceStage::run(const FaceTracker::Request& request, const torch::Tensor& frame) {
    if (request.kind == Kind::Given || request.kind == Kind::None) return {};
    LSYNC_CHECK(detector_ != nullptr, ErrorCode::Usage,
                "frame " + std::to_string(planner_.counts().aligned + planner_.counts().passed_total()) +
                    " needs the face models (the --face-track file gives no landmarks for it)");
    if (request.kind == Kind::Detect) {
        ++detector_frames_;
        return detector_->detect(frame);
    }
    // Landmarks inside a region (--face-box, a track file's box, or tracking between detections).
    std::vector<Face> faces{Face{request.region, 1.f, {}, ""}};
    detector_->add_landmarks(frame, faces);
    if (faces.front().landmarks.empty()) faces.clear();
    return faces;
}

std::vector<FrameFaces> FaceStage::process(const torch::Tensor& frames) {
    LSYNC_CHECK(frames.dim() == 4 && frames.size(3) == 3 && frames.scalar_type() == torch::kUInt8, ErrorCode::Internal,
                "FaceStage::process wants RGB uint8 frames [B, H, W, 3]");
    const int64_t n = frames.size(0);
    std::vector<FrameFaces> out(static_cast<size_t>(n));
    if (always_detect_ && detector_ != nullptr) {
        // Every request is Detect whatever the previous frame gave, so one batched call serves them all.
        auto found = detector_->detect_batch(frames);
        for (int64_t i = 0; i < n; ++i) {
            auto& f = out[static_cast<size_t>(i)];
            LSYNC_CHECK(planner_.request().kind == Kind::Detect, ErrorCode::Internal, "FaceStage: expected a detection");
            f.ran = Kind::Detect;
            f.seen = std::move(found[static_cast<size_t>(i)]);
            f.plan = planner_.add(f.seen);
        }
        detector_frames_ += n;
        return out;
    }
    const auto thumbs = thumbnails(frames);
    for (int64_t i = 0; i < n; ++i) {
        auto& f = out[static_cast<size_t>(i)];
        auto request = planner_.request();
        const auto thumb = thumbs[i];
        if (request.kind == Kind::Landmarks && tracking_ && previous_thumb_.defined() &&
            (thumb - previous_thumb_).abs().mean().item<float>() > kSceneChangeLevels) {
            planner_.force_detection();
            request = planner_.request();
            ++scene_changes_;
        }
        previous_thumb_ = thumb;
        f.ran = request.kind;
        f.seen = run(request, frames[i]);
        f.plan = planner_.add(f.seen);
        // Report the tracked face (region moved with its landmarks, score of its last detection) rather than
        // the region the landmark net was given.
        if (request.kind == Kind::Landmarks && f.plan.align) f.seen = {f.plan.face};
    }
    return out;
}

}  // namespace lsync::faces
