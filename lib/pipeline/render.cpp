#include "pipeline/render.h"

#include "audio/audio_feature_reader.h"
#include "core/cancel.h"
#include "core/error.h"
#include "core/files.h"
#include "core/log.h"
#include "core/threads.h"
#include "core/version.h"
#include "diagnostics/gpu_memory.h"
#include "diagnostics/process_memory.h"
#include "faces/detect.h"
#include "faces/face_stage.h"
#include "pipeline/async_writer.h"
#include "pipeline/batch_planner.h"
#include "pipeline/chunk_workers.h"
#include "pipeline/device_policy.h"
#include "pipeline/frame_source.h"
#include "pipeline/model_cache.h"
#include "pipeline/mouth_mask.h"
#include "pipeline/render_dumps.h"
#include "pipeline/render_workdir.h"
#include "faces/face_plan_file.h"

#include <c10/core/DeviceGuard.h>

#include <chrono>
#include <deque>
#include <future>
#include <cmath>
#include <numeric>
#include <sstream>

namespace lsync::pipeline {

namespace {

constexpr int64_t kFaceBatch = 16;  // frames per face-step call

/// A video's own frame rate as a fraction: whole rates exactly, NTSC rates as n*1000/1001, others to 1/1000.
audio::FrameRate frame_rate_of(double fps, const std::string& video) {
    LSYNC_CHECK(std::isfinite(fps) && fps > 0 && fps <= audio::kMaxFrameRate, ErrorCode::InputCorrupt,
                video + " declares a frame rate of " + std::to_string(fps) + " fps: pass --fps 25 (or another rate)");
    const double whole = std::round(fps);
    if (std::fabs(fps - whole) < 1e-6) return {static_cast<int64_t>(whole), 1};
    const double ntsc = std::round(fps * 1.001);
    if (std::fabs(fps - ntsc * 1000.0 / 1001.0) < 1e-3) return {static_cast<int64_t>(ntsc) * 1000, 1001};
    const int64_t num = std::llround(fps * 1000), g = std::gcd(num, int64_t{1000});
    return {num / g, 1000 / g};
}

std::string settings_comment(const RenderOptions& o, const torch::Device& device) {
    std::ostringstream s;
    s << "latentsync " << version_string() << " render: model " << model_variant_name(o.model)
      << (o.random_weights ? " with RANDOM weights" : "") << ", seed " << o.seed << ", steps "
      << o.diffusion.steps << ", guidance " << o.diffusion.guidance << ", deepcache "
      << (o.diffusion.deepcache ? "on" : "off") << ", attention " << o.attention << ", lip focus " << o.lip_focus
      << ", smooth " << faces::smooth_mode_name(o.face.smooth) << ", loop " << loop_mode_name(o.loop) << ", device "
      << device.str();
    return s.str();
}

/// Every option that changes the frames (not the audio track, the batch size or the outputs beside the video):
/// a resumed render must have had the same ones. The version too: another build may encode differently.
std::vector<std::pair<std::string, std::string>> resume_settings(const RenderOptions& o, const torch::Device& device,
                                                                 torch::ScalarType dtype, const audio::FrameRate& rate) {
    auto str = [](auto v) {
        std::ostringstream s;
        s << v;
        return s.str();
    };
    const auto& f = o.face;
    std::vector<std::pair<std::string, std::string>> s = {
        {"version", version_string()},
        {"model", model_variant_name(o.model) + std::string(o.random_weights ? " (random weights)" : "")},
        {"--model-dir", o.model_dir},
        {"--unet", o.unet_path},
        {"--vae", o.vae_path},
        {"--whisper", o.whisper_path},
        {"--seed", str(o.seed)},
        {"--steps", str(o.diffusion.steps)},
        {"--guidance", str(o.diffusion.guidance)},
        {"deepcache", o.diffusion.deepcache ? "on" : "off"},
        {"--attention", o.attention},
        {"--lip-focus", str(o.lip_focus)},
        {"--device", device.str()},
        {"--dtype", c10::toString(dtype)},
        {"--audio-segmentation", str(static_cast<int>(o.segmentation))},
        {"--face", str(static_cast<int>(f.choice.kind)) + "/" + str(f.choice.index) + "/" + str(f.choice.point.x) +
                       "," + str(f.choice.point.y)},
        {"--detect-every", str(f.detect_every)},
        {"--face-box", f.fixed_box ? str(f.fixed_box->x) + "," + str(f.fixed_box->y) + "," + str(f.fixed_box->w) +
                                         "," + str(f.fixed_box->h)
                                   : ""},
        {"--face-track", f.track_file},
        {"--smooth", std::string(faces::smooth_mode_name(f.smooth)) + " " + str(f.one_euro.min_cutoff) + "/" +
                         str(f.one_euro.beta) + "/" + str(f.one_euro.d_cutoff)},
        {"--on-missing-face", faces::missing_face_policy_name(f.on_missing)},
        {"anchor rounding", f.round_anchors ? "on" : "off"},
        {"face limits", str(f.min_score) + "/" + str(f.min_width) + "/" + str(f.min_height) + "/" +
                            str(f.min_aspect) + "/" + str(f.max_aspect)},
        {"--face-models", o.face_models},
        {"--loop", loop_mode_name(o.loop)},
        {"--keep-video-tail", o.keep_video_tail ? "on" : "off"},
        {"--fps", str(rate.num) + "/" + str(rate.den)},
        {"--length", o.official_length ? "official" : "audio"},
        {"--crf", str(o.crf)},
        {"--lossless", o.lossless ? "on" : "off"},
        {"--preset", o.preset},
        {"segment frames", str(o.segment_frames)},
    };
    return s;
}

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
};

/// Analyses the faces of the first `n_out` source frames in order (fewer when the video is shorter), appending
/// one plan per frame to `plans`; returns the face step's counts.
faces::FaceCounts face_pass(RenderJob& job, const faces::CropGeometry& geometry, int64_t n_out,
                            std::vector<faces::FramePlan>& plans) {
    const RenderOptions& o = job.options;
    const torch::Device device = job.device;
    FrameSource& source = *job.source;
    std::unique_ptr<faces::FaceDetector> detector;
    auto open_detector = [&]() -> faces::FaceDetector* {
        if (detector) return detector.get();
        faces::DetectorOptions dopt;
        dopt.nms.min_confidence = o.face.min_score;
        dopt.max_batch = faces::default_detector_batch(device);
        detector = faces::open_face_detector(faces::parse_face_models(o.face_models), o.face_model_dir, device, dopt);
        return detector.get();
    };
    if (o.face.track_file.empty() && !o.face.fixed_box) open_detector();  // missing face models: fail before decoding
    faces::FaceStage face_stage(open_detector, o.face, geometry, source.width(), source.height());
    std::vector<torch::Tensor> batch;
    auto flush = [&] {
        for (auto& r : face_stage.process(torch::stack(batch).to(device))) plans.push_back(std::move(r.plan));
        batch.clear();
        job.observer.progress(static_cast<int64_t>(plans.size()), n_out);
    };
    for (int64_t i = 0; i < n_out; ++i) {
        throw_if_interrupted();
        auto frame = source.get(i);
        if (!frame) break;
        batch.push_back(*frame);
        if (static_cast<int64_t>(batch.size()) == kFaceBatch) flush();
    }
    if (!batch.empty()) flush();
    return face_stage.counts();
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
    const torch::ScalarType dtype = job.dtype;
    const int resolution = model_resolution(o.model);
    std::optional<FaceDumper> dumper;
    if (!o.dump_faces.empty()) dumper.emplace(o.dump_faces, mask);

    diagnostics::reset_peak_memory(device);
    watch.restart();
    observer.stage("loading models", 0);
    // One set of models per worker (--devices); a device listed twice loads twice (each worker owns its attention
    // and DeepCache state). The first device also runs the audio and face passes.
    auto load_worker = [&](const torch::Device& d) {
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
        request.dtype = dtype;
        request.attention = make_attention_context(o.attention, o.strict_attention, d, dtype);
        if (o.lip_focus != 1.0) request.attention->set_lip_focus(1 - mask, o.lip_focus);
        ChunkWorkerSetup w;
        w.models = o.model_cache ? o.model_cache->get(request) : load_render_models(request);
        w.runner = std::make_unique<LipsyncChunk>(w.models, mask, o.diffusion, o.noise ? *o.noise : seeded_noise(o.seed));
        const auto plan = plan_chunk_batch(o.batch_chunks, d, resolution, dtype,
                                           static_cast<int64_t>(o.vram_budget_gib * 1024.0 * 1024.0 * 1024.0));
        w.batch = plan.batch;
        log::info(plan.why);
        return w;
    };
    // GPUs load at the same time (reading or drawing the weights is host work, copying them is per device); CPU
    // workers one after the other, as they share the cores anyway.
    std::vector<ChunkWorkerSetup> setups;
    if (device.is_cuda() && job.devices.size() > 1) {
        std::vector<std::future<ChunkWorkerSetup>> loading;
        for (const auto& d : job.devices) loading.push_back(std::async(std::launch::async, load_worker, d));
        for (auto& f : loading) setups.push_back(f.get());
    } else {
        for (const auto& d : job.devices) setups.push_back(load_worker(d));
    }
    const RenderModels models = setups.front().models;
    summary.models = models.description;
    summary.device = device.str();
    if (o.random_weights)
        observer.warning("--weights random: " + models.description + "; useful only to test the pipeline");

    watch.end_stage(0);
    // 1. Audio: the output covers it, never dropping the tail. (The official count, floor(L/2) + 2 frames, runs
    //    past the audio by up to two frames; we stop at the frame that contains its last sample.)
    observer.stage("audio", 0);
    audio::AudioFeatureOptions aopt;
    aopt.segmentation = o.segmentation;
    aopt.device = device;
    aopt.feature_dtype = device.is_cuda() ? torch::kHalf : torch::kFloat;
    audio::AudioFeatureReader audio_reader(audio::file_sample_reader(o.audio),
                                           models::whisper_feature_encoder(models.whisper), aopt);
    const int64_t covering = static_cast<int64_t>(
        std::ceil(static_cast<double>(audio_reader.samples()) * rate.num / (audio::kSampleRate * double(rate.den)) - 1e-9));
    const int64_t n_out =
        std::max<int64_t>(1, o.official_length ? audio_reader.chunk_count(rate) : std::min(covering, audio_reader.chunk_count(rate)));
    log::info("audio: ", audio_reader.samples() / double(audio::kSampleRate), " s -> ", n_out, " frames at ", fps,
              " fps");

    watch.end_stage(1);
    // 2. Faces, once per source frame the output uses.
    const auto geometry = faces::CropGeometry::for_resolution(resolution);
    std::vector<faces::FramePlan> plans;
    faces::FaceCounts face_counts;
    observer.stage("faces", n_out);
    if (work.resumed() && work.has_faces()) {
        plans = faces::load_face_plans(work.faces_path(), resolution);  // the interrupted run's, bit for bit
        face_counts = faces::count_plans(plans);
        observer.progress(static_cast<int64_t>(plans.size()), n_out);
    } else {
        face_counts = face_pass(job, geometry, n_out, plans);
        if (!plans.empty()) faces::save_face_plans(work.faces_path(), plans, resolution);
    }
    if (o.probe) o.probe->plans(plans);
    const int64_t n_src = static_cast<int64_t>(plans.size());
    LSYNC_CHECK(n_src > 0, ErrorCode::InputCorrupt, "no frames could be decoded from " + o.video);
    summary.source_frames = n_src;
    summary.faces = face_counts.summary();
    if (face_counts.aligned == 0)
        observer.warning("no usable face in any frame: the output is the input with the new audio, unchanged");
    if (n_src < n_out)
        log::info("the video has ", n_src, " frames for ", n_out, " of audio: continuing with --loop ",
                  loop_mode_name(o.loop));

    watch.end_stage(2);
    // 3. Render, chunk by chunk, into the encoder thread that writes the work folder's segments; a resumed render
    //    starts after the last complete one (a chunk boundary).
    AsyncWriter writer(std::make_unique<SegmentWriter>(work.path(), wopt, o.segment_frames,
                                                       static_cast<int64_t>(work.done_segments().size())),
                       kFramesPerChunk);
    summary.resumed_frames = summary.frames = resume_frame;
    if (resume_frame > 0) log::info("resuming at frame ", resume_frame, " of ", n_out);
    std::optional<PreviewSheet> preview;
    if (!o.preview.empty()) preview.emplace(o.preview, n_out, mask, geometry);
    const int64_t n_chunks = (n_out + kFramesPerChunk - 1) / kFramesPerChunk;
    const int64_t batch = setups.front().batch;
    log::info("render: ", n_chunks, " chunk(s) of up to ", kFramesPerChunk, " frames, up to ", batch,
              " per UNet call, on ", setups.size(), " worker(s)");
    observer.stage("render", n_out);
    const bool tracing = dumper.has_value() || preview.has_value() || o.probe;
    ChunkWorkers workers(std::move(setups), tracing, o.inject_oom_once,
                         [&observer](const std::string& m) { observer.warning(m); });

    // A chunk between decoding and the encoder.
    struct Pending {
        int64_t first = 0;
        std::vector<torch::Tensor> frames;       // every output frame, in order (CPU)
        std::vector<faces::FramePlan> plans;     // of the frames with a face
        std::vector<torch::Tensor> face_frames;  // those frames
        std::vector<int64_t> rows;               // their rows in `frames`
        ChunkFrames in;                          // the face frames' inputs (frames and matrices on the CPU)
    };
    // Groups handed to the workers (or without faces, waiting only for their turn), oldest first. At most two
    // per worker are in flight: enough to keep every worker busy while the next group is decoded.
    struct Submitted {
        std::vector<Pending> chunks;
        bool has_job = false;
    };
    std::deque<Submitted> submitted;
    const size_t max_in_flight = 2 * workers.workers();
    std::vector<Pending> pending;

    // Takes the oldest group's result and writes its chunks in order.
    auto write_oldest = [&] {
        Submitted s = std::move(submitted.front());
        submitted.pop_front();
        GroupResult result;
        if (s.has_job) result = workers.take();
        summary.oom_retries += result.oom_retries;
        size_t job_index = 0;
        for (Pending& p : s.chunks) {
            if (!p.rows.empty()) {
                const auto& out = result.frames[job_index];
                const ChunkTrace* trace = tracing ? &result.traces[job_index] : nullptr;
                ++job_index;
                if (o.probe) o.probe->chunk(p.first / kFramesPerChunk, p.rows, *trace);
                for (size_t a = 0; a < p.rows.size(); ++a) {
                    const int64_t row = p.rows[a], ai = static_cast<int64_t>(a);
                    p.frames[static_cast<size_t>(row)] = out[ai];
                    if (!dumper && !(preview && preview->wants(p.first + row))) continue;
                    const FrameView view{p.first + row, &p.plans[a], p.face_frames[a], trace->crops[ai],
                                         trace->generated[ai], out[ai]};
                    if (dumper) dumper->add(view);
                    if (preview) preview->add(view);
                }
            }
            summary.lipsynced += static_cast<int64_t>(p.rows.size());
            summary.passed_through += static_cast<int64_t>(p.frames.size() - p.rows.size());
            for (size_t r = 0; r < p.frames.size(); ++r) {
                if (o.probe) o.probe->frame(p.first + static_cast<int64_t>(r), p.frames[r]);
                writer.write(p.frames[r]);
            }
            summary.frames += static_cast<int64_t>(p.frames.size());
            ++summary.chunks;
            observer.progress(summary.frames, n_out);
        }
    };
    // Hands the pending chunks to the workers as one group (the chunks with faces; all have as many face frames).
    auto flush = [&] {
        Submitted s;
        std::vector<ChunkFrames> group;
        for (auto& p : pending)
            if (!p.rows.empty()) group.push_back(p.in);
        s.has_job = !group.empty();
        if (s.has_job) workers.submit(std::move(group));
        s.chunks = std::move(pending);
        pending.clear();
        submitted.push_back(std::move(s));
        while (submitted.size() > max_in_flight) write_oldest();
    };

    const int64_t chunks_per_segment = o.segment_frames / kFramesPerChunk;
    for (int64_t c = std::min(resume_frame, n_out) / kFramesPerChunk; c < n_chunks; ++c) {
        throw_if_interrupted();
        // Batches never cross a segment boundary, so a resumed render batches its chunks as an uninterrupted one.
        if (c % chunks_per_segment == 0 && !pending.empty()) flush();
        Pending p;
        p.first = c * kFramesPerChunk;
        const int64_t count = std::min(kFramesPerChunk, n_out - p.first);
        for (int64_t k = 0; k < count; ++k) {
            const int64_t src = source_frame(p.first + k, n_src, o.loop);
            auto frame = source.get(src);
            LSYNC_CHECK(frame.has_value(), ErrorCode::InputCorrupt,
                        "frame " + std::to_string(src) + " of " + o.video + " could not be decoded a second time "
                        "(the file changed during the render?)");
            p.frames.push_back(*frame);
            if (plans[static_cast<size_t>(src)].align) {
                p.plans.push_back(plans[static_cast<size_t>(src)]);
                p.face_frames.push_back(*frame);
                p.rows.push_back(k);
            }
        }
        const auto windows = audio_reader.chunks(p.first, count, rate);  // every frame's, in order
        if (o.probe) o.probe->audio(p.first, windows);
        if (!p.rows.empty()) {
            p.in.chunk = c;
            p.in.frames = torch::stack(p.face_frames).permute({0, 3, 1, 2});
            p.in.matrices = faces::plan_matrices(p.plans, torch::kCPU);
            // On the audio device (the first worker's): each worker moves it to its own.
            p.in.audio = windows.index_select(0, torch::tensor(p.rows).to(windows.device()));
        }
        // Chunks batch only with chunks of as many face frames; one without faces goes straight through.
        const bool fits = pending.empty() || p.rows.empty() ||
                          (!pending.back().rows.empty() && pending.back().rows.size() == p.rows.size());
        if (!fits) flush();
        pending.push_back(std::move(p));
        if (pending.back().rows.empty() || static_cast<int64_t>(pending.size()) >= batch) flush();
    }
    if (!pending.empty()) flush();
    while (!submitted.empty()) write_oldest();

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

    // 4. Join the segments into the output with the audio, then drop the work folder.
    observer.stage("join", 0);
    {
        media::VideoWriter out(wopt);
        int64_t joined = 0;
        for (const auto& seg : SegmentWriter::existing(work.path())) {
            throw_if_interrupted();
            joined += out.append_segment(seg);
        }
        LSYNC_CHECK(joined >= n_out && (joined == n_out || o.keep_video_tail), ErrorCode::Internal,
                    "the work folder holds " + std::to_string(joined) + " frames, " + std::to_string(n_out) +
                        " expected");
        summary.frames = joined;
        summary.tail_frames = joined - n_out;  // this run's and any resumed run's
        out.finish();
    }
    work.remove();
}

}  // namespace

RenderSummary render(const RenderOptions& o, RenderObserver& observer) {
    const auto started = std::chrono::steady_clock::now();
    torch::NoGradGuard no_grad;
    RenderSummary summary;
    Stopwatch watch{summary};

    // Everything a user can get wrong is checked before the models load.
    check_input_file(o.video, "video");
    check_input_file(o.audio, "audio");
    if (!o.audio_out.empty()) check_input_file(o.audio_out, "--audio-out");
    { AtomicOutput probe(o.output, o.overwrite); }
    if (!o.preview.empty()) AtomicOutput probe(o.preview, o.overwrite);
    audio::file_sample_reader(o.audio)();  // no audio stream, not media, ...: fail now
    RenderJob job{o, observer, summary, watch, std::nullopt, {25, 1}, torch::Device(torch::kCPU), {}, torch::kFloat};
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
    wopt.threads = std::max(1, thread_budget() / 2);
    { media::VideoWriter probe(wopt); }  // opens everything the final join needs, writes nothing
    LSYNC_CHECK(o.segment_frames > 0 && o.segment_frames % kFramesPerChunk == 0, ErrorCode::Internal,
                "segment length must be a multiple of 16 frames");
    RenderWorkDir work(o.output, {file_fingerprint(o.video), file_fingerprint(o.audio),
                                  resume_settings(o, device, dtype, rate)},
                       o.resume, o.overwrite);
    const int64_t resume_frame = static_cast<int64_t>(work.done_segments().size()) * o.segment_frames;
    try {
        run_passes(job, work, wopt, mask, resume_frame);
    } catch (const Error& e) {
        if (e.code() != ErrorCode::Interrupted) throw;
        work.keep();
        const int64_t kept = static_cast<int64_t>(SegmentWriter::existing(work.path()).size()) * o.segment_frames;
        throw_error(ErrorCode::Interrupted, "interrupted: " + std::to_string(kept) + " frames are kept in " +
                                                work.path() + "; run the same command with --resume to finish");
    }
    summary.gpu_peak_bytes = diagnostics::peak_memory_bytes(device);
    summary.peak_rss_bytes = diagnostics::peak_rss_bytes();
    summary.fps = fps;
    summary.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    observer.finished(summary);
    return summary;
}

}  // namespace lsync::pipeline
