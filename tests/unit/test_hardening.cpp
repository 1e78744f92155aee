// Hostile inputs (issue 12): each test case is one class of attack that used to crash, hang, leak or replace
// something, built in memory or in a scratch folder. See docs/hardening.md for the limits they pin down.
#include "core/error.h"
#include "core/files.h"
#include "core/json_limits.h"
#include "core/untrusted_text.h"
#include "faces/detect_ops.h"
#include "faces/face_track_file.h"
#include "io/mapped_file.h"
#include "io/model_dir.h"
#include "io/safetensors.h"
#include "io/tfjs.h"
#include "io/torch_checkpoint.h"
#include "media/test_pattern.h"

#include "catch_compat.h"
#include "expect_error.h"
#include "test_util.h"

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sys/stat.h>
#include <unistd.h>

namespace fs = std::filesystem;
using namespace lsync;
using test::contains;

namespace {

void put(const fs::path& p, const std::string& bytes) {
    std::ofstream(p, std::ios::binary | std::ios::trunc) << bytes;
}

std::string slurp(const fs::path& p) {
    std::ifstream f(p, std::ios::binary);
    return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

std::string fixture(const std::string& name) {
    return std::string(LSYNC_SOURCE_DIR) + "/tests/fixtures/checkpoints/" + name;
}

/// `depth` opening brackets, then as many closing ones: valid JSON nested `depth` levels deep.
std::string nested_array(size_t depth) { return std::string(depth, '[') + std::string(depth, ']'); }

/// A safetensors file: 8-byte little-endian header length, header, data.
void write_safetensors_raw(const fs::path& p, const std::string& header, const std::string& data = "") {
    std::string len(8, '\0');
    for (int i = 0; i < 8; ++i) len[static_cast<size_t>(i)] = static_cast<char>((header.size() >> (8 * i)) & 0xff);
    put(p, len + header + data);
}

bool one_line(const std::string& s) { return s.find('\n') == std::string::npos && s.find('\0') == std::string::npos; }

}  // namespace

TEST_CASE("untrusted bytes are escaped and shortened for messages and JSON", "[hardening]") {
    using namespace std::string_literals;
    CHECK(printable("plain") == "plain");
    CHECK(printable("a\nb\0c"s) == "a\\nb\\x00c");
    CHECK(printable("\x1b[31m") == "\\x1b[31m");
    CHECK(printable("h\xc3\xa9llo") == "h\xc3\xa9llo");          // valid UTF-8 stays
    CHECK(printable("bad\xff\xfe") == "bad\\xff\\xfe");            // invalid bytes do not
    CHECK(printable("\xed\xa0\x80") == "\\xed\\xa0\\x80");        // a UTF-16 surrogate is not UTF-8
    const std::string shown = printable(std::string(1000, 'x'), 80);
    CHECK(shown == std::string(80, 'x') + "... (1000 bytes)");
    CHECK(utf8_or_escaped("f\xffile\xc3\xa9.mp4") == "f\\xffile\xc3\xa9.mp4");
    // The JSON output path never throws on invalid UTF-8 (it used to end in exit 70).
    const nlohmann::json j = {{"file", "bad\xff"}};
    CHECK_NOTHROW(dump_json(j));
    CHECK(nlohmann::json::parse(dump_json({{"file", utf8_or_escaped("bad\xff")}}))["file"] == "bad\\xff");
}
