#include "core/host_allocator.h"

#include <climits>
#include <cstdlib>
#include <cstring>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace lsync {

void tune_host_allocator() {
#if defined(__GLIBC__)
    const char* mode = std::getenv("LSYNC_MALLOC");
    if (mode && std::strcmp(mode, "system") == 0) return;
    mallopt(M_MMAP_MAX, 0);  // large blocks come from the heap and are reused
    mallopt(M_TRIM_THRESHOLD, INT_MAX);  // give memory back only when ~2 GiB are free at the top
    mallopt(M_TOP_PAD, 256 * 1024 * 1024);  // grow the heap in steps of at least 256 MiB
#endif
}

}  // namespace lsync
