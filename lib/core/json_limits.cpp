#include "core/json_limits.h"

#include "core/untrusted_text.h"

namespace lsync {

std::string json_depth_problem(std::string_view text, int max_depth) {
    int depth = 0;
    bool in_string = false, escaped = false;
    for (std::size_t i = 0; i < text.size(); ++i) {
        const char c = text[i];
        if (in_string) {
            if (escaped) escaped = false;
            else if (c == '\\') escaped = true;
            else if (c == '"') in_string = false;
            continue;
        }
        if (c == '"') {
            in_string = true;
        } else if (c == '[' || c == '{') {
            if (++depth > max_depth)
                return "nested deeper than " + std::to_string(max_depth) + " levels (at byte " + std::to_string(i) +
                       ")";
        } else if (c == ']' || c == '}') {
            --depth;  // unbalanced text is the parser's to report
        }
    }
    return {};
}

nlohmann::json parse_untrusted_json(std::string_view text, const std::function<void(const std::string&)>& fail) {
    if (const std::string why = json_depth_problem(text); !why.empty()) fail("JSON " + why);
    try {
        return nlohmann::json::parse(text.begin(), text.end());
    } catch (const nlohmann::json::exception& e) {
        // The parser quotes the token it stopped at, which may be a long run of file bytes.
        fail("not valid JSON: " + printable(e.what(), 160));
    }
    return {};  // not reached: fail throws
}

std::string json_excerpt(const nlohmann::json& j, std::size_t max_chars) {
    // Documents reaching here passed the depth check, so dump() recursion is bounded, but their size is not:
    // show a container's first elements only, nested containers as [...] / {...}, strings cut short.
    const auto scalar = [&](const nlohmann::json& v) {
        if (v.is_string()) {
            const auto& s = v.get_ref<const std::string&>();
            return dump_json(s.size() > max_chars ? s.substr(0, max_chars) : s);
        }
        return v.is_array() ? std::string("[...]") : v.is_object() ? std::string("{...}") : dump_json(v);
    };
    if (!j.is_array() && !j.is_object()) return printable(scalar(j), max_chars);
    std::string text = j.is_array() ? "[" : "{";
    std::size_t k = 0;
    for (auto it = j.begin(); it != j.end() && text.size() <= max_chars; ++it, ++k) {
        if (k) text += ",";
        if (j.is_object()) text += dump_json(it.key()) + ":";
        text += scalar(*it);
    }
    text += j.is_array() ? "]" : "}";
    return printable(text, max_chars);
}

std::string dump_json(const nlohmann::json& j, int indent) {
    return j.dump(indent, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace lsync
