#pragma once
// Which source frame each output frame shows. The output follows the audio; when the video is shorter it
// continues as --loop says (the official code ping-pongs), when it is longer it is cut at the audio's end.

#include <cstdint>
#include <string>

namespace lsync::pipeline {

/// Frames per denoising chunk: the length the UNet's temporal layers were trained on (data.num_frames).
constexpr int64_t kFramesPerChunk = 16;

enum class LoopMode {
    PingPong,  ///< 0 1 .. n-1 n-1 .. 1 0 0 1 ..: the turn frames appear twice, as in the official loop_video
    Loop,      ///< 0 1 .. n-1 0 1 ..
    Freeze,    ///< 0 1 .. n-1 n-1 n-1 ..
};

/// "pingpong", "loop", "freeze"; Error(Usage) otherwise.
LoopMode parse_loop_mode(const std::string& text);
const char* loop_mode_name(LoopMode mode);

/// The source frame of output frame `out` (>= 0) for a source of `source_frames` (>= 1) frames.
int64_t source_frame(int64_t out, int64_t source_frames, LoopMode mode);

}  // namespace lsync::pipeline
