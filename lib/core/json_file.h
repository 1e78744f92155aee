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

}  // namespace lsync
