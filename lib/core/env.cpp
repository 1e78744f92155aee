#include "core/env.h"

#include "core/log.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <set>
#include <string>
#include <vector>

extern char** environ;  // POSIX: the process's environment

namespace lsync::env {

namespace {

// Once per variable: the switches are read per worker and per render, and one notice is enough.
void warn_once(const char* name, const char* text, const std::string& expected) {
    static std::mutex mutex;
    static std::set<std::string> warned;
    {
        std::lock_guard<std::mutex> lock(mutex);
        if (!warned.insert(name).second) return;
    }
    log::warn(name, "=", std::string(text).substr(0, 40), " ignored: ", expected);
}

}  // namespace

std::optional<int64_t> positive_integer(const char* name, int64_t max) {
    const char* text = std::getenv(name);
    if (!text || !*text) return std::nullopt;
    char* end = nullptr;
    errno = 0;
    const long long v = std::strtoll(text, &end, 10);
    const bool digits = std::isdigit(static_cast<unsigned char>(text[0])) != 0;  // no sign, no blanks
    if (digits && errno == 0 && end && *end == '\0' && v >= 1 && v <= max) return v;
    warn_once(name, text, "not a whole number from 1 to " + std::to_string(max));
    return std::nullopt;
}

bool flag(const char* name, bool unset_default) {
    const char* text = std::getenv(name);
    if (!text || !*text) return unset_default;
    std::string v(text);
    std::transform(v.begin(), v.end(), v.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    if (v == "1" || v == "true" || v == "yes" || v == "on") return true;
    if (v == "0" || v == "false" || v == "no" || v == "off") return false;
    warn_once(name, text, "not 1/true/yes/on or 0/false/no/off");
    return unset_default;
}

std::string switches_set(const std::vector<std::string>& except) {
    std::vector<std::string> set;
    for (char** e = environ; e && *e; ++e) {
        const std::string entry(*e);
        const auto eq = entry.find('=');
        if (entry.rfind("LSYNC_", 0) != 0 || eq == std::string::npos || eq + 1 == entry.size()) continue;  // "": unset
        if (std::find(except.begin(), except.end(), entry.substr(0, eq)) != except.end()) continue;
        set.push_back(entry);
    }
    std::sort(set.begin(), set.end());
    std::string out;
    for (const auto& s : set) out += (out.empty() ? "" : " ") + s;
    return out;
}

}  // namespace lsync::env
