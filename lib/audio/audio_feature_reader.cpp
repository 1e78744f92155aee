#include "audio/audio_feature_reader.h"

#include "core/error.h"
#include "media/audio_reader.h"

#include <memory>

namespace lsync::audio {

namespace {

AudioFeatureOptions with_prepass(AudioFeatureOptions options, const AudioPrepass& prepass) {
    options.prepass = prepass;
    return options;
}

}  // namespace

SampleReaderFactory file_sample_reader(const std::string& path) {
    return [path]() -> SampleReader {
        auto decoder = std::make_shared<media::AudioDecoder>(path, kSampleRate, 1);
        return [decoder](std::vector<float>& dst, size_t max) { return decoder->read(dst, max); };
    };
}

AudioFeatureReader::AudioFeatureReader(const SampleReaderFactory& open, FeatureEncoder encoder,
                                       AudioFeatureOptions options)
    : prepass_(measure_audio(open(), options.device, options.mel_block_frames)),
      read_(open()),
      stream_(std::move(encoder), with_prepass(options, prepass_)) {}

bool AudioFeatureReader::pull() {
    if (ended_) return false;
    buffer_.clear();
    if (read_(buffer_, kReadBlockSamples) == 0) {
        stream_.finish();
        ended_ = true;
        return false;
    }
    stream_.push(buffer_.data(), buffer_.size());
    return true;
}

torch::Tensor AudioFeatureReader::windows(int64_t first, int64_t count, FrameRate fps) {
    const int64_t need = stream_.window_span(first, count, fps).second;
    while (stream_.features_ready() < need) {
        if (stream_.encode_next()) continue;
        if (!pull() && !stream_.encode_next()) break;  // at the end, the last window becomes ready
    }
    auto out = stream_.windows(first, count, fps);
    stream_.release_before(first, fps);
    // Once the last window is encoded, read the rest (less than a block) so finish() checks the file against
    // the first pass even if the consumer never asks past the last window.
    if (stream_.windows_done() == stream_.windows().size())
        while (pull()) {
        }
    return out;
}

}  // namespace lsync::audio
