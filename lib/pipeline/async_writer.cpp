#include "pipeline/async_writer.h"

#include "core/error.h"
#include "diagnostics/process_memory.h"

namespace lsync::pipeline {

AsyncWriter::AsyncWriter(std::unique_ptr<FrameSink> sink, size_t queue_frames, size_t trim_every)
    : writer_(std::move(sink)), queue_(queue_frames), trim_every_(trim_every) {
    thread_ = std::thread([this] { run(); });
}

AsyncWriter::~AsyncWriter() {
    abandon_ = true;
    queue_.close();
    if (thread_.joinable()) thread_.join();
    writer_.reset();  // unfinished: the temporary file goes
}

void AsyncWriter::run() {
    try {
        size_t since_trim = 0;
        while (auto frame = queue_.pop()) {
            if (abandon_) break;
            const bool is_frame = frame->defined();
            if (is_frame)
                writer_->write(*frame);
            else
                writer_->cut();
            frame.reset();  // the frame's block is free before the trim
            if (is_frame && trim_every_ > 0 && ++since_trim >= trim_every_) {
                diagnostics::release_free_host_memory();
                since_trim = 0;
            }
        }
    } catch (...) {
        error_ = std::current_exception();
        queue_.close();  // the producer's next push fails and it rethrows this
    }
}

void AsyncWriter::write(torch::Tensor rgb) {
    LSYNC_CHECK(rgb.defined(), ErrorCode::Internal, "AsyncWriter::write without a frame");
    push(std::move(rgb));
}

void AsyncWriter::cut() { push(torch::Tensor()); }

void AsyncWriter::push(torch::Tensor item) {
    if (!queue_.push(std::move(item))) {
        if (thread_.joinable()) thread_.join();
        if (error_) std::rethrow_exception(error_);
        throw_error(ErrorCode::Internal, "the encoder thread stopped");
    }
}

void AsyncWriter::finish() {
    queue_.close();
    if (thread_.joinable()) thread_.join();
    if (error_) std::rethrow_exception(error_);
    writer_->finish();
}

}  // namespace lsync::pipeline
