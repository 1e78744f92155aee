#pragma once
// `latentsync batch`: the manifest (many render jobs in one file) and how its rows are split into shards for a
// Slurm job array or a Kubernetes Indexed Job (docs/scale-out.md). The manifest is untrusted input: every row is
// checked before any job runs, and each refusal is one Error(Usage) naming the file and line.
//
// Two formats, chosen by extension:
//   .csv   a header row naming the columns (video, audio, output, then any per-job options), one job per row;
//          RFC 4180 quoting ("a, b" and "say ""hi""", line breaks inside quotes); unquoted fields are trimmed;
//          an empty cell leaves the option at the batch default. Blank lines and lines starting with # are skipped.
//   .jsonl one JSON object per line: {"video": ..., "audio": ..., "output": ..., "seed": 3}; option values are
//          strings, numbers or booleans; null leaves the default. Blank lines and lines starting with # too.
// Relative paths (video, audio, output, and the path options) are relative to the manifest's folder.

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace lsync::pipeline {

/// A per-job option a manifest may set: the render option's long name without "--" (`keep_video_tail` may be
/// written for `keep-video-tail`).
struct BatchOptionSpec {
    const char* name;
    bool flag;  ///< a switch: the value is true/false (also 1/0, yes/no, on/off)
    bool path;  ///< a file: relative to the manifest's folder
};

/// Every option a row may set; the rest (device, dtype, attention, model files, ...) are batch-wide.
const std::vector<BatchOptionSpec>& batch_option_specs();

struct BatchJobSpec {
    int64_t index = 0;  ///< 0-based among the manifest's jobs (what shards split; the summary's "job")
    int64_t line = 0;   ///< 1-based line of the manifest where the row starts
    std::string video, audio, output;  ///< resolved against the manifest's folder
    /// Options the row sets, in column order: (long name without "--", value as text). Flags carry "true" or
    /// "false"; values are checked later with the same rules as `render` (apps/latentsync).
    std::vector<std::pair<std::string, std::string>> options;
};

struct BatchManifest {
    std::string path;
    std::vector<BatchJobSpec> jobs;
};

enum class ManifestFormat { Csv, Jsonl };

/// Limits on a manifest, far above any real one: a hostile file cannot make the check slow or large.
constexpr int64_t kMaxManifestBytes = 64LL << 20;
constexpr int64_t kMaxManifestJobs = 1000000;
constexpr std::size_t kMaxManifestField = 16384;  ///< bytes in one value
constexpr std::size_t kMaxManifestColumns = 64;

/// Reads and checks a manifest file: .csv or .jsonl by extension (Error(Usage) otherwise); a missing, empty or
/// unreadable file throws as check_input_file does. Then as parse_batch_manifest.
BatchManifest read_batch_manifest(const std::string& path);

/// Parses manifest text. `name` goes into messages ("jobs.csv line 4: ..."), `base_dir` resolves relative
/// paths (empty: leave them as they are). Refused with Error(Usage) naming the line: a missing column or
/// value, an unknown or repeated option, a flag that is not true/false, a row with too many or too few
/// fields, unterminated quotes, a JSON line that is not an object of scalars, two jobs with one output, an
/// output that is another job's input, no jobs at all, or anything over the limits above.
BatchManifest parse_batch_manifest(std::string_view text, ManifestFormat format, const std::string& name,
                                   const std::string& base_dir);

/// Which share of the manifest this process renders: shard `index` of `count` takes the jobs whose index
/// modulo `count` is `index` (0-based), so every job is in exactly one shard for any count.
struct Shard {
    int64_t index = 0;
    int64_t count = 1;
    std::string source = "all";  ///< where it came from: "--shard", "SLURM_ARRAY_TASK_ID", "JOB_COMPLETION_INDEX"
    bool contains(int64_t job_index) const { return job_index % count == index; }
};

/// "K/N" with 0 <= K < N (whole numbers, N up to 1,000,000); Error(Usage) otherwise.
Shard parse_shard(const std::string& text);

/// The shard from the environment when `--shard` was not given (`explicit_count` is --shard-count, 0 = none):
///   SLURM_ARRAY_TASK_ID: K = (ID - SLURM_ARRAY_TASK_MIN) / SLURM_ARRAY_TASK_STEP, N = SLURM_ARRAY_TASK_COUNT
///     (an array of evenly spaced ids, e.g. --array=0-9 or 1-10 or 0-18:2; any other array is refused);
///   JOB_COMPLETION_INDEX: K = it, N = --shard-count, else $LSYNC_SHARD_COUNT (required);
///   neither: every job (0/1). `getenv` is injectable for tests.
Shard shard_from_environment(int64_t explicit_count, const std::function<const char*(const char*)>& getenv);

/// The jobs of `manifest` in `shard`, in manifest order.
std::vector<BatchJobSpec> jobs_in_shard(const BatchManifest& manifest, const Shard& shard);

}  // namespace lsync::pipeline
