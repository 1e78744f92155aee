#pragma once
// Parsing JSON that came from a file we did not write (safetensors headers, TF.js manifests, face tracks,
// configs). nlohmann's parser itself is iterative, but a document nested a million levels deep still ends in
// recursion somewhere (dump(), copies, comparisons) and overflows the stack. Real documents of every format we
// read nest fewer than 10 levels, so anything deeper than kMaxJsonDepth is refused before parsing.

#include <nlohmann/json.hpp>

#include <functional>
#include <string>
#include <string_view>

namespace lsync {

constexpr int kMaxJsonDepth = 64;

/// Empty when `text` nests arrays/objects at most `max_depth` deep (strings are skipped correctly, so
/// brackets inside them do not count); otherwise a one-line reason ("nested deeper than 64 levels at byte N").
/// Linear in the text, no allocation.
std::string json_depth_problem(std::string_view text, int max_depth = kMaxJsonDepth);

/// Parses `text` after the depth check. Any problem (too deep, not JSON) calls `fail` with a one-line reason
/// whose untrusted parts are escaped and shortened; `fail` must throw.
nlohmann::json parse_untrusted_json(std::string_view text, const std::function<void(const std::string&)>& fail);

/// A short, escaped excerpt of `j` for an error message: never the whole document, never more than about
/// `max_chars` characters, and safe on invalid UTF-8.
std::string json_excerpt(const nlohmann::json& j, std::size_t max_chars = 80);

/// dump() that cannot throw on invalid UTF-8 in strings (bytes are replaced with U+FFFD): for JSON output
/// that carries names read from files.
std::string dump_json(const nlohmann::json& j, int indent = -1);

}  // namespace lsync
