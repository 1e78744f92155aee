#pragma once
// Writes PCM samples to an audio file (WAV as 16-bit PCM, .m4a/.aac/.mka as AAC). Used to make test inputs and
// demo speech; output follows the same temporary-file-then-rename rule as VideoWriter.

#include <string>
#include <vector>

namespace lsync::media {

/// `samples` are interleaved float32 in [-1, 1], `channels` per frame.
void write_audio_file(const std::string& path, const std::vector<float>& samples, int sample_rate, int channels,
                      bool overwrite);

}  // namespace lsync::media
