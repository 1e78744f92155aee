#include "pipeline/frame_map.h"

#include "core/error.h"

namespace lsync::pipeline {

LoopMode parse_loop_mode(const std::string& text) {
    if (text == "pingpong") return LoopMode::PingPong;
    if (text == "loop") return LoopMode::Loop;
    if (text == "freeze") return LoopMode::Freeze;
    throw_error(ErrorCode::Usage, "--loop must be pingpong, loop or freeze (got '" + text + "')");
}

const char* loop_mode_name(LoopMode mode) {
    switch (mode) {
        case LoopMode::PingPong: return "pingpong";
        case LoopMode::Loop: return "loop";
        case LoopMode::Freeze: return "freeze";
    }
    return "?";
}

int64_t source_frame(int64_t out, int64_t source_frames, LoopMode mode) {
    LSYNC_CHECK(out >= 0 && source_frames >= 1, ErrorCode::Internal, "source_frame: bad arguments");
    if (out < source_frames) return out;
    switch (mode) {
        case LoopMode::Loop: return out % source_frames;
        case LoopMode::Freeze: return source_frames - 1;
        case LoopMode::PingPong: {
            const int64_t phase = out % (2 * source_frames);
            return phase < source_frames ? phase : 2 * source_frames - 1 - phase;
        }
    }
    return 0;
}

}  // namespace lsync::pipeline
