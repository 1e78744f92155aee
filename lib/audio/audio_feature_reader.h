#pragma once
// The audio path for a file of any length with flat memory: a first pass decodes the file only to measure it
// (length and log-mel max, which the official normalisation needs up front); a second pass decodes it again
// while the consumer walks forward through the video frames, encoding each Whisper window as soon as the
// frames need it and dropping mel frames and features behind them. What stays in memory is bounded whatever
// the clip's length: at most one window plus one block of log-mel (40 s) and two windows of features
// (docs/audio.md measures a 2-hour file). The file is decoded twice, so it must be a file, not a pipe.

#include "audio/audio_features.h"

#include <functional>
#include <string>
#include <vector>

namespace lsync::audio {

/// Opens the clip from its start (called once per pass).
using SampleReaderFactory = std::function<SampleReader()>;

/// The audio track of a media file, decoded and resampled to 16 kHz mono by FFmpeg.
SampleReaderFactory file_sample_reader(const std::string& path);

class AudioFeatureReader {
public:
    /// Runs the first pass (Error(Usage) for empty or too short audio; decoder errors as AudioDecoder's).
    AudioFeatureReader(const SampleReaderFactory& open, FeatureEncoder encoder, AudioFeatureOptions options);

    int64_t feature_frames() const { return stream_.feature_frames(); }
    int64_t samples() const { return prepass_.samples; }
    /// Video frames that get audio windows at `fps` (audio_window_count).
    int64_t window_count(FrameRate fps) const { return audio_window_count(feature_frames(), fps); }

    /// audio_windows() for video frames [first, first + count). Calls must not go back: frames before `first`
    /// are released.
    torch::Tensor windows(int64_t first, int64_t count, FrameRate fps);

    const AudioFeatureStream& stream() const { return stream_; }

private:
    bool pull();  ///< pushes one more block of samples; false at the end (after finishing the stream)

    AudioPrepass prepass_;
    SampleReader read_;
    AudioFeatureStream stream_;
    std::vector<float> buffer_;
    bool ended_ = false;
};

}  // namespace lsync::audio
