#include "core/env.h"

#include "core/log.h"

#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>

namespace lsync::env {

std::optional<int64_t> positive_integer(const char* name, int64_t max) {
    const char* text = std::getenv(name);
    if (!text || !*text) return std::nullopt;
    char* end = nullptr;
    errno = 0;
    const long long v = std::strtoll(text, &end, 10);
    const bool digits = std::isdigit(static_cast<unsigned char>(text[0])) != 0;  // no sign, no blanks
    if (digits && errno == 0 && end && *end == '\0' && v >= 1 && v <= max) return v;
    log::warn(name, "=", std::string(text).substr(0, 40), " ignored: not a whole number from 1 to ", max);
    return std::nullopt;
}

bool flag(const char* name, bool unset_default) {
    const char* text = std::getenv(name);
    if (!text) return unset_default;
    return *text && std::strcmp(text, "0") != 0;
}

}  // namespace lsync::env
