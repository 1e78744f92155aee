#include "core/cancel.h"

#include "core/error.h"

#include <atomic>
#include <csignal>

namespace lsync {

static std::atomic<bool> g_interrupted{false};

static void on_signal(int) { g_interrupted.store(true); }

void install_interrupt_handler() {
    std::signal(SIGINT, on_signal);
    std::signal(SIGTERM, on_signal);
}

bool interrupt_requested() { return g_interrupted.load(); }

void throw_if_interrupted() {
    if (interrupt_requested()) throw_error(ErrorCode::Interrupted, "interrupted");
}

}  // namespace lsync
