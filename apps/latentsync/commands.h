#pragma once
// Each subcommand registers its options on the CLI11 app and returns the function that runs it. Parsing only:
// the work happens in lib/.

#include <CLI/CLI.hpp>

#include <functional>
#include <string>

namespace lsync::app {

/// A registered subcommand and what runs it once the command line named it.
struct Command {
    CLI::App* cli;
    std::function<int()> run;
};

Command add_render(CLI::App& app);
Command add_batch(CLI::App& app);
Command add_doctor(CLI::App& app);
Command add_probe(CLI::App& app);
Command add_debug(CLI::App& app);
Command add_models(CLI::App& app);
Command add_convert(CLI::App& app);
Command add_bench(CLI::App& app);
/// `debug forward` (cmd_forward.cpp); sets `run` to what runs it.
CLI::App* add_debug_forward(CLI::App& debug, std::function<int()>& run);
/// `debug random-weights` / `debug load-weights` (cmd_unet_tools.cpp); sets `run`.
CLI::App* add_debug_weights_tools(CLI::App& debug, std::function<int()>& run);
bool debug_weights_tool_parsed(CLI::App& debug);
/// `bench render` (cmd_bench_render.cpp); sets `run` to what runs it.
CLI::App* add_bench_render(CLI::App& bench, std::function<int()>& run);
/// `debug faces` (cmd_faces.cpp); sets `run` to what runs it.
CLI::App* add_debug_faces(CLI::App& debug, std::function<int()>& run);

/// The command line as typed, arguments quoted where the shell would need it (main sets it), for the headers
/// of benchmark reports.
void set_command_line(int argc, char** argv);
const std::string& command_line();

}  // namespace lsync::app
