#pragma once
// The face step of the frame loop: for consecutive decoded frames, asks the planner what each one needs (see
// FaceTracker::Request), runs the detector or the landmark net accordingly and returns one FramePlan per frame.
// When every frame needs the detector (the default --detect-every 1, no --face-box, no --face-track), a whole
// batch goes through the detector in one call; otherwise frames go one at a time, because each request
// depends on the previous frame's result.
//
// Tracking between detections runs the landmark net alone, and that net has no "no face" answer: it puts 68
// points into any region. So every frame is compared with the one before (a 32x32 grey thumbnail), and a frame
// that changed as much as a scene cut or a fade does runs the detector instead.

#include "faces/detect.h"
#include "faces/face_plan.h"

#include <torch/torch.h>

#include <cstdint>
#include <vector>

namespace lsync::faces {

struct FrameFaces {
    FramePlan plan;
    FaceTracker::Request::Kind ran = FaceTracker::Request::Kind::Detect;  ///< what ran on this frame
    std::vector<Face> seen;  ///< what it produced (every detected face, or the landmark-net result)
};

class FaceStage {
public:
    /// `detector` may be null only with a --face-track file that gives landmarks for every frame it lists;
    /// a frame that then needs a network fails with Error(Usage).
    FaceStage(FaceDetector* detector, const FaceOptions& options, const CropGeometry& geometry, int64_t frame_w,
              int64_t frame_h);

    /// The next frames in order: [B, H, W, 3] uint8, on any device.
    std::vector<FrameFaces> process(const torch::Tensor& frames);

    const FaceCounts& counts() const { return planner_.counts(); }
    /// Frames that ran the detector so far (the rest ran the landmark net alone, or nothing).
    int64_t detector_frames() const { return detector_frames_; }
    /// Frames where a scene change turned a tracking step into a detection.
    int64_t scene_changes() const { return scene_changes_; }

    /// Mean absolute difference (0-255 grey levels) of consecutive thumbnails above which a frame counts as
    /// a scene change. Pans and head turns stay far below (docs/faces.md).
    static constexpr float kSceneChangeLevels = 20.f;

private:
    std::vector<Face> run(const FaceTracker::Request& request, const torch::Tensor& frame);

    FaceDetector* detector_;
    FacePlanner planner_;
    bool tracking_;       ///< faces come from the detector (no --face-box, no --face-track)
    bool always_detect_;  ///< ... on every frame (--detect-every 1)
    int64_t detector_frames_ = 0;
    int64_t scene_changes_ = 0;
    torch::Tensor previous_thumb_;  ///< [32, 32] float CPU of the last frame processed
};

}  // namespace lsync::faces
