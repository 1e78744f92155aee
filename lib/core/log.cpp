// The only translation unit that includes spdlog (see log.h for why). It is built without LibTorch's include
// directories (target lsync_log in lib/CMakeLists.txt).
#include "core/log.h"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

namespace lsync {

static spdlog::level::level_enum to_spdlog(log::Level l) {
    switch (l) {
        case log::Level::Trace: return spdlog::level::trace;
        case log::Level::Debug: return spdlog::level::debug;
        case log::Level::Info: return spdlog::level::info;
        case log::Level::Warn: return spdlog::level::warn;
        case log::Level::Error: return spdlog::level::err;
    }
    return spdlog::level::info;
}

static std::shared_ptr<spdlog::logger> logger() {
    static std::shared_ptr<spdlog::logger> l = [] {
        auto made = spdlog::stderr_color_mt("latentsync");
        made->set_pattern("[%^%l%$] %v");
        made->set_level(spdlog::level::info);
        return made;
    }();
    return l;
}

void setup_logging(LogLevel level) {
    auto l = logger();
    switch (level) {
        case LogLevel::Quiet: l->set_level(spdlog::level::err); break;
        case LogLevel::Normal: l->set_level(spdlog::level::info); break;
        case LogLevel::Verbose: l->set_level(spdlog::level::debug); break;
        case LogLevel::Debug: l->set_level(spdlog::level::trace); break;
    }
}

namespace log {

static std::function<void(const std::string&)>& warning_hook() {
    static std::function<void(const std::string&)> hook;
    return hook;
}

void set_warning_hook(std::function<void(const std::string&)> hook) { warning_hook() = std::move(hook); }

void write(Level level, const std::string& message) {
    if (level == Level::Warn && warning_hook()) {
        warning_hook()(message);
        return;
    }
    logger()->log(to_spdlog(level), "{}", message);
}

bool enabled(Level level) {
    return (level == Level::Warn && warning_hook()) || logger()->should_log(to_spdlog(level));
}

}  // namespace log

}  // namespace lsync
