#include "core/json_file.h"

#include "core/files.h"

#include <fstream>

namespace lsync {

nlohmann::json read_json_file(const std::string& path, const std::string& role, ErrorCode invalid_code) {
    check_input_file(path, role);
    std::ifstream in(path, std::ios::binary);
    LSYNC_CHECK(in.good(), ErrorCode::InputNotFile, "cannot open " + role + " " + path);
    try {
        return nlohmann::json::parse(in);
    } catch (const nlohmann::json::exception& e) {
        throw_error(invalid_code, path + ": not valid JSON (" + e.what() + ")");
    }
}

}  // namespace lsync
