#pragma once
// glibc's malloc serves every block above 32 MiB with a fresh mmap and gives it back on free, so each large
// tensor (a batch of 1080p frames in float is ~400 MB) costs a page fault per 4 KiB on every use. On the face
// step that kernel time was twice the compute (bench face-detect --device cpu, 2 cores: 4-5 frames/s, 18
// with the heap kept; docs/benchmarks.md). Keeping freed memory in the heap trades that for a resident size
// that stays at the peak instead of going up and down: still flat in the video's length.

namespace lsync {

/// Tunes glibc's allocator for a process that reuses large buffers (call once at start; a no-op elsewhere).
/// $LSYNC_MALLOC=system leaves the allocator as it is (for comparisons).
void tune_host_allocator();

}  // namespace lsync
