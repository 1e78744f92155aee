#include "pipeline/frame_source.h"

#include "core/cancel.h"
#include "core/error.h"
#include "diagnostics/process_memory.h"
#include "media/image_io.h"

#include <algorithm>

namespace lsync::pipeline {

FrameSource::FrameSource(const std::string& path, double target_fps, size_t cache_bytes) : path_(path) {
    options_.target_fps = target_fps;
    if (media::is_image_path(path)) {
        still_ = media::read_image(path);
        height_ = static_cast<int>(still_.size(0));
        width_ = static_cast<int>(still_.size(1));
        fps_ = target_fps > 0 ? target_fps : 25.0;
        return;
    }
    reopen(0);
    const auto& info = reader_->info();
    width_ = info.width;
    height_ = info.height;
    fps_ = info.output_fps;
    const size_t frame_bytes = static_cast<size_t>(width_) * static_cast<size_t>(height_) * 3;
    // At least one chunk's worth, so a backwards walk re-decodes at most once per chunk.
    capacity_ = std::clamp<size_t>(cache_bytes / std::max<size_t>(frame_bytes, 1), 16, 256);
}

void FrameSource::reopen(int64_t start) {
    if (reader_) {
        decoded_before_ += reader_->decoded_frames();
        reader_.reset();  // joins the old decoder thread before a new one starts
        diagnostics::release_free_host_memory();  // its frame threads' heaps
    }
    options_.start_index = start;
    reader_ = std::make_unique<media::VideoReader>(path_, options_);
    next_ = start;
    ++opens_;
}

std::optional<torch::Tensor> FrameSource::get(int64_t index) {
    LSYNC_CHECK(index >= 0, ErrorCode::Internal, "FrameSource::get: negative index");
    if (still()) return index == 0 ? std::optional<torch::Tensor>(still_) : std::nullopt;
    if (end_ >= 0 && index >= end_) return std::nullopt;
    if (auto it = window_.find(index); it != window_.end()) return it->second;
    if (index < next_) {
        // Behind the decoder: decode again from the key frame before the window that ends at `index` (the reader
        // seeks there, or decodes from the start where the file cannot seek); the window then holds the frames
        // up to `index`.
        window_.clear();
        reopen(std::max<int64_t>(0, index - static_cast<int64_t>(capacity_) + 1));
    }
    while (next_ <= index) {
        throw_if_interrupted();
        auto frame = reader_->next();
        if (!frame) {
            end_ = next_;
            return std::nullopt;
        }
        window_[next_] = frame->rgb;
        if (window_.size() > capacity_) window_.erase(window_.begin());
        ++next_;
    }
    return window_.at(index);
}

}  // namespace lsync::pipeline
