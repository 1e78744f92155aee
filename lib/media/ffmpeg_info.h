#pragma once
// FFmpeg facts for code that must not see FFmpeg's headers (apps/, which builds without them).

#include <string>

namespace lsync::media {

/// FFmpeg's own version string, e.g. "5.1.6-0+deb12u1".
std::string ffmpeg_version();

/// Silences FFmpeg's own stderr chatter unless `verbose` (our errors already carry its reason).
void configure_ffmpeg_logging(bool verbose);

}  // namespace lsync::media
