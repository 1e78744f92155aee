#pragma once
// H.264 (libx264) writer, or lossless FFV1 RGB, with the audio of another file muxed in. The output appears under its final name
// only when finish() succeeds (see AtomicOutput); a failed or interrupted write leaves nothing behind.
//
// Audio policy: the original audio is copied bit-exact when the output container accepts its codec
// (e.g. AAC or MP3 into .mp4, anything into .mkv); otherwise it is encoded once to AAC at its original sample
// rate and channel layout. Users never get 16 kHz mono back.

#include <torch/torch.h>

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace lsync::media {

enum class AudioMuxMode { Auto, Copy, AAC };

struct AudioMuxOptions {
    std::string path;                ///< file whose best audio stream is muxed (an audio file or a video)
    AudioMuxMode mode = AudioMuxMode::Auto;
    double max_seconds = 0;          ///< 0 = the whole stream; otherwise cut at this time
};

struct VideoWriterOptions {
    std::string path;
    bool overwrite = false;
    /// Where the file is written until finish() moves it to `path` (core/files.h AtomicOutput; empty: beside it).
    std::string temp_folder;
    int width = 0;
    int height = 0;
    int fps_num = 25;
    int fps_den = 1;
    int crf = 18;                    ///< libx264 constant rate factor (0 = lossless, 51 = worst)
    /// FFV1 of the RGB frames instead of H.264 (bit-exact, large; .mkv only): masters and comparisons.
    /// `crf` and `preset` do not apply.
    bool lossless_rgb = false;
    std::string preset = "medium";   ///< libx264 preset
    int threads = 0;                 ///< encoder threads, 0 = the process thread budget
    /// libx264's threads share each frame (slices) instead of each taking a frame: a few frames are done sooner,
    /// at a slightly higher bitrate; the parameter sets are the same, so such a segment joins the others.
    bool sliced_threads = false;
    std::optional<AudioMuxOptions> audio;
    /// Container tags, e.g. {"comment", "latentsync render: model 1.5, seed 1247, ..."} (mp4 keeps the standard
    /// keys: title, comment, encoder, ...).
    std::vector<std::pair<std::string, std::string>> metadata;
};

class VideoWriter {
public:
    /// Validates the destination, opens the encoder and the audio source, and writes the header to a
    /// temporary file. Throws Usage/OutputExists/OutputUnwritable/Encode/audio input errors.
    explicit VideoWriter(VideoWriterOptions options);
    ~VideoWriter();  // without finish(): the temporary file is removed
    VideoWriter(const VideoWriter&) = delete;
    VideoWriter& operator=(const VideoWriter&) = delete;

    /// Appends one frame, [height, width, 3] uint8 RGB on the CPU. Odd sizes are padded to even by
    /// repeating the last row/column (4:2:0 chroma needs even sizes); the padded size is logged once.
    void write(const torch::Tensor& rgb);

    /// Appends a video-only file this class wrote earlier with the same size, rate, CRF and preset (a render's
    /// segment; see lib/pipeline/segment_writer.h), without re-encoding: its packets are copied after the frames
    /// already in the output, and the audio is muxed alongside as for write(). Every segment starts with a key
    /// frame that refers to nothing before it, so segments join seamlessly. Returns its frame count. Throws
    /// InputCorrupt when the file is not such a segment (another codec, size or encoder configuration). Cannot be
    /// mixed with write() in one output.
    int64_t append_segment(const std::string& path);

    /// Flushes the encoders, muxes the remaining audio, finalises the file and moves it into place.
    void finish();

    int64_t frames_written() const;
    /// True when the audio was stream-copied, false when it was re-encoded (or there is none).
    bool audio_copied() const;

    struct Impl;  // FFmpeg state, opaque to users

private:
    std::unique_ptr<Impl> impl_;
};

}  // namespace lsync::media
