#include "pipeline/render.h"

#include "audio/audio_feature_reader.h"
#include "core/cancel.h"
#include "core/device_transfer.h"
#include "core/env.h"
#include "core/error.h"
#include "core/log.h"
#include "core/threads.h"
#include "diagnostics/allocator_report.h"
#include "diagnostics/gpu_memory.h"
#include "diagnostics/process_memory.h"
#include "diffusion/denoise_loop.h"  // uses_cfg
#include "pipeline/async_writer.h"
#include "pipeline/batch_planner.h"
#include "pipeline/chunk_queue.h"
#include "pipeline/chunk_stage_clock.h"
#include "pipeline/chunk_workers.h"
#include "pipeline/device_policy.h"
#include "pipeline/face_pass.h"
#include "pipeline/first_use_journal.h"
#include "pipeline/frame_source.h"
#include "pipeline/model_cache.h"
#include "pipeline/mouth_mask.h"
#include "pipeline/render_dumps.h"
#include "pipeline/render_paths.h"
#include "pipeline/render_settings.h"
#include "pipeline/render_workdir.h"
#include "pipeline/segment_joiner.h"
#include "pipeline/worker_warm_up.h"
#include "faces/face_plan_file.h"

#include <ATen/ThreadLocalState.h>
#include <c10/core/DeviceGuard.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <thread>
#include <cmath>

namespace lsync::pipeline {

namespace {

/// Wall time per phase into RenderSummary::stage_seconds.
struct Stopwatch {
    RenderSummary& summary;
    std::chrono::steady_clock::time_point lap = std::chrono::steady_clock::now();
    void restart() { lap = std::chrono::steady_clock::now(); }
    void end_stage(int k) {
        const auto now = std::chrono::steady_clock::now();
        summary.stage_seconds[k] = std::chrono::duration<double>(now - lap).count();
        lap = now;
    }
};

/// --vram-budget in bytes (0: none), for the planner and the cap alike.
int64_t vram_budget_bytes(const RenderOptions& o) {
    return static_cast<int64_t>(o.vram_budget_gib * 1024.0 * 1024.0 * 1024.0);
}

/// Frames the encoder's queue holds: a group of two chunks where they fit in 256 MiB (frames up to 2.8 Mpixel,
/// 1080p among them), one chunk at least. A worker hands back a whole group at once; with room for only one
/// chunk the render thread waited for x264 to take the first half before it could pack the next group, and a
/// GPU that finishes its queued group in that time idles. Bounded in bytes, so host memory stays flat at any
/// size.
size_t encoder_queue_frames(int width, int height) {
    const size_t frame_bytes = static_cast<size_t>(std::max(width, 1)) * static_cast<size_t>(std::max(height, 1)) * 3;
    return std::clamp<size_t>((size_t{256} << 20) / frame_bytes, kFramesPerChunk, 2 * kFramesPerChunk);
}

/// The tail segments (segment_writer.h) of a render of `frames` lip-synced frames: the last group's frames close as
/// segments of 8 (at most 4 of them), side by side, on a host with 8 threads or more to spare for them; one segment
/// where fewer would only take turns; x264's threads share each of their frames (docs/performance-notes.md section
/// 40). LSYNC_TAIL_SEGMENTS=0/1, LSYNC_TAIL_SEGMENT_FRAMES=N and LSYNC_TAIL_SLICED_THREADS=0/1 set them (for
/// measurements).
TailSegments tail_segments(int64_t frames) {
    TailSegments tail;
    tail.end_frame = frames;
    tail.sliced_threads = env::flag("LSYNC_TAIL_SLICED_THREADS", true);
    if (env::flag("LSYNC_TAIL_SEGMENTS", thread_budget() >= 8))
        tail.frames = env::positive_integer("LSYNC_TAIL_SEGMENT_FRAMES", 1 << 20).value_or(8);
    return tail;
}

/// Chunks the render thread packs on a GPU while the models load: one group of the 256 px render's default two
/// chunks per UNet call, so its first worker starts at once; a bound on what waits (pinned frames: 44 MB a chunk
/// at 720p). LSYNC_EARLY_PACK=0 packs none and takes the Whisper with the other models, as before section 29
/// (for measurements).
size_t early_chunks() {
    return env::flag("LSYNC_EARLY_PACK", true) ? 2 : 0;
}

/// [N, H, W, 3] uint8 on the host; in page-locked memory when it goes to a GPU, so that the worker's copy is
/// asynchronous on its stream and runs at full bus speed.
torch::Tensor stack_frames(const std::vector<torch::Tensor>& frames, bool pinned) {
    if (!pinned) return torch::stack(frames);
    auto sizes = frames.front().sizes().vec();
    sizes.insert(sizes.begin(), static_cast<int64_t>(frames.size()));
    auto out = torch::empty(sizes, torch::TensorOptions().dtype(torch::kUInt8).pinned_memory(true));
    return torch::stack_out(out, frames);
}

/// LSYNC_PINNED_RESERVE=N (a measurement switch, off by default: no gain in the wall clock, docs/performance-notes.md
/// section 36): while the models load, the page-locked blocks of N chunks' frames and the workers' small uploads are
/// allocated and freed into the caching host allocator (reserve_pinned_blocks), so that the first groups reuse them
/// instead of allocating page-locked memory beside the worker's first uses. At most 1 GiB of frames (a 4K chunk is
/// 400 MB).
void reserve_chunk_buffers(const torch::Device& device, const media::VideoWriterOptions& wopt, bool print) {
    const auto n = env::positive_integer("LSYNC_PINNED_RESERVE", 64);
    if (!n || !device.is_cuda()) return;
    const int64_t chunk_bytes = kFramesPerChunk * int64_t{wopt.width} * int64_t{wopt.height} * 3;
    const int64_t fit = (int64_t{1} << 30) / std::max<int64_t>(1, chunk_bytes);
    const int64_t count = std::min<int64_t>(*n, std::max<int64_t>(1, fit));
    const auto started = std::chrono::steady_clock::now();
    const int64_t bytes = reserve_pinned_blocks(device, chunk_bytes, count);
    if (print)
        std::fprintf(stderr, "chunk timing: %.0f MiB of page-locked memory reserved in %.3f s\n",
                     static_cast<double>(bytes) / (1 << 20),
                     std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
}

/// Where the render thread's time goes (logged at the end: the profile of what limits a render).
struct ThreadClock {
    enum Bucket { Decode, Faces, Audio, Pack, Workers, Encoder, kBuckets };
    double seconds[kBuckets] = {};
    template <class F>
    auto time(Bucket b, F&& f) {
        const auto started = std::chrono::steady_clock::now();
        struct Add {
            double& to;
            std::chrono::steady_clock::time_point from;
            ~Add() { to += std::chrono::duration<double>(std::chrono::steady_clock::now() - from).count(); }
        } add{seconds[b], started};
        return f();
    }
    std::vector<std::pair<std::string, double>> named() const {
        static const char* names[kBuckets] = {"decode", "faces_wait", "audio", "pack", "workers_wait", "encoder"};
        std::vector<std::pair<std::string, double>> out;
        for (int b = 0; b < kBuckets; ++b) out.emplace_back(names[b], seconds[b]);
        return out;
    }
};

/// What render() settled before the passes.
struct RenderJob {
    const RenderOptions& options;
    RenderObserver& observer;
    RenderSummary& summary;
    Stopwatch& watch;
    std::optional<FrameSource> source;
    audio::FrameRate rate{25, 1};
    torch::Device device{torch::kCPU};  ///< the first of `devices`: audio and faces run there
    std::vector<torch::Device> devices;  ///< one diffusion worker each
    torch::ScalarType dtype = torch::kFloat;
    std::chrono::steady_clock::time_point output_written;  ///< run_passes's last statement (its teardown follows)
};

/// The first device's Whisper encoder for the render thread: handed over by the loading thread as soon as it is
/// loaded (ModelRequest::on_whisper), before the UNet and the VAE; with the models where a cache already held
/// them; or the load's error. So the render thread packs its first chunks (frames, faces, audio windows) while
/// the large networks load, and the first worker finds a group waiting when they are ready.
class WhisperHandoff {
public:
    void give(const models::WhisperEncoder& w) {
        std::call_once(once_, [&] { promise_.set_value(w); });
    }
    void fail(std::exception_ptr e) {
        std::call_once(once_, [&] { promise_.set_exception(e); });
    }
    /// Rethrows the load's error.
    models::WhisperEncoder get() { return future_.get(); }

private:
    std::once_flag once_;
    std::promise<models::WhisperEncoder> promise_;
    std::shared_future<models::WhisperEncoder> future_ = promise_.get_future().share();
};

/// A worker's attention context on `d`: the render's backend and strictness, the UNet's SDPA kernel, and the
/// lip focus where asked (`mask`: the mouth mask, 1 = keep).
ops::AttentionContextPtr worker_attention(const RenderOptions& o, const torch::Device& d, torch::ScalarType dtype,
                                          const torch::Tensor& mask) {
    auto attention = make_attention_context(o.attention, o.strict_attention, d, dtype, sdpa_kernel());
    if (o.lip_focus != 1.0) attention->set_lip_focus(1 - mask, o.lip_focus);
    return attention;
}

/// Closes a worker's warm-up offer (if any) when it goes out of scope.
struct ClosesWarmUp {
    WorkerWarmUp* warm;
    ~ClosesWarmUp() {
        if (warm) warm->close();
    }
};

/// Whether a device is listed more than once (--devices 0,0).
bool repeats_a_device(const std::vector<torch::Device>& devices) {
    for (size_t i = 0; i < devices.size(); ++i)
        if (std::find(devices.begin() + static_cast<std::ptrdiff_t>(i) + 1, devices.end(), devices[i]) !=
            devices.end())
            return true;
    return false;
}

/// One worker per listed device (--devices), each with its networks, chunk runner and chunk batch. A device listed
/// again (--devices 0,0) shares the first listing's weights (share_render_models): its worker gets networks of its
/// own (its attention context and DeepCache state) over the same tensors, so a second worker on a GPU costs its
/// working memory, not another 2.6 GiB of weights. GPUs load at the same time, each on a thread of its own, and
/// each worker starts when its own set is ready (chunk_workers.h); CPU workers load one after the other before the
/// render, as they share the cores anyway.
/// On a GPU, `whisper` (when given) receives the first device's Whisper encoder as early as it can, and worker i's
/// warm-up offer `warm_ups[i]` (when given and not null) is closed before its batch is planned (worker_warm_up.h).
std::vector<std::future<ChunkWorkerSetup>> load_workers(const RenderJob& job, const torch::Tensor& mask,
                                                        const std::vector<std::shared_ptr<WorkerWarmUp>>& warm_ups = {},
                                                        const std::shared_ptr<WhisperHandoff>& whisper = nullptr) {
    const int resolution = model_resolution(job.options.model);
    // Runs on the loading threads, possibly after this function returned: it holds no reference to its locals.
    using GetModels = std::function<RenderModels(const ModelRequest&)>;
    auto load_worker = [&job, mask, resolution](const torch::Device& d, const GetModels& get_models,
                                                const std::shared_ptr<WhisperHandoff>& handoff,
                                                const std::shared_ptr<WorkerWarmUp>& warm) {
        // The warm-up offer is closed whatever ends this thread (below, it closes before the batch is planned): a
        // worker waiting for the UNet's twin waits for the close (worker_warm_up.h). close() is idempotent.
        const ClosesWarmUp close_on_exit{warm.get()};
        const RenderOptions& o = job.options;
        const auto started = std::chrono::steady_clock::now();
        torch::NoGradGuard no_grad;  // thread-local: the loading threads need their own
        const c10::DeviceGuard device_guard(d);
        ModelRequest request;
        request.variant = o.model;
        request.model_dir = o.model_dir;
        request.unet_path = o.unet_path;
        request.vae_path = o.vae_path;
        request.whisper_path = o.whisper_path;
        request.random_weights = o.random_weights;
        request.device = d;
        request.dtype = job.dtype;
        request.attention = worker_attention(o, d, job.dtype, mask);
        if (handoff)
            request.on_whisper = [handoff, attention = request.attention](const models::WhisperEncoder& w) {
                handoff->give(share_whisper(w, attention));  // the context the loaded set gets at its end
                // Test hook: the UNet and the VAE load this much later, so that a test sees chunks packed early
                // (and a warm-up taken) even with the tiny models, which load in milliseconds.
                if (const auto ms = env::positive_integer("LSYNC_TEST_SLOW_MODELS_MS", 60000))
                    std::this_thread::sleep_for(std::chrono::milliseconds(*ms));
            };
        // The worker's warm-up runs a twin of the UNet while its weights are read (worker_warm_up.h).
        if (warm && warm_up_unet_wanted())
            request.on_unet_placed = [warm, d, dtype = job.dtype](const models::UNet3DConditionModel& placed) {
                try {
                    warm->offer_unet(unet_twin_parts(placed, d, dtype));
                } catch (const std::exception& e) {  // the warm-up's, not the load's: a log line
                    log::warn("the warm-up gets no twin of the UNet: ", first_line(e.what()));
                }
                // Test hook: the weights take this much longer to read, so that a test sees the twin run even
                // with the tiny models, whose weights are drawn in milliseconds.
                if (const auto ms = env::positive_integer("LSYNC_TEST_SLOW_UNET_FILL_MS", 60000))
                    std::this_thread::sleep_for(std::chrono::milliseconds(*ms));
            };
        ChunkWorkerSetup w;
        try {
            // The warm-up offer closes before the batch is planned, whether the load succeeds or fails: a warm-up
            // under way changes the memory the planner reads (a kit the worker has not taken is withdrawn).
            const ClosesWarmUp close{warm.get()};
            w.models = get_models(request);
        } catch (const c10::OutOfMemoryError&) {
            if (o.vram_budget_gib > 0)
                throw_error(ErrorCode::Backend, "the models do not fit in --vram-budget " +
                                                    c10::str(o.vram_budget_gib) + " GiB of " + d.str() + ": raise it");
            throw_error(ErrorCode::Backend,
                        "the models do not fit in the memory of " + d.str() + ": try --dtype float16");
        }
        if (handoff) handoff->give(w.models.whisper);  // where a cache held the set, on_whisper was not called
        w.runner = std::make_unique<LipsyncChunk>(w.models, mask, o.diffusion, o.noise ? *o.noise : seeded_noise(o.seed));
        const auto plan = plan_chunk_batch(o.batch_chunks, d, resolution, job.dtype, vram_budget_bytes(o));
        w.batch = plan.batch;
        log::info(plan.why);
        log::info("models on ", d.str(), " ready in ",
                  std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count(), " s");
        return w;
    };
    // Per device, the first listing loads (or takes from the cache) and publishes its networks; later listings
    // wait for them and share their weights. A failed load reaches the sharing workers as the same error.
    // LSYNC_SHARE_WEIGHTS=0 loads a set per listing instead (the behaviour before, for comparisons).
    const bool share = env::flag("LSYNC_SHARE_WEIGHTS", true);
    std::map<std::string, std::shared_future<RenderModels>> first_listing;
    std::vector<GetModels> getters;
    for (const auto& d : job.devices) {
        const auto found = first_listing.find(d.str());
        if (found != first_listing.end()) {
            getters.push_back([shared = found->second](const ModelRequest& request) {
                return share_render_models(shared.get(), request.attention);
            });
            continue;
        }
        auto published = std::make_shared<std::promise<RenderModels>>();
        if (share) first_listing.emplace(d.str(), published->get_future().share());
        getters.push_back([published, cache = job.options.model_cache](const ModelRequest& request) {
            try {
                RenderModels m = cache ? cache->get(request) : load_render_models(request);
                published->set_value(m);
                return m;
            } catch (...) {
                published->set_exception(std::current_exception());
                throw;
            }
        });
    }
    std::vector<std::future<ChunkWorkerSetup>> loading;
    if (job.device.is_cuda()) {
        // On threads of their own, so the audio's first pass runs while the models load (run_passes). The
        // loading threads take this thread's LibTorch state (grad mode, a running profiler).
        const at::ThreadLocalState state;
        for (size_t i = 0; i < job.devices.size(); ++i)
            loading.push_back(std::async(std::launch::async, [load_worker, d = job.devices[i], get = getters[i], state,
                                                              handoff = i == 0 ? whisper : nullptr,
                                                              warm = i < warm_ups.size() ? warm_ups[i] : nullptr] {
                const at::ThreadLocalStateGuard guard(state);
                try {
                    return load_worker(d, get, handoff, warm);
                } catch (...) {
                    if (handoff) handoff->fail(std::current_exception());
                    throw;
                }
            }));
    } else {
        for (size_t i = 0; i < job.devices.size(); ++i)
            loading.push_back(ChunkWorkers::ready(load_worker(job.devices[i], getters[i], nullptr, nullptr)));
    }
    return loading;
}

/// Per device of a GPU render, its worker's warm-up, offered (worker_warm_up.h); none (null entries) with
/// LSYNC_WARM_UP=0, and none where a device is listed twice: there the second worker plans its batch beside the
/// first, whose warm-up would change the memory it reads.
std::vector<std::shared_ptr<WorkerWarmUp>> worker_warm_ups(const RenderJob& job, const torch::Tensor& mask) {
    const auto& devices = job.devices;
    const RenderOptions& o = job.options;
    std::vector<std::shared_ptr<WorkerWarmUp>> out(devices.size());
    if (!warm_up_wanted() || repeats_a_device(devices)) return out;
    for (size_t i = 0; i < devices.size(); ++i) {
        const torch::Device d = devices[i];
        if (!d.is_cuda()) continue;
        WarmUpKit kit;
        kit.vae = vae_config_for(o.model);
        kit.resolution = model_resolution(o.model);
        kit.device = d;
        kit.dtype = job.dtype;
        kit.attention = [&o, d, dtype = job.dtype, mask] { return worker_attention(o, d, dtype, mask); };
        kit.mask = mask;
        kit.chunks = wanted_chunk_batch(o.batch_chunks, d);
        kit.unet = warm_up_unet_wanted();
        kit.frame_height = job.source->height();
        kit.frame_width = job.source->width();
        kit.diffusion = o.diffusion;
        const auto whisper = whisper_config_for(o.model);
        kit.audio_tokens = audio::kWindowFeatureFrames * (whisper.n_layer + 1);  // audio_windows(): 10 frames x states
        kit.audio_dim = whisper.n_state;
        out[i] = std::make_shared<WorkerWarmUp>();
        out[i]->offer(std::move(kit));
    }
    return out;
}

/// The passes of render() after the checks: models, audio, faces, chunks, join.
void run_passes(RenderJob& job, RenderWorkDir& work, const media::VideoWriterOptions& wopt, const torch::Tensor& mask,
                int64_t resume_frame) {
    const RenderOptions& o = job.options;
    RenderObserver& observer = job.observer;
    RenderSummary& summary = job.summary;
    Stopwatch& watch = job.watch;
    FrameSource& source = *job.source;
    const audio::FrameRate rate = job.rate;
    const double fps = static_cast<double>(rate.num) / static_cast<double>(rate.den);
    const torch::Device device = job.device;
    const int resolution = model_resolution(o.model);
    std::optional<FaceDumper> dumper;
    if (!o.dump_faces.empty()) dumper.emplace(o.dump_faces, mask);
    const bool tracing = !o.dump_faces.empty() || !o.preview.empty() || o.probe;  // the dumps, the preview, a probe

    // --vram-budget is a hard cap on each GPU of the render (the models, the workers, the face pass): past it
    // the allocator gives back its cache, then the workers halve their batch (chunk_workers.h).
    std::vector<std::unique_ptr<diagnostics::GpuMemoryCap>> caps;
    for (const auto& d : job.devices)
        if (d.is_cuda() && o.vram_budget_gib > 0)
            caps.push_back(std::make_unique<diagnostics::GpuMemoryCap>(d, vram_budget_bytes(o)));
    if (device.is_cuda()) diagnostics::report_allocator_at_out_of_memory();  // --debug: where the card's memory was
    diagnostics::reset_peak_memory(device);
    watch.restart();
    // On a GPU the models start loading now, on threads of their own (load_workers), and the workers that will
    // run them start too: each warms up its stages around the UNet while the UNet loads (worker_warm_up.h). The
    // render thread waits for the first worker's models in step 3, so the audio's first pass no longer runs in
    // front of them. On the CPU they load in step 3.
    // The first-use journal (first_use_journal.h; on by default, LSYNC_FIRST_USE_JOURNAL=0 turns it off): the
    // convolution shapes (and GEMMs and a few other operations) the last render of this model and GPU met in its
    // first group are met by the first worker on its own thread and stream while the models load, and this
    // render's are kept for the next.
    std::string journal_path, journal_key;
    FirstUseJournal journal_read, prewarm;
    // LSYNC_FIRST_USE_OPS=0: convolutions only, the other operations neither recorded nor met (for measurements).
    const bool journal_ops = env::flag("LSYNC_FIRST_USE_OPS", true);
    if (device.is_cuda() && first_use_journal_enabled()) {
        journal_key = first_use_key(model_variant_name(o.model), job.dtype, device,
                                    first_use_settings(o.attention, wanted_chunk_batch(o.batch_chunks, device),
                                                       diffusion::uses_cfg(o.diffusion.guidance), o.diffusion.deepcache));
        journal_path = first_use_path(first_use_dir(), journal_key);
        journal_read = read_first_use_journal(journal_path, journal_key);
        // Not under a --vram-budget: the planner counts the models as the allocator's live bytes, which a
        // pre-warm under way would add to.
        if (o.vram_budget_gib <= 0) prewarm = journal_read;
        if (!journal_ops) prewarm.ops.clear();
    }
    std::unique_ptr<ChunkWorkers> workers;
    const auto start_workers = [&](std::vector<std::future<ChunkWorkerSetup>> loading,
                                   std::vector<std::shared_ptr<WorkerWarmUp>> warm_ups) {
        workers = std::make_unique<ChunkWorkers>(
            std::move(loading), tracing, o.inject_oom_once,
            [&observer](const std::string& m) { observer.warning(m); }, o.time_chunk_stages, std::move(warm_ups),
            std::move(prewarm), device);
    };
    std::shared_ptr<WhisperHandoff> early_whisper;  // GPU: the Whisper before the UNet and VAE (step 3)
    if (device.is_cuda()) {
        if (early_chunks() > 0) early_whisper = std::make_shared<WhisperHandoff>();
        const auto warm_ups = worker_warm_ups(job, mask);
        start_workers(load_workers(job, mask, warm_ups, early_whisper), warm_ups);
    }
    // 1. Audio, first pass: the output covers it, never dropping the tail. (The official count, floor(L/2) + 2
    //    frames, runs past the audio by up to two frames; we stop at the frame that contains its last sample.)
    //    The Whisper encoder is only needed by the second pass (the windows); it arrives with the other models.
    observer.stage("audio", 0);
    audio::AudioFeatureOptions aopt;
    aopt.segmentation = o.segmentation;
    aopt.device = device;
    aopt.feature_dtype = device.is_cuda() ? torch::kHalf : torch::kFloat;
    auto whisper = std::make_shared<audio::FeatureEncoder>();
    audio::AudioFeatureReader audio_reader(
        audio::file_sample_reader(o.audio), [whisper](const torch::Tensor& mel) { return (*whisper)(mel); }, aopt);
    const int64_t covering = static_cast<int64_t>(
        std::ceil(static_cast<double>(audio_reader.samples()) * rate.num / (audio::kSampleRate * double(rate.den)) - 1e-9));
    const int64_t n_out =
        std::max<int64_t>(1, o.official_length ? audio_reader.window_count(rate) : std::min(covering, audio_reader.window_count(rate)));
    log::info("audio: ", audio_reader.samples() / double(audio::kSampleRate), " s -> ", n_out, " frames at ", fps,
              " fps");
    watch.end_stage(1);
    // The render resumes at a chunk boundary or past the render's end (the video's tail); the tail segments
    // after the last boundary (the last group's, which may end inside a chunk: segment_writer.h) are made again.
    if (const int64_t boundary = work.keep_segments_to_chunk_boundary(kFramesPerChunk, n_out);
        boundary != resume_frame) {
        log::info("the segments after frame ", boundary, " end inside a chunk: they are made again");
        resume_frame = boundary;
    }

    // LSYNC_QUIET_FIRST_GROUP=1 (a measurement switch, off by default: no gain in the wall clock,
    // docs/performance-notes.md section 36): on a GPU the render packs no third group while the first runs
    // (ChunkQueue::make_room_before_first_result).
    const bool quiet_first_group = device.is_cuda() && env::flag("LSYNC_QUIET_FIRST_GROUP", false);
    // 2. Faces, once per source frame the output uses, on their own thread from now on (face_pass.h); a resumed
    //    render replays the interrupted run's plans bit for bit.
    const auto geometry = faces::CropGeometry::for_resolution(resolution);
    std::unique_ptr<FacePass> faces_pass;
    if (work.resumed() && work.has_faces()) {
        faces_pass = std::make_unique<FacePass>(faces::load_face_plans(work.faces_path(), resolution));
    } else {
        FacePassOptions fo;
        fo.video = o.video;
        fo.target_fps = o.fps.num > 0 ? static_cast<double>(o.fps.num) / static_cast<double>(o.fps.den) : 0.0;
        fo.face = o.face;
        fo.face_models = o.face_models;
        fo.face_model_dir = o.face_model_dir;
        fo.geometry = geometry;
        fo.device = device;
        fo.max_frames = n_out;
        // LSYNC_FACE_PASS_HOLD=1 (a measurement switch, off by default: no gain, section 36): on a GPU the pass
        // stops past the frames of the groups the render queues before it waits for the first one (ChunkQueue:
        // two in flight per worker, and one more packed unless the first group is quiet), until a worker's first
        // group has ended, so that its copies and syncs do not slow that group's first uses (face_pass.h). A
        // render that wants more (chunks without faces go to no worker) ends the hold by waiting for a frame.
        // `workers` outlives the pass (declared before it).
        if (device.is_cuda() && workers && env::flag("LSYNC_FACE_PASS_HOLD", false)) {
            const auto queued_groups = 2 * static_cast<int64_t>(job.devices.size()) + (quiet_first_group ? 0 : 1);
            const int64_t chunks = wanted_chunk_batch(o.batch_chunks, device);
            fo.hold_from = resume_frame + queued_groups * chunks * kFramesPerChunk;
            // Test hook: the tiny GPU render's clip is shorter than that.
            if (const auto from = env::positive_integer("LSYNC_TEST_FACE_PASS_HOLD_FROM", 1 << 20))
                fo.hold_from = resume_frame + *from;
            fo.hold = [&workers] { return workers->groups_ended() == 0; };
        }
        // LSYNC_FACE_PASS_LEAD=N (a measurement switch, off by default): the pass keeps at most N frames ahead of
        // the chunks the render has packed (FacePassOptions::lead).
        if (device.is_cuda()) fo.lead = env::positive_integer("LSYNC_FACE_PASS_LEAD", 1 << 20).value_or(0);
        faces_pass = std::make_unique<FacePass>(std::move(fo));
    }
    FacePass& face = *faces_pass;

    // Once the face pass has ended: its plans go to the work folder (from then on the segments are resumable),
    // and the totals are known.
    bool faces_settled = false;
    int64_t n_src = 0;
    int64_t peak_during_faces = -1;  // the allocator's peak up to the pass's end; -1 until then
    int64_t reserved_during_faces = 0;
    auto settle_faces = [&](bool wait) {
        if (faces_settled || (!wait && !face.finished())) return;
        const std::vector<faces::FramePlan> plans = face.all();  // rethrows the pass's error
        faces_settled = true;
        // From here on the allocator's peak is the render's alone (the pass ran on the first device).
        peak_during_faces = diagnostics::peak_memory_bytes(device);
        reserved_during_faces = diagnostics::peak_reserved_bytes(device);
        diagnostics::reset_peak_memory(device);
        n_src = static_cast<int64_t>(plans.size());
        LSYNC_CHECK(n_src > 0, ErrorCode::InputCorrupt, "no frames could be decoded from " + o.video);
        if (!face.replayed()) faces::save_face_plans(work.faces_path(), plans, resolution);
        if (o.probe) o.probe->plans(plans);
        const faces::FaceCounts counts = faces::count_plans(plans);
        summary.source_frames = n_src;
        summary.faces = counts.summary();
        summary.stage_seconds[2] = face.seconds();
        summary.face_pass_held_seconds = face.held_seconds();
        if (counts.aligned == 0)
            observer.warning("no usable face in any frame: the output is the input with the new audio, unchanged");
        if (n_src < n_out)
            log::info("the video has ", n_src, " frames for ", n_out, " of audio: continuing with --loop ",
                      loop_mode_name(o.loop));
    };
    // The source frame of output frame `i`: the same index while the video lasts, then the loop's.
    auto source_index = [&](int64_t i) {
        if (face.wait(i)) return i;
        settle_faces(true);
        return source_frame(i, n_src, o.loop);
    };

    std::optional<PreviewSheet> preview;
    if (!o.preview.empty()) preview.emplace(o.preview, n_out, mask, geometry);
    const int64_t n_chunks = (n_out + kFramesPerChunk - 1) / kFramesPerChunk;
    ThreadClock clock;
    // Chunk `c` decoded, its faces planned, its audio windows encoded and its networks' inputs packed.
    auto pack_chunk = [&](int64_t c) {
        PendingChunk p;
        p.first = c * kFramesPerChunk;
        const int64_t count = std::min(kFramesPerChunk, n_out - p.first);
        for (int64_t k = 0; k < count; ++k) {
            const int64_t src = clock.time(ThreadClock::Faces, [&] { return source_index(p.first + k); });
            auto frame = clock.time(ThreadClock::Decode, [&] { return source.get(src); });
            LSYNC_CHECK(frame.has_value(), ErrorCode::InputCorrupt,
                        "frame " + std::to_string(src) + " of " + o.video + " could not be decoded a second time "
                        "(the file changed during the render?)");
            p.frames.push_back(*frame);
            faces::FramePlan plan = face.plan(src);
            if (plan.align) {
                p.plans.push_back(std::move(plan));
                p.face_frames.push_back(*frame);
                p.rows.push_back(k);
            }
        }
        const auto windows = clock.time(ThreadClock::Audio, [&] {
            return audio_reader.windows(p.first, count, rate);  // every frame's, in order
        });
        if (o.probe) o.probe->audio(p.first, windows);
        if (!p.rows.empty()) clock.time(ThreadClock::Pack, [&] {
            p.in.chunk = c;
            p.in.frames = stack_frames(p.face_frames, device.is_cuda()).permute({0, 3, 1, 2});
            // The worker's copy is all the face rows need now: their lip-synced frames replace them when the
            // group comes back, so only the dumps and the preview read the decoded ones. Dropped, a chunk in
            // flight holds its frames once, not twice (up to six chunks in flight per worker: 2.4 GB at 4K).
            if (!tracing) {
                for (const int64_t row : p.rows) p.frames[static_cast<size_t>(row)] = torch::Tensor();
                p.face_frames.clear();
            }
            p.in.matrices = faces::plan_matrices(p.plans, torch::kCPU);
            // Through the host: the workers run on streams of their own, and device memory made on this
            // thread's stream must not be read on theirs (a few hundred KB per chunk).
            p.in.audio = windows.index_select(0, torch::tensor(p.rows).to(windows.device())).cpu();
        });
        return p;
    };

    // 3. Models (loading since step 1), while the faces are analysed. On a GPU the first chunks are packed
    //    meanwhile, with the Whisper that loads before the UNet and the VAE (their decode, face plans and audio
    //    windows took the render's first 0.4 s while the worker waited: docs/performance-notes.md section 29).
    observer.stage("loading models", 0);
    // A folder whose segments reach the end (a render stopped during its join) has nothing left to render.
    int64_t next_chunk = resume_frame >= n_out ? n_chunks : resume_frame / kFramesPerChunk;
    std::vector<PendingChunk> early;
    if (early_whisper) {
        reserve_chunk_buffers(device, wopt, chunk_timing_printed());
        *whisper = models::whisper_feature_encoder(early_whisper->get());  // rethrows a failed load's error
        const auto loaded = [&] { return workers->first_loaded(); };
        // No settle_faces(false) here: the allocator's peak is reset when the face pass has ended, and a reset
        // while the models load would count the loading's own allocations as the render's.
        while (next_chunk < n_chunks && early.size() < early_chunks() && !loaded()) {
            throw_if_interrupted();
            early.push_back(pack_chunk(next_chunk++));
        }
        summary.early_chunks = static_cast<int64_t>(early.size());
    }
    if (!workers) start_workers(load_workers(job, mask), {});
    // The render starts with the first device's models; the other devices' workers join as theirs are ready,
    // except where a device is listed twice (--devices 0,0): both its workers are ready before the render, since a
    // late one would plan its batch from the memory the running worker holds and its start-up would stall that
    // worker's device.
    if (repeats_a_device(job.devices)) workers->wait_loaded();
    const FirstSetup first = workers->first_setup();  // rethrows a failed load's error
    std::shared_ptr<ops::ConvJournal> journal;  // the first group's convolutions, for the next render
    std::shared_ptr<ops::OpJournal> op_journal;  // and its other operations, when the journal read has none
    if (!journal_path.empty()) {
        journal = std::make_shared<ops::ConvJournal>();
        if (journal_read.ops.empty() && journal_ops)
            op_journal = std::make_shared<ops::OpJournal>(device.type());
        workers->record_first_group(journal, op_journal);
    }
    const RenderModels models = first.models;
    const int64_t batch = first.batch;
    const bool mixed_lengths = first.mixed_lengths;
    summary.models = models.description;
    summary.device = device.str();
    if (o.random_weights)
        observer.warning("--weights random: " + models.description + "; useful only to test the pipeline");

    if (!early_whisper) *whisper = models::whisper_feature_encoder(models.whisper);
    watch.end_stage(0);

    // 4. Render, chunk by chunk, into the encoder thread that writes the work folder's segments; a resumed render
    //    starts at the end of the last complete one (a chunk boundary, or the render's end). Each segment joins
    //    the output as soon as it is closed (segment_joiner.h), the earlier ones of a resumed render first.
    //    LSYNC_PROGRESSIVE_JOIN=0 joins them all at the end instead, as before (for measurements).
    // A damaged segment of a kept folder fails every later --resume too: the message says how to start again.
    const std::string again = work.resumed() ? " (run without --resume and with --overwrite to start again)" : "";
    std::optional<SegmentJoiner> joiner;  // outlives the writer, whose closing segments it receives
    const auto join_existing = [&] {
        media::VideoWriterOptions output = wopt;
        output.temp_folder = work.path();  // a killed render's partial output stays inside the folder it keeps
        joiner.emplace(output, again);
        for (const auto& seg : SegmentWriter::existing(work.path())) joiner->add(seg);
    };
    const bool progressive_join = env::flag("LSYNC_PROGRESSIVE_JOIN", true);
    std::function<void(const SegmentFile&)> on_closed;
    if (progressive_join) {
        join_existing();
        on_closed = [&joiner](const SegmentFile& seg) { joiner->add(seg); };
    }
    // LSYNC_HOST_TRIM_FRAMES=N (a measurement switch, off): the encoder thread trims the allocator every N frames,
    // not only when a segment closes (host memory at 4K: docs/performance-notes.md section 45).
    const auto trim_every = env::positive_integer("LSYNC_HOST_TRIM_FRAMES", 1 << 20).value_or(0);
    AsyncWriter writer(std::make_unique<SegmentWriter>(work.path(), wopt, o.segment_frames, resume_frame,
                                                       std::move(on_closed), tail_segments(n_out)),
                       encoder_queue_frames(wopt.width, wopt.height), static_cast<size_t>(trim_every));
    summary.resumed_frames = summary.frames = resume_frame;
    if (resume_frame > 0) log::info("resuming at frame ", resume_frame, " of ", n_out);
    log::info("render: ", n_chunks, " chunk(s) of up to ", kFramesPerChunk, " frames, up to ", batch,
              " per UNet call, on ", workers->workers(), " worker(s)");
    observer.stage("render", n_out);

    // Each chunk back from the workers, in order: the test probe, the dumps and the preview see it, then every
    // frame goes to the encoder.
    ChunkQueue queue(*workers, batch, tracing, [&](PendingChunk& p, const ChunkTrace* trace) {
        if (trace) {
            if (o.probe) o.probe->chunk(p.first / kFramesPerChunk, p.rows, *trace);
            for (size_t a = 0; a < p.rows.size(); ++a) {
                const int64_t row = p.rows[a], ai = static_cast<int64_t>(a);
                if (!dumper && !(preview && preview->wants(p.first + row))) continue;
                const FrameView view{p.first + row, &p.plans[a], p.face_frames[a], trace->crops[ai],
                                     trace->generated[ai], p.frames[static_cast<size_t>(row)]};
                if (dumper) dumper->add(view);
                if (preview) preview->add(view);
            }
        }
        summary.lipsynced += static_cast<int64_t>(p.rows.size());
        summary.passed_through += static_cast<int64_t>(p.frames.size() - p.rows.size());
        for (size_t r = 0; r < p.frames.size(); ++r) {
            if (o.probe) o.probe->frame(p.first + static_cast<int64_t>(r), p.frames[r]);
            clock.time(ThreadClock::Encoder, [&] { writer.write(p.frames[r]); });
        }
        summary.frames += static_cast<int64_t>(p.frames.size());
        ++summary.chunks;
        observer.progress(summary.frames, n_out);
    }, mixed_lengths);

    // Batches never cross a segment boundary, so a resumed render batches its chunks as an uninterrupted one.
    const int64_t chunks_per_segment = o.segment_frames / kFramesPerChunk;
    const auto add_chunk = [&](PendingChunk p) {
        if ((p.first / kFramesPerChunk) % chunks_per_segment == 0) queue.end_group();
        queue.add(std::move(p));
    };
    for (auto& p : early) add_chunk(std::move(p));
    early.clear();
    for (int64_t c = next_chunk; c < n_chunks; ++c) {
        throw_if_interrupted();
        settle_faces(false);
        if (quiet_first_group) queue.make_room_before_first_result();
        add_chunk(pack_chunk(c));
    }
    // The segment ends where the last group starts: x264 drains the frames before it (its lookahead and frame
    // threads hold some 60) while the GPU renders that group, and only the group's own frames are left to encode
    // after it (docs/performance-notes.md section 30).
    // LSYNC_SEGMENT_CUT=0 leaves the segments at their full length (for measurements).
    queue.finish([&writer] {
        if (env::flag("LSYNC_SEGMENT_CUT", true)) writer.cut();
    });
    workers->wait_loaded();  // a device that failed to load after the last result fails the render too
    summary.prewarmed_convs = workers->prewarmed_convs();
    summary.prewarmed_ops = workers->prewarmed_ops();
    if (journal) {
        // The operations read are kept while the convolutions met are those read (the same render's shapes); when
        // the convolutions change, the operations are recorded again by the next render.
        FirstUseJournal met{journal->shapes(), op_journal ? op_journal->calls() : journal_read.ops};
        if (!op_journal && met.convs != journal_read.convs) met.ops.clear();
        if (!met.convs.empty() && (met.convs != journal_read.convs || met.ops != journal_read.ops))
            write_first_use_journal(journal_path, journal_key, met);
    }
    summary.oom_retries += queue.oom_retries();
    clock.seconds[ThreadClock::Workers] = queue.wait_seconds();
    settle_faces(true);  // a resumed render may not have needed the pass's later frames
    // LSYNC_TRACE_STAGE_MEMORY=1: where the allocator holds the card once every group is done (the models, the
    // workers' graphs and caches are still alive).
    if (device.is_cuda() && env::flag("LSYNC_TRACE_STAGE_MEMORY")) log::info(diagnostics::allocator_report(device));

    // The rest of a longer video, unchanged, when asked for.
    if (o.keep_video_tail && n_src == n_out) {
        for (int64_t i = std::max(n_out, resume_frame);; ++i) {
            throw_if_interrupted();
            auto frame = source.get(i);
            if (!frame) break;
            writer.write(*frame);
        }
    }
    if (preview && !preview->write())
        observer.warning("no frame was lip-synced: no preview written to " + o.preview);
    writer.finish();
    watch.end_stage(3);
    summary.render_thread_seconds = clock.named();
    summary.worker_busy_seconds = workers->busy_seconds();
    if (o.time_chunk_stages) summary.worker_stage_seconds = workers->stage_seconds();
    summary.warmed_workers = workers->warmed_up();
    summary.warmed_unets = workers->warmed_up_unets();
    summary.primed_graph_workers = workers->primed_graph_workers();
    summary.render_graph_captures = workers->graph_captures_in_groups();

    // 5. The join's end: the segments not joined yet (the last, or all with LSYNC_PROGRESSIVE_JOIN=0) into the
    //    output with the audio, the file's trailer, then the work folder goes.
    observer.stage("join", 0);
    // Test hook: Ctrl-C as the join begins, when an interrupted render keeps every segment (render_resume.sh).
    if (env::flag("LSYNC_TEST_INTERRUPT_AT_JOIN")) std::raise(SIGINT);
    throw_if_interrupted();
    if (!progressive_join) join_existing();
    const int64_t joined = joiner->drain();
    LSYNC_CHECK(joined >= n_out && (joined == n_out || o.keep_video_tail), ErrorCode::Internal,
                "the work folder holds " + std::to_string(joined) + " frames, " + std::to_string(n_out) + " expected");
    summary.frames = joined;
    summary.tail_frames = joined - n_out;  // this run's and any resumed run's
    joiner->commit();
    joiner.reset();
    work.remove();
    const int64_t peak_since = diagnostics::peak_memory_bytes(device);
    summary.gpu_peak_after_faces_bytes = peak_during_faces >= 0 ? peak_since : 0;
    summary.gpu_peak_bytes = std::max(peak_during_faces, peak_since);
    summary.gpu_reserved_peak_bytes = std::max(reserved_during_faces, diagnostics::peak_reserved_bytes(device));
    job.output_written = std::chrono::steady_clock::now();
}

}  // namespace

RenderSummary render(const RenderOptions& o, RenderObserver& observer) {
    const auto started = std::chrono::steady_clock::now();
    torch::NoGradGuard no_grad;
    RenderSummary summary;
    Stopwatch watch{summary};

    // Everything a user can get wrong is checked before the models load.
    check_render_paths(o);
    audio::file_sample_reader(o.audio)();  // no audio stream, not media, ...: fail now
    RenderJob job{o, observer, summary, watch, std::nullopt, {25, 1}, torch::Device(torch::kCPU), {}, torch::kFloat,
                  {}};
    job.source.emplace(o.video, o.fps.num > 0 ? static_cast<double>(o.fps.num) / static_cast<double>(o.fps.den) : 0.0);
    FrameSource& source = *job.source;
    const audio::FrameRate rate = job.rate = o.fps.num > 0 ? o.fps : frame_rate_of(source.fps(), o.video);
    const double fps = static_cast<double>(rate.num) / static_cast<double>(rate.den);
    job.devices = o.devices.empty() ? std::vector<torch::Device>{parse_device(o.device)} : parse_device_list(o.devices);
    const torch::Device device = job.device = job.devices.front();
    const torch::ScalarType dtype = job.dtype = parse_dtype(o.dtype, device);
    const int resolution = model_resolution(o.model);
    const auto mask = mouth_mask(o.model_dir, resolution);
    // The output side too: container, codec, preset, --audio-out and the dump folder fail here, not after the
    // models and the face pass.
    media::VideoWriterOptions wopt;
    wopt.path = o.output;
    wopt.overwrite = o.overwrite;
    wopt.width = source.width();
    wopt.height = source.height();
    wopt.fps_num = static_cast<int>(rate.num);
    wopt.fps_den = static_cast<int>(rate.den);
    wopt.crf = o.crf;
    wopt.preset = o.preset;
    wopt.lossless_rgb = o.lossless;
    media::AudioMuxOptions mux;
    mux.path = o.audio_out.empty() ? o.audio : o.audio_out;
    wopt.audio = mux;
    wopt.metadata = {{"comment", settings_comment(o, device)}};
    // x264 encodes one chunk while the next renders: half the budget each, so they do not fight.
    // LSYNC_ENCODER_THREADS=N sets it (for measurements of the last segment's drain).
    wopt.threads = static_cast<int>(
        env::positive_integer("LSYNC_ENCODER_THREADS", 256).value_or(std::max(1, thread_budget() / 2)));
    { media::VideoWriter probe(wopt); }  // opens everything the final join needs, writes nothing
    LSYNC_CHECK(o.segment_frames > 0 && o.segment_frames % kFramesPerChunk == 0, ErrorCode::Internal,
                "segment length must be a multiple of 16 frames");
    RenderWorkDir work(o.output, {file_fingerprint(o.video), file_fingerprint(o.audio),
                                  resume_settings(o, device, dtype, rate)},
                       o.resume, o.overwrite);
    const int64_t resume_frame = work.done_segments().empty() ? 0 : work.done_segments().back().end_frame;
    try {
        run_passes(job, work, wopt, mask, resume_frame);
        summary.teardown_seconds =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - job.output_written).count();
        if (chunk_timing_printed())  // beside the groups' and segments' lines, for the timelines
            std::fprintf(stderr, "render teardown took %.3f s\n", summary.teardown_seconds);
    } catch (const Error& e) {
        if (e.code() != ErrorCode::Interrupted) throw;
        work.keep();
        // Segments count for --resume only once the face plans are saved (render_workdir.h).
        const auto segments = SegmentWriter::existing(work.path());
        const int64_t kept = work.has_faces() && !segments.empty() ? segments.back().end_frame : 0;
        throw_error(ErrorCode::Interrupted, "interrupted: " + std::to_string(kept) + " frames are kept in " +
                                                work.path() + "; run the same command with --resume to finish");
    }
    summary.peak_rss_bytes = diagnostics::peak_rss_bytes();
    summary.fps = fps;
    summary.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    observer.finished(summary);
    return summary;
}

}  // namespace lsync::pipeline
