#pragma once
// Audio decoding. Two consumers with different needs:
//  - the model wants 16 kHz mono float32 (Whisper's input), possibly hours of it, so it is read in chunks;
//  - the output mux wants the original audio untouched (rate, layout), which VideoWriter reads itself from the
//    source file (stream copy or one AAC encode), so it is never kept in memory here.

#include <memory>
#include <string>
#include <vector>

namespace lsync::media {

struct AudioInfo {
    int stream_index = -1;
    int sample_rate = 0;   ///< original rate
    int channels = 0;      ///< original channel count
    std::string layout;    ///< e.g. "stereo", "5.1"
    std::string codec;
    double duration = 0;   ///< seconds, as declared by the container (0 if unknown)
};

class AudioDecoder {
public:
    /// Opens the best audio stream of `path` (an audio file or the audio track of a video). The output is
    /// interleaved float32 at `out_rate` Hz with `out_channels` channels (0 = keep the original).
    AudioDecoder(const std::string& path, int out_rate, int out_channels);
    ~AudioDecoder();
    AudioDecoder(const AudioDecoder&) = delete;
    AudioDecoder& operator=(const AudioDecoder&) = delete;

    const AudioInfo& info() const { return info_; }
    int out_rate() const { return out_rate_; }
    int out_channels() const { return out_channels_; }

    /// Appends up to `max_frames` sample frames (each `out_channels` floats) to `dst`. Returns how many were
    /// appended; 0 means the end of the stream.
    size_t read(std::vector<float>& dst, size_t max_frames);

    struct Impl;  // FFmpeg state, opaque to users

private:
    std::unique_ptr<Impl> impl_;
    AudioInfo info_;
    int out_rate_;
    int out_channels_;
};

/// Header information of the audio stream of `path` (throws NoAudioStream when there is none).
AudioInfo probe_audio(const std::string& path);

/// Whole file as 16 kHz mono float32, the model's input format. For long inputs prefer AudioDecoder.
std::vector<float> read_audio_16k_mono(const std::string& path);

}  // namespace lsync::media
