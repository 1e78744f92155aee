#include "core/json_file.h"

#include "core/files.h"
#include "core/json_limits.h"

#include <fstream>
#include <iterator>

namespace lsync {

nlohmann::json read_json_file(const std::string& path, const std::string& role, ErrorCode invalid_code) {
    check_input_file(path, role);
    std::ifstream in(path, std::ios::binary);
    LSYNC_CHECK(in.good(), ErrorCode::InputNotFile, "cannot open " + role + " " + path);
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    return parse_untrusted_json(text, [&](const std::string& why) { throw_error(invalid_code, path + ": " + why); });
}

}  // namespace lsync
