// `latentsync bench render`: the whole render per model x attention mode x length, on inputs it makes itself;
// a markdown table on stdout (rows as they finish), every number in --json, one progress line per run on stderr.
// The work is lib/diagnostics/bench_render.h; this file parses and prints.

#include "commands.h"
#include "option_checks.h"
#include "render_cli.h"

#include "core/error.h"
#include "core/files.h"
#include "core/json_limits.h"
#include "core/log.h"
#include "core/untrusted_text.h"
#include "diagnostics/bench_render.h"
#include "diagnostics/bench_render_report.h"

#include <fstream>
#include <iostream>
#include <memory>

namespace lsync::app {

namespace {

struct BenchRenderCli {
    std::vector<std::string> models = {"1.5", "1.6"};
    std::vector<std::string> attention = {"flash", "flex", "standard"};
    std::vector<int64_t> frames = {50, 200, 500};
    std::string device = "auto", devices, dtype = "auto", model_dir, photo, work, weights = "random", json;
    bool keep = false, no_deepcache = false, busy = false, inputs_only = false;
    int repeat = 1, steps = 20;
    int64_t batch_chunks = 0, gemm_size = 0;
    double vram_budget = 0;
};

// The JSON file, rewritten (atomically) after every row: a run cut short by a time limit keeps what it measured.
void write_json(const std::string& path, const diagnostics::BenchRenderReport& report) {
    AtomicOutput out(path, true);
    {
        std::ofstream f(out.temp_path(), std::ios::binary);
        f << dump_json(diagnostics::bench_render_json(report), 2) << "\n";
        LSYNC_CHECK(f.good(), ErrorCode::OutputUnwritable, "could not write " + printable(path, 200));
    }
    out.commit();
}

class Printer : public diagnostics::BenchRenderObserver {
public:
    explicit Printer(std::string json) : json_(std::move(json)) {}
    void started(const diagnostics::BenchRenderReport& r) override {
        std::cerr << "bench render: inputs in " << r.work_dir << "; GEMM peak " << r.gemm.tflops << " TFLOP/s\n";
        std::cout << diagnostics::format_bench_render_header(r) << std::flush;
        if (!json_.empty()) write_json(json_, r);
    }
    void run(int index, int total, const std::string& what) override {
        std::cerr << "bench render [" << index << "/" << total << "] " << what << "\n" << std::flush;
    }
    void row(const diagnostics::BenchRenderReport& r) override {
        std::cout << diagnostics::format_bench_render_row(r.rows.back()) << std::flush;
        if (!json_.empty()) write_json(json_, r);
    }

private:
    std::string json_;
};

int run_bench_render(const BenchRenderCli& c) {
    if (!c.json.empty()) AtomicOutput probe(c.json, true);  // an unwritable --json fails now, not after the runs
    // The render's own settings go through the render command's checks (the same messages).
    RenderCli rc;
    rc.device = c.device;
    rc.devices = c.devices;
    rc.dtype = c.dtype;
    rc.face.model_dir = c.model_dir;
    rc.weights = c.weights == "real" ? "" : "random";
    rc.steps = c.steps;
    rc.no_deepcache = c.no_deepcache;
    rc.batch_chunks = c.batch_chunks;
    rc.vram_budget = c.vram_budget;
    diagnostics::BenchRenderOptions o;
    o.base = to_render_options(rc);
    o.models.clear();
    for (const auto& m : c.models) o.models.push_back(pipeline::parse_model_variant(m));
    o.attention = c.attention;
    o.frames = c.frames;
    o.photo = c.photo;
    o.work_dir = c.work;
    o.keep = c.keep;
    o.inputs_only = c.inputs_only;
    o.busy = c.busy;
    o.weights_from_files = c.weights == "random-files";
    o.repeat = c.repeat;
    o.gemm_size = c.gemm_size;
    o.command = command_line();
    // The renders' own log lines would bury the progress; their failures end up in the rows.
    if (!log::enabled(log::Level::Debug)) setup_logging(LogLevel::Quiet);
    Printer printer(c.json);
    const auto report = diagnostics::bench_render(o, printer);
    if (c.inputs_only) {
        // Names only: the clips are face720p_N.mp4 and speech_N.wav (bench_render_inputs.h).
        std::cout << "inputs in " << report.work_dir << "\n";
    }
    return 0;
}

}  // namespace

CLI::App* add_bench_render(CLI::App& bench, std::function<int()>& run) {
    auto c = std::make_shared<BenchRenderCli>();
    auto* cmd = bench.add_subcommand("render", "The whole render per model x attention x length on a 720p clip it makes");
    cmd->add_option("--models", c->models, "Models, comma-separated: 1.5, 1.6, test-tiny")
        ->delimiter(',')
        ->capture_default_str()
        ->check(CLI::IsMember({"1.5", "1.6", "test-tiny"}));
    cmd->add_option("--attention", c->attention, "Attention modes, comma-separated (strict: no fallback)")
        ->delimiter(',')
        ->capture_default_str()
        ->check(CLI::IsMember({"auto", "flash", "flex", "standard"}));
    cmd->add_option("--frames", c->frames, "Clip lengths in frames at 25 fps, comma-separated")
        ->delimiter(',')
        ->capture_default_str()
        ->check(whole_in(1, 90000));
    cmd->add_option("--device", c->device, "cpu, cuda, cuda:N or auto")->capture_default_str();
    cmd->add_option("--devices", c->devices, "Split each render over several devices: 0,1 | all (as render)");
    cmd->add_option("--dtype", c->dtype, "float32, float16, bfloat16 or auto")->capture_default_str();
    cmd->add_option("--model-dir", c->model_dir,
                    "The model folder (face models, and the networks with --weights real); also where the "
                    "sample photo is looked for");
    cmd->add_option("--photo", c->photo, "The face of the clips (default: sample2.jpg of the face-api fixtures)");
    cmd->add_option("--weights", c->weights,
                    "random (full-size random networks), random-files (the same UNet and VAE written to the work "
                    "folder first and read from there, as checkpoints are) or real (the model folder's files)")
        ->capture_default_str()
        ->check(CLI::IsMember({"random", "random-files", "real"}));
    cmd->add_option("--work", c->work, "Folder for the inputs and outputs (default: a temporary one, removed)");
    cmd->add_flag("--keep", c->keep, "Keep the inputs and the rendered videos");
    cmd->add_flag("--inputs-only", c->inputs_only,
                  "Only make the clips and speech files in --work (face720p_N.mp4, speech_N.wav), render nothing");
    cmd->add_flag("--busy", c->busy,
                  "Record every GPU activity (Kineto profiler) and report each GPU's busy fraction of the render stage");
    cmd->add_option("--repeat", c->repeat, "Runs per row (the row shows the medians)")
        ->capture_default_str()
        ->check(whole_in(1, 100));
    cmd->add_option("--steps", c->steps, "DDIM steps (the released scheduler takes at most 999)")
        ->capture_default_str()
        ->check(whole_in(1, 999));
    cmd->add_flag("--no-deepcache", c->no_deepcache, "Every step runs the whole UNet");
    cmd->add_option("--batch-chunks", c->batch_chunks, "Chunks per UNet call (0 = the render's default)")
        ->capture_default_str()
        ->check(whole_in(0, 64));
    cmd->add_option("--vram-budget", c->vram_budget, "GiB of GPU memory per device each render may hold (0 = the card's; as render)")
        ->capture_default_str()
        ->check(finite_in(0, 4096));
    cmd->add_option("--gemm-size", c->gemm_size, "Size of the peak-measuring GEMM (0 = 8192 on a GPU, 1024 on the CPU)")
        ->capture_default_str()
        ->check(whole_in(0, 32768));
    cmd->add_option("--json", c->json, "Write every number here as JSON (rewritten after each row)");
    run = [c] { return run_bench_render(*c); };
    return cmd;
}

}  // namespace lsync::app
