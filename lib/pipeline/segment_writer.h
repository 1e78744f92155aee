#pragma once
// The render's encoder output: video-only segments (H.264 in .mp4, or FFV1 in .mkv with --lossless) in the
// work folder, each complete on its own (it starts with a key frame) and named by the frames it holds,
// `segment-FFFFFFFF-EEEEEEEE.mp4` (first frame, end frame exclusive), a name it gets only once closed. A render
// killed at any moment keeps every closed segment, and --resume starts at the end of the last one. A render's
// SegmentJoiner (segment_joiner.h) joins each into the output without re-encoding as soon as it is closed.
//
// Segments end where the frame number is a multiple of the segment length (a whole number of 16-frame chunks,
// so a resumed render starts at a chunk boundary), and wherever the render cuts one (cut(): at the start of its
// last group, so that x264 drains the frames before it while the GPU renders that group; docs/performance-notes.md
// section 30). The x264 restart at each boundary costs one extra key frame per segment (every 10 s at the default
// length, about what x264's own key frame interval gives anyway).
//
// A segment is closed on a thread of its own while the next one starts: closing drains x264's lookahead and
// frame threads (some 50 frames at the medium preset, about half a second for 720p on a 16-core host), and done
// inline it held the encoder thread, then the render thread behind it, then the GPU waiting for the next chunk.
// One segment closes at a time; the next close, finish() and the destructor wait for it, so the segments still
// appear in order.
//
// After a cut, the frames up to the tail's end (TailSegments: the last group's frames, which come all at once when
// the GPU is done and are all that is left to encode) close as a few short segments side by side: one x264 drains
// its frames one after another, its frame threads limited by each frame's dependence on the one before, where
// several short segments use the host's cores at once (docs/performance-notes.md section 38). Each still hands
// itself on (`on_closed`) only after the one before it, so they appear in order. Frames past the tail's end (a
// video's kept tail) go into ordinary segments again. Tail segments may end inside a chunk; a render resumed among
// them starts again at the last chunk boundary (render.cpp).

#include "media/video_writer.h"
#include "pipeline/frame_sink.h"
#include "pipeline/segment_file.h"

#include <cstdint>
#include <functional>
#include <future>
#include <memory>
#include <string>
#include <vector>

namespace lsync::pipeline {

/// Frames per segment by default: 16 chunks, 10.24 s at 25 fps.
constexpr int64_t kDefaultSegmentFrames = 256;

/// The segments after a cut (above).
struct TailSegments {
    int64_t frames = 0;              ///< frames per tail segment at least; 0: none (one segment as before the cut)
    int64_t end_frame = INT64_MAX;   ///< the tail ends before this frame (a render's: its lip-synced frames' end)
    /// x264's threads share each frame of a tail segment (VideoWriterOptions::sliced_threads): its frames all
    /// arrive with the last group, and its close is the render's end.
    bool sliced_threads = true;
    /// Longer segments where `frames` would make more than this many (the multiples of the segment length may
    /// still end one more each).
    static constexpr int64_t kMaxSegments = 4;
};

class SegmentWriter : public FrameSink {
public:
    /// `encoder`: size, rate, CRF, preset and threads of every segment (path, audio and metadata are ignored).
    /// The first frame written is frame `first_frame` (the segments before it exist already). `on_closed`
    /// (optional) gets each segment once it is closed and named, in order, on the closing thread (a render hands
    /// it to its SegmentJoiner: segment_joiner.h). `tail`: the segments after cut() (above).
    SegmentWriter(std::string folder, media::VideoWriterOptions encoder, int64_t segment_frames,
                  int64_t first_frame, std::function<void(const SegmentFile&)> on_closed = nullptr,
                  TailSegments tail = {});
    ~SegmentWriter() override;  // an unfinished segment is removed; one being closed is kept

    void write(const torch::Tensor& rgb) override;
    /// Closes the current segment now (on the closing thread) unless it is empty; the frames after it are the
    /// tail (TailSegments).
    void cut() override;
    /// Closes the last (possibly short) segment.
    void finish() override;

    /// The name segment [first_frame, end_frame) has in `folder` once closed (`lossless`:
    /// VideoWriterOptions::lossless_rgb segments).
    static std::string segment_path(const std::string& folder, int64_t first_frame, int64_t end_frame,
                                    bool lossless = false);
    /// The closed segments in `folder` (of either kind) that follow each other from frame 0, in order, up to the
    /// first gap. Any other file is not a segment.
    static std::vector<SegmentFile> existing(const std::string& folder);

private:
    std::string folder_;
    media::VideoWriterOptions encoder_;
    int64_t segment_frames_;
    int64_t next_frame_;      ///< the number of the next frame written
    int64_t current_first_ = 0;
    std::unique_ptr<media::VideoWriter> current_;
    std::function<void(const SegmentFile&)> on_closed_;
    TailSegments tail_;
    int64_t tail_length_ = 0;    ///< frames per tail segment from cut() to the tail's end; 0 outside the tail
    std::shared_future<void> closing_;  ///< the last segment being closed, if any (it waits for those before it)

    void close_current();  ///< on a thread of its own
    void wait_for_closing();  ///< rethrows the close's failure
};

}  // namespace lsync::pipeline
