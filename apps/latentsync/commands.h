#pragma once
// Each subcommand registers its options on the CLI11 app and returns the function that runs it. Parsing only:
// the work happens in lib/.

#include <CLI/CLI.hpp>

#include <functional>

namespace lsync::app {

using Runner = std::function<int()>;

Runner add_doctor(CLI::App& app);
Runner add_probe(CLI::App& app);
Runner add_debug(CLI::App& app);

}  // namespace lsync::app
