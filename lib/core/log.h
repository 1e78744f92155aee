#pragma once
// Logging to stderr (stdout is reserved for machine output: --json, listings).
//
// spdlog does the writing, but only inside log.cpp: CUDA builds of LibTorch ship their own, newer {fmt} in
// torch/include, which shadows the {fmt} the system spdlog was built against. Keeping spdlog's headers out of
// every translation unit that sees LibTorch avoids that clash, so messages are assembled here by streaming
// the arguments: log::warn("skipped ", n, " packets in ", path).

#include <functional>
#include <sstream>
#include <string>

namespace lsync {

enum class LogLevel { Quiet, Normal, Verbose, Debug };

/// Installs the process-wide stderr logger. Safe to call more than once (the last call wins).
void setup_logging(LogLevel level);

namespace log {

enum class Level { Trace, Debug, Info, Warn, Error };

void write(Level level, const std::string& message);
bool enabled(Level level);

/// Sends warnings to `hook` instead of stderr (nullptr restores stderr). `render --json-log` uses it so every
/// warning, the library's included, becomes a JSON event. Set it before worker threads start.
void set_warning_hook(std::function<void(const std::string&)> hook);

template <typename... Args>
void emit(Level level, const Args&... args) {
    if (!enabled(level)) return;
    std::ostringstream s;
    (s << ... << args);
    write(level, s.str());
}

template <typename... Args> void debug(const Args&... a) { emit(Level::Debug, a...); }
template <typename... Args> void info(const Args&... a) { emit(Level::Info, a...); }
template <typename... Args> void warn(const Args&... a) { emit(Level::Warn, a...); }
template <typename... Args> void error(const Args&... a) { emit(Level::Error, a...); }

}  // namespace log
}  // namespace lsync
