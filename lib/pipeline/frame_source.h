#pragma once
// The source frames of a render, by index, with memory bounded whatever the video's length: a still image is
// one frame; a video is decoded forward while the render walks forward, and a step back (the reversed half of
// a ping-pong loop) re-opens the file and decodes up to the frame, keeping a window of the frames just before
// it, so that walking backwards costs one re-decode per window instead of one per frame.

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
    /// How many times the file was decoded from its start (1 for a forward walk).
    int64_t opens() const { return opens_; }

private:
    void reopen();
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
};

}  // namespace lsync::pipeline
