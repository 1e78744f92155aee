#pragma once
// The CUDA stream a render worker runs on, its alone while it holds it.
//
// LibTorch's pool hands out its 32 streams per device in rotation, so while a worker renders, another thread of
// the process (the next jobs of a long `batch` on the same GPU) can be given the same pool stream; and while a
// worker captures a CUDA graph on its stream, whatever another thread queues there joins the graph. These streams
// are made by us and lent to one worker at a time; a stream given back goes to the next worker, so the caching
// allocator's blocks and cuBLAS's per-stream workspace made on it stay in use from render to render. They have
// the device's highest priority, above the face pass's (worker_stream.cpp).

#if LSYNC_WITH_CUDA
#include <c10/cuda/CUDAStream.h>
#endif

namespace lsync::pipeline {

#if LSYNC_WITH_CUDA
class WorkerStream {
public:
    /// Lends a stream of `device` (an index, not -1); throws c10::Error when CUDA cannot make one.
    explicit WorkerStream(c10::DeviceIndex device);
    ~WorkerStream();  ///< gives the stream back (work still queued on it runs; the next holder's follows it)
    WorkerStream(const WorkerStream&) = delete;
    WorkerStream& operator=(const WorkerStream&) = delete;

    c10::cuda::CUDAStream stream() const;

private:
    c10::DeviceIndex device_;
    cudaStream_t raw_;
};
#endif

}  // namespace lsync::pipeline
