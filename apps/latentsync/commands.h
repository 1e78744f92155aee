#pragma once
// Each subcommand registers its options on the CLI11 app and returns the function that runs it. Parsing only:
// the work happens in lib/.

#include <CLI/CLI.hpp>

#include <functional>

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
/// `debug faces` (cmd_faces.cpp); sets `run` to what runs it.
CLI::App* add_debug_faces(CLI::App& debug, std::function<int()>& run);

}  // namespace lsync::app
