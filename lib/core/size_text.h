#pragma once
// Byte counts in messages and reports: "3.5 GiB", "812.0 MiB" (one decimal).

#include <cstdio>
#include <string>

namespace lsync {

inline std::string mib_text(double bytes) {
    char text[48];
    std::snprintf(text, sizeof text, "%.1f MiB", bytes / (1024.0 * 1024.0));
    return text;
}

inline std::string gib_text(double bytes) {
    char text[48];
    std::snprintf(text, sizeof text, "%.1f GiB", bytes / (1024.0 * 1024.0 * 1024.0));
    return text;
}

}  // namespace lsync
