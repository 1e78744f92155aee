#pragma once
// `latentsync bench render`: the whole render, end to end and in process (pipeline::render, the function
// `latentsync render` calls), for every model x attention mode x clip length, on inputs it makes itself
// (bench_render_inputs.h). Per run: wall time, the render's own stage times, the stages inside the workers' UNet
// calls, GPU and host peaks, and achieved TFLOP/s against the device's GEMM throughput measured in the same
// process. A run that fails (an attention backend this device lacks, out of memory) becomes a row that says so.
// The table and JSON come from bench_render_report.h.

#include "diagnostics/gemm_peak.h"
#include "pipeline/render.h"

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace lsync::diagnostics {

struct BenchRenderOptions {
    /// Every render setting but the inputs, output, model and attention, which each run sets (the attention
    /// is strict: a backend that cannot run fails its row instead of falling back to another).
    pipeline::RenderOptions base;
    std::vector<pipeline::ModelVariant> models = {pipeline::ModelVariant::V15, pipeline::ModelVariant::V16};
    std::vector<std::string> attention = {"flash", "flex", "standard"};
    std::vector<int64_t> frames = {50, 200, 500};
    std::string photo;      ///< the face of the clips
    std::string work_dir;   ///< inputs and outputs; empty: a temporary folder, removed at the end unless `keep`
    bool keep = false;      ///< keep the inputs and the rendered outputs
    /// Make the inputs in `work_dir` (required) and stop: the same clips, for renders run outside the bench
    /// (scripts/bench-devices.sh). No row is run; the report names the folder.
    bool inputs_only = false;
    /// The random UNet and VAE written as files in the work folder first (bench_render_model_files.h) and read by
    /// each run, as a user's render reads its checkpoints; base.random_weights must be set (the Whisper stays
    /// drawn: it is small).
    bool weights_from_files = false;
    int repeat = 1;         ///< runs per row; the row holds the medians
    /// Record every GPU activity of each run (device_busy.h) and report the fraction of the render stage each GPU
    /// was busy. The profiler slows launches a little and holds every record in host memory until the run ends,
    /// so the row's times and host peak include its cost (and 1.13's whole-microsecond records drop sub-µs
    /// kernels): off unless asked, and a row measured with it is not a speed row.
    bool busy = false;
    int64_t gemm_size = 0;  ///< 0: gemm_peak.h's default for the device
    std::string command;    ///< the command line, for the report's header
};

struct BenchRenderRow {
    std::string model;      ///< "1.5", "1.6", "test-tiny"
    int resolution = 0;
    std::string attention;
    int64_t frames = 0;     ///< requested length
    int runs = 0;           ///< runs that finished
    std::string error;      ///< why the row failed (one line); empty when it ran
    /// Every number of the row, keyed by its JSON pointer in the report ("/stage_seconds/render"), the median
    /// over the runs.
    std::map<std::string, double> values;
    /// Each run's wall clock, render stage, frame rates and GPU peak (allocator), in the order run (with --repeat,
    /// the first run of a process pays its first uses; the later ones show a warm process).
    std::vector<std::map<std::string, double>> each_run;
    bool has(const std::string& key) const { return values.count(key) > 0; }
    double at(const std::string& key) const;  ///< 0 when absent
};

struct BenchRenderReport {
    std::string device;              ///< "cuda:0", "cpu"
    std::string devices;             ///< --devices as given, empty for one device
    std::string device_description;  ///< product name and memory (device_description.h)
    int peak_devices = 1;            ///< distinct GPUs the peak is multiplied by (1 on the CPU)
    std::string dtype;
    std::string date;                ///< UTC, YYYY-MM-DD HH:MM
    std::string version;             ///< version and git description (configure time)
    std::string command;
    std::string weights;             ///< "random", "random-files" or "real"
    pipeline::DiffusionSettings diffusion;
    GemmPeak gemm;
    std::string work_dir;            ///< where the inputs were (gone unless kept)
    bool host_peak_per_run = false;  ///< the host peak was restarted before each run (host_peak_reset.h)
    std::vector<BenchRenderRow> rows;
};

/// What bench_render tells its caller while it runs.
class BenchRenderObserver {
public:
    virtual ~BenchRenderObserver() = default;
    /// The inputs are made and the GEMM peak measured; the header is known, no row yet.
    virtual void started(const BenchRenderReport& report) { (void)report; }
    /// Run `index` of `total` (1-based) begins.
    virtual void run(int index, int total, const std::string& what) { (void)index, (void)total, (void)what; }
    /// A row is complete (it is the last of report.rows).
    virtual void row(const BenchRenderReport& report) { (void)report; }
};

BenchRenderReport bench_render(const BenchRenderOptions& options, BenchRenderObserver& observer);

}  // namespace lsync::diagnostics
