#pragma once
// `latentsync doctor`: checks everything a render needs on this machine and says how to fix what is missing.
// The library builds a report; apps/ prints it (text or JSON).

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace lsync::diagnostics {

struct DoctorOptions {
    std::string model_dir;  ///< already resolved
    bool run_probes = true; ///< numerical attention probes and kernel self-tests
};

struct Problem {
    std::string what;
    std::string fix;  ///< one line
};

struct DoctorReport {
    nlohmann::json details;          ///< every section, machine-readable
    std::vector<Problem> problems;   ///< blocking issues, each with a fix
    std::vector<Problem> warnings;   ///< non-blocking (e.g. no GPU: renders will be slow)
    bool ready = false;              ///< a render could run
};

DoctorReport run_doctor(const DoctorOptions& options);

/// Which models a GPU with `device["memory_free_bytes"]` free can render: sets `device["renders"]` (model -> bool)
/// and adds a warning naming what a model needs for each one that does not fit. The needs are measured
/// (docs/performance-notes.md section 15): the smallest --vram-budget each model rendered in plus what cuDNN and
/// cuBLAS take beside LibTorch's allocator. A device without that field is left alone.
void add_card_memory_fit(nlohmann::json& device, std::vector<Problem>& warnings);

/// Human-readable report for a terminal.
std::string format_report(const DoctorReport& report);

}  // namespace lsync::diagnostics
