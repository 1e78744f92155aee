#include "core/version.h"

namespace lsync {
std::string version_string() { return std::string(LSYNC_VERSION) + " (git " + LSYNC_GIT + ")"; }
}  // namespace lsync
