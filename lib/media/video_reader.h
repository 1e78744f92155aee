#pragma once
// Streaming video decoder. Frames come out one at a time, as RGB uint8 tensors [H, W, 3], from a bounded
// queue filled by a decoder thread; memory does not grow with the video's length.
//
// Frame-rate policy (docs/media.md):
//  - target_fps > 0: output is constant-rate at target_fps; output frame k shows the source frame whose
//    timestamp is nearest to k / target_fps (frames are repeated or dropped by timestamp, never by count).
//  - target_fps == 0 ("native"): the same, at the source's average frame rate. Constant-frame-rate sources
//    therefore come out exactly as decoded; variable-frame-rate ones become constant-rate.
// Rotation metadata (phone videos) is applied: width/height and the pixels are those a player would show.

#include "core/bounded_queue.h"

#include <torch/torch.h>

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <thread>

namespace lsync::media {

struct VideoInfo {
    int width = 0;             ///< after rotation
    int height = 0;            ///< after rotation
    int coded_width = 0;       ///< as stored
    int coded_height = 0;      ///< as stored
    double avg_fps = 0;        ///< frames / duration as the container declares
    double real_fps = 0;       ///< FFmpeg's r_frame_rate (the base rate timestamps are multiples of)
    double output_fps = 0;     ///< rate of the frames this reader emits
    bool variable_frame_rate = false;
    int64_t frame_count_estimate = 0;  ///< at output_fps; exact for CFR files that declare nb_frames
    double duration = 0;       ///< seconds
    double start_time = 0;     ///< seconds; timestamps below are relative to it
    int rotation = 0;          ///< degrees clockwise applied to the stored frames (0, 90, 180, 270)
    std::string codec;
    std::string pixel_format;
};

struct VideoFrame {
    torch::Tensor rgb;     ///< [H, W, 3] uint8, contiguous
    int64_t index = 0;     ///< output frame number
    double time = 0;       ///< output timestamp, index / output_fps
    double source_time = 0;  ///< timestamp of the decoded frame shown (seconds from start)
};

struct VideoReaderOptions {
    double target_fps = 0;      ///< 0 = native (see policy above)
    size_t queue_capacity = 8;  ///< decoded frames buffered ahead of the consumer
    int decoder_threads = 0;    ///< 0 = the process thread budget
    /// First output frame to deliver (its index stays its number from the start). The reader seeks to the key
    /// frame before it where the container allows and decodes from there; where it cannot (no index, or the
    /// seek lands past the frame), it decodes from the start and drops the frames before it. Either way the
    /// frames are those a reader from the start gives at the same indices.
    int64_t start_index = 0;
};

class VideoReader {
public:
    /// Opens and validates synchronously (errors are thrown here); decoding starts on first next().
    explicit VideoReader(const std::string& path, VideoReaderOptions options = {});
    ~VideoReader();
    VideoReader(const VideoReader&) = delete;
    VideoReader& operator=(const VideoReader&) = delete;

    const VideoInfo& info() const { return info_; }

    /// Next frame, or nullopt at the end. Rethrows decoding failures from the worker thread.
    std::optional<VideoFrame> next();

    /// True when reading stopped at a damaged or truncated part of the file instead of its regular end.
    bool ended_early() const { return ended_early_.load(); }
    /// Frames the decoder produced so far (more than were delivered when a start had to be reached).
    int64_t decoded_frames() const { return decoded_.load(); }

    struct Impl;  // FFmpeg state, opaque to users

private:
    std::unique_ptr<Impl> impl_;
    VideoInfo info_;
    BoundedQueue<VideoFrame> queue_;
    std::thread worker_;
    std::atomic<bool> ended_early_{false};
    std::atomic<int64_t> decoded_{0};
    bool started_ = false;

    void run();
};

/// Reads only the header of a video (no decoding thread). Throws like VideoReader.
VideoInfo probe_video(const std::string& path);

}  // namespace lsync::media
