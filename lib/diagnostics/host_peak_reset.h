#pragma once
// Restarts the kernel's count of this process's peak resident size (VmHWM), so that several measurements in
// one process each get their own host peak (`bench render` runs many renders one after another).

namespace lsync::diagnostics {

/// Writes "5" to /proc/self/clear_refs (Linux 4.0 and later): VmHWM becomes the current resident size. False
/// where that is not possible; the peaks read afterwards then include everything before.
bool reset_peak_rss();

}  // namespace lsync::diagnostics
