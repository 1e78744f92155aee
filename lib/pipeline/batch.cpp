#include "pipeline/batch.h"

#include "core/cancel.h"
#include "core/error.h"
#include "core/files.h"
#include "core/json_limits.h"
#include "core/untrusted_text.h"
#include "pipeline/model_cache.h"
#include "pipeline/render_workdir.h"

#include <c10/util/Exception.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <mutex>
#include <thread>

namespace lsync::pipeline {

namespace fs = std::filesystem;

namespace {

using Clock = std::chrono::steady_clock;

/// A render's events, for one job: warnings go to the batch observer, the rest is the batch's own business.
class JobObserver final : public RenderObserver {
public:
    JobObserver(BatchObserver& batch, std::mutex& mutex, const BatchJob& job) : batch_(batch), mutex_(mutex), job_(job) {}
    void warning(const std::string& message) override {
        std::lock_guard<std::mutex> lock(mutex_);
        batch_.warning(job_, message);
    }

private:
    BatchObserver& batch_;
    std::mutex& mutex_;
    const BatchJob& job_;
};

void fail(JobResult& r, int code, const std::string& error, const std::string& message) {
    r.status = JobStatus::Failed;
    r.exit_code = code;
    r.error = error;
    r.message = printable(message, 4000);
}

/// One job on `device`, every failure caught into the result.
JobResult run_job(const BatchJob& job, const torch::Device& device, ModelCache& cache, BatchObserver& observer,
                  std::mutex& observer_mutex) {
    JobResult r;
    r.device = device.str();
    const auto started = Clock::now();
    std::string why;
    const JobAction action = job_action(job.options.output, &why);
    if (action == JobAction::Skip) {
        r.status = JobStatus::Skipped;
        r.message = printable(why, 4000);
        return r;
    }
    RenderOptions o = job.options;
    o.device = device.str();
    o.devices.clear();
    o.model_cache = &cache;
    o.resume = action == JobAction::Resume;
    r.resumed = o.resume;
    {
        std::lock_guard<std::mutex> lock(observer_mutex);
        observer.job_started(job, r.device, o.resume);
    }
    try {
        JobObserver render_observer(observer, observer_mutex, job);
        const RenderSummary s = render(o, render_observer);
        r.status = JobStatus::Ok;
        r.frames = s.frames;
    } catch (const Error& e) {
        std::string message = e.what();
        if (e.code() == ErrorCode::Interrupted) {
            // render's advice is `--resume`; in a batch, running the batch again does it.
            const std::string advice = "run the same command with --resume to finish";
            if (const auto at = message.find(advice); at != std::string::npos)
                message.replace(at, advice.size(), "the next run of the batch resumes it");
        }
        fail(r, e.exit_code(), error_code_name(e.code()), message);
        if (e.code() == ErrorCode::Interrupted) r.status = JobStatus::Interrupted;
    } catch (const c10::Error& e) {
        fail(r, static_cast<int>(ErrorCode::Backend), error_code_name(ErrorCode::Backend),
             "LibTorch: " + first_line(e.what_without_backtrace()));
    } catch (const std::bad_alloc&) {
        fail(r, static_cast<int>(ErrorCode::Backend), error_code_name(ErrorCode::Backend), "out of memory");
    } catch (const std::exception& e) {
        fail(r, static_cast<int>(ErrorCode::Internal), error_code_name(ErrorCode::Internal),
             std::string("internal error: ") + e.what());
    } catch (...) {
        // Nothing may leave a job thread (std::terminate would take every other job with it).
        fail(r, static_cast<int>(ErrorCode::Internal), error_code_name(ErrorCode::Internal),
             "internal error: an exception of unknown type");
    }
    r.seconds = std::chrono::duration<double>(Clock::now() - started).count();
    return r;
}

}  // namespace

const char* job_status_name(JobStatus status) {
    switch (status) {
        case JobStatus::Ok: return "ok";
        case JobStatus::Skipped: return "skipped";
        case JobStatus::Failed: return "failed";
        case JobStatus::Interrupted: return "interrupted";
        case JobStatus::NotRun: return "not-run";
    }
    return "?";
}

void refuse_batch_file(const BatchManifest& m, const std::vector<RenderOptions>& options, const std::string& path,
                       const std::string& role) {
    // The message is built only on a refusal: a manifest may hold a million jobs of eight files each.
    const auto refuse_if = [&](const std::string& file, const char* what, int64_t line) {
        LSYNC_CHECK(file.empty() || !same_file(path, file), ErrorCode::Usage,
                    role + " " + printable(path, 200) + " is " + what +
                        (line > 0 ? " of line " + std::to_string(line) : std::string()) +
                        ": give it a name of its own");
    };
    refuse_if(m.path, "the manifest", 0);
    for (size_t i = 0; i < options.size() && i < m.jobs.size(); ++i) {
        const RenderOptions& o = options[i];
        const std::pair<const std::string*, const char*> files[] = {
            {&o.video, "the video"},      {&o.audio, "the audio"},           {&o.output, "the output"},
            {&o.audio_out, "--audio-out's file"}, {&o.face.track_file, "the face track"},
            {&o.unet_path, "the UNet file"}, {&o.vae_path, "the VAE file"}, {&o.whisper_path, "the Whisper file"}};
        for (const auto& [file, what] : files) refuse_if(*file, what, m.jobs[i].line);
    }
}

JobAction job_action(const std::string& output, std::string* why) {
    std::error_code ec;
    const bool folder = fs::is_directory(fs::symlink_status(RenderWorkDir::folder_for(output), ec));
    const bool done = fs::is_regular_file(fs::symlink_status(output, ec));
    if (done) {
        if (why)
            *why = folder ? "the output exists (an old work folder is beside it: remove " +
                                RenderWorkDir::folder_for(output) + ")"
                          : "the output exists";
        return JobAction::Skip;
    }
    // Anything else at the output's path (a folder, a link) is the render's to refuse, with its exit code.
    return folder ? JobAction::Resume : JobAction::Render;
}

int64_t BatchResult::count(JobStatus status) const {
    int64_t n = 0;
    for (const auto& j : jobs) n += j.status == status;
    return n;
}

BatchResult run_batch(std::vector<BatchJob> jobs, const std::vector<torch::Device>& devices, BatchObserver& observer) {
    LSYNC_CHECK(!devices.empty(), ErrorCode::Usage, "batch: no device to run on");
    const auto started = Clock::now();
    BatchResult result;
    result.jobs.resize(jobs.size());
    std::atomic<size_t> next{0};
    std::mutex observer_mutex;
    // The networks, warm from one job to the next; threads on one device (--devices 0,0) share one set's weights.
    ModelCache cache;
    auto worker = [&](torch::Device device) {
        torch::NoGradGuard no_grad;
        for (;;) {
            if (interrupt_requested()) return;
            const size_t i = next.fetch_add(1);
            if (i >= jobs.size()) return;
            JobResult r = run_job(jobs[i], device, cache, observer, observer_mutex);
            std::lock_guard<std::mutex> lock(observer_mutex);
            result.jobs[i] = r;
            if (r.status != JobStatus::NotRun) observer.job_finished(jobs[i], r);
        }
    };
    if (devices.size() == 1) {
        worker(devices.front());
    } else {
        std::vector<std::thread> threads;
        for (const auto& d : devices) threads.emplace_back(worker, d);
        for (auto& t : threads) t.join();
    }
    result.interrupted = interrupt_requested();
    result.seconds = std::chrono::duration<double>(Clock::now() - started).count();
    return result;
}

nlohmann::json batch_summary_json(const std::vector<BatchJob>& jobs, const BatchResult& result,
                                  const std::string& manifest, const Shard& shard,
                                  const std::vector<torch::Device>& devices) {
    using nlohmann::json;
    json list = json::array();
    int64_t frames = 0;
    for (size_t i = 0; i < jobs.size(); ++i) {
        const auto& spec = jobs[i].spec;
        const JobResult& r = result.jobs[i];
        frames += r.frames;
        list.push_back({{"job", spec.index},
                        {"line", spec.line},
                        {"video", utf8_or_escaped(spec.video)},
                        {"audio", utf8_or_escaped(spec.audio)},
                        {"output", utf8_or_escaped(spec.output)},
                        {"status", job_status_name(r.status)},
                        {"exit_code", r.exit_code},
                        {"error", r.error},
                        {"message", r.message},
                        {"seconds", r.seconds},
                        {"frames", r.frames},
                        {"resumed", r.resumed},
                        {"device", r.device}});
    }
    json device_names = json::array();
    for (const auto& d : devices) device_names.push_back(d.str());
    return {{"manifest", utf8_or_escaped(manifest)},
            {"shard", {{"index", shard.index}, {"count", shard.count}, {"source", shard.source}}},
            {"devices", device_names},
            {"totals",
             {{"jobs", static_cast<int64_t>(jobs.size())},
              {"ok", result.count(JobStatus::Ok)},
              {"skipped", result.count(JobStatus::Skipped)},
              {"failed", result.count(JobStatus::Failed)},
              {"interrupted", result.count(JobStatus::Interrupted)},
              {"not_run", result.count(JobStatus::NotRun)},
              {"frames", frames},
              {"seconds", result.seconds}}},
            {"interrupted", result.interrupted},
            {"jobs", list}};
}

}  // namespace lsync::pipeline
