#include "media/frame_batches.h"

#include "core/error.h"
#include "media/image_io.h"

namespace lsync::media {

FrameBatches::FrameBatches(const std::string& path, int64_t batch, int64_t max_frames)
    : batch_(batch), max_frames_(max_frames) {
    LSYNC_CHECK(batch >= 1 && max_frames >= 0, ErrorCode::Internal, "FrameBatches: bad batch or frame limit");
    if (is_image_path(path)) {
        still_ = read_image(path);
        height_ = static_cast<int>(still_.size(0));
        width_ = static_cast<int>(still_.size(1));
    } else {
        reader_ = std::make_unique<VideoReader>(path);
        width_ = reader_->info().width;
        height_ = reader_->info().height;
    }
}

std::optional<FrameBatch> FrameBatches::next() {
    FrameBatch b;
    b.first = done_;
    if (still_.defined()) {
        b.frames.push_back(still_);
        b.times.push_back(0.0);
        still_ = torch::Tensor();
    } else if (reader_) {
        while (static_cast<int64_t>(b.frames.size()) < batch_ && (max_frames_ == 0 || done_ + static_cast<int64_t>(b.frames.size()) < max_frames_)) {
            auto frame = reader_->next();
            if (!frame) break;
            if (b.frames.empty()) b.first = frame->index;
            b.frames.push_back(frame->rgb);
            b.times.push_back(frame->time);
        }
    }
    if (b.frames.empty()) return std::nullopt;
    done_ = b.first + static_cast<int64_t>(b.frames.size());
    return b;
}

}  // namespace lsync::media
