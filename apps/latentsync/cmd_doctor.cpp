#include "commands.h"

#include "core/error.h"
#include "core/json_limits.h"
#include "diagnostics/doctor.h"
#include "io/model_dir.h"

#include <iostream>
#include <memory>

namespace lsync::app {

Command add_doctor(CLI::App& app) {
    struct Opts {
        bool json = false;
        bool no_probe = false;
        std::string model_dir;
    };
    auto o = std::make_shared<Opts>();
    auto* cmd = app.add_subcommand("doctor", "Check devices, attention backends, codecs and model files; say how to fix problems");
    cmd->add_flag("--json", o->json, "Machine-readable report on stdout");
    cmd->add_flag("--no-probe", o->no_probe, "Skip numerical probes and kernel self-tests");
    cmd->add_option("--model-dir", o->model_dir, "Model directory (default: $LATENTSYNC_MODEL_DIR or ~/.cache/latentsync)");
    return {cmd, [o]() {
        diagnostics::DoctorOptions opts;
        opts.model_dir = io::resolve_model_dir(o->model_dir);
        opts.run_probes = !o->no_probe;
        const auto report = diagnostics::run_doctor(opts);
        if (o->json)
            std::cout << dump_json(report.details, 2) << "\n";
        else
            std::cout << diagnostics::format_report(report);
        return report.ready ? 0 : static_cast<int>(ErrorCode::NotReady);
    }};
}

}  // namespace lsync::app
