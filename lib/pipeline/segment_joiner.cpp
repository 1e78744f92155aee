#include "pipeline/segment_joiner.h"

#include "core/error.h"

#include <utility>

namespace lsync::pipeline {

SegmentJoiner::SegmentJoiner(const media::VideoWriterOptions& output, std::string again)
    : out_(std::make_unique<media::VideoWriter>(output)), again_(std::move(again)) {
    thread_ = std::thread([this] { run(); });
}

SegmentJoiner::~SegmentJoiner() {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        closing_ = true;
        queue_.clear();  // a render that failed: nothing more is appended
    }
    changed_.notify_all();
    if (thread_.joinable()) thread_.join();
}

void SegmentJoiner::add(SegmentFile segment) {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        if (error_) std::rethrow_exception(error_);
        queue_.push_back(std::move(segment));
    }
    changed_.notify_all();
}

void SegmentJoiner::run() {
    while (true) {
        SegmentFile seg;
        {
            std::unique_lock<std::mutex> lock(mutex_);
            changed_.wait(lock, [&] { return closing_ || !queue_.empty(); });
            if (queue_.empty() || error_) return;  // closing, or failed: the rest is not appended
            seg = std::move(queue_.front());
            queue_.pop_front();
        }
        try {
            int64_t frames = 0;
            try {
                frames = out_->append_segment(seg.path);
            } catch (const Error& e) {
                if (e.code() == ErrorCode::Interrupted) throw;
                throw_error(e.code(), e.what() + again_);
            }
            LSYNC_CHECK(frames == seg.end_frame - seg.first_frame, ErrorCode::InputCorrupt,
                        "segment " + seg.path + " holds " + std::to_string(frames) + " frames, not the " +
                            std::to_string(seg.end_frame - seg.first_frame) + " its name says" + again_);
            std::lock_guard<std::mutex> lock(mutex_);
            joined_ += frames;
        } catch (...) {
            std::lock_guard<std::mutex> lock(mutex_);
            error_ = std::current_exception();
            return;
        }
    }
}

int64_t SegmentJoiner::drain() {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        closing_ = true;
    }
    changed_.notify_all();
    if (thread_.joinable()) thread_.join();
    if (error_) std::rethrow_exception(error_);
    return joined_;
}

void SegmentJoiner::commit() {
    LSYNC_CHECK(!thread_.joinable(), ErrorCode::Internal, "SegmentJoiner::commit before drain");
    out_->finish();
}

}  // namespace lsync::pipeline
