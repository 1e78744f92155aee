#include "pipeline/cuda_graph_capture.h"

#include "diagnostics/gpu_memory.h"

#include <shared_mutex>

namespace lsync::pipeline {

namespace {
// Held shared by each capture and exclusively while the allocator's cache is freed: LibTorch's emptyCache asserts
// that no capture is under way on any device, and one worker may run out of memory while another captures.
std::shared_mutex& capture_mutex() {
    static std::shared_mutex m;
    return m;
}
}  // namespace

void release_cached_memory_between_captures(const torch::Device& device) {
    const std::unique_lock<std::shared_mutex> lock(capture_mutex());
    diagnostics::release_cached_memory(device);
}

#if LSYNC_WITH_CUDA
std::unique_ptr<at::cuda::CUDAGraph> capture_cuda_graph(const GraphPool& pool, const std::function<void()>& fn) {
    auto graph = std::make_unique<at::cuda::CUDAGraph>();
    // No cache is freed during the capture (release_cached_memory_between_captures waits for it).
    const std::shared_lock<std::shared_mutex> capturing(capture_mutex());
    graph->capture_begin(pool, cudaStreamCaptureModeThreadLocal);
    try {
        fn();
    } catch (...) {
        try {
            graph->capture_end();
        } catch (...) {
        }
        throw;
    }
    graph->capture_end();
    return graph;
}
#endif

}  // namespace lsync::pipeline
