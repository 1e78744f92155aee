#pragma once
// Logging goes to stderr through spdlog; stdout is reserved for machine output (--json, inspect listings).

#include <spdlog/spdlog.h>

namespace lsync {

enum class LogLevel { Quiet, Normal, Verbose, Debug };

/// Installs the process-wide stderr logger. Safe to call more than once (the last call wins).
void setup_logging(LogLevel level);

}  // namespace lsync
