#pragma once
// Host memory of this process as the kernel counts it (/proc/self/status), for the memory measurements the
// benchmarks print. Linux only; elsewhere the functions return 0.

#include <cstdint>

namespace lsync::diagnostics {

/// Resident set size now (VmRSS), bytes.
int64_t current_rss_bytes();
/// Highest resident set size so far (VmHWM), bytes.
int64_t peak_rss_bytes();

}  // namespace lsync::diagnostics
