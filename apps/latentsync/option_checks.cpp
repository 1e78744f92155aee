#include "option_checks.h"

#include "audio/audio_features.h"
#include "core/error.h"
#include "core/untrusted_text.h"

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <sstream>

namespace lsync::app {

namespace {

std::string number_text(double v) {
    std::ostringstream s;
    s << v;
    return s.str();
}

/// The whole of `text` as a finite double, or false.
bool parse_finite(const std::string& text, double& v) {
    if (text.empty()) return false;
    errno = 0;
    char* end = nullptr;
    v = std::strtod(text.c_str(), &end);
    return end == text.c_str() + text.size() && errno == 0 && std::isfinite(v);
}

std::string got(const std::string& text) { return " (got '" + printable(text, 40) + "')"; }

}  // namespace

CLI::Validator finite_in(double lo, double hi) {
    const std::string want = "a finite number from " + number_text(lo) + " to " + number_text(hi);
    return CLI::Validator(
        [=](std::string& text) -> std::string {
            double v = 0;
            if (!parse_finite(text, v) || v < lo || v > hi) return "must be " + want + got(text);
            return {};
        },
        "NUMBER in [" + number_text(lo) + ", " + number_text(hi) + "]");
}

CLI::Validator finite_above(double lo, double hi) {
    const std::string want = "a finite number above " + number_text(lo) + " and at most " + number_text(hi);
    return CLI::Validator(
        [=](std::string& text) -> std::string {
            double v = 0;
            if (!parse_finite(text, v) || v <= lo || v > hi) return "must be " + want + got(text);
            return {};
        },
        "NUMBER in (" + number_text(lo) + ", " + number_text(hi) + "]");
}

CLI::Validator whole_in(int64_t lo, int64_t hi) {
    const std::string want = "a whole number from " + std::to_string(lo) + " to " + std::to_string(hi);
    return CLI::Validator(
        [=](std::string& text) -> std::string {
            errno = 0;
            char* end = nullptr;
            const long long v = std::strtoll(text.c_str(), &end, 10);
            if (text.empty() || end != text.c_str() + text.size() || errno != 0 || v < lo || v > hi)
                return "must be " + want + got(text);
            return {};
        },
        "INT in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
}

CLI::Validator frame_size(int lo, int hi) {
    const std::string want = "WIDTHxHEIGHT, each from " + std::to_string(lo) + " to " + std::to_string(hi);
    return CLI::Validator(
        [=](std::string& text) -> std::string {
            const auto x = text.find('x');
            const auto whole = [&](const std::string& s, long& v) {
                errno = 0;
                char* end = nullptr;
                v = std::strtol(s.c_str(), &end, 10);
                return !s.empty() && s[0] != '-' && s[0] != '+' && end == s.c_str() + s.size() && errno == 0;
            };
            long w = 0, h = 0;
            if (x == std::string::npos || !whole(text.substr(0, x), w) || !whole(text.substr(x + 1), h) || w < lo ||
                w > hi || h < lo || h > hi)
                return "must be " + want + got(text);
            return {};
        },
        "WxH");
}

CLI::Validator frame_rate_text(bool allow_native) {
    return CLI::Validator(
        [=](std::string& text) -> std::string {
            if (allow_native && text == "native") return {};
            try {
                audio::parse_frame_rate(text);
            } catch (const Error&) {
                return std::string("must be a frame rate like 25, 29.97 or 30000/1001, above 0 and at most ") +
                       std::to_string(audio::kMaxFrameRate) + (allow_native ? ", or native" : "") + got(text);
            }
            return {};
        },
        allow_native ? "FPS|native" : "FPS");
}

CLI::Validator x264_preset() {
    static const char* const presets[] = {"ultrafast", "superfast", "veryfast", "faster", "fast",
                                          "medium",    "slow",      "slower",   "veryslow", "placebo"};
    return CLI::Validator(
        [](std::string& text) -> std::string {
            for (const char* p : presets)
                if (text == p) return {};
            return "must be an x264 preset: ultrafast, superfast, veryfast, faster, fast, medium, slow, slower, "
                   "veryslow or placebo" +
                   got(text);
        },
        "PRESET");
}

}  // namespace lsync::app
