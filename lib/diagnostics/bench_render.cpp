#include "diagnostics/bench_render.h"

#include "core/error.h"
#include "core/files.h"
#include "core/version.h"
#include "diagnostics/bench_render_inputs.h"
#include "diagnostics/bench_render_model_files.h"
#include "diagnostics/device_description.h"
#include "diagnostics/device_busy.h"
#include "diagnostics/device_memory_sampler.h"
#include "diagnostics/gpu_memory.h"
#include "diagnostics/host_peak_reset.h"
#include "diagnostics/render_flops.h"
#include "pipeline/device_policy.h"

#include <c10/util/Exception.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <map>
#include <optional>

namespace fs = std::filesystem;

namespace lsync::diagnostics {

double BenchRenderRow::at(const std::string& key) const {
    const auto it = values.find(key);
    return it == values.end() ? 0.0 : it->second;
}

namespace {

/// The scratch folder: --work as given (made if missing, never removed), or a new temporary folder removed at
/// the end unless kept.
class WorkFolder {
public:
    WorkFolder(const std::string& given, bool keep) : keep_(keep || !given.empty()) {
        if (!given.empty()) {
            std::error_code ec;
            fs::create_directories(given, ec);
            LSYNC_CHECK(fs::is_directory(given, ec), ErrorCode::OutputUnwritable,
                        "--work " + given + ": not a folder that can be created");
            path_ = given;
            return;
        }
        std::string pattern = (fs::temp_directory_path() / "lsync-bench-render.XXXXXX").string();
        LSYNC_CHECK(mkdtemp(pattern.data()) != nullptr, ErrorCode::OutputUnwritable,
                    "cannot make a temporary folder in " + fs::temp_directory_path().string());
        path_ = pattern;
    }
    ~WorkFolder() {
        if (!keep_) remove_tree(path_);  // not fs::remove_all: see core/files.h
    }
    WorkFolder(const WorkFolder&) = delete;
    WorkFolder& operator=(const WorkFolder&) = delete;
    const std::string& path() const { return path_; }

private:
    bool keep_;
    std::string path_;
};

/// The render's own events are not the benchmark's output: it reports per run, when the run is done.
class QuietRender : public pipeline::RenderObserver {
public:
    explicit QuietRender(DeviceBusyRecorder* busy = nullptr) : busy_(busy) {}
    // The busy window is the render stage: from its start to the join (stage names: pipeline/render.cpp); the
    // second window starts when the first frames are out.
    void stage(const std::string& name, int64_t) override {
        if (!busy_) return;
        if (name == "render") busy_->mark_start();
        if (name == "join") busy_->mark_end();
    }
    void progress(int64_t done, int64_t) override {
        if (busy_ && !first_output_seen_ && done > 0) {
            first_output_seen_ = true;
            busy_->mark_first_output();
        }
    }

private:
    bool first_output_seen_ = false;
    DeviceBusyRecorder* busy_;
};

std::string utc_now() {
    const std::time_t t = std::time(nullptr);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M UTC", &tm);
    return buf;
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    const size_t n = v.size();
    return n == 0 ? 0.0 : n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

using Values = std::map<std::string, double>;

// Idle-time labels kept by name per GPU in a --busy row (device_idle.h).
constexpr size_t kIdleShares = 12;
// The largest excesses of the worker's first group over a later one (--busy) kept by name.
constexpr size_t kFirstGroupShares = 20;

/// One render and its numbers, keyed by JSON pointer.
Values measure_run(const pipeline::RenderOptions& o, const std::vector<torch::Device>& devices, double peak_tflops,
                   bool busy) {
    // Each run on its own: the allocator's cached blocks of the run before would count as "before" on the
    // driver's side, and the host peak would carry the run before's.
    for (const auto& d : devices) release_cached_memory(d);
    reset_peak_rss();
    DeviceMemorySampler sampler(devices);
    std::optional<DeviceBusyRecorder> recorder;
    if (busy) recorder.emplace(std::any_of(devices.begin(), devices.end(), [](const auto& d) { return d.is_cuda(); }));
    QuietRender quiet(recorder ? &*recorder : nullptr);
    const auto started = std::chrono::steady_clock::now();
    const pipeline::RenderSummary s = pipeline::render(o, quiet);
    const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    const auto driver = sampler.stop();
    const auto busy_devices = recorder ? recorder->stop() : std::vector<DeviceBusy>{};

    Values v;
    v["/wall_seconds"] = wall;
    v["/frames_out"] = static_cast<double>(s.frames);
    v["/lipsynced"] = static_cast<double>(s.lipsynced);
    v["/output_fps"] = wall > 0 ? static_cast<double>(s.frames) / wall : 0.0;
    static const char* stages[4] = {"models", "audio", "faces", "render"};
    for (int k = 0; k < 4; ++k) v[std::string("/stage_seconds/") + stages[k]] = s.stage_seconds[k];
    const double render_s = s.stage_seconds[3];
    v["/render_fps"] = render_s > 0 ? static_cast<double>(s.frames) / render_s : 0.0;
    for (const auto& [name, seconds] : s.render_thread_seconds) v["/render_thread_seconds/" + name] = seconds;
    for (size_t w = 0; w < s.worker_busy_seconds.size(); ++w)
        v["/worker_busy_seconds/" + std::to_string(w)] = s.worker_busy_seconds[w];
    pipeline::ChunkStageSeconds all;
    for (size_t w = 0; w < s.worker_stage_seconds.size(); ++w) {
        all += s.worker_stage_seconds[w];
        for (const auto& [name, seconds] : s.worker_stage_seconds[w].named())
            v["/worker_stage_seconds/" + std::to_string(w) + "/" + name] = seconds;
    }
    for (const auto& [name, seconds] : all.named()) v["/chunk_stage_seconds/" + name] = seconds;
    v["/gpu_peak_bytes"] = static_cast<double>(s.gpu_peak_bytes);
    v["/gpu_peak_after_faces_bytes"] = static_cast<double>(s.gpu_peak_after_faces_bytes);
    v["/oom_retries"] = static_cast<double>(s.oom_retries);
    // Whether this run met a first-use journal (first_use_journal.h): a machine's first GPU render of a model has
    // none and writes it, so a table's first row of each model starts colder than the rows after it.
    v["/prewarmed_convs"] = static_cast<double>(s.prewarmed_convs);
    v["/prewarmed_ops"] = static_cast<double>(s.prewarmed_ops);
    v["/gpu_reserved_peak_bytes"] = static_cast<double>(s.gpu_reserved_peak_bytes);
    for (size_t d = 0; d < driver.size(); ++d) {
        const std::string at = "/gpu_driver/" + std::to_string(d);
        v[at + "/before_bytes"] = static_cast<double>(driver[d].before_bytes);
        v[at + "/peak_bytes"] = static_cast<double>(driver[d].peak_bytes);
        v[at + "/total_bytes"] = static_cast<double>(driver[d].total_bytes);
    }
    v["/host_peak_rss_bytes"] = static_cast<double>(s.peak_rss_bytes);
    for (const auto& b : busy_devices) {
        // Keyed by name, not index: a numeric first key would make the JSON an array with nulls for idle GPUs.
        const std::string at = "/gpu_busy/cuda:" + std::to_string(b.device);
        v[at + "/fraction"] = b.fraction();
        v[at + "/busy_seconds"] = b.busy_seconds;
        v[at + "/window_seconds"] = b.window_seconds;
        if (b.after_first_window_seconds > 0) {
            v[at + "/after_first_fraction"] = b.fraction_after_first();
            v[at + "/after_first_window_seconds"] = b.after_first_window_seconds;
        }
        // The idle time by stage and host op, the largest shares by name and the rest together.
        double rest = 0;
        for (size_t k = 0; k < b.idle.size(); ++k) {
            if (k >= kIdleShares) {
                rest += b.idle[k].seconds;
                continue;
            }
            std::string where = b.idle[k].where;
            std::replace(where.begin(), where.end(), '/', '|');  // a JSON pointer's separator
            std::replace(where.begin(), where.end(), '~', '-');  // and its escape
            v["/gpu_idle/cuda:" + std::to_string(b.device) + "/" + where] = b.idle[k].seconds;
        }
        if (rest > 0) v["/gpu_idle/cuda:" + std::to_string(b.device) + "/(the rest)"] = rest;
        // The worker's host time in its first group against a later one, by stage and op: the largest excesses.
        for (size_t k = 0; k < b.first_group.size() && k < kFirstGroupShares; ++k) {
            std::string where = b.first_group[k].where;
            std::replace(where.begin(), where.end(), '/', '|');
            std::replace(where.begin(), where.end(), '~', '-');
            const std::string at_share = "/first_group_host/cuda:" + std::to_string(b.device) + "/" + where;
            v[at_share + "/first_seconds"] = b.first_group[k].first_seconds;
            v[at_share + "/later_seconds"] = b.first_group[k].later_seconds;
        }
    }

    const auto flops = render_flops(pipeline::model_resolution(o.model), o.diffusion.steps, o.diffusion.guidance,
                                    o.diffusion.deepcache);
    if (flops) {
        // Only the lip-synced frames went through the networks.
        const double tflop = flops->total_tflop() * static_cast<double>(s.lipsynced);
        v["/tflop_per_frame/unet"] = flops->unet_tflop;
        v["/tflop_per_frame/vae"] = flops->vae_tflop;
        v["/tflop"] = tflop;
        if (render_s > 0) v["/achieved_tflops"] = tflop / render_s;
        if (render_s > 0 && peak_tflops > 0) v["/peak_fraction"] = tflop / render_s / peak_tflops;
        // The UNet's own rate while it ran (all workers' UNet time together).
        if (all.unet > 0) v["/unet_tflops"] = flops->unet_tflop * static_cast<double>(s.lipsynced) / all.unet;
    }
    return v;
}

std::string photo_or_default(const BenchRenderOptions& o) {
    if (!o.photo.empty()) return o.photo;
    // The repository's sample photo: next to the face models when --model-dir is tests/fixtures/face-api (as the
    // tests and the render scripts run), or from the repository root.
    const std::vector<fs::path> candidates = {fs::path(o.base.model_dir) / "sample2.jpg",
                                              fs::path(o.base.model_dir) / "face-api" / "sample2.jpg",
                                              fs::path("tests/fixtures/face-api/sample2.jpg")};
    std::error_code ec;
    for (const auto& c : candidates)
        if (fs::is_regular_file(c, ec)) return c.string();
    throw_error(ErrorCode::InputMissing, "no sample photo: --photo FILE (a picture with a face) is needed when "
                                         "neither --model-dir nor the current folder holds sample2.jpg "
                                         "(tests/fixtures/face-api)");
}

}  // namespace

BenchRenderReport bench_render(const BenchRenderOptions& o, BenchRenderObserver& observer) {
    LSYNC_CHECK(!o.models.empty() && !o.attention.empty() && !o.frames.empty(), ErrorCode::Usage,
                "bench render: --models, --attention and --frames need at least one value each");
    LSYNC_CHECK(o.repeat >= 1, ErrorCode::Usage, "--repeat must be at least 1");
    LSYNC_CHECK(!o.inputs_only || !o.work_dir.empty(), ErrorCode::Usage,
                "bench render --inputs-only needs --work DIR (where the clips go)");
    const std::string photo = photo_or_default(o);
    check_input_file(photo, "photo");
    const std::vector<torch::Device> devices = o.base.devices.empty()
                                                   ? std::vector<torch::Device>{pipeline::parse_device(o.base.device)}
                                                   : pipeline::parse_device_list(o.base.devices);
    const torch::Device device = devices.front();

    BenchRenderReport report;
    report.device = device.str();
    report.devices = o.base.devices;
    report.device_description = device_description(device);
    report.dtype = c10::toString(pipeline::parse_dtype(o.base.dtype, device));
    report.date = utc_now();
    report.version = version_string();
    report.command = o.command;
    LSYNC_CHECK(!o.weights_from_files || o.base.random_weights, ErrorCode::Internal,
                "bench render: model files are written for random weights only");
    report.weights = o.weights_from_files ? "random-files" : o.base.random_weights ? "random" : "real";
    report.diffusion = o.base.diffusion;
    std::vector<int> gpus;
    for (const auto& d : devices)
        if (d.is_cuda() && std::find(gpus.begin(), gpus.end(), d.index()) == gpus.end()) gpus.push_back(d.index());
    report.peak_devices = std::max<int>(1, static_cast<int>(gpus.size()));

    WorkFolder work(o.work_dir, o.keep);
    report.work_dir = work.path();
    BenchInputOptions in;
    in.photo = photo;
    in.folder = work.path();
    in.frames = o.frames;
    const std::vector<BenchClip> clips = make_bench_inputs(in);
    if (o.inputs_only) return report;
    std::map<pipeline::ModelVariant, BenchModelFiles> model_files;
    if (o.weights_from_files)
        for (const auto model : o.models)
            model_files[model] = write_bench_model_files(model, (fs::path(work.path()) / "models").string());
    report.gemm = measure_gemm_peak(device, o.gemm_size);
    report.host_peak_per_run = reset_peak_rss();
    observer.started(report);

    const int total = static_cast<int>(o.models.size() * o.attention.size() * clips.size()) * o.repeat;
    int index = 0;
    for (const auto model : o.models) {
        for (const auto& attention : o.attention) {
            for (const auto& clip : clips) {
                BenchRenderRow row;
                row.model = pipeline::model_variant_name(model);
                row.resolution = pipeline::model_resolution(model);
                row.attention = attention;
                row.frames = clip.frames;
                pipeline::RenderOptions r = o.base;
                r.video = clip.video;
                r.audio = clip.audio;
                r.output = (fs::path(work.path()) / ("render-" + row.model + "-" + attention + "-" +
                                                     std::to_string(clip.frames) + ".mp4")).string();
                r.overwrite = true;
                r.resume = false;
                r.model = model;
                if (o.weights_from_files) {
                    r.unet_path = model_files.at(model).unet;
                    r.vae_path = model_files.at(model).vae;
                }
                r.attention = attention;
                r.strict_attention = true;  // measure the mode asked for, or say it cannot run
                r.time_chunk_stages = true;
                std::vector<Values> runs;
                for (int k = 0; k < o.repeat && row.error.empty(); ++k) {
                    observer.run(++index, total, row.model + " " + attention + " " + std::to_string(clip.frames) +
                                                     " frames" + (o.repeat > 1 ? " #" + std::to_string(k + 1) : ""));
                    try {
                        runs.push_back(measure_run(r, devices, report.gemm.tflops * report.peak_devices, o.busy));
                    } catch (const Error& e) {
                        if (e.code() == ErrorCode::Interrupted) throw;
                        row.error = first_line(e.what());
                    } catch (const c10::Error& e) {
                        row.error = first_line(e.what_without_backtrace());
                    } catch (const std::bad_alloc&) {
                        row.error = "out of host memory";
                    }
                    if (!row.error.empty()) index += o.repeat - k - 1;  // the row's other runs are skipped
                    std::error_code ec;
                    if (!o.keep) fs::remove(r.output, ec);
                }
                if (row.error.empty()) {
                    row.runs = static_cast<int>(runs.size());
                    // The GPU peak too: a memory target holds for every run, not for the median.
                    const char* each_keys[] = {"/wall_seconds", "/stage_seconds/render", "/render_fps", "/output_fps",
                                               "/gpu_peak_bytes"};
                    for (const auto& run : runs) {
                        std::map<std::string, double> kept;
                        for (const char* key : each_keys)
                            if (auto it = run.find(key); it != run.end()) kept.emplace(key, it->second);
                        row.each_run.push_back(std::move(kept));
                    }
                    // Idle shares and first-group shares (--busy) vary in name from run to run: every name any
                    // run has, 0 where a run lacks it. Other numbers: the median where every run has them, else
                    // the first run's.
                    std::map<std::string, double> first;
                    for (const auto& run : runs)
                        for (const auto& [key, value] : run) first.emplace(key, value);
                    for (const auto& [key, value] : first) {
                        const bool idle_share =
                            key.rfind("/gpu_idle/", 0) == 0 || key.rfind("/first_group_host/", 0) == 0;
                        std::vector<double> all;
                        for (const auto& run : runs) {
                            if (auto it = run.find(key); it != run.end())
                                all.push_back(it->second);
                            else if (idle_share)
                                all.push_back(0.0);
                        }
                        row.values[key] = all.size() == runs.size() ? median(all) : value;
                    }
                }
                report.rows.push_back(std::move(row));
                observer.row(report);
            }
        }
    }
    return report;
}

}  // namespace lsync::diagnostics
