#pragma once
// Reading a small JSON file a user points at (network and scheduler configs): the input checks of
// check_input_file, then one parse error naming the file. Kept out of files.h so that header does not pull
// nlohmann/json into every translation unit.

#include "core/error.h"

#include <nlohmann/json.hpp>

#include <string>

namespace lsync {

/// The parsed document. Missing, unreadable and empty files throw as check_input_file does (InputMissing,
/// InputNotFile, InputEmpty, naming `role`), whoever wrote them; text that is not JSON throws `invalid_code`
/// ("<path>: not valid JSON (...)"): Usage for a config the user wrote, Weights for one that ships with a model.
nlohmann::json read_json_file(const std::string& path, const std::string& role, ErrorCode invalid_code);

/// Reads `j[key]` into `out` when the key is present and not null (absent keys keep the default). A value of the
/// wrong type throws `code`: "<what>: config key '<key>' has the wrong type (<json type>)", naming the key
/// instead of surfacing a json exception.
template <class T>
void read_json_key(const nlohmann::json& j, const std::string& key, T& out, const std::string& what, ErrorCode code) {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) return;
    try {
        out = it->template get<T>();
    } catch (const nlohmann::json::exception&) {
        throw_error(code, what + ": config key '" + key + "' has the wrong type (" + it->type_name() + ")");
    }
}

}  // namespace lsync
