#include "pipeline/face_pass.h"

#include "core/cancel.h"
#include "core/compat.h"
#include "core/env.h"
#include "core/error.h"
#include "faces/detect.h"
#include "faces/face_stage.h"
#include "pipeline/chunk_stage_clock.h"
#include "pipeline/cuda_graph_capture.h"
#include "pipeline/frame_source.h"
#include "pipeline/lent_stream.h"

#include <ATen/ThreadLocalState.h>
#include <c10/core/DeviceGuard.h>

#if LSYNC_WITH_CUDA
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#endif

#include <algorithm>
#include <cstdio>
#include <memory>

namespace lsync::pipeline {

namespace {
constexpr int64_t kFaceBatch = 16;  // frames per face-step call
// Frames per detector call on a GPU. The pass runs beside the render's first chunks, so its working memory adds
// to theirs: the SSD's first layers hold 256 x 256 maps of 32-64 channels in fp32, about 25 MB per frame, which
// at 16 frames put the 1.5 render's GPU peak 0.1-0.7 GiB above its 3.7 GiB in chunks after the pass
// (docs/performance-notes.md section 9). Smaller calls cost the pass some speed (500 720p frames in 4.3-5.7 s
// instead of 3.9 on an H200), still far ahead of the render.
constexpr int64_t kDetectorBatchBesideRender = 4;

// LSYNC_FACE_BATCH / LSYNC_FACE_DETECTOR_BATCH override the two (measurement switches: the pass's working memory
// against its speed beside the render).
int64_t face_batch() {
    static const int64_t n = env::positive_integer("LSYNC_FACE_BATCH", 256).value_or(kFaceBatch);
    return n;
}
int64_t detector_batch_beside_render() {
    static const int64_t n = env::positive_integer("LSYNC_FACE_DETECTOR_BATCH", 64).value_or(kDetectorBatchBesideRender);
    return n;
}

// One batch of frames through the face stage on `device`. On a GPU shared with the render's workers (and capped by
// --vram-budget) the batch can meet a full allocator for a moment: an out-of-memory error before any frame of the
// batch was planned gives the allocator's unused blocks back and runs the batch again one frame at a time,
// instead of failing the render.
std::vector<faces::FrameFaces> process_frames(faces::FaceStage& stage, const torch::Tensor& frames,
                                              const torch::Device& device) {
    const int64_t before = stage.frames_planned();
    try {
        return stage.process(frames.to(device));
    } catch (const c10::OutOfMemoryError&) {
        if (!device.is_cuda() || stage.frames_planned() != before) throw;
    }
    release_cached_memory_between_captures(device);
    std::vector<faces::FrameFaces> out;
    for (int64_t i = 0; i < frames.size(0); ++i) {
        try {
            for (auto& f : stage.process(frames.slice(0, i, i + 1).to(device))) out.push_back(std::move(f));
        } catch (const c10::OutOfMemoryError&) {
            throw_error(ErrorCode::Backend, "out of GPU memory in the face pass on " + device.str() +
                                                " (a --vram-budget, if given, is too small)");
        }
    }
    return out;
}
}  // namespace

FacePass::FacePass(FacePassOptions options) : options_(std::move(options)) {
    // The pass carries its creator's LibTorch thread-local state (a running profiler's callbacks among it).
    thread_ = std::thread([this, state = at::ThreadLocalState()] {
        const at::ThreadLocalStateGuard guard(state);
        run();
    });
}

FacePass::FacePass(std::vector<faces::FramePlan> replay)
    : replayed_(true), plans_(replay.begin(), replay.end()), finished_(true) {}

FacePass::~FacePass() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
}

void FacePass::run() {
    try {
        torch::NoGradGuard no_grad;  // thread-local
        const torch::Device device = options_.device;
        const c10::DeviceGuard device_guard(device);
#if LSYNC_WITH_CUDA
        // Its own stream: the face nets run beside the diffusion on the same GPU instead of queueing behind it. A
        // lent one, the same from render to render (lent_stream.h: cuBLAS keeps a workspace per stream).
        std::optional<LentStream> lent;
        std::optional<c10::cuda::CUDAStreamGuard> stream_guard;  // destroyed first: the stream goes back unused
        if (device.is_cuda()) {
            try {
                lent.emplace(compat::indexed_device(device).index(), StreamPriority::Lowest);
                stream_guard.emplace(lent->stream());
            } catch (const std::exception&) {  // no stream made: one of LibTorch's pool, as before
                stream_guard.emplace(c10::cuda::getStreamFromPool(false, device.index()));
            }
        }
#endif
        FrameSource source(options_.video, options_.target_fps);
        const faces::FaceOptions& face = options_.face;
        std::unique_ptr<faces::FaceDetector> detector;
        auto open_detector = [&]() -> faces::FaceDetector* {
            if (detector) return detector.get();
            faces::DetectorOptions dopt;
            dopt.nms.min_confidence = face.min_score;
            dopt.max_batch = std::min(faces::default_detector_batch(device), detector_batch_beside_render());
            detector = faces::open_face_detector(faces::parse_face_models(options_.face_models),
                                                 options_.face_model_dir, device, dopt);
            return detector.get();
        };
        if (face.track_file.empty() && !face.fixed_box) open_detector();  // missing models: fail before decoding
        faces::FaceStage stage(open_detector, face, options_.geometry, source.width(), source.height());
        std::vector<torch::Tensor> batch;
        const int64_t full_batch = face_batch();
        auto flush = [&] {
            auto results = process_frames(stage, torch::stack(batch), device);
            batch.clear();
            std::lock_guard<std::mutex> lock(mutex_);
            for (auto& r : results) plans_.push_back(std::move(r.plan));
            seconds_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
            changed_.notify_all();
        };
        bool held = false;  // the hold is waited out once
        for (int64_t i = 0; i < options_.max_frames; ++i) {
            throw_if_interrupted();
            if (stop_) break;
            if (options_.hold && !held && i >= options_.hold_from) {
                held = true;
                if (!batch.empty()) flush();  // the render may be waiting for these
                wait_while_held();
                if (stop_) break;
            }
            if (options_.lead > 0 && batch.empty()) {
                wait_for_lead(i);
                if (stop_) break;
            }
            auto frame = source.get(i);
            if (!frame) break;
            batch.push_back(*frame);
            // Small batches first, so the render's first chunk does not wait for a full batch of decoding.
            if (static_cast<int64_t>(batch.size()) >= std::min<int64_t>(i < full_batch ? 4 : full_batch, full_batch)) flush();
        }
        if (!batch.empty() && !stop_) flush();
    } catch (...) {
        std::lock_guard<std::mutex> lock(mutex_);
        error_ = std::current_exception();
    }
    std::lock_guard<std::mutex> lock(mutex_);
    finished_ = true;
    seconds_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
    changed_.notify_all();
}

void FacePass::wait_while_held() {
    const auto started = std::chrono::steady_clock::now();
    // Also ends as soon as someone waits for a frame not published yet: the hold never blocks the render.
    const auto someone_waits = [this] {
        std::lock_guard<std::mutex> lock(mutex_);
        return wanted_ >= static_cast<int64_t>(plans_.size());
    };
    while (!stop_ && !someone_waits() && options_.hold()) {
        throw_if_interrupted();
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    const double held = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    if (chunk_timing_printed())  // beside the workers' group lines
        std::fprintf(stderr, "chunk timing: face pass held before frame %lld for %.3f s\n",
                     static_cast<long long>(options_.hold_from), held);
    std::lock_guard<std::mutex> lock(mutex_);
    held_seconds_ = held;
}

void FacePass::wait_for_lead(int64_t index) {
    std::unique_lock<std::mutex> lock(mutex_);
    // wait() notifies as it raises wanted_; the timeout lets the thread see stop_ and an interrupt.
    while (!stop_ && index - options_.lead > wanted_) {  // all() asks for INT64_MAX: no wanted_ + lead
        changed_.wait_for(lock, std::chrono::milliseconds(20));
        if (interrupt_requested()) {
            lock.unlock();
            throw_if_interrupted();
        }
    }
}

double FacePass::held_seconds() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return held_seconds_;
}

bool FacePass::wait(int64_t index) {
    std::unique_lock<std::mutex> lock(mutex_);
    if (index > wanted_) {
        wanted_ = index;
        changed_.notify_all();  // a pass held to its lead (FacePassOptions::lead) may go on
    }
    // Polls the interrupt flag too: the pass notices it only between batches.
    while (static_cast<int64_t>(plans_.size()) <= index && !finished_) {
        changed_.wait_for(lock, std::chrono::milliseconds(100));
        if (interrupt_requested()) {
            lock.unlock();
            throw_if_interrupted();
        }
    }
    if (error_) std::rethrow_exception(error_);
    return static_cast<int64_t>(plans_.size()) > index;
}

faces::FramePlan FacePass::plan(int64_t index) const {
    std::lock_guard<std::mutex> lock(mutex_);
    LSYNC_CHECK(index >= 0 && index < static_cast<int64_t>(plans_.size()), ErrorCode::Internal,
                "face plan " + std::to_string(index) + " asked for before it was known");
    return plans_[static_cast<size_t>(index)];
}

int64_t FacePass::frames() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return static_cast<int64_t>(plans_.size());
}

bool FacePass::finished() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return finished_;
}

std::vector<faces::FramePlan> FacePass::all() {
    wait(INT64_MAX);
    std::lock_guard<std::mutex> lock(mutex_);
    return {plans_.begin(), plans_.end()};
}

double FacePass::seconds() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return seconds_;
}

}  // namespace lsync::pipeline
