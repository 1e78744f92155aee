#pragma once
// Decode -> (identity) -> encode with an audio track muxed in: the render's I/O without the networks
// (`latentsync debug passthrough`), to check a file's decode, rate conversion and mux on their own.

#include <cstdint>
#include <string>

namespace lsync::pipeline {

struct PassthroughOptions {
    std::string video, audio, output;
    double fps = 0;  ///< output rate; 0 = the video's own
    int crf = 18;
    std::string preset = "medium";
    std::string audio_codec = "auto";  ///< auto (copy when the container takes it), copy or aac
    bool overwrite = false;
    int64_t max_frames = 0;  ///< 0 = every frame
};

struct PassthroughResult {
    int64_t frames = 0;
    double fps = 0;
    bool audio_copied = false;  ///< else encoded to AAC
};

/// Errors as VideoReader / VideoWriter; InputCorrupt when no frame decodes.
PassthroughResult passthrough(const PassthroughOptions& options);

}  // namespace lsync::pipeline
