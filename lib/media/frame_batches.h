#pragma once
// The frames of a video, or of a still image (one frame), in order and in batches: the decode loop of tools that
// analyse every frame (`debug faces`, `bench`), so that they do not each carry their own.

#include "media/video_reader.h"

#include <torch/torch.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace lsync::media {

struct FrameBatch {
    int64_t first = 0;                  ///< index of frames[0]
    std::vector<torch::Tensor> frames;  ///< [H, W, 3] uint8 each (CPU)
    std::vector<double> times;          ///< their timestamps (seconds)
};

class FrameBatches {
public:
    /// `batch` frames per batch (>= 1); stops after `max_frames` (0 = every frame). Opening errors as
    /// VideoReader / read_image.
    FrameBatches(const std::string& path, int64_t batch, int64_t max_frames = 0);
    int width() const { return width_; }
    int height() const { return height_; }
    /// The next batch (the last may be short), or nullopt after the last frame.
    std::optional<FrameBatch> next();
    /// Frames handed out so far.
    int64_t frames() const { return done_; }

private:
    std::unique_ptr<VideoReader> reader_;
    torch::Tensor still_;  ///< the image, until handed out
    int width_ = 0, height_ = 0;
    int64_t batch_, max_frames_, done_ = 0;
};

}  // namespace lsync::media
