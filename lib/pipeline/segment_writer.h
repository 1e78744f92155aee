#pragma once
// The render's encoder output: numbered video-only segments (H.264 in .mp4, or FFV1 in .mkv with --lossless) in
// the work folder, each complete on its own (it starts with a key frame and only appears under its final name
// once closed; see AtomicOutput). A render
// killed at any moment keeps every closed segment, and --resume starts after the last one. At the end
// VideoWriter::append_segment joins them into the output without re-encoding.
//
// Segments are a whole number of 16-frame chunks long, so a resumed render starts at a chunk boundary; the
// x264 restart at each boundary costs one extra key frame per segment (every 10 s at the default length, about
// what x264's own key frame interval gives anyway).
//
// A full segment is closed on a thread of its own while the next one starts: closing drains x264's lookahead
// and frame threads (some 50 frames at the medium preset, about half a second for 720p on a 16-core host),
// and done inline it held the encoder thread, then the render thread behind it, then the GPU waiting for the
// next chunk. One segment closes at a time; the next close, finish() and the destructor wait for it, so the
// segments still appear in order.

#include "media/video_writer.h"
#include "pipeline/frame_sink.h"

#include <cstdint>
#include <future>
#include <memory>
#include <string>
#include <vector>

namespace lsync::pipeline {

/// Frames per segment by default: 16 chunks, 10.24 s at 25 fps.
constexpr int64_t kDefaultSegmentFrames = 256;

class SegmentWriter : public FrameSink {
public:
    /// `encoder`: size, rate, CRF, preset and threads of every segment (path, audio and metadata are ignored).
    /// Segment numbering starts at `first_segment` (the segments before it exist already).
    SegmentWriter(std::string folder, media::VideoWriterOptions encoder, int64_t segment_frames,
                  int64_t first_segment);
    ~SegmentWriter() override;  // an unfinished segment is removed; a full one being closed is kept

    void write(const torch::Tensor& rgb) override;
    /// Closes the last (possibly short) segment.
    void finish() override;

    /// The path of segment `index` in `folder` (`lossless`: VideoWriterOptions::lossless_rgb segments).
    static std::string segment_path(const std::string& folder, int64_t index, bool lossless = false);
    /// The complete segments in `folder` (of either kind): segment 0, 1, ... up to the first missing one.
    static std::vector<std::string> existing(const std::string& folder);

private:
    std::string folder_;
    media::VideoWriterOptions encoder_;
    int64_t segment_frames_;
    int64_t next_index_;
    int64_t in_current_ = 0;
    std::unique_ptr<media::VideoWriter> current_;
    std::future<void> closing_;  ///< the full segment being closed, if any

    void wait_for_closing();  ///< rethrows the close's failure
};

}  // namespace lsync::pipeline
