// libFuzzer entry for one reader; LSYNC_FUZZ_TARGET names which (set per executable in CMakeLists.txt).
#include "fuzz_entries.h"

#include "core/log.h"
#include "media/ffmpeg_util.h"

#include <cstdlib>

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    // Warnings about bad input (ours and FFmpeg's) are expected here, not findings.
    lsync::setup_logging(lsync::LogLevel::Quiet);
    lsync::media::configure_ffmpeg_logging(false);
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static const auto run = lsync::fuzz::entry(LSYNC_FUZZ_TARGET);
    if (!run) std::abort();
    run(data, size);
    return 0;
}
