#pragma once
// The UNet's CUDA graphs made beside a worker's first group instead of inside it.
//
// A graphed denoiser (graphed_denoiser.h) runs the first calls of a shape eagerly (that thread's cuDNN plans, the
// cuBLAS state of its stream) and captures the next ones, all on the worker's thread: 0.48-0.50 s more than a
// steady group's UNet at 256 px on an H200, during which the GPU mostly waits for the host
// (docs/performance-notes.md sections 29 and 31). Here a thread and a stream of their own do those calls (on zeros
// of the group's shapes, through the same denoising loop) while the worker aligns and VAE-encodes the group; the
// worker waits for them before its loop, which then replays the graphs from its first step.
//
// The graphs keep what the priming stream's cuBLAS calls use (its workspace is kept per handle and stream), so the
// stream stays held here, unused by anyone else, for as long as the graphs exist: the owner keeps its
// GraphPriming as long as its denoiser.
//
// Off by default (LSYNC_PRIME_GRAPHS=1 turns it on): on an H200 the priming took 0.68-0.83 s beside the worker's
// align and encode, and slowed those from 0.36 to 0.43 s on average (two threads' first uses at once), so the
// first group gained 0-0.15 s and four 500-frame renders each way gave the same render stage within the noise,
// for 0.2 GiB more allocator peak. It is the piece a start that overlaps the loading would use (section 31).

#include <torch/torch.h>

#include <functional>
#include <future>
#include <memory>

namespace lsync::pipeline {

/// Whether renders prime their graphs this way (LSYNC_PRIME_GRAPHS=1; off by default; read once).
bool graph_priming_wanted();

class GraphPriming {
public:
    GraphPriming() = default;
    ~GraphPriming();  ///< waits for a priming under way
    GraphPriming(const GraphPriming&) = delete;
    GraphPriming& operator=(const GraphPriming&) = delete;

    /// Runs `body` on a thread of its own with a new high-priority stream of `device` (CUDA) as its current
    /// stream, no grad, and this thread's LibTorch thread-local state; returns at once. Once only: later calls
    /// do nothing. A failure of `body` is logged (a warning) and dropped. An out-of-memory error in a UNet call
    /// turns the denoiser's graphs off (their memory freed) as it does in the worker (graphed_denoiser.h), so
    /// the render then runs its UNet eagerly.
    void start(const torch::Device& device, std::function<void()> body);
    bool started() const { return started_; }
    /// Waits for the priming, if one was started (and not waited for yet).
    void wait();

private:
    bool started_ = false;
    std::shared_ptr<void> stream_;  ///< the priming's stream (lent_stream.h), held for the graphs' lifetime
    std::future<void> done_;
};

}  // namespace lsync::pipeline
