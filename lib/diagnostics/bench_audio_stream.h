#pragma once
// `latentsync bench audio-stream FILE`: the two-pass audio path (audio/audio_feature_reader.h) run over a whole
// file the way the render loop will consume it (16 video frames at a time), sampling host memory as the audio
// position advances. This is the measurement behind "memory stays flat for a 2-hour file" (docs/audio.md).

#include "audio/audio_feature_reader.h"

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace lsync::diagnostics {

struct AudioStreamSample {
    double audio_seconds = 0;      ///< position of the last video frame served
    int64_t rss_bytes = 0;         ///< process RSS at that point
    int64_t mel_frames_held = 0;   ///< raw log-mel frames stored
    int64_t mel_frames_peak = 0;   ///< the most stored at once so far (inside chunks(), before a window is encoded)
    int64_t feature_frames_held = 0;
};

struct AudioStreamReport {
    double seconds = 0;            ///< audio length
    int64_t video_frames = 0;      ///< frames served
    size_t windows = 0;            ///< encoder windows
    double prepass_s = 0;          ///< first pass (decode + STFT, measuring only)
    double total_s = 0;            ///< both passes and every encoder window
    int64_t peak_rss_bytes = 0;    ///< VmHWM at the end
    std::vector<AudioStreamSample> samples;
};

struct AudioStreamOptions {
    audio::AudioFeatureOptions features;
    audio::FrameRate fps;
    int64_t frames_per_step = 16;   ///< video frames per chunks() call (the UNet's batch)
    double sample_every_s = 600;    ///< memory sample interval in audio seconds
};

/// Streams `path` through the reader; `on_sample` sees each sample as it is taken (for live output).
AudioStreamReport bench_audio_stream(const std::string& path, const audio::FeatureEncoder& encoder,
                                     const AudioStreamOptions& options,
                                     const std::function<void(const AudioStreamSample&)>& on_sample = {});

}  // namespace lsync::diagnostics
