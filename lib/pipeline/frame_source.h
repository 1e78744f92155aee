#pragma once
// The source frames of a render, by index, with memory bounded whatever the video's length: a still image is
// one frame; a video is decoded forward while the render walks forward, and a step back (the reversed half of
// a ping-pong loop) re-opens the file at the key frame before a window of frames that ends at the frame
// (media::VideoReaderOptions::start_index), so that walking backwards costs one short re-decode per window.

#include "media/video_reader.h"

#include <torch/torch.h>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>

namespace lsync::pipeline {

class FrameSource {
public:
    /// `target_fps` as media::VideoReaderOptions (0 = the video's own rate). A still image (by extension) is a
    /// source of one frame. Errors as VideoReader / read_image (thrown here, before any work).
    FrameSource(const std::string& path, double target_fps, size_t cache_bytes = size_t{256} << 20);

    bool still() const { return still_.defined(); }
    int width() const { return width_; }
    int height() const { return height_; }
    /// The rate frames come out at (the still image's: `target_fps`, or 25).
    double fps() const { return fps_; }

    /// Frame `index` as [H, W, 3] uint8 on the CPU, or nullopt when the source has no such frame.
    std::optional<torch::Tensor> get(int64_t index);
    /// How many times the file was opened (1 for a forward walk; one more per window walked backwards).
    int64_t opens() const { return opens_; }
    /// Frames decoded so far over every opening (the cost of walking backwards).
    int64_t decoded_frames() const { return decoded_before_ + (reader_ ? reader_->decoded_frames() : 0); }

private:
    void reopen(int64_t start);
    std::string path_;
    media::VideoReaderOptions options_;
    std::unique_ptr<media::VideoReader> reader_;
    torch::Tensor still_;
    int width_ = 0, height_ = 0;
    double fps_ = 25;
    int64_t next_ = 0;            ///< index of the frame the reader gives next
    int64_t end_ = -1;            ///< frame count once the end was seen, -1 before
    size_t capacity_ = 8;         ///< frames kept in the window
    std::map<int64_t, torch::Tensor> window_;
    int64_t opens_ = 0;
    int64_t decoded_before_ = 0;  ///< by the readers already closed
};

}  // namespace lsync::pipeline
