// Every test process runs with the same thread budget and allocator settings as the binary: LSYNC_THREADS
// (CTest sets 1 per test, so `ctest -j N` runs N single-threaded processes and never oversubscribes) and the
// heap that keeps large buffers (core/host_allocator.h). A GPU render keeps a first-use journal in the user's
// cache folder (pipeline/first_use_journal.h); tests keep none unless they ask for one, or the environment does.
#include "core/host_allocator.h"
#include "core/threads.h"

#include <cstdlib>

namespace {
struct ProcessSetup {
    ProcessSetup() {
        lsync::tune_host_allocator();
        lsync::set_thread_budget(lsync::default_thread_budget());
        ::setenv("LSYNC_FIRST_USE_JOURNAL", "0", 0);
    }
} const process_setup;
}  // namespace
