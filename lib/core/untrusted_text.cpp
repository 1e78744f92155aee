#include "core/untrusted_text.h"

#include <cstdio>

namespace lsync {

namespace {

/// Length of the valid UTF-8 sequence starting at s[i], or 0 when the bytes there are not one (overlong
/// forms, surrogates and code points above U+10FFFF count as invalid, as in RFC 3629).
std::size_t utf8_sequence(std::string_view s, std::size_t i) {
    const auto b = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
    const unsigned char c = b(i);
    if (c < 0x80) return 1;
    std::size_t n;
    unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        if (c == 0xE0) lo = 0xA0;
        if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        if (c == 0xF0) lo = 0x90;
        if (c == 0xF4) hi = 0x8F;
    } else {
        return 0;
    }
    if (i + n > s.size()) return 0;
    if (b(i + 1) < lo || b(i + 1) > hi) return 0;
    for (std::size_t k = 2; k < n; ++k)
        if (b(i + k) < 0x80 || b(i + k) > 0xBF) return 0;
    return n;
}

void append_hex(std::string& out, unsigned char c) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "\\x%02x", c);
    out += buf;
}

}  // namespace

std::string printable(std::string_view bytes, std::size_t max_chars) {
    std::string out;
    const std::size_t shown = bytes.size() > max_chars ? max_chars : bytes.size();
    out.reserve(shown + 16);
    for (std::size_t i = 0; i < shown;) {
        const auto c = static_cast<unsigned char>(bytes[i]);
        const std::size_t n = utf8_sequence(bytes, i);
        if (n > 1 && i + n <= shown) {
            out.append(bytes.substr(i, n));
            i += n;
            continue;
        }
        if (c == '\n') out += "\\n";
        else if (c == '\r') out += "\\r";
        else if (c == '\t') out += "\\t";
        else if (c == '\\') out += "\\\\";
        else if (c < 0x20 || c == 0x7F || c >= 0x80) append_hex(out, c);
        else out += static_cast<char>(c);
        ++i;
    }
    if (shown < bytes.size()) out += "... (" + std::to_string(bytes.size()) + " bytes)";
    return out;
}

std::string utf8_or_escaped(std::string_view bytes) {
    std::string out;
    out.reserve(bytes.size());
    for (std::size_t i = 0; i < bytes.size();) {
        const std::size_t n = utf8_sequence(bytes, i);
        if (n == 0) {
            append_hex(out, static_cast<unsigned char>(bytes[i]));
            ++i;
        } else {
            out.append(bytes.substr(i, n));
            i += n;
        }
    }
    return out;
}

}  // namespace lsync
