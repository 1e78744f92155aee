// `latentsync batch MANIFEST`: options in, lib/pipeline/batch.h runs the jobs (docs/scale-out.md).

#include "commands.h"
#include "option_checks.h"
#include "render_cli.h"
#include "render_progress.h"

#include "core/error.h"
#include "core/files.h"
#include "core/json_limits.h"
#include "core/log.h"
#include "core/untrusted_text.h"
#include "pipeline/batch.h"
#include "pipeline/device_policy.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <memory>

namespace lsync::app {

namespace {

/// Exit code of a batch in which at least one job failed (each job's own code is in the summary). Not an
/// ErrorCode: no single failure maps to it. Documented in docs/cli.md.
constexpr int kExitJobsFailed = 17;

struct BatchCli {
    std::string manifest;
    std::string devices;
    std::string shard;
    int64_t shard_count = 0;
    std::string json_summary;
    bool json_log = false;
    RenderCli defaults;
};

/// The row's options applied over the batch defaults, through the same CLI11 options and checks as `render`.
/// Every problem is an error naming the manifest line.
pipeline::RenderOptions job_options(const BatchCli& b, const pipeline::BatchJobSpec& spec, const std::string& name) {
    const std::string where = printable(name, 200) + " line " + std::to_string(spec.line) + ": ";
    RenderCli c = b.defaults;
    CLI::App row{"manifest row", "batch"};
    add_render_options(&row, c, RenderOptionScope::Batch);
    // CLI11 parses a reversed argv. `--name=value` keeps values that start with '-' values.
    std::vector<std::string> args;
    for (const auto& [option, value] : spec.options) args.push_back("--" + option + "=" + value);
    std::reverse(args.begin(), args.end());
    try {
        row.parse(args);
    } catch (const CLI::ParseError& e) {
        throw_error(ErrorCode::Usage, where + printable(e.what(), 400));
    }
    c.video = spec.video;
    c.audio = spec.audio;
    c.output = spec.output;
    try {
        return to_render_options(c);
    } catch (const Error& e) {
        throw_error(e.code(), where + e.what());
    }
}

/// Per-job lines on stderr: JSON events (--json-log) or log lines.
class BatchPrinter final : public pipeline::BatchObserver {
public:
    explicit BatchPrinter(bool json) : json_(json) {
        // The library's own warnings (not tied to a job's observer) become events too, as in `render --json-log`.
        if (json_) log::set_warning_hook([](const std::string& m) { emit_json_event({{"event", "warning"}, {"message", m}}); });
    }
    ~BatchPrinter() override {
        if (json_) log::set_warning_hook(nullptr);
    }
    void job_started(const pipeline::BatchJob& job, const std::string& device, bool resuming) override {
        if (json_)
            emit_json_event({{"event", "job_start"},
                             {"job", job.spec.index},
                             {"line", job.spec.line},
                             {"output", utf8_or_escaped(job.spec.output)},
                             {"device", device},
                             {"resume", resuming}});
        else
            log::info(tag(job), resuming ? "resuming " : "rendering ", printable(job.spec.output, 200), " on ", device);
    }
    void job_finished(const pipeline::BatchJob& job, const pipeline::JobResult& r) override {
        const bool failed = r.status == pipeline::JobStatus::Failed || r.status == pipeline::JobStatus::Interrupted;
        if (json_) {
            nlohmann::json e = {{"event", failed ? "job_failed" : "job_done"},
                                {"job", job.spec.index},
                                {"line", job.spec.line},
                                {"output", utf8_or_escaped(job.spec.output)},
                                {"status", pipeline::job_status_name(r.status)},
                                {"exit_code", r.exit_code},
                                {"seconds", r.seconds},
                                {"frames", r.frames},
                                {"resumed", r.resumed}};
            if (!r.error.empty()) e["error"] = r.error;
            if (!r.message.empty()) e["message"] = r.message;
            emit_json_event(e);
        } else if (failed) {
            log::warn(tag(job), pipeline::job_status_name(r.status), " (exit ", r.exit_code, ", ", r.error, "): ",
                      r.message);
        } else if (r.status == pipeline::JobStatus::Skipped) {
            log::info(tag(job), "skipped: ", r.message, ": ", printable(job.spec.output, 200));
        } else {
            char line[96];
            std::snprintf(line, sizeof line, "done: %lld frames in %.1f s%s", static_cast<long long>(r.frames),
                          r.seconds, r.resumed ? " (resumed)" : "");
            log::info(tag(job), line, ": ", printable(job.spec.output, 200));
        }
    }
    void warning(const pipeline::BatchJob& job, const std::string& message) override {
        if (json_)
            emit_json_event({{"event", "warning"}, {"job", job.spec.index}, {"message", message}});
        else
            log::warn(tag(job), message);
    }

private:
    static std::string tag(const pipeline::BatchJob& job) {
        return "job " + std::to_string(job.spec.index) + " (line " + std::to_string(job.spec.line) + "): ";
    }
    bool json_;
};

void write_summary(const std::string& path, const nlohmann::json& summary) {
    const std::string text = dump_json(summary, 2) + "\n";
    if (path.empty() || path == "-") {
        std::cout << text << std::flush;
        return;
    }
    AtomicOutput out(path, true);
    {
        std::ofstream f(out.temp_path(), std::ios::binary);
        f << text;
        LSYNC_CHECK(f.good(), ErrorCode::OutputUnwritable, "could not write the summary " + printable(path, 200));
    }
    out.commit();
}

int run(const BatchCli& b) {
    // Everything that can be refused is refused before the first job: the manifest, every row's options (all
    // rows, not only this shard's, so that every shard of an array refuses a bad manifest alike), the shard,
    // the devices and the summary's folder.
    const pipeline::BatchManifest manifest = pipeline::read_batch_manifest(b.manifest);
    std::vector<pipeline::RenderOptions> options;
    options.reserve(manifest.jobs.size());
    for (const auto& spec : manifest.jobs) options.push_back(job_options(b, spec, b.manifest));
    LSYNC_CHECK(b.shard.empty() || b.shard_count == 0, ErrorCode::Usage,
                "--shard-count goes with JOB_COMPLETION_INDEX; --shard K/N already says N");
    const pipeline::Shard shard = !b.shard.empty() ? pipeline::parse_shard(b.shard)
                                                   : pipeline::shard_from_environment(b.shard_count, [](const char* v) {
                                                         return std::getenv(v);
                                                     });
    const std::vector<torch::Device> devices =
        b.devices.empty() ? std::vector<torch::Device>{pipeline::parse_device("auto")}
                          : pipeline::parse_device_list(b.devices);
    if (!b.json_summary.empty() && b.json_summary != "-") {
        pipeline::refuse_batch_file(manifest, options, b.json_summary, "--json-summary");
        AtomicOutput probe(b.json_summary, true);
    }

    std::vector<pipeline::BatchJob> jobs;
    for (size_t i = 0; i < manifest.jobs.size(); ++i)
        if (shard.contains(manifest.jobs[i].index)) jobs.push_back({manifest.jobs[i], options[i]});
    std::string device_names;
    for (const auto& d : devices) device_names += (device_names.empty() ? "" : ",") + d.str();
    log::info("batch: ", jobs.size(), " of ", manifest.jobs.size(), " jobs (shard ", shard.index, "/", shard.count,
              shard.source == "all" ? "" : ", from " + shard.source, ") on ", device_names);
    if (b.json_log)
        emit_json_event({{"event", "batch_start"},
                         {"manifest", utf8_or_escaped(b.manifest)},
                         {"jobs", jobs.size()},
                         {"manifest_jobs", manifest.jobs.size()},
                         {"shard", {{"index", shard.index}, {"count", shard.count}, {"source", shard.source}}},
                         {"devices", device_names}});

    BatchPrinter printer(b.json_log);
    const pipeline::BatchResult result = pipeline::run_batch(jobs, devices, printer);
    const auto summary = pipeline::batch_summary_json(jobs, result, b.manifest, shard, devices);
    if (b.json_log) emit_json_event({{"event", "batch_done"}, {"totals", summary["totals"]}});
    write_summary(b.json_summary, summary);

    const int64_t failed = result.count(pipeline::JobStatus::Failed);
    const std::string counts = std::to_string(result.count(pipeline::JobStatus::Ok)) + " ok, " +
                               std::to_string(result.count(pipeline::JobStatus::Skipped)) + " skipped, " +
                               std::to_string(failed) + " failed";
    if (result.interrupted)
        throw_error(ErrorCode::Interrupted, "interrupted (" + counts + "; unfinished renders keep their work folders): "
                                            "run the same command again to finish");
    if (failed > 0) {
        log::error("batch: ", counts, " of ", jobs.size(), " jobs (the summary names each failure and its exit code)");
        return kExitJobsFailed;
    }
    log::info("batch: ", counts, " of ", jobs.size(), " jobs in ", static_cast<int64_t>(result.seconds), " s");
    return 0;
}

}  // namespace

Command add_batch(CLI::App& app) {
    auto b = std::make_shared<BatchCli>();
    auto* cmd = app.add_subcommand("batch", "Render many jobs from a manifest (.csv or .jsonl), idempotently");
    cmd->add_option("manifest", b->manifest, "Jobs: .csv with a header row, or .jsonl (docs/scale-out.md)")->required();
    cmd->add_option("--devices", b->devices,
                    "One job thread per entry, each job on its device: 0,1 | all | cpu,cpu (default: auto, one thread)");
    cmd->add_option("--shard", b->shard,
                    "K/N: render only the jobs whose index modulo N is K (0-based); default: from "
                    "SLURM_ARRAY_TASK_ID or JOB_COMPLETION_INDEX when set, else every job");
    cmd->add_option("--shard-count", b->shard_count,
                    "N for JOB_COMPLETION_INDEX (a Kubernetes Indexed Job's completions; else $LSYNC_SHARD_COUNT)")
        ->check(whole_in(1, 1000000));
    cmd->add_option("--json-summary", b->json_summary, "Write the JSON summary here instead of stdout");
    cmd->add_flag("--json-log", b->json_log, "One JSON object per job event on stderr (job_start, job_done, job_failed)");
    add_render_options(cmd, b->defaults, RenderOptionScope::Batch);
    return {cmd, [b]() {
        if (b->json_log) setup_logging(LogLevel::Quiet);  // stderr carries only JSON (and a final [error] line)
        return run(*b);
    }};
}

}  // namespace lsync::app
