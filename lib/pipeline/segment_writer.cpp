#include "pipeline/segment_writer.h"

#include "core/error.h"
#include "diagnostics/process_memory.h"

#include <cstdio>
#include <filesystem>

namespace lsync::pipeline {

SegmentWriter::SegmentWriter(std::string folder, media::VideoWriterOptions encoder, int64_t segment_frames,
                             int64_t first_segment)
    : folder_(std::move(folder)), encoder_(std::move(encoder)), segment_frames_(segment_frames),
      next_index_(first_segment) {
    LSYNC_CHECK(segment_frames_ > 0, ErrorCode::Internal, "segment length must be positive");
    encoder_.audio.reset();
    encoder_.metadata.clear();
    encoder_.overwrite = true;  // a segment under its final name is complete; one we rewrite was never finished
}

SegmentWriter::~SegmentWriter() {
    // A full segment: worth keeping for --resume, so it is finished rather than dropped.
    try {
        wait_for_closing();
    } catch (...) {
        // Its temporary file is gone (AtomicOutput); the render reports its own error.
    }
}

void SegmentWriter::wait_for_closing() {
    if (closing_.valid()) closing_.get();
}

std::string SegmentWriter::segment_path(const std::string& folder, int64_t index, bool lossless) {
    char name[32];
    // MP4 for H.264 (exact frame timestamps); Matroska for FFV1, which MP4 cannot hold.
    std::snprintf(name, sizeof name, "segment-%06lld.%s", static_cast<long long>(index), lossless ? "mkv" : "mp4");
    return folder + "/" + name;
}

std::vector<std::string> SegmentWriter::existing(const std::string& folder) {
    std::vector<std::string> found;
    std::error_code ec;
    for (int64_t i = 0;; ++i) {
        std::string path = segment_path(folder, i, false);
        if (!std::filesystem::is_regular_file(path, ec)) path = segment_path(folder, i, true);
        if (!std::filesystem::is_regular_file(path, ec)) return found;
        found.push_back(std::move(path));
    }
}

void SegmentWriter::write(const torch::Tensor& rgb) {
    if (!current_) {
        encoder_.path = segment_path(folder_, next_index_++, encoder_.lossless_rgb);
        current_ = std::make_unique<media::VideoWriter>(encoder_);
        in_current_ = 0;
    }
    current_->write(rgb);
    if (++in_current_ == segment_frames_) {
        wait_for_closing();
        closing_ = std::async(std::launch::async, [full = std::move(current_)]() mutable {
            full->finish();
            full.reset();
            diagnostics::release_free_host_memory();  // the encoder's threads and buffers are gone
        });
    }
}

void SegmentWriter::finish() {
    wait_for_closing();
    if (current_) current_->finish();
    current_.reset();
}

}  // namespace lsync::pipeline
