#pragma once
// The inputs of `latentsync bench render`, made on the spot so that every machine measures the same thing: a
// talking-head clip from one photo (scaled to cover the frame, with a slow pan of a few pixels so the face
// moves a little and every frame is encoded as new content) and synthetic speech of the same length.

#include <cstdint>
#include <string>
#include <vector>

namespace lsync::diagnostics {

struct BenchClip {
    int64_t frames = 0;
    std::string video;  ///< H.264 .mp4, `frames` frames
    std::string audio;  ///< 16 kHz mono WAV of exactly frames / fps seconds
};

struct BenchInputOptions {
    std::string photo;  ///< any picture FFmpeg reads, with a face in its upper part
    std::string folder; ///< where the files go (must exist)
    std::vector<int64_t> frames = {50, 200, 500};
    int width = 1280, height = 720, fps = 25;
};

/// One clip and one speech file per entry of `frames` (written with media::VideoWriter and
/// media::write_audio_file, as `debug synth` does). Throws the readers' and writers' errors.
std::vector<BenchClip> make_bench_inputs(const BenchInputOptions& options);

}  // namespace lsync::diagnostics
