#pragma once
// The face step of the frame loop: for consecutive decoded frames, asks the planner what each one needs (see
// FaceTracker::Request), runs the detector or the landmark net accordingly and returns one FramePlan per frame.
// When every frame needs the detector (the default --detect-every 1, no --face-box, no --face-track), a whole
// batch goes through the detector in one call; otherwise frames go one at a time, because each request
// depends on the previous frame's result.
//
// Shots. While faces come from the detector, each frame is compared with the one before (grey thumbnails); a
// change as large as a hard cut is a scene cut: the --face rule chooses again and the smoothing restarts
// (identity is kept within a shot). Tracking between detections runs the landmark net alone, which has no
// "no face" answer (it puts 68 points into any region, a black one included), so a tracked region whose
// contrast has gone (a fade to black or white) runs the detector instead.

#include "faces/detect.h"
#include "faces/face_plan.h"

#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <vector>

namespace lsync::faces {

struct FrameFaces {
    FramePlan plan;
    FaceTracker::Request::Kind ran = FaceTracker::Request::Kind::Detect;  ///< what ran on this frame
    /// What it produced: every detected face; or, when the face came from the landmark net or the track file,
    /// the followed face (region moved with its landmarks, score of its last detection).
    std::vector<Face> seen;
    int chosen = -1;         ///< index of the followed face in `seen`, -1 when the frame passes through
    bool scene_cut = false;  ///< this frame starts a new shot
};

class FaceStage {
public:
    FaceStage(FaceDetector* detector, const FaceOptions& options, const CropGeometry& geometry, int64_t frame_w,
              int64_t frame_h);
    /// The detector is opened on first need only (a --face-track file with landmarks for every frame needs
    /// none). `open` may throw (missing model files); it is called at most once.
    FaceStage(std::function<FaceDetector*()> open, const FaceOptions& options, const CropGeometry& geometry,
              int64_t frame_w, int64_t frame_h);

    /// The next frames in order: [B, H, W, 3] uint8, on any device.
    std::vector<FrameFaces> process(const torch::Tensor& frames);

    const FaceCounts& counts() const { return planner_.counts(); }
    /// Frames planned so far: process() plans frame by frame, so after an error (an out-of-memory one, say) this
    /// says whether any frame of the failed batch was planned (--detect-every 1 plans none until its batched
    /// detection returns).
    int64_t frames_planned() const { return frames_planned_; }
    /// Frames that ran the detector so far (the rest ran the landmark net alone, or nothing).
    int64_t detector_frames() const { return detector_frames_; }
    /// Scene cuts seen so far.
    int64_t scene_cuts() const { return scene_cuts_; }

    /// Mean absolute difference (0-255 grey levels) of consecutive 32x32 thumbnails above which a frame starts
    /// a new shot. A fast pan (16 px per frame at 960 px wide) measures 8; a cut to black from a dark photo 37.
    static constexpr float kSceneCutLevels = 20.f;
    /// Grey-level standard deviation of a tracked region below which it cannot hold a face (a face, even dim,
    /// has eyes, brows and a mouth; a black or white frame has none).
    static constexpr float kMinRegionContrast = 4.f;

private:
    FaceDetector& detector();
    std::vector<Face> run(const FaceTracker::Request& request, const torch::Tensor& frame);
    bool cut_before(const torch::Tensor& thumb);  ///< compares with the previous frame and remembers `thumb`
    void finish(FrameFaces& f);                   ///< fills `chosen` (and `seen` for non-detected faces)

    std::function<FaceDetector*()> open_;
    FaceDetector* detector_ = nullptr;
    FacePlanner planner_;
    bool tracking_;       ///< faces come from the detector (no --face-box, no --face-track)
    bool always_detect_;  ///< ... on every frame (--detect-every 1)
    int64_t detector_frames_ = 0;
    int64_t frames_planned_ = 0;
    int64_t scene_cuts_ = 0;
    torch::Tensor previous_thumb_;  ///< [32, 32] float CPU of the last frame processed
};

}  // namespace lsync::faces
