#pragma once
// Host memory of this process as the kernel counts it (/proc/self/status), for the memory measurements the
// benchmarks print. Linux only; elsewhere the functions return 0.

#include <cstdint>

namespace lsync::diagnostics {

/// Resident set size now (VmRSS), bytes.
int64_t current_rss_bytes();
/// Highest resident set size so far (VmHWM), bytes.
int64_t peak_rss_bytes();

/// Hands the C library's free heap memory back to the kernel (glibc malloc_trim; a no-op elsewhere). Decoders and
/// encoders that start and stop (a segment's x264, a re-opened decoder, each with its thread pool) leave freed
/// pages inside per-thread heaps that the allocator otherwise keeps: measured on a 64-core host, resident size
/// grew by ~1 GB over a minute of video without this. Costs a few milliseconds; call it where such a pool ends.
void release_free_host_memory();

}  // namespace lsync::diagnostics
