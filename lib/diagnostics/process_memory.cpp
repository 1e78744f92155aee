#include "diagnostics/process_memory.h"

#include <fstream>
#if defined(__GLIBC__)
#include <malloc.h>
#endif
#include <string>

namespace lsync::diagnostics {

namespace {

// "VmRSS:     12345 kB" -> 12345 * 1024; 0 when the field or the file is missing.
int64_t status_field_bytes(const std::string& field) {
    std::ifstream in("/proc/self/status");
    std::string line;
    while (std::getline(in, line)) {
        if (line.compare(0, field.size(), field) != 0 || line.size() <= field.size() || line[field.size()] != ':')
            continue;
        try {
            return static_cast<int64_t>(std::stoll(line.substr(field.size() + 1))) * 1024;
        } catch (const std::exception&) {
            return 0;
        }
    }
    return 0;
}

}  // namespace

int64_t current_rss_bytes() {
    return status_field_bytes("VmRSS");
}

int64_t peak_rss_bytes() {
    return status_field_bytes("VmHWM");
}

void release_free_host_memory() {
#if defined(__GLIBC__)
    malloc_trim(0);
#endif
}

}  // namespace lsync::diagnostics
