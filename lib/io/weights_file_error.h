#pragma once
// The one-line error of a weights file that cannot be read (the ZIP container and the pickle inside it).

#include "core/error.h"
#include "core/untrusted_text.h"

#include <string>

namespace lsync::io {

/// "PATH: WHY" with exit code Weights. Names in `why` (tensors, records, globals) are file bytes: escaped, so the
/// message stays one line.
[[noreturn]] inline void fail_weights_file(const std::string& path, const std::string& why) {
    throw_error(ErrorCode::Weights, path + ": " + printable(why, 2000));
}

}  // namespace lsync::io
