#pragma once
// `latentsync render`: the whole lip-sync job. The library does the work and reports through RenderObserver;
// apps/ only parses options and prints (docs/render.md).
//
// Passes over the input, each streaming with bounded memory:
//   1. audio: measured once (length, log-mel max), then encoded window by window as the frames need it;
//   2. faces, on their own thread (face_pass.h) while the models load and the render runs: every source frame
//      the output uses is analysed once, in order (FaceStage); only the per-frame plans (a matrix and a status)
//      are kept, so loops replay them as the official code does; they are saved in the work folder;
//   3. models: one set per worker (--devices);
//   4. render: chunk by chunk of 16 output frames, frames are decoded again (FrameSource), the frames with a
//      face go through LipsyncChunk on the workers (chunk_queue.h, chunk_workers.h), and every frame goes to the
//      encoder in order, into segment files in the work folder (render_workdir.h);
//   5. join: the segments are copied into the output with the audio (no second encode), and the work folder
//      goes. An interrupted render keeps it; --resume continues after its last complete segment.

#include "audio/audio_features.h"
#include "faces/face_options.h"
#include "faces/face_plan.h"
#include "pipeline/chunk_noise.h"
#include "pipeline/frame_map.h"
#include "pipeline/lipsync_chunk.h"
#include "pipeline/render_models.h"
#include "pipeline/segment_writer.h"

#include <cstdint>
#include <optional>
#include <string>

namespace lsync::pipeline {

class ModelCache;

/// Test hook: sees the pipeline's intermediates as they pass (the end-to-end parity test compares them with the
/// official run's). Tensors may live on the render device.
class RenderProbe {
public:
    virtual ~RenderProbe() = default;
    /// The face pass's plan of every source frame.
    virtual void plans(const std::vector<faces::FramePlan>& plans) { (void)plans; }
    /// The audio windows of output frames [first, first + windows.size(0)).
    virtual void audio(int64_t first, const torch::Tensor& windows) { (void)first, (void)windows; }
    /// A chunk through the networks; `rows` are its frames with a face (offsets from the chunk's first frame).
    virtual void chunk(int64_t chunk, const std::vector<int64_t>& rows, const ChunkTrace& trace) {
        (void)chunk, (void)rows, (void)trace;
    }
    /// Output frame `index` ([H, W, 3] uint8, CPU) as it goes to the encoder.
    virtual void frame(int64_t index, const torch::Tensor& rgb) { (void)index, (void)rgb; }
};

struct RenderOptions {
    std::string video;   ///< video file or still image
    std::string audio;   ///< speech (any file with an audio stream)
    std::string output;
    bool overwrite = false;
    bool resume = false;  ///< continue the interrupted render of this output (--resume)

    ModelVariant model = ModelVariant::V15;
    std::string model_dir;  ///< resolved model root
    std::string unet_path, vae_path, whisper_path;
    bool random_weights = false;

    DiffusionSettings diffusion;
    uint64_t seed = 1247;
    std::string attention = "auto";
    bool strict_attention = false;
    double lip_focus = 1.0;
    std::string device = "auto";
    std::string devices;  ///< --devices: several workers (parse_device_list); empty = `device` alone
    std::string dtype = "auto";
    audio::AudioSegmentation segmentation = audio::AudioSegmentation::Seamless;

    faces::FaceOptions face;
    std::string face_models = "face-api";
    std::string face_model_dir;  ///< the folder with the face models' files

    LoopMode loop = LoopMode::PingPong;
    /// --length official: the official frame count, floor(feature frames / 2) + 2 at 25 fps, which runs up to
    /// two frames past the audio; default: the frames that cover the audio (the last one holds its end).
    bool official_length = false;
    bool keep_video_tail = false;
    audio::FrameRate fps{25, 1};  ///< output rate, exact; num 0 = the video's own ("--fps native")
    int crf = 18;
    std::string preset = "medium";
    bool lossless = false;      ///< FFV1 RGB in .mkv instead of H.264 (--lossless)
    std::string audio_out;      ///< another file's audio to mux instead of `audio` (--audio-out)
    std::string dump_faces;     ///< folder for per-frame crops and landmarks (--dump-faces), empty = none
    std::string preview;        ///< contact sheet PNG (--preview), empty = none

    int64_t batch_chunks = 0;   ///< chunks per UNet call (0 = auto: 2 on CUDA, 1 on the CPU); halved on OOM
    double vram_budget_gib = 0; ///< GPU memory a worker may use (--vram-budget); 0 = the card's (batch_planner.h)
    /// Frames per segment file: the resume granularity (a multiple of 16; tests make it small).
    int64_t segment_frames = kDefaultSegmentFrames;
    /// Time the stages inside every UNet call (align, VAE encode, denoise loop, VAE decode, paste-back) into
    /// RenderSummary::worker_stage_seconds: CUDA events on the workers' streams, wall time on the CPU
    /// (chunk_stage_clock.h). Off for an ordinary render, which then pays nothing; `bench render` turns it on.
    bool time_chunk_stages = false;
    /// Test hook: the first UNet call fails with a CUDA out-of-memory error.
    bool inject_oom_once = false;
    /// Test hook: replaces the seeded noise (the parity test replays the official run's draws).
    std::optional<NoiseSource> noise;
    /// Test hook: see RenderProbe (not owned).
    RenderProbe* probe = nullptr;
    /// Networks kept warm between renders (model_cache.h; not owned): `batch` gives each device's job thread
    /// one. Null: the render loads its models and drops them when it ends.
    ModelCache* model_cache = nullptr;
};

struct RenderSummary {
    int64_t frames = 0;          ///< frames in the output
    int64_t resumed_frames = 0;  ///< of those, frames an interrupted run had finished (--resume)
    int64_t lipsynced = 0;       ///< frames that got a generated mouth
    int64_t passed_through = 0;  ///< frames without a usable face, written unchanged
    int64_t tail_frames = 0;     ///< --keep-video-tail frames after the audio's end
    int64_t source_frames = 0;   ///< frames of the input the output used (before looping)
    int64_t chunks = 0;
    int64_t oom_retries = 0;     ///< out-of-memory errors survived by halving the chunk batch
    int64_t early_chunks = 0;    ///< chunks packed while the models loaded (GPU renders: render.cpp)
    int64_t warmed_workers = 0;  ///< workers that warmed up while the UNet loaded (GPU renders: worker_warm_up.h)
    int64_t warmed_unets = 0;    ///< ... and ran the UNet's twin too
    int64_t primed_graph_workers = 0;  ///< ... and render with the UNet graphs the twin made
    int64_t render_graph_captures = 0;  ///< UNet graphs the workers captured in their groups (not in a warm-up)
    double face_pass_held_seconds = 0;  ///< the face pass's wait (LSYNC_FACE_PASS_HOLD=1), part of its stage
    int64_t prewarmed_convs = 0;  ///< convolution shapes the first-use pre-warm met (first_use_journal.h)
    int64_t prewarmed_ops = 0;    ///< and calls of other operations (GEMMs and a few more)
    double fps = 0;
    double seconds = 0;          ///< wall time of the whole render
    /// Of it, the end of the passes after the output was written: the workers (their threads, CUDA graphs and
    /// per-thread state), the models, the face pass and the frame source going away.
    double teardown_seconds = 0;
    /// Loading models, audio (first pass), faces (its own thread, overlapping the others), render (diffusion +
    /// encode).
    double stage_seconds[4] = {};
    /// Where the render thread's time went: decoding, waiting for faces, audio windows, packing chunks,
    /// waiting for the workers, handing frames to the encoder (the profile of what limits a render).
    std::vector<std::pair<std::string, double>> render_thread_seconds;
    std::vector<double> worker_busy_seconds;  ///< per --devices worker, time spent running chunk groups
    /// Per worker, the stages inside its UNet calls (RenderOptions::time_chunk_stages; empty otherwise).
    std::vector<ChunkStageSeconds> worker_stage_seconds;
    int64_t gpu_peak_bytes = 0;  ///< LibTorch allocator peak on the render device (0 on the CPU)
    /// The same peak from the end of the face pass on (0 when the pass outlived the render, or on the CPU): the
    /// face pass shares the first device with a worker for the render's first seconds, so the render alone can
    /// peak lower than gpu_peak_bytes.
    int64_t gpu_peak_after_faces_bytes = 0;
    /// What LibTorch's allocator reserved on the render device at most (0 on the CPU): gpu_peak_bytes plus its
    /// cached blocks and the CUDA graphs' pools (diagnostics::peak_reserved_bytes).
    int64_t gpu_reserved_peak_bytes = 0;
    int64_t peak_rss_bytes = 0;  ///< host resident set peak of the process
    std::string faces;           ///< FaceCounts::summary()
    std::string models;          ///< RenderModels::description
    std::string device;
};

/// What a render tells whoever started it. Every method has a default that ignores the event.
class RenderObserver {
public:
    virtual ~RenderObserver() = default;
    /// A new phase: "loading models", "audio", "faces", "render", "join".
    virtual void stage(const std::string& name, int64_t total) { (void)name, (void)total; }
    /// Progress within the current phase.
    virtual void progress(int64_t done, int64_t total) { (void)done, (void)total; }
    virtual void warning(const std::string& message) { (void)message; }
    virtual void finished(const RenderSummary& summary) { (void)summary; }
};

/// Runs the render. Inputs and the output are checked before any model loads; every failure is an lsync::Error
/// with its exit code, and the output only appears when everything succeeded. Interrupted (Ctrl-C, SIGTERM),
/// it throws Error(Interrupted) saying how much is kept for --resume.
RenderSummary render(const RenderOptions& options, RenderObserver& observer);

}  // namespace lsync::pipeline
