#pragma once
// `latentsync batch`: many renders, one job thread per device, the networks loaded once per device and kept
// warm (model_cache.h). A job that fails does not stop the others; its exit code and message go into the
// summary. Reruns are idempotent: a finished output is skipped, an interrupted one (its work folder beside it)
// resumes as `render --resume` does. Ctrl-C / SIGTERM stops every running job cleanly (their work folders
// stay for the rerun) and starts no new one. The manifest is batch_manifest.h; docs/scale-out.md.

#include "pipeline/batch_manifest.h"
#include "pipeline/render.h"

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <string>
#include <vector>

namespace lsync::pipeline {

/// One render of the batch: the manifest row and its checked options (the batch fills in the device, the
/// model cache and --resume per run).
struct BatchJob {
    BatchJobSpec spec;
    RenderOptions options;
};

enum class JobStatus {
    Ok,           ///< rendered (or finished from an interrupted run's work folder)
    Skipped,      ///< the output was already there
    Failed,       ///< the render failed: exit_code and message say why
    Interrupted,  ///< stopped by Ctrl-C / SIGTERM; its work folder is kept, a rerun resumes it
    NotRun,       ///< the batch was interrupted before it started
};
/// "ok", "skipped", "failed", "interrupted", "not-run".
const char* job_status_name(JobStatus status);

struct JobResult {
    JobStatus status = JobStatus::NotRun;
    int exit_code = 0;       ///< what `render` would have exited with (docs/cli.md); 0 for ok and skipped
    std::string error;       ///< error_code_name of exit_code ("input-missing"), empty when none
    std::string message;     ///< the one-line error, or why it was skipped
    double seconds = 0;
    int64_t frames = 0;      ///< frames in the output (rendered jobs only)
    bool resumed = false;    ///< continued from a work folder
    std::string device;
};

/// What run_batch tells its caller, from the job threads (calls are serialised).
class BatchObserver {
public:
    virtual ~BatchObserver() = default;
    virtual void job_started(const BatchJob& job, const std::string& device, bool resuming) {
        (void)job, (void)device, (void)resuming;
    }
    virtual void job_finished(const BatchJob& job, const JobResult& result) { (void)job, (void)result; }
    /// A render's warning (RenderObserver::warning).
    virtual void warning(const BatchJob& job, const std::string& message) { (void)job, (void)message; }
};

/// Error(Usage) when `path`, a file the batch writes besides the renders (`role` names it: "--json-summary"), is
/// under any name (core/files.h same_file) the manifest or a file a job reads or writes: its video, audio,
/// output, --audio-out file, face track or model files. `options[i]` are `m.jobs[i]`'s. Such a file is rewritten
/// on every run of the command by design; the batch's own files never are.
void refuse_batch_file(const BatchManifest& m, const std::vector<RenderOptions>& options, const std::string& path,
                       const std::string& role);

/// What to do with an output: Skip when it exists (a regular file) with no work folder beside it (`why` says
/// so; also when both exist: the join had finished, only the folder's removal had not), Resume when its work
/// folder (OUTPUT.lsync-work) exists, else Render.
enum class JobAction { Render, Resume, Skip };
JobAction job_action(const std::string& output, std::string* why = nullptr);

struct BatchResult {
    std::vector<JobResult> jobs;  ///< one per job, in the jobs' order
    double seconds = 0;
    bool interrupted = false;
    int64_t count(JobStatus status) const;
};

/// Runs `jobs` on `devices` (one job thread per entry; a device listed twice gets two threads, each with its
/// own models). Each job renders on its thread's device alone. Never throws for a job's failure.
BatchResult run_batch(std::vector<BatchJob> jobs, const std::vector<torch::Device>& devices, BatchObserver& observer);

/// The summary document: manifest, shard, devices, totals and one entry per job (docs/scale-out.md).
nlohmann::json batch_summary_json(const std::vector<BatchJob>& jobs, const BatchResult& result,
                                  const std::string& manifest, const Shard& shard,
                                  const std::vector<torch::Device>& devices);

}  // namespace lsync::pipeline
