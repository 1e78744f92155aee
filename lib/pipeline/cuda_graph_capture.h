#pragma once
// What the graphed networks (graphed_denoiser.h, graphed_vae.h) share: a capture that leaves the rest of the
// process running, and the rule that no allocator cache is freed while any capture is under way.

#include <torch/torch.h>

#include <functional>
#include <memory>

#if LSYNC_WITH_CUDA
#include <ATen/cuda/CUDAGraph.h>
#endif

namespace lsync::pipeline {

/// diagnostics::release_cached_memory once no graph is being captured in the process (LibTorch asserts that none
/// is while it frees): what a worker's out-of-memory back-off calls.
void release_cached_memory_between_captures(const torch::Device& device);

#if LSYNC_WITH_CUDA
/// The memory pool a group of graphs shares (at::cuda::graph_pool_handle()).
using GraphPool = decltype(at::cuda::graph_pool_handle());

/// Captures what `fn` queues on the current stream into a new graph whose memory comes from `pool`. Nothing runs
/// during a capture. Thread-local mode: the other workers and the face pass keep allocating and launching on their
/// own threads. Throws what `fn` or the capture throws, with the capture ended.
std::unique_ptr<at::cuda::CUDAGraph> capture_cuda_graph(const GraphPool& pool, const std::function<void()>& fn);
#endif

}  // namespace lsync::pipeline
