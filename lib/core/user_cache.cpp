#include "core/user_cache.h"

#include "core/env.h"

#include <cstdlib>
#include <filesystem>
#include <system_error>
#include <unistd.h>

namespace lsync {

namespace fs = std::filesystem;

bool first_use_journal_enabled() { return env::flag("LSYNC_FIRST_USE_JOURNAL", true); }

std::string first_use_dir() {
    if (const char* d = std::getenv(kFirstUseDirVariable); d && *d) return d;
    if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x)
        return (fs::path(x) / "latentsync" / "first-use").string();
    if (const char* h = std::getenv("HOME"); h && *h)
        return (fs::path(h) / ".cache" / "latentsync" / "first-use").string();
    return "";
}

bool folder_writable_or_creatable(const std::string& folder) {
    if (folder.empty()) return false;
    std::error_code ec;
    fs::path at = fs::absolute(folder, ec);
    if (ec) return false;
    // The first part of the path that exists decides: it must be a folder we may add entries to. Anything else
    // there (a file, a socket) means the rest cannot be made.
    while (!fs::exists(fs::symlink_status(at, ec))) {
        if (!at.has_parent_path() || at.parent_path() == at) return false;
        at = at.parent_path();
    }
    return fs::is_directory(at, ec) && ::access(at.c_str(), W_OK | X_OK) == 0;
}

}  // namespace lsync
