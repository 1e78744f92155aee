// Every test process runs with the same thread budget and allocator settings as the binary: LSYNC_THREADS
// (CTest sets 1 per test, so `ctest -j N` runs N single-threaded processes and never oversubscribes) and the
// heap that keeps large buffers (core/host_allocator.h).
#include "core/host_allocator.h"
#include "core/threads.h"

namespace {
struct ProcessSetup {
    ProcessSetup() {
        lsync::tune_host_allocator();
        lsync::set_thread_budget(lsync::default_thread_budget());
    }
} const process_setup;
}  // namespace
