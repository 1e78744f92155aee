#pragma once
#include <string>

namespace lsync {
/// "0.1.0 (git abc1234)".
std::string version_string();
}  // namespace lsync
