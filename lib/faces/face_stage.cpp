#include "faces/face_stage.h"

#include "core/error.h"

#include <algorithm>

namespace lsync::faces {

using Kind = FaceTracker::Request::Kind;

namespace {

// Every `step`-th pixel of [..., H, W, 3] uint8 in grey, float, on the CPU: the statistics below need a few
// thousand samples, not the 2 million pixels of a full-HD frame.
torch::Tensor grey_samples(const torch::Tensor& frames, int64_t step) {
    const auto sub = frames.slice(-3, 0, frames.size(-3), step).slice(-2, 0, frames.size(-2), step);
    return sub.to(torch::kFloat).mean(-1).cpu();
}

// [B, H, W, 3] uint8 -> [B, 32, 32] grey thumbnails (area averages of a sub-sampled frame).
torch::Tensor thumbnails(const torch::Tensor& frames) {
    const int64_t step = std::max<int64_t>(1, std::min(frames.size(1), frames.size(2)) / 128);
    return torch::adaptive_avg_pool2d(grey_samples(frames, step).unsqueeze(1), {32, 32}).squeeze(1);
}

// Grey-level standard deviation inside `region` of one frame [H, W, 3] (0 when the region is off the frame).
float region_contrast(const torch::Tensor& frame, const Box& region) {
    const int64_t h = frame.size(0), w = frame.size(1);
    const int64_t x0 = std::clamp<int64_t>(static_cast<int64_t>(region.x), 0, w);
    const int64_t y0 = std::clamp<int64_t>(static_cast<int64_t>(region.y), 0, h);
    const int64_t x1 = std::clamp<int64_t>(static_cast<int64_t>(region.x + region.w), 0, w);
    const int64_t y1 = std::clamp<int64_t>(static_cast<int64_t>(region.y + region.h), 0, h);
    if (x1 - x0 < 2 || y1 - y0 < 2) return 0.f;
    const int64_t step = std::max<int64_t>(1, std::min(x1 - x0, y1 - y0) / 48);
    return grey_samples(frame.slice(0, y0, y1).slice(1, x0, x1), step).std().item<float>();
}

}  // namespace

FaceStage::FaceStage(FaceDetector* detector, const FaceOptions& options, const CropGeometry& geometry,
                     int64_t frame_w, int64_t frame_h)
    : FaceStage(std::function<FaceDetector*()>([detector] { return detector; }), options, geometry, frame_w,
                frame_h) {}

FaceStage::FaceStage(std::function<FaceDetector*()> open, const FaceOptions& options, const CropGeometry& geometry,
                     int64_t frame_w, int64_t frame_h)
    : open_(std::move(open)),
      planner_(options, geometry, frame_w, frame_h),
      tracking_(!options.fixed_box && options.track_file.empty()),
      always_detect_(tracking_ && options.detect_every <= 1) {}

FaceDetector& FaceStage::detector() {
    if (!detector_ && open_) {
        detector_ = open_();
        open_ = nullptr;
    }
    LSYNC_CHECK(detector_ != nullptr, ErrorCode::Usage,
                "frame " + std::to_string(planner_.counts().aligned + planner_.counts().passed_total()) +
                    " needs the face models (the --face-track file gives no landmarks for it)");
    return *detector_;
}

std::vector<Face> FaceStage::run(const FaceTracker::Request& request, const torch::Tensor& frame) {
    if (request.kind == Kind::Given || request.kind == Kind::None) return {};
    if (request.kind == Kind::Detect) {
        auto& d = detector();
        ++detector_frames_;
        return d.detect(frame);
    }
    // Landmarks inside a region (--face-box, a track file's box, or tracking between detections).
    std::vector<Face> faces{Face{request.region, 1.f, {}, ""}};
    detector().add_landmarks(frame, faces);
    if (faces.front().landmarks.empty()) faces.clear();
    return faces;
}

bool FaceStage::cut_before(const torch::Tensor& thumb) {
    const bool cut = previous_thumb_.defined() && (thumb - previous_thumb_).abs().mean().item<float>() > kSceneCutLevels;
    previous_thumb_ = thumb;
    if (cut) {
        planner_.scene_cut();
        ++scene_cuts_;
    }
    return cut;
}

void FaceStage::finish(FrameFaces& f) {
    if (!f.plan.align) return;
    if (f.ran != Kind::Detect) {
        f.seen = {f.plan.face};
        f.chosen = 0;
        return;
    }
    // The tracker returns a copy of one of the detected faces.
    for (size_t i = 0; i < f.seen.size() && f.chosen < 0; ++i)
        if (f.seen[i].box.x == f.plan.face.box.x && f.seen[i].box.y == f.plan.face.box.y &&
            f.seen[i].box.w == f.plan.face.box.w && f.seen[i].box.h == f.plan.face.box.h)
            f.chosen = static_cast<int>(i);
}

std::vector<FrameFaces> FaceStage::process(const torch::Tensor& frames) {
    LSYNC_CHECK(frames.dim() == 4 && frames.size(3) == 3 && frames.scalar_type() == torch::kUInt8, ErrorCode::Internal,
                "FaceStage::process wants RGB uint8 frames [B, H, W, 3]");
    const int64_t n = frames.size(0);
    std::vector<FrameFaces> out(static_cast<size_t>(n));
    const auto thumbs = tracking_ ? thumbnails(frames) : torch::Tensor();
    if (always_detect_) {
        // Every request is Detect whatever the previous frame gave, so one batched call serves them all.
        auto found = detector().detect_batch(frames);
        LSYNC_CHECK(static_cast<int64_t>(found.size()) == n, ErrorCode::Internal,
                    "face detector returned " + std::to_string(found.size()) + " results for " + std::to_string(n) +
                        " frames");
        detector_frames_ += n;
        for (int64_t i = 0; i < n; ++i) {
            auto& f = out[static_cast<size_t>(i)];
            f.scene_cut = cut_before(thumbs[i]);
            LSYNC_CHECK(planner_.request().kind == Kind::Detect, ErrorCode::Internal, "FaceStage: expected a detection");
            f.ran = Kind::Detect;
            f.seen = std::move(found[static_cast<size_t>(i)]);
            f.plan = planner_.add(f.seen);
            ++frames_planned_;
            finish(f);
        }
        return out;
    }
    for (int64_t i = 0; i < n; ++i) {
        auto& f = out[static_cast<size_t>(i)];
        const auto frame = frames[i];
        if (tracking_) {
            f.scene_cut = cut_before(thumbs[i]);
            const auto r = planner_.request();
            if (r.kind == Kind::Landmarks && region_contrast(frame, r.region) < kMinRegionContrast)
                planner_.force_detection();
        }
        const auto request = planner_.request();
        f.ran = request.kind;
        f.seen = run(request, frame);
        f.plan = planner_.add(f.seen);
        ++frames_planned_;
        finish(f);
    }
    return out;
}

}  // namespace lsync::faces
