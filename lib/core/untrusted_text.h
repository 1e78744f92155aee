#pragma once
// Bytes that came from a file or a command line go into one-line error messages and JSON output. Raw, they can
// break both: a NUL or a newline splits the log line, invalid UTF-8 makes nlohmann's dump() throw (which used
// to surface as exit 70), and a megabyte-long name floods the terminal. These helpers make such bytes safe.

#include <cstddef>
#include <string>
#include <string_view>

namespace lsync {

/// `bytes` as printable text for a message: ASCII control bytes, '\\' and bytes that are not part of valid
/// UTF-8 become C escapes (\n, \x00, ...); valid non-ASCII UTF-8 is kept. At most `max_chars` input bytes
/// are shown; a longer input ends in "... (N bytes)". Never throws.
std::string printable(std::string_view bytes, std::size_t max_chars = 80);

/// `bytes` with every byte that is not part of valid UTF-8 replaced by "\xNN" (literally, four characters),
/// everything else unchanged: a file name that can go into JSON and still tells the user which file.
std::string utf8_or_escaped(std::string_view bytes);

}  // namespace lsync
