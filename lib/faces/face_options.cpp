#include "faces/face_options.h"

#include "core/error.h"

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <vector>

namespace lsync::faces {

namespace {

[[noreturn]] void usage(const std::string& option, const std::string& text, const std::string& expected) {
    throw_error(ErrorCode::Usage, option + ": '" + text + "' is not valid (expected " + expected + ")");
}

// Comma-separated finite numbers; nullopt when any part is not one.
std::optional<std::vector<double>> parse_numbers(const std::string& text) {
    std::vector<double> out;
    size_t start = 0;
    while (true) {
        const size_t comma = text.find(',', start);
        const std::string part = text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
        if (part.empty()) return std::nullopt;
        char* end = nullptr;
        errno = 0;
        const double v = std::strtod(part.c_str(), &end);
        if (errno != 0 || end != part.c_str() + part.size() || !std::isfinite(v)) return std::nullopt;
        out.push_back(v);
        if (comma == std::string::npos) break;
        start = comma + 1;
    }
    return out;
}

std::optional<long> parse_integer(const std::string& text) {
    if (text.empty()) return std::nullopt;
    char* end = nullptr;
    errno = 0;
    const long v = std::strtol(text.c_str(), &end, 10);
    if (errno != 0 || end != text.c_str() + text.size()) return std::nullopt;
    return v;
}

}  // namespace

FaceChoice parse_face_choice(const std::string& text) {
    const char* expected = "largest, center, a face index N >= 0 (left to right) or a point x,y";
    FaceChoice c;
    if (text == "largest") return c;
    if (text == "center" || text == "centre") {
        c.kind = FaceChoice::Kind::Center;
        return c;
    }
    if (text.find(',') == std::string::npos) {
        const auto n = parse_integer(text);
        if (!n || *n < 0 || *n > 1000) usage("--face", text, expected);
        c.kind = FaceChoice::Kind::Index;
        c.index = static_cast<int>(*n);
        return c;
    }
    const auto xy = parse_numbers(text);
    if (!xy || xy->size() != 2 || (*xy)[0] < 0 || (*xy)[1] < 0) usage("--face", text, expected);
    c.kind = FaceChoice::Kind::Point;
    c.point = {static_cast<float>((*xy)[0]), static_cast<float>((*xy)[1])};
    return c;
}

int parse_detect_every(const std::string& text) {
    const auto n = parse_integer(text);
    if (!n || *n < 1 || *n > 100000) usage("--detect-every", text, "an integer k >= 1");
    return static_cast<int>(*n);
}

Box parse_face_box(const std::string& text) {
    const auto v = parse_numbers(text);
    const char* expected = "x,y,w,h in pixels with w > 0 and h > 0";
    if (!v || v->size() != 4 || (*v)[2] <= 0 || (*v)[3] <= 0) usage("--face-box", text, expected);
    return {static_cast<float>((*v)[0]), static_cast<float>((*v)[1]), static_cast<float>((*v)[2]),
            static_cast<float>((*v)[3])};
}

SmoothMode parse_smooth_mode(const std::string& text) {
    if (text == "none") return SmoothMode::None;
    if (text == "official") return SmoothMode::Official;
    if (text == "one-euro") return SmoothMode::OneEuro;
    usage("--smooth", text, "none, official or one-euro");
}

MissingFacePolicy parse_missing_face_policy(const std::string& text) {
    if (text == "pass") return MissingFacePolicy::Pass;
    if (text == "fail") return MissingFacePolicy::Fail;
    usage("--on-missing-face", text, "pass or fail");
}

const char* smooth_mode_name(SmoothMode mode) {
    switch (mode) {
        case SmoothMode::None: return "none";
        case SmoothMode::Official: return "official";
        case SmoothMode::OneEuro: return "one-euro";
    }
    return "?";
}

const char* missing_face_policy_name(MissingFacePolicy policy) {
    return policy == MissingFacePolicy::Fail ? "fail" : "pass";
}

}  // namespace lsync::faces
