#pragma once
// The encoder on its own thread: the render hands over finished frames and goes on with the next chunk while
// x264 works, through a bounded queue (so a slow encoder holds the render back instead of buffering frames).

#include "core/bounded_queue.h"
#include "pipeline/frame_sink.h"

#include <torch/torch.h>

#include <atomic>
#include <exception>
#include <memory>
#include <thread>

namespace lsync::pipeline {

class AsyncWriter {
public:
    /// Starts the encoding thread that feeds `sink`. With `trim_every` > 0 the thread hands the allocator's free
    /// memory back to the system (diagnostics::release_free_host_memory) after every `trim_every` frames: the
    /// render's threads free many frame-sized blocks, which glibc's per-thread arenas keep resident until a trim.
    AsyncWriter(std::unique_ptr<FrameSink> sink, size_t queue_frames = 16, size_t trim_every = 0);
    /// Without finish(): stops the thread and destroys the sink with what it had not finished.
    ~AsyncWriter();
    AsyncWriter(const AsyncWriter&) = delete;
    AsyncWriter& operator=(const AsyncWriter&) = delete;

    /// Queues one frame ([H, W, 3] uint8 CPU). Rethrows the encoder's failure, if it failed.
    void write(torch::Tensor rgb);
    /// Queues FrameSink::cut() after the frames queued so far.
    void cut();
    /// Encodes what is queued and finishes the sink; rethrows the encoder's failure.
    void finish();

private:
    void run();
    void push(torch::Tensor item);  ///< rethrows the encoder's failure
    std::unique_ptr<FrameSink> writer_;
    BoundedQueue<torch::Tensor> queue_;  ///< frames, and an undefined tensor for each cut()
    std::exception_ptr error_;
    size_t trim_every_ = 0;
    std::atomic<bool> abandon_{false};  ///< set by the destructor: drop queued frames, do not encode them
    std::thread thread_;
};

}  // namespace lsync::pipeline
