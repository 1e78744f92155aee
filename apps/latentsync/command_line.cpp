// The command line as typed, kept for the reports that quote it (`bench render`'s header).

#include "commands.h"

namespace lsync::app {

namespace {
std::string& stored() {
    static std::string line;
    return line;
}

// Single quotes around what a POSIX shell would split or expand, so the line can be pasted back.
std::string quoted(const std::string& arg) {
    if (!arg.empty() && arg.find_first_of(" \t\n'\"\\$`*?[]{}()<>|&;#~!") == std::string::npos) return arg;
    std::string out = "'";
    for (char c : arg) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return out + "'";
}
}  // namespace

void set_command_line(int argc, char** argv) {
    std::string line = "latentsync";  // argv[0] is wherever the binary lives: a path of this machine
    for (int i = 1; i < argc; ++i) line += " " + quoted(argv[i]);
    stored() = line;
}

const std::string& command_line() { return stored(); }

}  // namespace lsync::app
