#include "core/json_file.h"

#include "core/files.h"
#include "core/json_limits.h"

#include <filesystem>
#include <fstream>
#include <iterator>

namespace lsync {

nlohmann::json read_json_file(const std::string& path, const std::string& role, ErrorCode invalid_code) {
    check_input_file(path, role);
    std::ifstream in(path, std::ios::binary);
    LSYNC_CHECK(in.good(), ErrorCode::InputNotFile, "cannot open " + role + " " + path);
    // Configs are a few KB; reading a huge file whole would only exhaust memory.
    std::error_code ec;
    if (std::filesystem::file_size(path, ec) > (16u << 20) && !ec)
        throw_error(invalid_code, path + ": larger than 16 MB, not a " + role);
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    return parse_untrusted_json(text, [&](const std::string& why) { throw_error(invalid_code, path + ": " + why); });
}

}  // namespace lsync
