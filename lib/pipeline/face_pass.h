#pragma once
// The face pass of a render on its own thread: every source frame the output uses is analysed once, in order
// (FaceStage: detection, tracking, smoothing), and each frame's plan is published as soon as it is known. The
// render waits only for the plans of the chunk it packs, so the face pass overlaps the model loading and the
// diffusion instead of running before them.
//
// The thread decodes the video with its own reader and, on a GPU, runs on its own CUDA stream, so neither
// waits for the render's. Only plans (a matrix and a status per frame) are kept: memory stays flat in the
// video's length. Loops (ping-pong, loop, freeze) replay the plans, as the official code does.

#include "faces/face_options.h"
#include "faces/face_plan.h"
#include "faces/alignment.h"

#include <torch/torch.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace lsync::pipeline {

struct FacePassOptions {
    std::string video;
    double target_fps = 0;  ///< as FrameSource
    faces::FaceOptions face;
    std::string face_models = "face-api";
    std::string face_model_dir;
    faces::CropGeometry geometry;
    torch::Device device{torch::kCPU};
    int64_t max_frames = 0;  ///< analyse at most this many source frames (the output's length)
    /// With `hold`: before source frame `hold_from` the pass publishes what it has and waits while `hold()` is
    /// true (polled on its thread every 2 ms; once false it never waits again). GPU renders with
    /// LSYNC_FACE_PASS_HOLD=1 hold it during the first group: first uses of CUDA state (lazy kernel loading,
    /// cuDNN's plans) are serialised in the driver, and another thread's copies slow them 1.45-2.5x
    /// (docs/performance-notes.md section 35). The hold also ends when wait() is asked for a frame the pass has
    /// not published, so it can delay the render but never stall it.
    int64_t hold_from = 0;
    std::function<bool()> hold;
    /// When > 0: the pass analyses at most this many frames past the highest one wait() was asked for, and
    /// waits for the render to ask for more (all() lifts the bound). Spreads the pass's GPU work over the render
    /// instead of crowding it beside the first groups (LSYNC_FACE_PASS_LEAD, a measurement switch).
    int64_t lead = 0;
};

class FacePass {
public:
    /// Starts the pass on its thread. Missing face models or an unreadable video surface at the first wait().
    explicit FacePass(FacePassOptions options);
    /// No thread: the plans of an interrupted render (the work folder's faces.json), replayed bit for bit.
    explicit FacePass(std::vector<faces::FramePlan> replay);
    ~FacePass();  // stops the thread (it checks between frames) and joins it
    FacePass(const FacePass&) = delete;
    FacePass& operator=(const FacePass&) = delete;

    /// Waits until source frame `index`'s plan is known and returns true, or returns false when the video ends
    /// before it (frames() is then final). Rethrows the pass's error (interruption, --on-missing-face fail, ...).
    bool wait(int64_t index);
    /// Source frame `index`'s plan; wait(index) must have returned true (or the pass finished past it).
    faces::FramePlan plan(int64_t index) const;
    /// Frames analysed so far; final once finished().
    int64_t frames() const;
    bool finished() const;
    /// Waits for the end of the pass; all plans, in order.
    std::vector<faces::FramePlan> all();
    /// Wall time the pass took (so far).
    double seconds() const;
    /// True when the plans came from a saved file, not from this run's pass.
    bool replayed() const { return replayed_; }
    /// Seconds the pass waited at `hold_from` (FacePassOptions::hold); final once finished().
    double held_seconds() const;

private:
    void run();
    /// Waits while options_.hold() is true, the pass is not stopped and no interrupt is asked for.
    void wait_while_held();
    /// Waits while frame `index` lies more than options_.lead frames past what the render has asked for.
    void wait_for_lead(int64_t index);

    FacePassOptions options_;
    bool replayed_ = false;
    mutable std::mutex mutex_;
    std::condition_variable changed_;
    std::deque<faces::FramePlan> plans_;
    bool finished_ = false;
    std::exception_ptr error_;
    std::atomic<bool> stop_{false};
    std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
    double seconds_ = 0;
    double held_seconds_ = 0;  ///< under mutex_
    int64_t wanted_ = -1;      ///< the highest frame wait() was asked for; under mutex_
    std::thread thread_;
};

}  // namespace lsync::pipeline
