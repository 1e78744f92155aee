#pragma once
// A CUDA stream lent to one thread of a render at a time and kept for the next: the render workers' streams (at the
// device's highest priority) and the face pass's (at its lowest).
//
// LibTorch's pool hands out its 32 streams per device in rotation, so while a worker renders, another thread of
// the process (the next jobs of a long `batch` on the same GPU) can be given the same pool stream; and while a
// worker captures a CUDA graph on its stream, whatever another thread queues there joins the graph. Rotation also
// costs memory: LibTorch makes cuBLAS's workspace per handle and stream and never gives it back, so a face pass
// on the next pool stream each render added one to the allocator's live bytes until all 32 had one (the 1.5
// render's GPU peak rose 0.02-0.08 GiB a render in one process; flat with lent streams: docs/performance-notes.md
// section 42). These streams are made by us and lent to one holder at a time; a stream given back goes to the next
// holder of its priority, so the allocator's blocks and the workspaces made on it stay in use from render to render.

#if LSYNC_WITH_CUDA
#include <c10/cuda/CUDAStream.h>
#endif

namespace lsync::pipeline {

enum class StreamPriority {
    Highest,  ///< the render workers: the critical path, so where both have kernels waiting the GPU runs theirs
    Lowest,   ///< the face pass: ahead of the workers, it runs in their gaps
};

#if LSYNC_WITH_CUDA
class LentStream {
public:
    /// Lends a stream of `device` (an index, not -1); throws c10::Error when CUDA cannot make one.
    explicit LentStream(c10::DeviceIndex device, StreamPriority priority = StreamPriority::Highest);
    ~LentStream();  ///< gives the stream back (work still queued on it runs; the next holder's follows it)
    LentStream(const LentStream&) = delete;
    LentStream& operator=(const LentStream&) = delete;

    c10::cuda::CUDAStream stream() const;

private:
    c10::DeviceIndex device_;
    StreamPriority priority_;
    cudaStream_t raw_;
};
#endif

}  // namespace lsync::pipeline
