#include "core/log.h"

#include <spdlog/sinks/stdout_color_sinks.h>

namespace lsync {

void setup_logging(LogLevel level) {
    auto logger = spdlog::stderr_color_mt("latentsync");
    logger->set_pattern("[%^%l%$] %v");
    switch (level) {
        case LogLevel::Quiet: logger->set_level(spdlog::level::err); break;
        case LogLevel::Normal: logger->set_level(spdlog::level::info); break;
        case LogLevel::Verbose: logger->set_level(spdlog::level::debug); break;
        case LogLevel::Debug: logger->set_level(spdlog::level::trace); break;
    }
    spdlog::set_default_logger(logger);
}

}  // namespace lsync
