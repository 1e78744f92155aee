#include "diagnostics/host_peak_reset.h"

#include <fstream>

namespace lsync::diagnostics {

bool reset_peak_rss() {
    std::ofstream f("/proc/self/clear_refs");
    if (!f) return false;
    f << "5";
    f.flush();
    return static_cast<bool>(f);
}

}  // namespace lsync::diagnostics
